/**
 * The decision tree's branches that real incidents rarely show on demand: connection failures,
 * settings overridden per role and database, prepared transactions, hostile application names,
 * secrets in statements, superusers, other databases, filters that would catch too much.
 * Snapshots are built row by row (test/unit/inspect-fixtures.ts), shaped like recorded ones.
 */
import { describe, expect, test } from '@jest/globals';
import type { SessionRow } from '../../src/core/activity.js';
import type { CheckFacts } from '../../src/core/check.js';
import { classifyConnectError } from '../../src/core/classify.js';
import { type DiagnoseFacts, diagnose, pgInterval, type SettingsFacts, settingNumber } from '../../src/core/diagnose.js';
import { shellWord } from '../../src/core/printed.js';
import { shellWords } from '../support/output.js';
import { resolveThresholds } from '../../src/core/thresholds.js';
import { envelope } from '../../src/render/json.js';
import { commandsOf, expectValidDiagnoseDoc, findingOf, fixture, mustFind } from '../support/diagnose.js';
import { hiddenRow, row, snapshot, waiter } from './inspect-fixtures.js';

const T = resolveThresholds({ flags: { idle_in_transaction: '10s', client_wait: '10s', idle: '1m', idle_pool: '3' } });

function server(over: Partial<CheckFacts> = {}): CheckFacts {
  return {
    version: 'PostgreSQL 18.0',
    server_version_num: 180000,
    uptime_s: 3600,
    in_recovery: false,
    max_connections: 100,
    superuser_reserved: 3,
    reserved: 0,
    client_backends: 0,
    other_backends: 5,
    current_user: 'postgres',
    current_database: 'app',
    is_superuser: true,
    can_read_all_stats: true,
    can_signal_backend: true,
    can_use_reserved: true,
    has_monitor: true,
    ...over,
  };
}

const self = () => row({ pid: 1, application_name: 'dbdoctor', state: 'active', wait_event_type: null, wait_event: null, is_self: true, usename: 'postgres', superuser: true });

function settings(values: Record<string, string> = {}, overrides: SettingsFacts['overrides'] = [], over: Partial<SettingsFacts> = {}): SettingsFacts {
  const base: Record<string, [string, string | null, string]> = {
    statement_timeout: ['0', 'ms', 'integer'],
    lock_timeout: ['0', 'ms', 'integer'],
    idle_in_transaction_session_timeout: ['0', 'ms', 'integer'],
    idle_session_timeout: ['0', 'ms', 'integer'],
    transaction_timeout: ['0', 'ms', 'integer'],
    tcp_keepalives_idle: ['0', 's', 'integer'],
    log_lock_waits: ['off', null, 'bool'],
  };
  return {
    server_version_num: 180000,
    settings: Object.entries(base).map(([name, [v, unit, vartype]]) => ({ name, value: values[name] ?? v, unit, vartype, context: 'user', boot_val: v })),
    overrides,
    current_user: 'postgres',
    current_database: 'app',
    ...over,
  };
}

function facts(rows: SessionRow[], over: Partial<DiagnoseFacts> = {}): DiagnoseFacts {
  return {
    target: 'postgres://postgres@db1:5432/app',
    connect: { ok: true, connect_ms: 3 },
    server: server(),
    limits: [],
    activity: snapshot([self(), ...rows]),
    settings: settings(),
    statements: null,
    gather_error: null,
    unavailable: [],
    gather_ms: 12,
    ...over,
  };
}

function run(f: DiagnoseFacts, t = T) {
  const r = diagnose(f, t);
  expectValidDiagnoseDoc(envelope('diagnose', { ...r, config: { file: null, environment: null } }, '0.0.0-test'));
  return r;
}

const iitRow = (pid: number, over: Partial<SessionRow> = {}) =>
  row({ pid, state: 'idle in transaction', xact_age_ms: 60_000, state_age_ms: 60_000, query: 'UPDATE files SET v = 1 WHERE id = 7', application_name: 'worker', usename: 'worker', ...over });

