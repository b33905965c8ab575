import { describe, expect, test } from '@jest/globals';
import type { ActivitySnapshot, SessionRow } from '../../src/core/activity.js';
import { ExitCode } from '../../src/core/exit-codes.js';
import {
  classifyAfterCancel,
  classifySignal,
  emptyFilters,
  type Fingerprint,
  finishReport,
  normalizeState,
  parseMax,
  parsePidList,
  planTermination,
  type PlanOptions,
  type ReportBase,
  redactQuery,
  requireSelectingFilter,
  type SessionResult,
  statusOfResults,
  type TerminateFilters,
  terminateExitCode,
  validateClients,
  validateFilters,
} from '../../src/core/terminate.js';
import { AUDIT_QUERY_CHARS, auditIntent, auditOutcome, stateDir } from '../../src/core/terminate-audit.js';
import { sessionRow } from '../support/session-row.js';

let nextPid = 1000;

function row(over: Partial<SessionRow> = {}): SessionRow {
  const pid = over.pid ?? nextPid++;
  return sessionRow({
    application_name: 'worker',
    backend_start: `2026-11-23 10:00:00.${String(pid).padStart(6, '0')}+00`,
    state: 'idle in transaction',
    xact_age_ms: 300_000,
    query_age_ms: 300_000,
    state_age_ms: 300_000,
    query: 'UPDATE orders SET status = 1 WHERE id = 7',
    ...over,
    pid,
  });
}

function hiddenRow(over: Partial<SessionRow> = {}): SessionRow {
  return row({
    backend_start: null,
    state: null,
    client_addr: null,
    client_port: null,
    wait_event_type: null,
    wait_event: null,
    backend_age_ms: null,
    xact_age_ms: null,
    query_age_ms: null,
    state_age_ms: null,
    query: '<insufficient privilege>',
    superuser: false,
    ...over,
  });
}

function snap(rows: SessionRow[]): { snapshot: ActivitySnapshot; fps: Fingerprint[] } {
  return {
    snapshot: { server_version_num: 180000, taken_at: '2026-11-23 10:10:00+00', database: 'app', rows, prepared: [] },
    fps: rows.map((r) => ({
      pid: r.pid,
      backend_start: r.backend_start,
      state: r.state,
      state_change: r.state ? `2026-11-23 10:05:00.${r.pid}+00` : null,
      xact_start: r.xact_age_ms !== null ? `2026-11-23 10:05:00.000001+00` : null,
      query_start: r.query_age_ms !== null ? `2026-11-23 10:05:00.000002+00` : null,
    })),
  };
}

function filters(over: Partial<TerminateFilters>): TerminateFilters {
  return { ...emptyFilters(), ...over };
}

function plan(rows: SessionRow[], f: Partial<TerminateFilters>, opts: Partial<Omit<PlanOptions, 'filters'>> = {}) {
  const { snapshot, fps } = snap(rows);
  return planTermination(snapshot, fps, { filters: filters(f), allDatabases: false, includeSuperusers: false, cancelFirst: false, ...opts });
}

