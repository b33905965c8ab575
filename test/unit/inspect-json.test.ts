/**
 * Pins the JSON shapes of connections, locks and queries (as documented in the README; locks is
 * schema_version 2): removing or renaming a field must change the schema version and this test.
 * Adding a field keeps the version, but for locks it is also added to schema/locks.schema.json,
 * which every locks document the tests produce must match.
 */
import { describe, expect, test } from '@jest/globals';
import { connectionsReport } from '../../src/core/connections.js';
import { locksReport } from '../../src/core/locks.js';
import { queriesReport } from '../../src/core/queries.js';
import { envelope, JSON_SCHEMA_VERSION, renderJson, renderJsonLine } from '../../src/render/json.js';
import { row, snapshot, waiter } from './inspect-fixtures.js';

const settings = { max_connections: 100, superuser_reserved: 3, reserved: 0, current_user: 'monitor', can_read_all_stats: true };
const keys = (o: object) => Object.keys(o).sort();

const SESSION = [
  'application_name',
  'backend_age_ms',
  'backend_start',
  'client_addr',
  'client_hostname',
  'client_port',
  'datname',
  'parallel_workers',
  'pid',
  'query',
  'query_age_ms',
  'query_id',
  'state',
  'state_age_ms',
  'usename',
  'wait_event',
  'wait_event_type',
  'xact_age_ms',
];
const VISIBILITY = ['can_read_all_stats', 'fix', 'hidden', 'partial', 'role', 'warning'];

const snap = snapshot([
  row({ pid: 1, state: 'idle in transaction', xact_age_ms: 60_000, state_age_ms: 60_000 }),
  waiter(2, [1]),
  row({ pid: 3, state: 'active', query_age_ms: 60_000, state_age_ms: 60_000, xact_age_ms: 60_000, wait_event_type: null, wait_event: null }),
]);

describe('JSON shapes, schema version 1', () => {
  test('the envelope', () => {
    expect(JSON_SCHEMA_VERSION).toBe(1);
    const doc = envelope('connections', {}, '0.1.0', new Date(0));
    expect(doc).toEqual({ schema: 'dbdoctor.connections', schema_version: 1, dbdoctor_version: '0.1.0', generated_at: '1970-01-01T00:00:00.000Z', report: {} });
  });

  test('dbdoctor.connections', () => {
    const r = connectionsReport(snap, settings, { by: ['app', 'state', 'user', 'db', 'client'], list: true });
    expect(keys(r)).toEqual(['by', 'capacity', 'filters', 'groups', 'other_processes', 'server_version_num', 'sessions', 'states', 'status', 'taken_at', 'total', 'total_unfiltered', 'visibility']);
    expect(keys(r.capacity)).toEqual(['client_backends', 'headroom', 'headroom_pct', 'max_connections', 'ordinary_slots', 'reserved', 'severity', 'superuser_reserved', 'used_pct']);
    expect(keys(r.visibility)).toEqual(VISIBILITY);
    expect(keys(r.filters)).toEqual(['app', 'client', 'db', 'min_age_ms', 'state', 'user']);
    expect(keys(r.groups[0]!)).toEqual([
      'app',
      'client',
      'client_hostname',
      'count',
      'db',
      'median_state_age_ms',
      'oldest_state_age_ms',
      'oldest_xact_age_ms',
      'parallel_workers',
      'pids',
      'state',
      'user',
      'wait_events',
    ]);
    expect(keys(r.sessions![0]!)).toEqual(SESSION);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  test('dbdoctor.locks (schema version 2: every session once, in nodes)', () => {
    const r = locksReport(snap, settings);
    expect(envelope('locks', r, '1.0.0').schema_version).toBe(2);
    expect(keys(r)).toEqual(['cycles', 'nodes', 'prepared_transactions', 'roots', 'server_version_num', 'status', 'taken_at', 'visibility', 'waiting']);
    expect(keys(r.roots[0]!)).toEqual([
      'action',
      'advice',
      'blocks_all',
      'blocks_direct',
      'blocks_total',
      'holds_advisory',
      'longest_wait_ms',
      'next',
      'pid',
      'prepared',
      'prepared_transaction',
      'queue_heads',
      'session',
      'vanished',
      'waited_locks',
    ]);
    expect(keys(r.roots[0]!.session!)).toEqual(SESSION);
    expect(keys(r.nodes[0]!)).toEqual(['behind', 'blocked_by', 'blockers', 'cycle', 'depth', 'pid', 'queue_head', 'root', 'session', 'waits_for']);
    expect(keys(r.nodes[1]!.waits_for!)).toEqual(['locktype', 'mode', 'relation', 'wait_ms']);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  test('dbdoctor.queries', () => {
    const r = queriesReport(snap, settings, { group: true, thresholds: { activeMs: 0, transactionMs: 0, idleInTransactionMs: 0, clientWaitMs: 0 } });
    expect(keys(r)).toEqual([
      'client_waits',
      'idle_in_transaction',
      'long_queries',
      'long_transactions',
      'server_version_num',
      'sessions_considered',
      'statement_groups',
      'status',
      'taken_at',
      'thresholds',
      'visibility',
    ]);
    expect(keys(r.thresholds)).toEqual(['active_ms', 'client_wait_ms', 'idle_in_transaction_ms', 'transaction_ms']);
    expect(keys(r.long_queries[0]!)).toEqual(SESSION);
    expect(keys(r.statement_groups![0]!)).toEqual(['applications', 'count', 'example', 'oldest_ms', 'pids', 'statement', 'states', 'total_ms']);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });
});

describe('JSON text', () => {
  test('is inert on a terminal and means the same: DEL, C1 and hidden characters escaped; printable ASCII and other text as they are', () => {
    const doc = { query: 'select 1 -- \u007f\u009b31m\u200b\u202e\ud800', app: 'café ☕️ 👩\u200d💻', plain: 'a "b" \\ c\nd' };
    for (const text of [renderJson(doc), renderJsonLine(doc)]) {
      expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b\u202e\ud800]/);
      expect(text).toContain('\\u007f\\u009b31m\\u200b\\u202e\\ud800');
      expect(text).toContain('café ☕️ 👩\u200d💻');
      expect(JSON.parse(text)).toEqual(doc);
    }
    const ascii = { a: 'printable ASCII only', n: [1, 2] };
    expect(renderJson(ascii)).toBe(JSON.stringify(ascii, null, 2));
    expect(renderJsonLine(ascii)).toBe(JSON.stringify(ascii));
  });
});