describe('connect: the first node', () => {
  const ctx = { host: 'db1', port: 5432, user: 'postgres', dbname: 'app', connectTimeoutMs: 5000, sslmode: 'prefer' };
  const failed = (code: string, message: string): DiagnoseFacts => ({
    ...facts([]),
    connect: { ok: false, failure: classifyConnectError({ code, message }, ctx), ms: 4 },
    server: null,
    activity: null,
    settings: null,
  });

  test('an unreachable server is CRITICAL, with the cause and its runbook section', () => {
    const r = run(failed('ECONNREFUSED', 'connect ECONNREFUSED'));
    expect(r.verdict).toBe('critical');
    expect(r.exit_code).toBe(2);
    expect(r.connected).toBe(false);
    expect(r.findings).toHaveLength(1);
    const f = mustFind(r, 'connect');
    expect(f.title).toMatch(/^cannot connect: nothing listens on db1:5432/);
    expect(f.runbook).toBe('runbooks/cannot-connect.md#refused');
    expect(f.evidence.facts).toContain('cause: refused (ECONNREFUSED)');
    expect(commandsOf(f)).toContain('dbdoctor check');
    expect(r.path).toEqual([{ node: 'connect', question: 'can dbdoctor connect?', branch: 'unreachable', detail: 'tcp failed: refused' }]);
    expect(r.metrics.map((m) => m.name)).toEqual(['time']);
  });

  test("dbdoctor's own credentials are UNKNOWN", () => {
    const r = run(failed('28P01', 'password authentication failed for user "postgres"'));
    expect(r.verdict).toBe('unknown');
    expect(r.exit_code).toBe(3);
    expect(mustFind(r, 'connect').runbook).toBe('runbooks/cannot-connect.md#auth');
    expect(r.path[0]!.branch).toBe('own-setup');
    expect(r.summary).toMatch(/password authentication failed/);
  });

  test('out of slots is CRITICAL and points to the out-of-slots runbook', () => {
    const r = run(failed('53300', 'sorry, too many clients already'));
    expect(r.verdict).toBe('critical');
    expect(mustFind(r, 'connect').runbook).toBe('runbooks/out-of-slots.md#out-of-slots');
  });

  test('losing the server while gathering is CRITICAL; a timeout of its own queries is UNKNOWN', () => {
    const gone = run({ ...facts([]), activity: null, gather_error: { cause: 'server_gone', message: 'the server ended the session', hint: 'run: dbdoctor check', exit_code: 2 } });
    expect(gone.verdict).toBe('critical');
    expect(gone.path.map((p) => p.branch)).toEqual(['yes', 'server-gone']);
    const slow = run({ ...facts([]), gather_error: { cause: 'statement_timeout', message: 'a dbdoctor query ran into its statement_timeout', hint: null, exit_code: 3 } });
    expect(slow.verdict).toBe('unknown');
  });
});