describe('flags', () => {
  test('at least one selecting filter is required', () => {
    expect(() => requireSelectingFilter(emptyFilters())).toThrow(/at least one filter/);
    expect(() => requireSelectingFilter(filters({ blockers: true }))).not.toThrow();
    expect(() => requireSelectingFilter(filters({ older_than_ms: 0 }))).not.toThrow();
  });

  test('an empty or blank value of any filter is refused, never taken as "no filter" or "the empty name"', () => {
    expect(() => validateFilters(filters({ apps: ['x'] }))).not.toThrow();
    const cases: Array<[Partial<TerminateFilters>, string]> = [
      [{ apps: [''] }, '--app has an empty value'],
      [{ apps: ['x', ' '] }, '--app has an empty value'],
      [{ users: [''], apps: ['x'] }, '--user has an empty value'],
      [{ dbs: [''], apps: ['x'] }, '--db has an empty value'],
      [{ states: [''], apps: ['x'] }, '--state has an empty value'],
      [{ clients: [''], apps: ['x'] }, '--client has an empty value'],
      [{ query: ' ', apps: ['x'] }, '--query needs a pattern'],
      [{ clients: ['10.1.2.3/24'], apps: ['x'] }, 'invalid --client "10.1.2.3/24": bits are set past the /24 prefix'],
    ];
    for (const [f, message] of cases) expect(() => validateFilters(filters(f))).toThrow(message);
    expect(() => validateFilters(emptyFilters())).toThrow(/at least one filter/);
  });

  test('states are normalized and validated', () => {
    expect(normalizeState('idle-in-transaction')).toBe('idle in transaction');
    expect(normalizeState('IDLE_IN_TRANSACTION')).toBe('idle in transaction');
    expect(normalizeState('idle in transaction aborted')).toBe('idle in transaction (aborted)');
    expect(normalizeState('Active')).toBe('active');
    expect(() => normalizeState('sleeping')).toThrow(/invalid --state/);
    expect(() => normalizeState('hidden')).toThrow(/invalid --state/);
  });

  test('pids, --max and --client are validated', () => {
    expect(parsePidList('12,13 14')).toEqual([12, 13, 14]);
    expect(() => parsePidList('12,x')).toThrow(/invalid --pid/);
    expect(() => parsePidList('0')).toThrow(/invalid --pid/);
    expect(() => parsePidList('-5')).toThrow(/invalid --pid/);
    expect(parsePidList(' 12 , 13 ')).toEqual([12, 13]);
    for (const empty of ['', ' ', '12,', ',12', '12,,13', '12, ,13']) expect(() => parsePidList(empty)).toThrow('--pid has an empty value');
    expect(parseMax('25')).toBe(25);
    expect(() => parseMax('0')).toThrow(/invalid --max/);
    expect(() => parseMax('ten')).toThrow(/invalid --max/);
    expect(() => validateClients(['10.0.0.0/8', 'fd00::/8', 'local', '::1'])).not.toThrow();
    expect(() => validateClients(['10.0.0.0/33'])).toThrow(/invalid --client/);
    expect(() => validateClients(['db.example.com'])).toThrow(/invalid --client/);
  });
});

