/**
 * The decision tree on recorded snapshots: facts gathered from real incidents on real servers
 * (scripts/record-diagnose-fixtures.mjs), replayed through the pure `diagnose`. Each test states
 * the ground truth from the snapshot itself and checks the finding names it.
 */
import { describe, expect, test } from '@jest/globals';
import type { SessionRow } from '../../src/core/activity.js';
import { type DiagnoseFacts, DIAGNOSE_NODES, diagnose } from '../../src/core/diagnose.js';
import { envelope } from '../../src/render/json.js';
import { resolveThresholds, type ThresholdKey } from '../../src/core/thresholds.js';
import { commandsOf, expectValidDiagnoseDoc, findingOf, fixture, mustFind } from '../support/diagnose.js';

const t = (flags: Partial<Record<ThresholdKey, string>> = {}) => resolveThresholds({ flags });

function rowsOf(f: DiagnoseFacts, pred: (r: SessionRow) => boolean): SessionRow[] {
  return f.activity!.rows.filter((r) => !r.is_self && pred(r));
}
const pids = (rows: SessionRow[]) => rows.map((r) => r.pid).sort((a, b) => a - b);

function check(facts: DiagnoseFacts, flags: Partial<Record<ThresholdKey, string>> = {}) {
  const report = diagnose(facts, t(flags));
  expectValidDiagnoseDoc(envelope('diagnose', { ...report, config: { file: null, environment: null } }, '0.0.0-test'));
  return report;
}