describe('settings: what the sessions of the incident actually got', () => {
  const incident = [iitRow(10), iitRow(11), iitRow(12)];

  test('off at server level: ALTER ROLE for the role, ALTER DATABASE and ALTER SYSTEM as alternatives', () => {
    const r = run(facts(incident));
    const g = mustFind(r, 'setting-idle-in-transaction-session-timeout');
    expect(g.evidence.facts.join('\n')).toMatch(/is 0 \(off\) for role worker in database app \(set at server level\): 3 sessions/);
    expect(g.next.map((n) => n.sql)).toEqual([
      `ALTER ROLE "worker" SET idle_in_transaction_session_timeout = '5min';`,
      `ALTER DATABASE "app" SET idle_in_transaction_session_timeout = '5min';`,
      "ALTER SYSTEM SET idle_in_transaction_session_timeout = '5min'; SELECT pg_reload_conf();",
      null,
    ]);
    expect(commandsOf(g)).toEqual(['dbdoctor runbook setting-idle-in-transaction-session-timeout']);
  });

  test('set at server level but turned off for the role: the role is named as the culprit', () => {
    const r = run(facts(incident, { settings: settings({ idle_in_transaction_session_timeout: '300000' }, [{ role: 'worker', database: null, name: 'idle_in_transaction_session_timeout', value: '0' }]) }));
    const g = mustFind(r, 'setting-idle-in-transaction-session-timeout');
    expect(g.evidence.facts.join('\n')).toMatch(/set at role level/);
    // And the info finding lists the override that disables a server-wide guard.
    expect(mustFind(r, 'settings').evidence.facts).toContain('role worker turns idle_in_transaction_session_timeout off (0) although the server sets it');
  });

  test('a role-in-database override needs ALTER ROLE ... IN DATABASE to be beaten', () => {
    const r = run(facts(incident, { settings: settings({ idle_in_transaction_session_timeout: '300000' }, [{ role: 'worker', database: 'app', name: 'idle_in_transaction_session_timeout', value: '0' }]) }));
    const g = mustFind(r, 'setting-idle-in-transaction-session-timeout');
    expect(g.next[0]!.sql).toBe(`ALTER ROLE "worker" IN DATABASE "app" SET idle_in_transaction_session_timeout = '5min';`);
  });

  test('set for the role (in any unit): no finding, and the path says so', () => {
    for (const value of ['1min', '60000', '60s']) {
      const r = run(facts(incident, { settings: settings({}, [{ role: 'worker', database: null, name: 'idle_in_transaction_session_timeout', value }]) }));
      expect(findingOf(r, 'setting-idle-in-transaction-session-timeout')).toBeUndefined();
      expect(r.path.find((p) => p.node === 'setting-idle-in-transaction-session-timeout')!.branch).toBe('set');
    }
  });

  test("a server value masked by an override on dbdoctor's own role is not known, so not claimed to be off", () => {
    const r = run(facts(incident, { settings: settings({ idle_in_transaction_session_timeout: '0' }, [{ role: 'postgres', database: null, name: 'idle_in_transaction_session_timeout', value: '0' }]) }));
    expect(findingOf(r, 'setting-idle-in-transaction-session-timeout')).toBeUndefined();
  });

  test("a value set by dbdoctor's own connection options (PGOPTIONS) is its own, not the server's: not known, so not claimed to be off", () => {
    // reset_val is what this session started with: '-c idle_in_transaction_session_timeout=0' in
    // the options makes it 0 whatever the server says
    const r = run(facts(incident, { settings: settings({ idle_in_transaction_session_timeout: '0' }, [], { client_options: ['idle_in_transaction_session_timeout'] }) }));
    expect(findingOf(r, 'setting-idle-in-transaction-session-timeout')).toBeUndefined();
    // a setting the options did not touch is still read as the server's
    const other = run(facts(incident, { settings: settings({ idle_in_transaction_session_timeout: '0' }, [], { client_options: ['statement_timeout'] }) }));
    expect(mustFind(other, 'setting-idle-in-transaction-session-timeout').evidence.facts.join('\n')).toMatch(/is 0 \(off\) for role worker/);
  });

  test('a healthy server with guards off gets one info finding, never a warning', () => {
    const r = run(facts([row({ pid: 20 })]));
    const s = mustFind(r, 'settings');
    expect(s.severity).toBe('info');
    expect(s.title).toMatch(/idle_in_transaction_session_timeout/);
    expect(r.verdict).toBe('ok');
  });

  test('ClientWrite to a client that may be gone: TCP keepalives at the OS default are a warning', () => {
    const w = row({ pid: 30, state: 'active', wait_event: 'ClientWrite', state_age_ms: 120_000, query_age_ms: 120_000, query: 'SELECT * FROM big' });
    const r = run(facts([w]));
    const k = mustFind(r, 'setting-tcp-keepalives');
    expect(k.severity).toBe('warning');
    expect(k.next[0]!.sql).toMatch(/^ALTER SYSTEM SET tcp_keepalives_idle = 60;/);
    expect(mustFind(r, 'unread-results').cause).toMatch(/ClientWrite/);
  });

  test('setting values as PostgreSQL writes them', () => {
    expect(settingNumber('5min', 'ms')).toBe(300_000);
    expect(settingNumber('300000', 'ms')).toBe(300_000);
    expect(settingNumber('60', 's')).toBe(60_000);
    expect(settingNumber('1h', 'ms')).toBe(3_600_000);
    expect(settingNumber('0', 'ms')).toBe(0);
    expect(settingNumber('on', null, 'bool')).toBe(1);
    expect(settingNumber('off', null, 'bool')).toBe(0);
    expect(settingNumber('garbage', 'ms')).toBeNull();
    expect(pgInterval(300_000)).toBe('5min');
    expect(pgInterval(30_000)).toBe('30s');
    expect(pgInterval(3_600_000)).toBe('1h');
    expect(pgInterval(1500)).toBe('1500ms');
  });
});