describe('planTermination', () => {
  test('selects by state, app glob and age, and leaves everything else alone', () => {
    const a = row({ application_name: 'worker-1' });
    const b = row({ application_name: 'worker-2', state_age_ms: 500 });
    const c = row({ application_name: 'web' });
    const d = row({ application_name: 'worker-3', state: 'idle' });
    const p = plan([a, b, c, d], { states: ['idle in transaction'], apps: ['worker*'], older_than_ms: 1000 });
    expect(p.planned.map((x) => x.pid)).toEqual([a.pid]);
    expect(p.excluded).toEqual([]);
    expect(p.planned[0]).toMatchObject({ backend_start: a.backend_start, state: 'idle in transaction', action: 'terminate', client: '10.0.0.5' });
    expect(p.planned[0]!.state_change).toMatch(/^2026-11-23 10:05:00\./);
  });

  test('for active sessions, --older-than is the query age', () => {
    const young = row({ state: 'active', state_age_ms: 60_000, query_age_ms: 500 });
    const old = row({ state: 'active', state_age_ms: 500, query_age_ms: 60_000 });
    expect(plan([young, old], { states: ['active'], older_than_ms: 10_000 }).planned.map((x) => x.pid)).toEqual([old.pid]);
  });

  test('excludes dbdoctor itself, background processes, parallel workers and superusers, with reasons', () => {
    const self = row({ is_self: true, state: 'active', application_name: 'dbdoctor' });
    const autovac = row({ backend_type: 'autovacuum worker', state: 'active', usename: null, application_name: '' });
    const leader = row({ state: 'active' });
    const worker = row({ state: 'active', leader_pid: leader.pid, backend_type: 'parallel worker' });
    const su = row({ state: 'active', superuser: true, usename: 'postgres' });
    const p = plan([self, autovac, leader, worker, su], { states: ['active'] });
    expect(p.planned.map((x) => x.pid)).toEqual([leader.pid]);
    const reasons = Object.fromEntries(p.excluded.map((e) => [e.pid, e.reason]));
    expect(reasons).toEqual({
      [self.pid]: 'self',
      [autovac.pid]: 'not_client_backend',
      [worker.pid]: 'parallel_worker',
      [su.pid]: 'superuser',
    });
    expect(p.excluded.find((e) => e.pid === worker.pid)!.detail).toContain(`pid ${leader.pid}`);
    const withSu = plan([self, autovac, leader, worker, su], { states: ['active'] }, { includeSuperusers: true });
    expect(withSu.planned.map((x) => x.pid)).toEqual([leader.pid, su.pid]);
  });

  test('LISTEN sessions are excluded unless named by --pid', () => {
    const listener = row({ state: 'idle', query: 'LISTEN outbox_events', application_name: 'outbox' });
    const idle = row({ state: 'idle', application_name: 'outbox' });
    const p = plan([listener, idle], { states: ['idle'] });
    expect(p.planned.map((x) => x.pid)).toEqual([idle.pid]);
    expect(p.excluded).toMatchObject([{ pid: listener.pid, reason: 'listener' }]);
    const named = plan([listener, idle], { pids: [listener.pid] });
    expect(named.planned).toMatchObject([{ pid: listener.pid, listener: true }]);
  });

  test('the default scope is the connected database; --all-databases widens it', () => {
    const here = row({ state: 'idle' });
    const there = row({ state: 'idle', datname: 'other' });
    const p = plan([here, there], { states: ['idle'] });
    expect(p.planned.map((x) => x.pid)).toEqual([here.pid]);
    expect(p.excluded).toMatchObject([{ pid: there.pid, reason: 'other_database' }]);
    expect(plan([here, there], { states: ['idle'] }, { allDatabases: true }).planned.map((x) => x.pid)).toEqual([here.pid, there.pid]);
    expect(plan([here, there], { dbs: ['other'] }, { allDatabases: true }).planned.map((x) => x.pid)).toEqual([there.pid]);
  });

  test('sessions the role cannot see are never selected, but are counted when they might match', () => {
    const mine = row({ state: 'idle', usename: 'me' });
    const theirs = hiddenRow({ usename: 'them', application_name: 'worker' });
    const otherApp = hiddenRow({ usename: 'them', application_name: 'web' });
    const p = plan([mine, theirs, otherApp], { states: ['idle'], apps: ['worker'] });
    expect(p.planned.map((x) => x.pid)).toEqual([mine.pid]);
    expect(p.excluded).toMatchObject([{ pid: theirs.pid, reason: 'hidden', state: 'hidden' }]);
    expect(p.hidden_sessions).toBe(1);
    // Hidden background processes (no role, or no database) are not sessions that might match.
    const bg = hiddenRow({ backend_type: null, usename: null, datname: null, application_name: '' });
    const launcher = hiddenRow({ backend_type: null, usename: 'postgres', datname: null, application_name: '' });
    const hiddenClient = hiddenRow({ backend_type: null, usename: 'them', application_name: '' });
    const all = plan([bg, launcher, hiddenClient], { states: ['idle'] });
    expect(all.excluded).toMatchObject([{ pid: hiddenClient.pid, reason: 'hidden' }]);
    expect(all.hidden_sessions).toBe(1);
    // A pid the role cannot see is not acted on either: it has no identity to re-check.
    expect(plan([theirs], { pids: [theirs.pid] }).excluded).toMatchObject([{ reason: 'hidden' }]);
  });

  test('--client matches addresses, CIDR ranges and local sockets', () => {
    const a = row({ client_addr: '10.1.2.3' });
    const b = row({ client_addr: '192.168.0.9' });
    const c = row({ client_addr: null, client_port: -1 });
    const d = row({ client_addr: '::1' });
    expect(plan([a, b, c, d], { clients: ['10.0.0.0/8'] }).planned.map((x) => x.pid)).toEqual([a.pid]);
    expect(plan([a, b, c, d], { clients: ['local'] }).planned.map((x) => x.pid)).toEqual([c.pid]);
    expect(plan([a, b, c, d], { clients: ['::1', '192.168.0.9'] }).planned.map((x) => x.pid)).toEqual([b.pid, d.pid]);
  });

  test('--user, --db, --pid and --query', () => {
    const a = row({ usename: 'alice', query: 'SELECT * FROM Orders WHERE x' });
    const b = row({ usename: 'bob', query: 'select 1' });
    expect(plan([a, b], { users: ['bob'] }).planned.map((x) => x.pid)).toEqual([b.pid]);
    expect(plan([a, b], { query: 'from orders' }).planned.map((x) => x.pid)).toEqual([a.pid]);
    expect(plan([a, b], { query: 'select*where' }).planned.map((x) => x.pid)).toEqual([a.pid]);
    const p = plan([a, b], { pids: [a.pid, 999_999] });
    expect(p.planned.map((x) => x.pid)).toEqual([a.pid]);
    expect(p.not_found_pids).toEqual([999_999]);
  });

  test('--blockers picks the root blockers only', () => {
    const blocker = row({ state: 'idle in transaction' });
    const w1 = row({ state: 'active', wait_event_type: 'Lock', wait_event: 'transactionid', blocked_by: [blocker.pid] });
    const w2 = row({ state: 'active', wait_event_type: 'Lock', wait_event: 'tuple', blocked_by: [w1.pid] });
    const bystander = row({ state: 'idle in transaction' });
    const p = plan([blocker, w1, w2, bystander], { blockers: true });
    expect(p.planned.map((x) => x.pid)).toEqual([blocker.pid]);
    expect(p.planned[0]!.blocks).toBe(2);
    // the waiter it blocks directly is the one the signalling statement asks first
    expect(p.planned[0]!.waiters).toEqual([w1.pid]);
    expect(plan([blocker, w1, w2, bystander], {}).planned.every((x) => x.waiters.length === 0)).toBe(true);
  });

  test('--blockers keeps up to 8 of a root\'s direct waiters, by pid, whatever the length of its queue', () => {
    const holder = row({ state: 'idle in transaction' });
    const queue = Array.from({ length: 20 }, () => row({ state: 'active', wait_event_type: 'Lock', wait_event: 'advisory', blocked_by: [holder.pid] }));
    const p = plan([holder, ...queue.reverse()], { blockers: true });
    expect(p.planned.map((x) => [x.pid, x.blocks])).toEqual([[holder.pid, 20]]);
    expect(p.planned[0]!.waiters).toEqual(queue.map((w) => w.pid).sort((a, b) => a - b).slice(0, 8));
  });

  test('--cancel-first: active sessions are cancelled first, idle ones terminated directly', () => {
    const active = row({ state: 'active' });
    const idle = row({ state: 'idle' });
    const p = plan([active, idle], { apps: ['worker'] }, { cancelFirst: true });
    expect(p.planned.map((x) => [x.pid, x.action])).toEqual([
      [active.pid, 'cancel_then_terminate'],
      [idle.pid, 'terminate'],
    ]);
  });

  test('states dbdoctor does not act on are excluded', () => {
    const s = row({ state: 'starting' });
    expect(plan([s], { pids: [s.pid] }).excluded).toMatchObject([{ reason: 'unknown_state' }]);
  });

  test('query text in the plan has its secrets masked', () => {
    const s = row({ query: "ALTER ROLE app PASSWORD 'hunter2'; -- postgres://u:pw123@db/x" });
    const q = plan([s], { pids: [s.pid] }).planned[0]!.query;
    expect(q).not.toContain('hunter2');
    expect(q).not.toContain('pw123');
  });
});

