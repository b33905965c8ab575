import { describe, expect, test } from '@jest/globals';
import {
  clientWaits,
  DEFAULT_QUERY_THRESHOLDS,
  idleInTransaction,
  isClientWait,
  longActiveQueries,
  longRunning,
  longTransactions,
  queriesReport,
  statementGroups,
} from '../../src/core/queries.js';
import { hiddenRow, row, snapshot } from './inspect-fixtures.js';

const active = (pid: number, ms: number, query = 'SELECT pg_sleep(60)', over = {}) =>
  row({ pid, state: 'active', wait_event_type: 'Timeout', wait_event: 'PgSleep', query_age_ms: ms, state_age_ms: ms, xact_age_ms: ms, query, ...over });

describe('the four lists', () => {
  const rows = [
    active(1, 45_000),
    active(2, 5_000),
    row({ pid: 3, state: 'idle in transaction', state_age_ms: 20_000, xact_age_ms: 400_000, query: 'UPDATE t SET v = 1' }),
    row({ pid: 4, state: 'idle in transaction (aborted)', state_age_ms: 12_000, xact_age_ms: 12_000 }),
    active(5, 30_000, 'SELECT * FROM files', { wait_event_type: 'Client', wait_event: 'ClientRead' }),
    active(6, 11_000, 'COPY big TO STDOUT', { wait_event_type: 'Client', wait_event: 'ClientWrite' }),
    row({ pid: 7, state: 'idle', state_age_ms: 900_000 }),
    hiddenRow({ pid: 8 }),
    active(9, 3_000, 'SELECT 1', { wait_event_type: 'Client', wait_event: 'ClientRead' }),
  ];
  test('active queries over the threshold, client waits apart', () => {
    expect(longActiveQueries(rows, 30_000).map((r) => r.pid)).toEqual([1]);
    expect(longActiveQueries(rows, 0).map((r) => r.pid)).toEqual([1, 2]);
    expect(isClientWait(rows[4]!)).toBe(true);
    expect(isClientWait(rows[6]!)).toBe(false);
  });
  test('idle in transaction (aborted too), oldest first', () => {
    expect(idleInTransaction(rows, 10_000).map((r) => r.pid)).toEqual([3, 4]);
    expect(idleInTransaction(rows, 15_000).map((r) => r.pid)).toEqual([3]);
  });
  test('ClientRead and ClientWrite over the threshold', () => {
    expect(clientWaits(rows, 10_000).map((r) => [r.pid, r.wait_event])).toEqual([
      [5, 'ClientRead'],
      [6, 'ClientWrite'],
    ]);
  });
  test('long transactions in any state; hidden rows never', () => {
    expect(longTransactions(rows, 300_000).map((r) => r.pid)).toEqual([3]);
    expect(longTransactions(rows, 0).map((r) => r.pid)).toEqual([3, 1, 5, 4, 6, 2, 9]);
  });
  test('longRunning with the defaults', () => {
    const lr = longRunning(rows);
    expect(DEFAULT_QUERY_THRESHOLDS).toEqual({ activeMs: 30_000, transactionMs: 300_000, idleInTransactionMs: 10_000, clientWaitMs: 10_000 });
    expect({
      long_queries: lr.long_queries.map((r) => r.pid),
      long_transactions: lr.long_transactions.map((r) => r.pid),
      idle_in_transaction: lr.idle_in_transaction.map((r) => r.pid),
      client_waits: lr.client_waits.map((r) => r.pid),
    }).toEqual({ long_queries: [1], long_transactions: [3], idle_in_transaction: [3, 4], client_waits: [5, 6] });
  });
});

describe('statement groups', () => {
  test('literals and $n parameters make no difference; largest group first; hidden and empty left out', () => {
    const rows = [
      active(1, 10_000, "SELECT * FROM reports WHERE org_id = 1 AND name = 'a'", { application_name: 'web' }),
      active(2, 20_000, "SELECT *\n  FROM reports WHERE org_id = 22 AND name = 'b''c'", { application_name: 'worker' }),
      active(3, 5_000, 'SELECT * FROM reports WHERE org_id = $1 AND name = $2', { application_name: 'web' }),
      active(4, 1_000, 'SELECT 1'),
      row({ pid: 5, state: 'idle', query: '' }),
      hiddenRow({ pid: 6 }),
    ];
    const groups = statementGroups(rows);
    expect(groups).toHaveLength(2);
    expect(groups[0]).toEqual({
      statement: 'SELECT * FROM reports WHERE org_id = ? AND name = ?',
      count: 3,
      pids: [1, 2, 3],
      states: { active: 3 },
      applications: ['web', 'worker'],
      oldest_ms: 20_000,
      total_ms: 35_000,
      example: "SELECT *\n  FROM reports WHERE org_id = 22 AND name = 'b''c'",
    });
    expect(groups[1]).toMatchObject({ statement: 'SELECT ?', count: 1 });
  });
});

describe('the report', () => {
  test('status: ok, warning when something is over a threshold, unknown when partial', () => {
    const priv = { can_read_all_stats: true };
    expect(queriesReport(snapshot([row({ pid: 1 })]), priv).status).toBe('ok');
    expect(queriesReport(snapshot([active(1, 60_000)]), priv).status).toBe('warning');
    const partial = queriesReport(snapshot([active(1, 60_000), hiddenRow({ pid: 2 })]), priv);
    expect(partial.status).toBe('unknown');
    expect(partial.visibility).toMatchObject({ partial: true, hidden: 1 });
  });
  test('--group covers every listed session once; filters apply; dbdoctor itself is left out', () => {
    const snap = snapshot([
      active(1, 60_000, 'SELECT pg_sleep(60)', { application_name: 'reports' }),
      row({ pid: 2, application_name: 'reports', state: 'idle in transaction', state_age_ms: 20_000, xact_age_ms: 400_000, query: 'SELECT pg_sleep(1)' }),
      active(3, 60_000, 'SELECT pg_sleep(60)', { application_name: 'other' }),
      active(4, 60_000, 'SELECT * FROM pg_stat_activity', { application_name: 'dbdoctor', is_self: true }),
    ]);
    const r = queriesReport(snap, { can_read_all_stats: true }, { group: true, filter: { app: ['reports'] } });
    expect(r.sessions_considered).toBe(2);
    expect(r.long_transactions.map((s) => s.pid)).toEqual([2]);
    expect(r.statement_groups).toEqual([expect.objectContaining({ statement: 'SELECT pg_sleep(?)', count: 2, pids: [1, 2], states: { active: 1, 'idle in transaction': 1 } })]);
    expect(queriesReport(snap, { can_read_all_stats: true }).statement_groups).toBeNull();
  });
});