describe('blocking', () => {
  test('a prepared transaction (pid 0) holding the lock: critical, with COMMIT/ROLLBACK PREPARED', () => {
    const f = facts([waiter(40, [0]), waiter(41, [0])]);
    f.activity!.prepared = [{ gid: "tx'1", owner: 'app', database: 'app', transaction: '123', age_ms: 600_000 }];
    const r = run(f);
    const b = mustFind(r, 'blocking');
    expect(b.severity).toBe('critical');
    expect(b.title).toMatch(/^a prepared transaction blocks 2 sessions/);
    expect(b.next.map((n) => n.sql)).toContain("ROLLBACK PREPARED 'tx''1';");
    expect(b.cause).toMatch(/prepared transaction/);
  });

  test('an active root: cancel first', () => {
    const root = row({ pid: 50, state: 'active', wait_event_type: null, wait_event: null, query_age_ms: 90_000, query: 'ALTER TABLE t ADD COLUMN x int' });
    const r = run(facts([root, waiter(51, [50]), waiter(52, [50])]));
    expect(commandsOf(mustFind(r, 'blocking'))).toContain('dbdoctor terminate --pid 50 --cancel-first');
  });

  test('a DDL statement behind 3 readers, 20 sessions behind it: the waiters are counted once, not once per root', () => {
    const readers = [70, 71, 72].map((pid) => row({ pid, state: 'active', wait_event_type: null, wait_event: null, query_age_ms: 300_000, query: 'SELECT * FROM accounts' }));
    const relationWait = { wait_event: 'relation', wait_lock: null };
    const ddl = waiter(80, [70, 71, 72], { query: 'ALTER TABLE accounts ADD COLUMN note text', ...relationWait });
    const queued = Array.from({ length: 20 }, (_, i) => waiter(100 + i, [80], { query: 'SELECT * FROM accounts', ...relationWait }));
    const r = run(facts([...readers, ddl, ...queued]));
    expect(mustFind(r, 'blocking').evidence.groups.map((g) => g.count)).toEqual([21, 21, 21]);
    const guard = mustFind(r, 'setting-lock-timeout');
    expect(guard.evidence.sessions).toBe(21);
    expect(guard.evidence.facts[0]).toBe('21 sessions waiting on locks');
    // the DDL statement is one queue head, waiting for all three readers
    const ddlQueue = mustFind(r, 'ddl-queue');
    expect(ddlQueue.evidence.groups).toHaveLength(1);
    expect(ddlQueue.title).toMatch(/^ALTER TABLE accounts ADD COLUMN note text \(pid 80, app \S+\) waits behind pid 70 \(active [^)]*\) and 2 more sessions \(pid 71, pid 72\); 20 sessions queue behind the ALTER$/);
    expect(ddlQueue.evidence.facts).toEqual(['pid 80 (api) waits for a table lock held by pid 70 and 2 more root blockers; 20 sessions queued behind it']);
    const commands = commandsOf(ddlQueue);
    expect(commands[0]).toBe('dbdoctor terminate --pid 80 --cancel-first');
    for (const pid of [70, 71, 72]) expect(commands).toContain(`dbdoctor terminate --pid ${pid} --cancel-first`);
  });

  test('a lock cycle with no root does not crash and is reported', () => {
    const r = run(facts([waiter(60, [61]), waiter(61, [60])]));
    const b = mustFind(r, 'blocking');
    expect(b.title).toMatch(/lock cycle/);
    expect(b.evidence.groups[0]!.pids).toEqual([60, 61]);
  });
});