describe('outcomes', () => {
  const planned = { backend_start: '2026-11-23 10:00:00.123456+00', state: 'idle in transaction', superuser: false };

  test('terminate results', () => {
    expect(classifySignal(planned, 'terminate', { present: false, backend_start_now: null, state_now: null, signalled: null }).outcome).toBe('gone');
    expect(classifySignal(planned, 'terminate', { present: true, backend_start_now: '2026-11-23 10:09:00.000001+00', state_now: 'idle', signalled: null })).toMatchObject({
      outcome: 'changed',
      detail: expect.stringContaining('pid reused'),
    });
    expect(classifySignal(planned, 'terminate', { present: true, backend_start_now: planned.backend_start, state_now: 'active', signalled: null })).toMatchObject({
      outcome: 'changed',
      detail: expect.stringContaining('now active'),
    });
    expect(classifySignal(planned, 'terminate', { present: true, backend_start_now: planned.backend_start, state_now: 'idle in transaction', signalled: null }).detail).toContain('new statement');
    expect(classifySignal(planned, 'terminate', { present: true, backend_start_now: planned.backend_start, state_now: planned.state, signalled: true }).outcome).toBe('terminated');
    expect(classifySignal(planned, 'terminate', { present: true, backend_start_now: planned.backend_start, state_now: planned.state, signalled: false }).outcome).toBe('failed');
  });

  test("a role made a superuser since the plan: changed, not touched (and not taken for a stopped query after a cancel)", () => {
    const promoted = { present: true, backend_start_now: planned.backend_start, state_now: planned.state, superuser_now: true, signalled: null };
    expect(classifySignal(planned, 'terminate', promoted)).toMatchObject({ outcome: 'changed', detail: expect.stringContaining('became a superuser') });
    expect(classifyAfterCancel({ ...planned, state: 'active' }, { ...promoted, state_now: 'active' })).toMatchObject({ outcome: 'changed', detail: expect.stringContaining('became a superuser') });
    // planned as a superuser's (--include-superusers): no change there
    expect(classifySignal({ ...planned, superuser: true }, 'terminate', promoted).detail).toContain('new statement');
  });

  test('cancel, then terminate what still runs', () => {
    const active = { ...planned, state: 'active' };
    const same = { present: true, backend_start_now: active.backend_start, state_now: 'active' };
    expect(classifySignal(active, 'cancel', { ...same, signalled: true }).outcome).toBe('signalled');
    expect(classifyAfterCancel(active, { ...same, state_now: 'idle', signalled: null }).outcome).toBe('cancelled');
    expect(classifyAfterCancel(active, { ...same, signalled: true }).outcome).toBe('terminated');
    expect(classifyAfterCancel(active, { present: false, backend_start_now: null, state_now: null, signalled: null }).outcome).toBe('gone');
  });

  test('--blockers: a session that no longer blocks anyone is reported as changed, not touched', () => {
    const same = { present: true, backend_start_now: planned.backend_start, state_now: planned.state };
    expect(classifySignal(planned, 'terminate', { ...same, signalled: null, blocking_now: false })).toEqual({ outcome: 'changed', detail: 'the session no longer blocks anyone; not touched' });
    expect(classifySignal(planned, 'cancel', { ...same, signalled: null, blocking_now: false })).toEqual({ outcome: 'changed', detail: 'the session no longer blocks anyone; not touched' });
    // still blocking, but waiting for a lock itself now (no longer a root): changed, not touched
    const waits = { outcome: 'changed', detail: 'the session now waits for a lock itself (no longer a root blocker); not touched' };
    expect(classifySignal(planned, 'terminate', { ...same, signalled: null, blocking_now: true, waiting_now: true })).toEqual(waits);
    // ... in its planned state only: a root that ran a new statement that waits says so
    expect(classifySignal(planned, 'terminate', { ...same, state_now: 'active', signalled: null, blocking_now: true, waiting_now: true }).detail).toContain('now active');
    // no longer blocking says more than waiting
    expect(classifySignal(planned, 'terminate', { ...same, signalled: null, blocking_now: false, waiting_now: true }).detail).toBe('the session no longer blocks anyone; not touched');
    // still blocking, but moved on: the usual detail
    expect(classifySignal(planned, 'terminate', { ...same, state_now: 'active', signalled: null, blocking_now: true }).detail).toContain('now active');
    expect(classifySignal(planned, 'terminate', { ...same, signalled: true, blocking_now: true }).outcome).toBe('terminated');
    // gone and pid reuse come first
    expect(classifySignal(planned, 'terminate', { present: false, backend_start_now: null, state_now: null, signalled: null, blocking_now: false }).outcome).toBe('gone');
    expect(classifySignal(planned, 'terminate', { ...same, backend_start_now: 'other', signalled: null, blocking_now: false }).detail).toContain('pid reused');
    // after a cancel, no longer blocking is what was wanted: the query's cancel dealt with it
    const active = { ...planned, state: 'active' };
    expect(classifyAfterCancel(active, { ...same, state_now: 'active', signalled: null, blocking_now: false })).toEqual({ outcome: 'cancelled', detail: 'after the cancel it no longer blocks anyone; session kept' });
  });

  test('exit codes: all done 0, some 1, none 2, not confirmed 5, nothing hidden-free to do 0', () => {
    const r = (outcome: SessionResult['outcome']): SessionResult => ({ pid: 1, backend_start: 'x', app: 'a', user: 'u', action: 'terminate', outcome, detail: '' });
    expect(statusOfResults([r('terminated'), r('gone'), r('cancelled')])).toBe('done');
    expect(statusOfResults([r('terminated'), r('changed')])).toBe('partly_done');
    expect(statusOfResults([r('permission_denied'), r('changed'), r('failed')])).toBe('not_done');
    // The audit log failed: never done, however the sessions fared.
    const lost = { message: 'cannot write the audit log /x: EFBIG', unrecorded: [{ pid: 1, backend_start: 'x', action: 'terminate' as const, outcome: 'terminated' as const }] };
    expect(statusOfResults([r('terminated')], lost)).toBe('partly_done');
    expect(statusOfResults([r('not_attempted')], { ...lost, unrecorded: [] })).toBe('not_done');
    expect(terminateExitCode('done', 0)).toBe(ExitCode.OK);
    expect(terminateExitCode('partly_done', 0)).toBe(ExitCode.WARNING);
    expect(terminateExitCode('not_done', 0)).toBe(ExitCode.CRITICAL);
    expect(terminateExitCode('over_max', 0)).toBe(ExitCode.NOT_CONFIRMED);
    expect(terminateExitCode('not_confirmed', 0)).toBe(ExitCode.NOT_CONFIRMED);
    expect(terminateExitCode('dry_run', 0)).toBe(ExitCode.OK);
    expect(terminateExitCode('dry_run', 0, true)).toBe(ExitCode.NOT_CONFIRMED);
    expect(terminateExitCode('nothing_to_do', 0)).toBe(ExitCode.OK);
    expect(terminateExitCode('nothing_to_do', 3)).toBe(ExitCode.UNKNOWN);
  });

  test('the report says what happened in one line', () => {
    const base: ReportBase = {
      target: 'postgres://u@h:5432/app',
      database: 'app',
      all_databases: false,
      include_superusers: false,
      filters: filters({ states: ['idle'] }),
      max: 2,
      dry_run: false,
      cancel_first: false,
      grace_ms: null,
      planned: plan([row(), row(), row()], { apps: ['worker'] }).planned,
      excluded: [],
      not_found_pids: [],
      hidden_sessions: 0,
      deselected: [],
      results: [],
      audit_log: '/x/audit.jsonl',
      lock_file: '/x/lock',
      run_id: 'r',
    };
    expect(finishReport(base, 'over_max')).toMatchObject({ exit_code: 5, summary: expect.stringContaining('more than --max 2') });
    expect(finishReport(base, 'not_confirmed', 'no_tty')).toMatchObject({ exit_code: 5, hint: expect.stringContaining('--yes'), not_confirmed_reason: 'no_tty' });
    const results: SessionResult[] = base.planned.map((p, i) => ({ pid: p.pid, backend_start: p.backend_start, app: p.app, user: p.user, action: 'terminate', outcome: i === 0 ? 'changed' : 'terminated', detail: '' }));
    const done = finishReport({ ...base, results }, statusOfResults(results));
    expect(done).toMatchObject({ status: 'partly_done', exit_code: 1, counts: { planned: 3, done: 2, terminated: 2, changed: 1 } });
    expect(done.summary).toBe('partly done: 2 of 3 planned sessions dealt with (2 terminated, 1 changed (kept))');
  });
});

