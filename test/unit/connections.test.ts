import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { clientSessions } from '../../src/core/activity.js';
import {
  clientMatcher,
  compileFilter,
  connectionsReport,
  filterSessions,
  globToRegExp,
  groupSessions,
  median,
  normalizeState,
  parseGroupBy,
  parseIp,
  summarizeOtherProcesses,
  visibilityOf,
} from '../../src/core/connections.js';
import { UsageError } from '../../src/core/errors.js';
import { hiddenRow, row, snapshot } from './inspect-fixtures.js';

const settings = { max_connections: 20, superuser_reserved: 3, reserved: 2, current_user: 'monitor', can_read_all_stats: true };

describe('globs', () => {
  test('* and ? match, everything else is literal', () => {
    expect(globToRegExp('api*').test('api-v2')).toBe(true);
    expect(globToRegExp('api*').test('xapi')).toBe(false);
    expect(globToRegExp('a?i').test('api')).toBe(true);
    expect(globToRegExp('a.i').test('api')).toBe(false);
    expect(globToRegExp('a(b)[c]+').test('a(b)[c]+')).toBe(true);
    expect(globToRegExp('').test('')).toBe(true);
    expect(globToRegExp('*').test('line\nbreak')).toBe(true);
  });
  test('any string is its own glob when it holds no * or ?', () => {
    fc.assert(fc.property(fc.string().filter((s) => !/[*?]/.test(s)), (s) => globToRegExp(s).test(s)));
  });
});

describe('addresses and CIDR ranges', () => {
  const at = (addr: string | null, visible = true) => (visible ? row({ pid: 1, client_addr: addr }) : hiddenRow({ pid: 1 }));
  test('IPv4 and IPv6 parse; nonsense does not', () => {
    expect(parseIp('10.0.0.5')).toEqual({ value: (0xffffn << 32n) | 0x0a000005n, v4: true });
    expect(parseIp('::ffff:10.0.0.5')?.value).toBe(parseIp('10.0.0.5')?.value);
    expect(parseIp('::1')).toEqual({ value: 1n, v4: false });
    expect(parseIp('fd00::1:2')?.value).toBe((0xfd00n << 112n) | (1n << 16n) | 2n);
    for (const bad of ['10.0.0.256', '10.0.0', 'fd00:::1', '1:2:3:4:5:6:7:8:9', 'host.example', '', '1::2::3']) expect(parseIp(bad)).toBeNull();
  });
  test('matchers: exact, CIDR, IPv6, local; hidden rows never match an address', () => {
    expect(clientMatcher('10.0.0.0/8')(at('10.200.1.1'))).toBe(true);
    expect(clientMatcher('10.0.0.0/8')(at('11.0.0.1'))).toBe(false);
    expect(clientMatcher('10.0.0.5')(at('10.0.0.5'))).toBe(true);
    expect(clientMatcher('10.0.0.5')(at('10.0.0.6'))).toBe(false);
    expect(clientMatcher('0.0.0.0/0')(at('192.168.1.1'))).toBe(true);
    expect(clientMatcher('0.0.0.0/0')(at('::1'))).toBe(false);
    expect(clientMatcher('fd00::/8')(at('fd12::5'))).toBe(true);
    expect(clientMatcher('fd00::/8')(at('fe80::1'))).toBe(false);
    expect(clientMatcher('::ffff:10.0.0.0/104')(at('10.1.2.3'))).toBe(true);
    expect(clientMatcher('local')(at(null))).toBe(true);
    expect(clientMatcher('LOCAL')(at('10.0.0.5'))).toBe(false);
    expect(clientMatcher('local')(at(null, false))).toBe(false);
    expect(clientMatcher('10.0.0.0/8')(at(null, false))).toBe(false);
  });
  test('bad ranges are usage errors', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0.0/x', '10.0.0.0/8/8', 'db1.example', '::1/129', '']) expect(() => clientMatcher(bad)).toThrow(UsageError);
  });
});