describe("seeds/000: a pool of 25 full of unread cursors and sessions idle in transaction", () => {
  const facts = fixture('seeds-000');
  const stuck = rowsOf(facts, (r) => r.application_name === 'cloudvault' && r.state === 'active' && r.wait_event === 'ClientRead');
  const iit = rowsOf(facts, (r) => r.application_name === 'cloudvault' && r.state === 'idle in transaction');

  test('the recorded incident is what the seed describes', () => {
    expect(stuck).toHaveLength(15);
    expect(iit).toHaveLength(10);
  });

  test('critical capacity, unread-results and idle-in-transaction findings name the app, the pids, the statements and the exact terminate', () => {
    const r = check(facts, { idle_in_transaction: '1s', client_wait: '1s' });
    expect(r.verdict).toBe('critical');
    expect(r.exit_code).toBe(2);

    const cap = mustFind(r, 'capacity');
    expect(cap.severity).toBe('critical');
    expect(r.capacity).toMatchObject({ max_connections: 30, superuser_reserved: 3, ordinary_slots: 27 });
    expect(cap.cause).toMatch(/idle-in-transaction/);
    expect(cap.cause).toMatch(/unread-results/);

    const unread = mustFind(r, 'unread-results');
    expect(unread.severity).toBe('critical');
    expect(unread.evidence.applications).toEqual(['cloudvault']);
    expect(unread.evidence.pids).toEqual(pids(stuck));
    expect(unread.evidence.statements.join('\n')).toMatch(/SELECT id, user_id, name FROM files WHERE user_id = \$1/);
    expect(unread.title).toMatch(/^cloudvault at .* has 15 active sessions waiting on ClientRead/);
    expect(commandsOf(unread)).toContain('dbdoctor terminate --state active --app cloudvault --older-than 1s --max 15');

    const leak = mustFind(r, 'idle-in-transaction');
    expect(leak.severity).toBe('critical');
    expect(leak.evidence.pids).toEqual(pids(iit));
    expect(leak.evidence.groups[0]).toMatchObject({ application: 'cloudvault', count: 10 });
    expect(leak.evidence.groups[0]!.statement).toMatch(/COALESCE\(MAX\(id\), 0\) FROM files/);
    expect(commandsOf(leak)).toContain('dbdoctor terminate --state "idle in transaction" --app cloudvault --older-than 1s');
    // The argv is the same command, unquoted, for the guided walk.
    const step = leak.next.find((n) => n.command?.startsWith('dbdoctor terminate'))!;
    expect(step.argv).toEqual(['terminate', '--state', 'idle in transaction', '--app', 'cloudvault', '--older-than', '1s']);

    // The capacity finding offers the clean-ups too: the first thing an on-call engineer reads.
    expect(commandsOf(cap).some((c) => c.startsWith('dbdoctor terminate'))).toBe(true);
  });

  test('the guards that would have stopped it are named with the exact ALTER', () => {
    const r = check(facts, { idle_in_transaction: '1s', client_wait: '1s' });
    const iitGuard = mustFind(r, 'setting-idle-in-transaction-session-timeout');
    expect(iitGuard.severity).toBe('warning');
    expect(iitGuard.next.map((n) => n.sql)).toContain(`ALTER ROLE "app_user" SET idle_in_transaction_session_timeout = '5min';`);
    expect(iitGuard.next.map((n) => n.sql)).toContain("ALTER SYSTEM SET idle_in_transaction_session_timeout = '5min'; SELECT pg_reload_conf();");
    // PostgreSQL 18: transaction_timeout is the one setting that ends an unread result set.
    const tt = mustFind(r, 'setting-transaction-timeout');
    expect(tt.next.map((n) => n.sql)).toContain(`ALTER ROLE "app_user" SET transaction_timeout = '5min';`);
  });

  test('on PostgreSQL 14 there is no transaction_timeout to recommend', () => {
    const f14 = fixture('seeds-000-pg14');
    expect(f14.server!.server_version_num).toBeLessThan(150000);
    const r = check(f14, { idle_in_transaction: '1s', client_wait: '1s' });
    expect(mustFind(r, 'unread-results').severity).toBe('critical');
    expect(findingOf(r, 'setting-transaction-timeout')).toBeUndefined();
    expect(r.path.some((p) => p.node === 'setting-transaction-timeout')).toBe(false);
    expect(f14.settings!.settings.map((s) => s.name)).not.toContain('transaction_timeout');
  });

  test('with the default thresholds, seconds-old sessions are not yet a leak, but the full pool is still critical', () => {
    const r = check(facts);
    expect(findingOf(r, 'unread-results')).toBeUndefined();
    expect(findingOf(r, 'idle-in-transaction')).toBeUndefined();
    expect(mustFind(r, 'capacity').severity).toBe('critical');
    expect(mustFind(r, 'capacity').cause).toMatch(/cloudvault holds the most/);
    expect(r.verdict).toBe('critical');
  });

  test('pg_stat_statements is read: the top statements are an info finding', () => {
    const r = check(facts, { idle_in_transaction: '1s', client_wait: '1s' });
    expect(facts.statements!.pg_stat_statements).toBe('available');
    const top = mustFind(r, 'top-statements');
    expect(top.severity).toBe('info');
    expect(top.evidence.facts.some((x) => /by total:/.test(x))).toBe(true);
  });

  test('the path records every node visited and the branch taken', () => {
    const r = check(facts, { idle_in_transaction: '1s', client_wait: '1s' });
    const nodes = r.path.map((p) => p.node);
    expect(nodes.slice(0, 5)).toEqual(['connect', 'visibility', 'capacity', 'connection-limit', 'who-holds']);
    expect(r.path.find((p) => p.node === 'capacity')!.branch).toBe('critical');
    expect(r.path.find((p) => p.node === 'unread-results')!.branch).toBe('critical');
    expect(r.path.find((p) => p.node === 'idle-pool')!.branch).toBe('none');
    for (const p of r.path) expect(DIAGNOSE_NODES).toContain(p.node);
  });
});