describe('the exact terminate command', () => {
  test('application names are quoted for the shell, and the argv is what a shell would read back', () => {
    const hostile = `x'; rm -rf / #`;
    const r = run(facts([iitRow(70, { application_name: hostile }), iitRow(71, { application_name: hostile })]));
    const step = mustFind(r, 'idle-in-transaction').next.find((n) => n.command?.startsWith('dbdoctor terminate'))!;
    expect(step.command).toBe(`dbdoctor terminate --state "idle in transaction" --app "x'; rm -rf / #" --older-than 10s`);
    expect(step.argv).toEqual(['terminate', '--state', 'idle in transaction', '--app', hostile, '--older-than', '10s']);
    expect(shellWords(step.command!)).toEqual(['dbdoctor', ...step.argv!]);
    for (const s of ['plain', 'with space', 'dollar$HOME', 'back`tick`', 'quote"d', "it's", '-dash', '*glob?']) {
      expect(shellWords(`dbdoctor --app ${shellWord(s)}`)).toEqual(['dbdoctor', '--app', s]);
    }
  });

  test('an application name starting with a dash is passed as --app=value', () => {
    const r = run(facts([iitRow(72, { application_name: '-weird' })]));
    const step = mustFind(r, 'idle-in-transaction').next.find((n) => n.command?.startsWith('dbdoctor terminate'))!;
    expect(step.argv).toContain('--app=-weird');
  });

  test('superuser sessions need --include-superusers; other databases need --all-databases and --db', () => {
    const su = run(facts([iitRow(80, { superuser: true, usename: 'postgres' })]));
    expect(commandsOf(mustFind(su, 'idle-in-transaction')).find((c) => c.startsWith('dbdoctor terminate'))).toMatch(/--include-superusers$/);
    const other = run(facts([iitRow(81, { datname: 'billing' })]));
    expect(commandsOf(mustFind(other, 'idle-in-transaction')).find((c) => c.startsWith('dbdoctor terminate'))).toBe(
      'dbdoctor terminate --state "idle in transaction" --app worker --db billing --older-than 10s --all-databases',
    );
  });

  test('two clients of one application: the client address keeps each command exact', () => {
    const r = run(facts([iitRow(90, { client_addr: '10.0.0.5' }), iitRow(91, { client_addr: '10.0.0.5' }), iitRow(92, { client_addr: '10.0.0.9' })]));
    const cmds = commandsOf(mustFind(r, 'idle-in-transaction')).filter((c) => c.startsWith('dbdoctor terminate'));
    expect(cmds).toEqual([
      'dbdoctor terminate --state "idle in transaction" --app worker --client 10.0.0.5 --older-than 10s',
      'dbdoctor terminate --state "idle in transaction" --app worker --client 10.0.0.9 --older-than 10s',
    ]);
  });

  test('when a filter would also catch a query that is really running, the pids are named instead', () => {
    const stuck = (pid: number) => row({ pid, application_name: 'api', state: 'active', wait_event: 'ClientRead', state_age_ms: 60_000, query_age_ms: 60_000, query: 'SELECT * FROM files WHERE user_id = $1' });
    const busy = row({ pid: 103, application_name: 'api', state: 'active', wait_event_type: null, wait_event: null, state_age_ms: 60_000, query_age_ms: 60_000, query: 'SELECT pg_sleep(100)' });
    const r = run(facts([stuck(101), stuck(102), busy]));
    expect(commandsOf(mustFind(r, 'unread-results'))).toContain('dbdoctor terminate --pid 101,102');
  });

  test('more sessions than terminate allows by default: --max says how many', () => {
    const rows = Array.from({ length: 12 }, (_, i) => iitRow(200 + i));
    const r = run(facts(rows));
    expect(commandsOf(mustFind(r, 'idle-in-transaction'))).toContain('dbdoctor terminate --state "idle in transaction" --app worker --older-than 10s --max 12');
  });
});