describe('filters', () => {
  const rows = [
    row({ pid: 1, application_name: 'api', state: 'idle', state_age_ms: 10_000 }),
    row({ pid: 2, application_name: 'api-v2', usename: 'other', state: 'active', state_age_ms: 500 }),
    row({ pid: 3, application_name: 'worker', datname: 'jobs', state: 'idle in transaction', client_addr: '192.168.0.9', state_age_ms: 60_000 }),
    hiddenRow({ pid: 4, application_name: 'api' }),
  ];
  const pids = (f: Parameters<typeof filterSessions>[1]) => filterSessions(rows, f).map((r) => r.pid);
  test('each filter, and their combination (AND across, OR within)', () => {
    expect(pids({})).toEqual([1, 2, 3, 4]);
    expect(pids({ app: ['api*'] })).toEqual([1, 2, 4]);
    expect(pids({ app: ['api', 'worker'] })).toEqual([1, 3, 4]);
    expect(pids({ user: ['other'] })).toEqual([2]);
    expect(pids({ db: ['jobs'] })).toEqual([3]);
    expect(pids({ state: ['idle-in-transaction'] })).toEqual([3]);
    expect(pids({ state: ['hidden'] })).toEqual([4]);
    expect(pids({ state: ['IDLE', 'active'] })).toEqual([1, 2]);
    expect(pids({ client: ['192.168.0.0/16'] })).toEqual([3]);
    expect(pids({ minAgeMs: 5_000 })).toEqual([1, 3]);
    expect(pids({ app: ['api*'], minAgeMs: 5_000 })).toEqual([1]);
  });
  test('unknown states are usage errors; state spellings are normalized', () => {
    expect(() => compileFilter({ state: ['sleeping'] })).toThrow(UsageError);
    expect(normalizeState('idle_in_transaction_aborted')).toBe('idle in transaction (aborted)');
    expect(normalizeState(' Fastpath-Function-Call ')).toBe('fastpath function call');
    expect(() => compileFilter({ state: ['starting', 'disabled'] })).not.toThrow();
  });
});

describe('grouping', () => {
  test('--by parses keys, aliases and rejects unknown ones', () => {
    expect(parseGroupBy('app,client')).toEqual(['app', 'client']);
    expect(parseGroupBy(' database , role,app,app')).toEqual(['db', 'user', 'app']);
    expect(() => parseGroupBy('app,colour')).toThrow(UsageError);
    expect(() => parseGroupBy(',')).toThrow(UsageError);
  });
  test('median of odd and even counts', () => {
    expect(median([])).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });
  test('count, oldest and median age in state, oldest transaction, wait events of busy sessions only', () => {
    const rows = [
      row({ pid: 1, state: 'idle', state_age_ms: 1_000 }),
      row({ pid: 2, state: 'idle', state_age_ms: 3_000 }),
      row({ pid: 3, state: 'idle', state_age_ms: 8_000 }),
      row({ pid: 4, state: 'active', wait_event_type: 'Lock', wait_event: 'tuple', state_age_ms: 2_000, xact_age_ms: 9_000 }),
      row({ pid: 5, state: 'active', wait_event_type: 'Lock', wait_event: 'tuple', state_age_ms: 4_000, xact_age_ms: 4_000 }),
      row({ pid: 6, state: 'active', wait_event_type: 'Client', wait_event: 'ClientRead', state_age_ms: 6_000, xact_age_ms: 6_000 }),
      row({ pid: 7, application_name: 'worker', state: 'idle in transaction', state_age_ms: 100, xact_age_ms: 200 }),
      hiddenRow({ pid: 8 }),
    ];
    const groups = groupSessions(rows, ['state', 'app']);
    expect(groups.map((g) => [g.state, g.app, g.count])).toEqual([
      ['active', 'api', 3],
      ['idle', 'api', 3],
      ['hidden', 'api', 1],
      ['idle in transaction', 'worker', 1],
    ]);
    expect(groups[0]).toMatchObject({ oldest_state_age_ms: 6_000, median_state_age_ms: 4_000, oldest_xact_age_ms: 9_000, pids: [4, 5, 6] });
    expect(groups[0]!.wait_events).toEqual([
      { wait_event_type: 'Lock', wait_event: 'tuple', count: 2 },
      { wait_event_type: 'Client', wait_event: 'ClientRead', count: 1 },
    ]);
    expect(groups[1]).toMatchObject({ oldest_state_age_ms: 8_000, median_state_age_ms: 3_000, oldest_xact_age_ms: null, wait_events: [] });
    expect(groups[2]).toMatchObject({ oldest_state_age_ms: null, median_state_age_ms: null });
    expect(groups[3]!.wait_events).toEqual([]);
    // Only the grouped keys are present.
    expect(Object.keys(groups[0]!)).not.toContain('user');
    const byClient = groupSessions(rows, ['client']);
    expect(byClient.map((g) => [g.client, g.count])).toEqual([
      ['10.0.0.5', 7],
      [null, 1],
    ]);
  });
  test('an empty list makes no groups', () => {
    expect(groupSessions([], ['app'])).toEqual([]);
  });
});