describe('a blocking chain rooted in a session idle in transaction', () => {
  const facts = fixture('lock-chain');
  const root = rowsOf(facts, (r) => r.application_name === 'billing')[0]!;
  const waiters = rowsOf(facts, (r) => r.application_name === 'billing-worker');

  test('critical blocking finding with the root pid, the count it blocks and the terminate for the root', () => {
    expect(root.state).toBe('idle in transaction');
    expect(waiters).toHaveLength(3);
    const r = check(facts);
    const b = mustFind(r, 'blocking');
    expect(b.severity).toBe('critical');
    expect(b.evidence.groups[0]!.pids[0]).toBe(root.pid);
    expect(b.evidence.groups[0]!.count).toBe(3);
    expect(b.title).toMatch(new RegExp(`^pid ${root.pid} \\(billing, idle in transaction for \\d+s\\) blocks 3 sessions`));
    expect(b.cause).toMatch(/idle in transaction/);
    expect(commandsOf(b)).toContain(`dbdoctor terminate --pid ${root.pid}`);
    expect(commandsOf(b)).toContain('dbdoctor locks');
    expect(r.verdict).toBe('critical');
  });

  test('lock_timeout for the waiters and log_lock_waits are named as the guards', () => {
    const r = check(facts);
    expect(mustFind(r, 'setting-lock-timeout').next.map((n) => n.sql)).toContain(`ALTER ROLE "app_user" SET lock_timeout = '30s';`);
    expect(mustFind(r, 'setting-log-lock-waits').next.map((n) => n.sql)).toContain('ALTER SYSTEM SET log_lock_waits = on; SELECT pg_reload_conf();');
    expect(mustFind(r, 'setting-idle-in-transaction-session-timeout').severity).toBe('warning');
  });

  test('as diagnose reads it, without pg_locks: each wait is the blocked statement\'s time in state, the lock waited for is its wait_event', () => {
    // The fixture was recorded with lock detail; diagnose's own read has none.
    const bare = { ...facts, activity: { ...facts.activity!, rows: facts.activity!.rows.map((r) => ({ ...r, wait_lock: null })) } };
    const withDetail = mustFind(check(facts), 'blocking');
    const b = mustFind(check(bare), 'blocking');
    expect(b.severity).toBe(withDetail.severity);
    expect(b.evidence.groups[0]!.pids).toEqual(withDetail.evidence.groups[0]!.pids);
    const longest = Math.max(...waiters.map((w) => w.state_age_ms ?? 0));
    expect(b.evidence.groups[0]!.oldest_ms).toBe(Math.round(longest));
    // waitstart comes after the statement started: the bound is never shorter than the wait
    expect(b.evidence.groups[0]!.oldest_ms!).toBeGreaterThanOrEqual(withDetail.evidence.groups[0]!.oldest_ms!);
    const types = [...new Set(waiters.map((w) => w.wait_event))].join(', ');
    expect(b.next.map((n) => n.text).join('\n')).toContain(`(waited on: ${types})`);
  });

  test('many holders of one shared lock, a long queue behind them: each group names at most 200 pids, so the document grows with holders plus waiters, not their product', () => {
    // 30 readers hold ACCESS SHARE on a table, 1,000 sessions wait for ACCESS EXCLUSIVE behind
    // them: pg_blocking_pids() names every reader for every waiter, and every reader is a root.
    const template = root;
    const readers = Array.from({ length: 30 }, (_, i): SessionRow => ({ ...template, pid: 50_000 + i, application_name: `reader-${i}`, blocked_by: null }));
    const queued = Array.from({ length: 1_000 }, (_, i): SessionRow => ({
      ...waiters[0]!,
      pid: 60_000 + i,
      wait_event: 'relation',
      wait_lock: null,
      blocked_by: readers.map((r) => r.pid),
    }));
    const big = { ...facts, activity: { ...facts.activity!, rows: [...facts.activity!.rows, ...readers, ...queued] } };
    const b = mustFind(check(big), 'blocking');
    const groups = b.evidence.groups.filter((g) => g.label.includes('reader-'));
    expect(groups).toHaveLength(30);
    // each group starts with its root: the reader its label names
    expect(groups.map((g) => g.pids[0])).toEqual(groups.map((g) => readers.find((r) => g.label.includes(`(${r.application_name},`))!.pid));
    expect(new Set(groups.map((g) => g.pids[0])).size).toBe(30);
    for (const g of groups) {
      expect(g.count).toBe(1_000);
      expect(g.pids).toHaveLength(200);
      expect(g.pids.slice(1).every((p) => p >= 60_000)).toBe(true);
    }
    for (const g of b.evidence.groups) expect(g.pids.length).toBeLessThanOrEqual(200);
  });

  test('waits shorter than --lock-wait are information only', () => {
    const r = check(facts, { lock_wait: '10m', lock_wait_crit: '10m' });
    expect(mustFind(r, 'blocking').severity).toBe('info');
    expect(findingOf(r, 'setting-lock-timeout')).toBeUndefined();
  });
});