describe('text that is data', () => {
  test('secrets in statements never reach a finding', () => {
    const r = run(facts([iitRow(300, { query: "ALTER ROLE app PASSWORD 'hunter2-secret'" }), iitRow(301, { query: 'SELECT 1 -- postgres://u:pw-in-url@h/db' })]));
    const json = JSON.stringify(r);
    expect(json).not.toContain('hunter2-secret');
    expect(json).not.toContain('pw-in-url');
  });
});

describe('counting', () => {
  test('hidden background processes are neither sessions nor used slots', () => {
    const bg = (pid: number) => hiddenRow({ pid, usename: null, datname: null, application_name: '' });
    const r = run(facts([bg(2), bg(3), bg(4), row({ pid: 5, usename: 'app_user' })], { server: server({ can_read_all_stats: false, is_superuser: false, current_user: 'app_user' }) }));
    expect(r.capacity!.client_backends).toBe(2);
    expect(r.visibility!.hidden).toBe(0);
    expect(r.verdict).toBe('unknown');
  });

  test('unknown and new states (18: starting) do not crash anything', () => {
    const r = run(facts([row({ pid: 6, state: 'starting' }), row({ pid: 7, state: 'something new' }), row({ pid: 8, state: 'disabled' })]));
    expect(r.verdict).toBe('ok');
  });

  test('idle pool: information with headroom, a warning when the slots run short', () => {
    const idle = Array.from({ length: 4 }, (_, i) => row({ pid: 400 + i, application_name: 'api', state: 'idle', state_age_ms: 3_600_000 }));
    expect(mustFind(run(facts(idle)), 'idle-pool').severity).toBe('info');
    const tight = run(facts(idle, { server: server({ max_connections: 8 }) }));
    expect(mustFind(tight, 'idle-pool').severity).toBe('warning');
    expect(commandsOf(mustFind(tight, 'idle-pool'))).toContain('dbdoctor terminate --state idle --app api --older-than 1m');
    expect(mustFind(tight, 'setting-idle-session-timeout').next[0]!.sql).toBe(`ALTER ROLE "app_user" SET idle_session_timeout = '1h';`);
  });

  test('roles and databases near their CONNECTION LIMIT', () => {
    const r = run(facts([], { limits: [{ kind: 'role', name: 'worker', conn_limit: 10, connections: 10 }] }));
    const l = mustFind(r, 'connection-limit');
    expect(l.severity).toBe('critical');
    expect(l.next.map((n) => n.sql)).toContain('ALTER ROLE "worker" CONNECTION LIMIT 20;');
  });

  test('a long query is a warning, and critical past --long-query-crit', () => {
    const q = (pid: number, age: number) => row({ pid, state: 'active', wait_event_type: null, wait_event: null, query_age_ms: age, state_age_ms: age, query: `SELECT slow(${pid})` });
    expect(mustFind(run(facts([q(500, 60_000)])), 'long-queries').severity).toBe('warning');
    const crit = run(facts([q(500, 60_000), q(501, 600_000)]));
    const f = mustFind(crit, 'long-queries');
    expect(f.severity).toBe('critical');
    expect(f.evidence.groups[0]!.pids).toEqual([501]);
    expect(commandsOf(f)).toContain('dbdoctor terminate --pid 501 --cancel-first');
    expect(commandsOf(f)).toContain('dbdoctor queries --min-duration 30s');
  });

  test('an empty server is OK', () => {
    const r = run(facts([], { settings: settings({ idle_in_transaction_session_timeout: '60000', statement_timeout: '0', lock_timeout: '0', log_lock_waits: 'on', transaction_timeout: '0' }) }));
    expect(r.verdict).toBe('ok');
    expect(r.summary).toBe('no problems found: 1 of 97 ordinary slots in use (1%)');
  });
});

