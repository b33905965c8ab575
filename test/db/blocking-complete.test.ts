/**
 * Blocking, complete (#15), on real incidents with ground-truth pids, on PostgreSQL 14 and 18:
 *
 * - a lock cycle held open (its role's deadlock_timeout raised to 10 minutes), with three sessions
 *   queued behind one member: exactly the two members named as the cycle, the three as stuck
 *   behind it, critical from --blocked-crit, and the printed terminate ends exactly one member;
 * - the DDL lock queue: a long idle-in-transaction reader of `orders`, an ALTER TABLE waiting for it,
 *   50 readers queued behind the ALTER: the ALTER is the queue head with 50 behind it, the reader
 *   the root, and cancelling the ALTER is the first step;
 * - three readers in front of one ALTER with 210 queued behind it: every reader is a root of the
 *   whole queue, and each of diagnose's groups names at most 200 pids (count says 211), so the
 *   document grows with readers plus queue, not with their product.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { runDiagnose } from '../../src/commands/diagnose.js';
import { runLocks } from '../../src/commands/locks.js';
import type { Target } from '../../src/core/target.js';
import { resolveThresholds } from '../../src/core/thresholds.js';
import { envelope } from '../../src/render/json.js';
import { expectValidDiagnoseDoc, mustFind } from '../support/diagnose.js';
import { alive, dbdoctorSessionsLeft, sorted, waitFor } from '../support/incidents.js';
import { expectValidLocksDoc } from '../support/schemas.js';
import { shellWords } from '../support/output.js';
import { ROLE_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

const pidOf = (c: pg.Client) => (c as unknown as { processID: number }).processID;

function target(s: TestServer): Target {
  return { host: s.host, port: s.port, user: 'postgres', dbname: 'postgres', password: s.password, sslmode: 'disable', sslrootcert: undefined, connectTimeoutMs: 5000, service: undefined };
}

/** Waits (bounded) until these sessions wait on a Lock, and have for at least `ms`. */
async function waiting(s: TestServer, pids: number[], ms = 1100): Promise<void> {
  await waitFor(
    s,
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND wait_event_type = 'Lock' AND clock_timestamp() - state_change >= $2 * interval '1 millisecond'`,
    [pids, ms],
    (rows) => rows[0]?.n === pids.length,
    30_000,
  );
}

describe.each([14, 18])('PostgreSQL %i', (major) => {
  let s: TestServer;
  const clients: pg.Client[] = [];
  const open = async (app: string, user?: string) => {
    const c = await s.client(user ? { user, password: ROLE_PASSWORD, application_name: app } : { application_name: app });
    clients.push(c);
    return c;
  };
  /** An ALTER TABLE on orders waiting for the readers already in, then `n` readers queued behind it, all waiting. */
  const queueBehindAlter = async (alter: string, n: number, app: string) => {
    const migrate = await open('migrate');
    migrate.query(alter).catch(() => undefined);
    await waiting(s, [pidOf(migrate)], 0);
    const readers = await Promise.all(Array.from({ length: n }, (_, i) => open(`${app}-${i}`, 'app_user')));
    for (const c of readers) c.query('SELECT count(*) FROM orders').catch(() => undefined);
    const queued = sorted(readers.map(pidOf));
    await waiting(s, [pidOf(migrate), ...queued]);
    return { migrate, queued };
  };
  /** Cancels the ALTER and waits until the queue behind it has gone through. */
  const cancelAlter = async (migrate: pg.Client, queued: number[]) => {
    await s.sql('SELECT pg_cancel_backend($1)', [pidOf(migrate)]);
    await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND wait_event_type = 'Lock'`, [queued], (rows) => rows[0]?.n === 0);
  };

  beforeAll(async () => {
    s = await startTestServer({ major, settings: { max_connections: 300 } });
    await s.sql(`CREATE ROLE cyc LOGIN PASSWORD '${ROLE_PASSWORD}'; ALTER ROLE cyc SET deadlock_timeout = '10min'`);
    await s.sql('CREATE TABLE cyc_t (id int PRIMARY KEY, v int); INSERT INTO cyc_t VALUES (1, 0), (2, 0); GRANT ALL ON cyc_t TO cyc, app_user');
    await s.sql('CREATE TABLE orders (id int PRIMARY KEY, total int); INSERT INTO orders SELECT g, g FROM generate_series(1, 10) g; GRANT ALL ON orders TO app_user');
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await s?.stop();
  }, 60_000);

  test('a lock cycle held open by deadlock_timeout = 10min: the two members, the three stuck behind, critical, one member ended', async () => {
    const a = await open('cyc-a', 'cyc');
    const b = await open('cyc-b', 'cyc');
    await a.query('BEGIN');
    await a.query('UPDATE cyc_t SET v = 1 WHERE id = 1');
    await b.query('BEGIN');
    await b.query('UPDATE cyc_t SET v = 1 WHERE id = 2');
    a.query('UPDATE cyc_t SET v = 2 WHERE id = 2').catch(() => undefined);
    await waiting(s, [pidOf(a)], 0);
    b.query('UPDATE cyc_t SET v = 2 WHERE id = 1').catch(() => undefined);
    const behind = await Promise.all([1, 2, 3].map((i) => open(`cyc-behind-${i}`, 'app_user')));
    for (const c of behind) c.query('UPDATE cyc_t SET v = 3 WHERE id = 2').catch(() => undefined);
    const members = sorted([pidOf(a), pidOf(b)]);
    const stuck = sorted(behind.map(pidOf));
    await waiting(s, [...members, ...stuck]);

    const locks = await runLocks(target(s), {});
    expectValidLocksDoc(envelope('locks', locks, '0.0.0-test'));
    expect(locks.roots).toEqual([]);
    expect(locks.cycles.map((c) => [c.members, c.stuck])).toEqual([[members, stuck]]);

    const r = await runDiagnose({ target: target(s), session: {}, thresholds: resolveThresholds({ flags: { blocked_crit: '3' } }) });
    expectValidDiagnoseDoc(envelope('diagnose', r, '0.0.0-test'));
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
    const f = mustFind(r, 'blocking');
    expect(f.severity).toBe('critical');
    const group = f.evidence.groups.find((g) => g.label.startsWith('lock cycle'))!;
    expect(group.label).toContain(`pids ${members.join(', ')} `);
    expect(group.label).toContain('3 sessions stuck behind them');
    expect(group.pids).toEqual([...members, ...stuck]);
    expect(group.severity).toBe('critical');
    expect(f.evidence.applications).toEqual(expect.arrayContaining(['cyc-a']));
    expect(f.evidence.facts.join('\n')).toMatch(/deadlock_timeout is 10min for role cyc in database postgres \(set at role level\)/);
    expect(f.next.map((n) => n.sql)).toContain('ALTER ROLE "cyc" RESET deadlock_timeout;');

    // The printed terminate names exactly one member; run as printed, it ends that one only.
    const end = f.next.find((n) => n.argv?.[0] === 'terminate' && n.text.startsWith('end the cycle'))!;
    const pidArg = Number(end.argv![end.argv!.indexOf('--pid') + 1]);
    expect(members).toContain(pidArg);
    expect(end.text).toMatch(/youngest/);
    expect(shellWords(end.command!)).toEqual(['dbdoctor', ...end.argv!]);
    await s.sql('SELECT pg_terminate_backend($1)', [pidArg]);
    await waitFor(s, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pidArg], (rows) => rows[0]?.n === 0);
    expect(await alive(s, members)).toEqual(members.filter((p) => p !== pidArg));
    const after = await runLocks(target(s), {});
    expectValidLocksDoc(envelope('locks', after, '0.0.0-test'));
    expect(after.cycles).toEqual([]);
    for (const c of [a, b, ...behind]) await c.query('ROLLBACK').catch(() => undefined);
  });

  test('the DDL lock queue: the ALTER is the queue head with 50 behind it, the reader the root, cancelling the ALTER first', async () => {
    const reader = await open('orders-report', 'app_user');
    await reader.query('BEGIN');
    await reader.query('SELECT count(*) FROM orders');
    await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'idle in transaction'`, [pidOf(reader)], (rows) => rows[0]?.n === 1);
    const { migrate, queued } = await queueBehindAlter('ALTER TABLE orders ADD COLUMN note text', 50, 'orders-api');

    const locks = await runLocks(target(s), {});
    expectValidLocksDoc(envelope('locks', locks, '0.0.0-test'));
    expect(locks.roots.map((x) => x.pid)).toEqual([pidOf(reader)]);
    const head = locks.nodes.find((n) => n.pid === pidOf(migrate))!;
    expect(head).toMatchObject({ queue_head: true, behind: 50, root: pidOf(reader), blocked_by: pidOf(reader), depth: 1 });
    expect(head.waits_for).toMatchObject({ locktype: 'relation', mode: 'AccessExclusiveLock', relation: 'orders' });
    expect(locks.roots[0]!.queue_heads).toEqual([pidOf(migrate)]);
    expect(sorted(locks.nodes.filter((n) => n.blocked_by === pidOf(migrate)).map((n) => n.pid))).toEqual(queued);

    const r = await runDiagnose({ target: target(s), session: {}, thresholds: resolveThresholds() });
    expectValidDiagnoseDoc(envelope('diagnose', r, '0.0.0-test'));
    const f = mustFind(r, 'ddl-queue');
    expect(f.severity).toBe('critical');
    expect(f.title).toMatch(new RegExp(`^ALTER TABLE orders ADD COLUMN note text \\(pid ${pidOf(migrate)}, app migrate\\) waits behind pid ${pidOf(reader)} \\(idle in transaction`));
    expect(f.title).toMatch(/; 50 sessions queue behind the ALTER$/);
    expect(f.evidence.groups[0]!.pids).toEqual([pidOf(migrate), ...queued]);
    expect(f.next[0]!.argv).toEqual(['terminate', '--pid', String(pidOf(migrate)), '--cancel-first', '--include-superusers']);
    expect(f.next[1]!.argv).toEqual(['terminate', '--pid', String(pidOf(reader))]);
    expect(f.next.map((n) => n.sql)).toContain("SET lock_timeout = '5s';");
    expect(mustFind(r, 'blocking').evidence.groups[0]!.pids[0]).toBe(pidOf(reader));

    // Cancelling the ALTER frees the 50 at once; the reader is still there.
    await cancelAlter(migrate, queued);
    expect(await alive(s, [pidOf(reader)])).toEqual([pidOf(reader)]);
    await reader.query('ROLLBACK');
  });

  test('three readers in front of an ALTER with 210 queued behind it: each root names at most 200 of the 211 it blocks', async () => {
    const holders = await Promise.all(Array.from({ length: 3 }, (_, i) => open(`orders-report-${i}`, 'app_user')));
    for (const h of holders) {
      await h.query('BEGIN');
      await h.query('SELECT count(*) FROM orders');
    }
    const { migrate, queued } = await queueBehindAlter('ALTER TABLE orders ADD COLUMN memo text', 210, 'orders-web');

    const r = await runDiagnose({ target: target(s), session: {}, thresholds: resolveThresholds() });
    expectValidDiagnoseDoc(envelope('diagnose', r, '0.0.0-test'));
    const b = mustFind(r, 'blocking');
    expect(sorted(b.evidence.groups.map((g) => g.pids[0]!))).toEqual(sorted(holders.map(pidOf)));
    for (const g of b.evidence.groups) {
      expect(g.count).toBe(211);
      expect(g.pids).toHaveLength(200);
      expect(new Set(g.pids).size).toBe(200);
      expect(g.pids.slice(1).every((p) => p === pidOf(migrate) || queued.includes(p))).toBe(true);
    }
    const ddl = mustFind(r, 'ddl-queue').evidence.groups[0]!;
    expect(ddl.count).toBe(210);
    expect(ddl.pids).toEqual([pidOf(migrate), ...queued].slice(0, 200));

    await cancelAlter(migrate, queued);
    for (const h of holders) await h.query('ROLLBACK');
  });
});