describe('audit records', () => {
  test('intent and outcome hold who, where and what, never a password, the query cut', () => {
    const s = row({ query: `SELECT 'postgres://app:s3cret-pw@db/app', ${'x'.repeat(2000)}` });
    const p = plan([s], { pids: [s.pid] }).planned[0]!;
    const ctx = {
      run_id: 'run-1',
      os_user: 'oncall',
      machine: 'ops-1',
      dbdoctor_pid: 4242,
      dbdoctor_version: '0.1.0',
      host: 'db1',
      port: 5432,
      database: 'app',
      role: 'postgres',
      filters: filters({ pids: [s.pid] }),
    };
    const now = new Date('2026-11-23T10:00:00Z');
    const intent = auditIntent(ctx, p, 'terminate', now);
    expect(intent).toMatchObject({ event: 'intent', action: 'terminate', pid: s.pid, backend_start: s.backend_start, os_user: 'oncall', host: 'db1', port: 5432, database: 'app', app: 'worker', user: 'app_user', client: '10.0.0.5', state: 'idle in transaction' });
    expect(intent.query.length).toBeLessThanOrEqual(AUDIT_QUERY_CHARS);
    expect(JSON.stringify(intent)).not.toContain('s3cret-pw');
    const outcome = auditOutcome(ctx, p, 'terminate', { outcome: 'terminated', detail: 'ok' }, now);
    expect(outcome).toEqual({ ts: now.toISOString(), event: 'outcome', run_id: 'run-1', action: 'terminate', pid: s.pid, backend_start: s.backend_start, outcome: 'terminated', detail: 'ok' });
  });

  test('redactQuery masks SQL password literals, URLs and conninfo', () => {
    expect(redactQuery("CREATE ROLE x LOGIN PASSWORD 'a''b'")).toBe("CREATE ROLE x LOGIN PASSWORD '***'");
    expect(redactQuery("alter user x with password E'zz'")).not.toContain('zz');
    expect(redactQuery("select dblink_connect('host=h password=abc dbname=d')")).not.toContain('abc');
  });

  test('the state directory follows XDG_STATE_HOME, else ~/.local/state', () => {
    expect(stateDir({ XDG_STATE_HOME: '/var/state' }, '/home/a')).toBe('/var/state/dbdoctor');
    expect(stateDir({}, '/home/a/')).toBe('/home/a/.local/state/dbdoctor');
    expect(stateDir({ XDG_STATE_HOME: 'relative' }, '/home/a')).toBe('/home/a/.local/state/dbdoctor');
  });
});