describe('the report', () => {
  test('client sessions apart from background processes, parallel workers under their leader, dbdoctor left out', () => {
    const snap = snapshot([
      row({ pid: 1, application_name: 'api' }),
      row({ pid: 2, application_name: 'reports', state: 'active', wait_event_type: null, wait_event: null }),
      row({ pid: 3, backend_type: 'parallel worker', leader_pid: 2, application_name: '', state: 'active' }),
      row({ pid: 4, backend_type: 'parallel worker', leader_pid: 2, application_name: '', state: 'active' }),
      row({ pid: 5, backend_type: 'autovacuum launcher', datname: null, usename: null, state: null, application_name: '' }),
      row({ pid: 6, backend_type: 'walsender', application_name: 'standby1', state: 'streaming' }),
      row({ pid: 7, application_name: 'dbdoctor', state: 'active', is_self: true }),
      row({ pid: 8, backend_type: 'checkpointer', datname: null, usename: null, state: null, application_name: '' }),
    ]);
    const r = connectionsReport(snap, settings, { by: ['app'], list: true });
    expect(r.total).toBe(2);
    expect(r.groups.map((g) => [g.app, g.count, g.parallel_workers])).toEqual([
      ['api', 1, 0],
      ['reports', 1, 2],
    ]);
    expect(r.other_processes).toEqual([
      { backend_type: 'parallel worker', count: 2, pids: [3, 4], leader_pids: [2] },
      { backend_type: 'autovacuum launcher', count: 1, pids: [5], leader_pids: [] },
      { backend_type: 'checkpointer', count: 1, pids: [8], leader_pids: [] },
      { backend_type: 'walsender', count: 1, pids: [6], leader_pids: [] },
    ]);
    // Capacity counts dbdoctor's own slot: 3 client backends of 20 - 3 - 2 = 15 ordinary slots.
    expect(r.capacity).toMatchObject({ client_backends: 3, ordinary_slots: 15, headroom: 12, severity: 'ok' });
    expect(r.sessions!.find((x) => x.pid === 2)!.parallel_workers).toBe(2);
    expect(r.status).toBe('ok');
  });

  test('capacity severity decides the status; a partial view makes it unknown unless critical', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => row({ pid: 100 + i }));
    expect(connectionsReport(snapshot(many(12)), settings).status).toBe('warning');
    expect(connectionsReport(snapshot(many(15)), settings).status).toBe('critical');
    expect(connectionsReport(snapshot([...many(2), hiddenRow({ pid: 1 })]), settings).status).toBe('unknown');
    expect(connectionsReport(snapshot([...many(14), hiddenRow({ pid: 1 })]), settings).status).toBe('critical');
  });

  test('hidden rows: clients counted as "hidden", background processes (no database) kept apart', () => {
    const snap = snapshot([
      row({ pid: 1, usename: 'me' }),
      hiddenRow({ pid: 2, application_name: 'api' }),
      hiddenRow({ pid: 3, application_name: 'api' }),
      hiddenRow({ pid: 4, application_name: '', datname: null, usename: null }),
    ]);
    expect(clientSessions(snap).map((r) => r.pid)).toEqual([1, 2, 3]);
    const r = connectionsReport(snap, { ...settings, can_read_all_stats: false, current_user: 'Me Too' });
    expect(r.states).toEqual({ hidden: 2, idle: 1 });
    expect(r.visibility).toMatchObject({ partial: true, hidden: 2, can_read_all_stats: false });
    expect(r.visibility.warning).toBe('partial view: 2 sessions of other roles are hidden from role "Me Too" (counted as "hidden"); grant it pg_monitor to see them');
    expect(r.visibility.fix).toBe('GRANT pg_monitor TO "Me Too";');
    expect(summarizeOtherProcesses(snap)).toEqual([{ backend_type: 'hidden', count: 1, pids: [4], leader_pids: [] }]);
    expect(r.capacity.client_backends).toBe(3);
  });

  test('no pg_read_all_stats but nothing hidden yet: still partial, with a warning', () => {
    const v = visibilityOf(snapshot([row({ pid: 1 })]), { can_read_all_stats: false, role: 'app' });
    expect(v).toMatchObject({ partial: true, hidden: 0 });
    expect(v.warning).toMatch(/lacks pg_read_all_stats/);
    expect(visibilityOf(snapshot([row({ pid: 1 })]), { can_read_all_stats: true }).warning).toBeNull();
  });

  test('unknown states and backend types never crash', () => {
    const snap = snapshot([row({ pid: 1, state: 'starting' }), row({ pid: 2, state: 'some future state' }), row({ pid: 3, backend_type: 'walsummarizer', datname: null })]);
    const r = connectionsReport(snap, settings, { by: ['state'] });
    expect(r.states).toEqual({ 'some future state': 1, starting: 1 });
    expect(r.other_processes.map((p) => p.backend_type)).toEqual(['walsummarizer']);
  });
});