describe('seeds/004: 20 sessions running the same slow statement', () => {
  const facts = fixture('same-statement');
  const reports = rowsOf(facts, (r) => r.application_name === 'reports');

  test('one slow-work finding groups them by statement, with their pids', () => {
    expect(reports).toHaveLength(20);
    const r = check(facts);
    const same = mustFind(r, 'same-statement');
    expect(same.evidence.groups[0]).toMatchObject({ count: 20, application: 'reports' });
    expect(same.evidence.groups[0]!.pids).toEqual(pids(reports));
    expect(same.title).toMatch(/^20 sessions run the same statement at once \(reports/);
    expect(same.evidence.facts[0]).toMatch(/SELECT pg_sleep\(\?\), \? AS dedup_key/);
    // 20 of 37 ordinary slots: over the 25% share, critical.
    expect(same.severity).toBe('critical');
    expect(commandsOf(same)).toContain('dbdoctor queries --group');
    expect(commandsOf(same).find((c) => c.startsWith('dbdoctor terminate'))).toMatch(/--cancel-first/);
    expect(mustFind(r, 'setting-statement-timeout').next.map((n) => n.sql)).toContain(`ALTER ROLE "app_user" SET statement_timeout = '30s';`);
  });

  test('below --same-statement sessions it is not a finding', () => {
    const r = check(facts, { same_statement: '21' });
    expect(findingOf(r, 'same-statement')).toBeUndefined();
  });
});

describe("seeds/001: LISTEN connections held by design", () => {
  const facts = fixture('listeners');
  const listen = rowsOf(facts, (r) => r.application_name === 'outbox-listen');

  test('are never a leak, even past every idle threshold', () => {
    expect(listen).toHaveLength(9);
    const r = check(facts, { idle: '1s', idle_pool: '5' });
    for (const f of r.findings) {
      if (['idle-pool', 'idle-in-transaction', 'unread-results'].includes(f.id)) {
        expect(f.evidence.applications).not.toContain('outbox-listen');
        for (const p of pids(listen)) expect(f.evidence.pids).not.toContain(p);
      }
    }
    // The main pool (15 idle) is reported, as information: there is headroom.
    const idle = mustFind(r, 'idle-pool');
    expect(idle.evidence.applications).toEqual(['main']);
    expect(idle.severity).toBe('info');
    expect(r.holders.find((h) => h.application === 'outbox-listen')).toMatchObject({ count: 9, listeners: 9 });
    expect(r.path.find((p) => p.node === 'idle-pool')!.detail).toMatch(/9 LISTEN sessions left out/);
  });

  test('with the defaults the server is OK', () => {
    const r = check(facts);
    expect(r.verdict).toBe('ok');
    expect(r.exit_code).toBe(0);
  });
});

describe('a healthy, busy server', () => {
  test('short transactions from several clients: OK, nothing at warning or worse', () => {
    const facts = fixture('healthy-busy');
    expect(rowsOf(facts, (r) => r.application_name.startsWith('web-')).length).toBe(6);
    const r = check(facts);
    expect(r.findings.filter((f) => ['warning', 'critical', 'unknown'].includes(f.severity))).toEqual([]);
    expect(r.verdict).toBe('ok');
    expect(r.exit_code).toBe(0);
    expect(r.summary).toMatch(/^no problems found/);
  });
});

describe('a role without monitoring privileges, on a server with an incident', () => {
  const facts = fixture('unprivileged');

  test('is never OK: UNKNOWN, with the hidden sessions counted (background processes are not sessions)', () => {
    expect(facts.server!.can_read_all_stats).toBe(false);
    const r = check(facts, { idle_in_transaction: '1s' });
    expect(r.verdict).toBe('unknown');
    expect(r.exit_code).toBe(3);
    const v = mustFind(r, 'visibility');
    expect(v.severity).toBe('unknown');
    expect(v.evidence.sessions).toBe(5);
    expect(v.evidence.users).toEqual(['other_user']);
    expect(v.next.map((n) => n.sql)).toContain('GRANT pg_monitor TO "app_user";');
    expect(r.visibility).toMatchObject({ partial: true, hidden: 5, can_read_all_stats: false });
    // What it cannot see, it does not pretend to judge.
    expect(findingOf(r, 'idle-in-transaction')).toBeUndefined();
  });

  test('even with no hidden session at all, a role without pg_read_all_stats cannot get OK', () => {
    const f = fixture('unprivileged');
    f.activity!.rows = f.activity!.rows.filter((r) => r.usename !== 'other_user');
    const r = check(f);
    expect(r.visibility!.hidden).toBe(0);
    expect(r.verdict).toBe('unknown');
  });

  test('a critical finding it can see still wins over UNKNOWN', () => {
    const f = fixture('unprivileged');
    // 5 hidden sessions of other_user and dbdoctor's own: 6 of the 6 ordinary slots.
    f.server!.max_connections = 9;
    const r = check(f);
    expect(r.capacity!.client_backends).toBe(6);
    expect(mustFind(r, 'capacity').severity).toBe('critical');
    expect(r.verdict).toBe('critical');
  });
});

test('diagnose is pure: the same facts give the same report', () => {
  const a = diagnose(fixture('seeds-000'), t({ idle_in_transaction: '1s' }));
  const b = diagnose(fixture('seeds-000'), t({ idle_in_transaction: '1s' }));
  expect(b).toEqual(a);
});
