/**
 * runQueries against real sessions: seeds/004's "many sessions run the same slow statement"
 * (different literals, one normalized statement), thresholds, a client that stopped reading
 * (ClientWrite) and one that never finished a cursor (ClientRead).
 */
import { describe, expect, test } from '@jest/globals';
import { Chalk } from 'chalk';
import type pg from 'pg';
import { runQueries } from '../../src/commands/queries.js';
import type { Target } from '../../src/core/target.js';
import { DEFAULT_QUERY_THRESHOLDS, type QueryThresholds } from '../../src/core/queries.js';
import { renderQueries } from '../../src/render/queries.js';
import { dbdoctorSessionsLeft, idleInTransaction, sorted, unreadCursor, waitForState } from '../support/incidents.js';
import { ROLE_PASSWORD, type TestServer, useServer } from '../support/server.js';

const server = useServer();
const plain = new Chalk({ level: 0 });
const ZERO: QueryThresholds = { activeMs: 0, transactionMs: 0, idleInTransactionMs: 0, clientWaitMs: 0 };
const HOUR = 3_600_000;

function target(s: TestServer, user = 'postgres'): Target {
  return { host: s.host, port: s.port, user, dbname: 'postgres', password: user === 'postgres' ? s.password : ROLE_PASSWORD, sslmode: 'disable', sslrootcert: undefined, connectTimeoutMs: 5000, service: undefined };
}
const pidOf = (c: pg.Client) => (c as unknown as { processID: number }).processID;

describe('runQueries', () => {
  test('seeds/004: 20 sessions running the same slow statement with different literals make one group', async () => {
    const s = server();
    const clients = await Promise.all(Array.from({ length: 20 }, () => s.client({ application_name: 'dedup' })));
    const pids = clients.map(pidOf);
    try {
      clients.forEach((c, i) => {
        c.query(`SELECT pg_sleep(3600) FROM (SELECT ${i + 1} AS org_id, 'report-${i}' AS name) r WHERE r.org_id = ${i + 1} AND r.name <> $1`, [`x${i}`]).catch(() => undefined);
      });
      await waitForState(s, pids, 'active');
      const r = await runQueries(target(s), {}, { thresholds: { ...ZERO }, filter: { app: ['dedup'] }, group: true });
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
      expect(sorted(r.long_queries.map((q) => q.pid))).toEqual(sorted(pids));
      expect(r.statement_groups).toHaveLength(1);
      const g = r.statement_groups![0]!;
      expect(g).toMatchObject({ count: 20, pids: sorted(pids), applications: ['dedup'], states: { active: 20 } });
      expect(g.statement).toBe('SELECT pg_sleep(?) FROM (SELECT ? AS org_id, ? AS name) r WHERE r.org_id = ? AND r.name <> ?');
      expect(g.total_ms).toBeGreaterThanOrEqual(g.oldest_ms!);
      const text = renderQueries(r, plain, 80);
      expect(text).toMatch(/│ 20 │ dedup +│/);
      for (const l of text.split('\n')) expect(l.length).toBeLessThanOrEqual(80);
      // Without --group, no groups; with the default thresholds, these young queries are not long.
      const young = await runQueries(target(s), {}, { filter: { app: ['dedup'] } });
      expect(young).toMatchObject({ status: 'ok', long_queries: [], statement_groups: null });
      expect(young.thresholds).toEqual({ active_ms: DEFAULT_QUERY_THRESHOLDS.activeMs, transaction_ms: DEFAULT_QUERY_THRESHOLDS.transactionMs, idle_in_transaction_ms: DEFAULT_QUERY_THRESHOLDS.idleInTransactionMs, client_wait_ms: DEFAULT_QUERY_THRESHOLDS.clientWaitMs });
    } finally {
      await s.sql('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
  });

  test('idle in transaction and long transactions follow their own thresholds', async () => {
    const s = server();
    const iit = await idleInTransaction(s, 2, { app: 'iit' }, 'SELECT 7 AS last_statement');
    try {
      const all = await runQueries(target(s), {}, { thresholds: { ...ZERO }, filter: { app: ['iit'] } });
      expect(sorted(all.idle_in_transaction.map((q) => q.pid))).toEqual(sorted(iit.pids));
      expect(sorted(all.long_transactions.map((q) => q.pid))).toEqual(sorted(iit.pids));
      expect(all.idle_in_transaction[0]).toMatchObject({ state: 'idle in transaction', query: 'SELECT 7 AS last_statement' });
      expect(all.long_queries).toEqual([]);
      expect(all.status).toBe('warning');
      const onlyXact = await runQueries(target(s), {}, { thresholds: { ...ZERO, idleInTransactionMs: HOUR }, filter: { app: ['iit'] } });
      expect(onlyXact.idle_in_transaction).toEqual([]);
      expect(onlyXact.long_transactions).toHaveLength(2);
      const none = await runQueries(target(s), {}, { thresholds: { activeMs: HOUR, transactionMs: HOUR, idleInTransactionMs: HOUR, clientWaitMs: HOUR }, filter: { app: ['iit'] } });
      expect(none).toMatchObject({ status: 'ok', long_transactions: [], idle_in_transaction: [] });
    } finally {
      await iit.release();
    }
  });

  test('client waits: an unread cursor on ClientRead, a client that stopped reading on ClientWrite', async () => {
    const s = server();
    const cursor = await unreadCursor(s, 1, { app: 'cursor' });
    const slow = await s.client({ application_name: 'slow-reader' });
    const slowPid = pidOf(slow);
    const stream = (slow as unknown as { connection: { stream: { pause(): void; resume(): void } } }).connection.stream;
    try {
      stream.pause();
      slow.query("SELECT g, repeat('x', 1000) FROM generate_series(1, 200000) g").catch(() => undefined);
      await waitForState(s, [slowPid], 'active', 'Client');
      const r = await runQueries(target(s), {}, { thresholds: { ...ZERO }, filter: { app: ['cursor', 'slow-reader'] } });
      const waits = Object.fromEntries(r.client_waits.map((q) => [q.pid, q.wait_event]));
      expect(waits).toEqual({ [cursor.pids[0]!]: 'ClientRead', [slowPid]: 'ClientWrite' });
      expect(r.long_queries).toEqual([]);
      expect(renderQueries(r, plain, 80)).toMatch(/client waits: results the client began and never finished reading/);
    } finally {
      await s.sql('SELECT pg_terminate_backend($1)', [slowPid]);
      stream.resume();
      await slow.end().catch(() => undefined);
      await cursor.release();
    }
  });

  test('a role without pg_read_all_stats sees only its own: partial, UNKNOWN', async () => {
    const s = server();
    const mine = await idleInTransaction(s, 1, { app: 'mine', user: 'app_user' });
    const theirs = await idleInTransaction(s, 1, { app: 'theirs' });
    try {
      const r = await runQueries(target(s, 'app_user'), {}, { thresholds: { ...ZERO }, filter: { app: ['mine', 'theirs'] } });
      expect(r.idle_in_transaction.map((q) => q.pid)).toEqual(mine.pids);
      expect(r.status).toBe('unknown');
      expect(r.visibility.partial).toBe(true);
      expect(r.visibility.hidden).toBeGreaterThanOrEqual(1);
    } finally {
      await mine.release();
      await theirs.release();
    }
  });
});