describe('seq-scans: only tables really read by sequential scans', () => {
  const seq = (x: Partial<{ table: string; seq_scan: number; seq_tup_read: number; idx_scan: number; live_rows: number }>) => ({ table: 'public.files', seq_scan: 6, seq_tup_read: 120_000, idx_scan: 0, live_rows: 20_000, ...x });
  const run = (tables: ReturnType<typeof seq>[]) => {
    const f = fixture('seeds-000');
    f.statements!.seq_scan_tables = tables;
    return diagnose(f, resolveThresholds());
  };

  test('one scan that read nothing (the issue\'s case), few scans, few rows read, more index scans: none', () => {
    for (const t of [seq({ seq_scan: 1, seq_tup_read: 0 }), seq({ seq_scan: 4 }), seq({ seq_tup_read: 9_999 }), seq({ idx_scan: 7 }), seq({ live_rows: 9_999 })]) {
      const r = run([t]);
      expect(r.findings.find((x) => x.id === 'seq-scans')).toBeUndefined();
      expect(r.path.find((p) => p.node === 'seq-scans')?.branch).toBe('none');
    }
  });

  test('scanned often, reading many rows: found, and the summary is a whole phrase', () => {
    const f = mustFind(run([seq({}), seq({ table: 'public.once', seq_scan: 1, seq_tup_read: 20_000 })]), 'seq-scans');
    expect(f.summary).toBe('1 table read mostly by sequential scans (public.files)');
    expect(f.title).toBe('1 table of 10000+ rows read mostly by sequential scans; the most read: public.files (120000 rows in 6 scans)');
    expect(f.evidence.facts).toEqual(['public.files: 6 sequential scans read 120000 rows (20000 live rows; 0 index scans)']);
  });
});

describe('the exposition formats (prometheus, openmetrics, icinga)', () => {
  test('12 applications: the 10 largest by name, the rest as "other"; a hostile name is an inert label value the terminal writer leaves as it is', async () => {
    const { exposition, icingaLines } = await import('../../src/render/exposition.js');
    const { terminalText } = await import('../../src/render/sanitize.js');
    const hostile = 'pay\u009d0;T\u009c\u202e"ments\\\nx';
    const apps = [hostile, ...Array.from({ length: 11 }, (_, i) => `app${String(i).padStart(2, '0')}`)];
    // app i has 13 - i sessions: the two smallest (3 and 2 sessions) are "other"
    const rows = apps.flatMap((app, i) => Array.from({ length: 13 - i }, (_, k) => row({ pid: 1000 + i * 100 + k, application_name: app, state: 'idle', state_age_ms: 1_000 })));
    const r = run(facts(rows));
    for (const format of ['prometheus', 'openmetrics'] as const) {
      const out = exposition([{ name: 'db1', ms: 12, report: r }], format);
      expect(terminalText(out, false)).toBe(out);
      expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
      expect(out).toContain('dbdoctor_application_sessions{target="db1",application="pay\\\\u009d0;T\\\\u009c\\\\u202e\\"ments\\\\\\nx"} 13');
      expect(out).toContain('dbdoctor_application_sessions{target="db1",application="other"} 5');
    }
    const icinga = icingaLines([{ name: 'db1\u009d', ms: 12, report: r }], 'dbdoctor', 300);
    expect(terminalText(icinga, false)).toBe(icinga);
    expect(JSON.parse(icinga).target).toBe('db1\u009d');
  });
});
