/**
 * runDiagnose against real incidents on a real server: what it gathers (settings at every level,
 * pg_stat_statements, sequential scans; version-aware) and what it decides, one test per incident
 * of the issue's acceptance list, each checked against the builders' ground-truth pids.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { runDiagnose } from '../../src/commands/diagnose.js';
import type { Target } from '../../src/core/target.js';
import { resolveThresholds, type ThresholdKey } from '../../src/core/thresholds.js';
import { diagnose } from '../../src/core/diagnose.js';
import { gatherFacts } from '../../src/db/diagnose.js';
import { freePort } from '../../src/db/embedded.js';
import { envelope } from '../../src/render/json.js';
import { commandsOf, expectValidDiagnoseDoc, findingOf, mustFind } from '../support/diagnose.js';
import { busyWorkload, dbdoctorSessionsLeft, idleInTransaction, idleSessions, listeners, lockChain, sameStatement, sorted, unreadCursor, waitFor } from '../support/incidents.js';
import { connectionsOpenedBy, LOG_CONNECTIONS, ROLE_PASSWORD, startTestServer, type TestServer, useServer } from '../support/server.js';

const server = useServer({ settings: { ...LOG_CONNECTIONS, max_connections: 40, superuser_reserved_connections: 3, shared_preload_libraries: 'pg_stat_statements' } });

function target(s: TestServer, user = 'postgres', password?: string, dbname = 'postgres'): Target {
  return { host: s.host, port: s.port, user, dbname, password: password ?? (user === 'postgres' ? s.password : ROLE_PASSWORD), sslmode: 'disable', sslrootcert: undefined, connectTimeoutMs: 5000, service: undefined };
}

async function diagnoseNow(s: TestServer, flags: Partial<Record<ThresholdKey, string>> = {}, t: Target = target(s)) {
  const r = await runDiagnose({ target: t, session: {}, thresholds: resolveThresholds({ flags }) });
  expectValidDiagnoseDoc(envelope('diagnose', r, '0.0.0-test'));
  expect(await dbdoctorSessionsLeft(s)).toBe(0);
  return r;
}

/** Waits (bounded) until every pid has been in its current state for at least `ms`. */
async function aged(s: TestServer, pids: number[], ms = 1200): Promise<void> {
  await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND clock_timestamp() - state_change >= $2 * interval '1 millisecond'`, [pids, ms], (rows) => rows[0]?.n === pids.length);
}

const LOW = { idle_in_transaction: '1s', client_wait: '1s' } as const;

beforeAll(async () => {
  const s = server();
  await s.sql(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    CREATE TABLE files (id int PRIMARY KEY, user_id int, name text);
    INSERT INTO files SELECT g, g % 50, md5(g::text) FROM generate_series(1, 20000) g;
    GRANT ALL ON files TO PUBLIC; ANALYZE files;`);
});

describe('gathering', () => {
  test('one connection; settings at server level, not dbdoctor\'s own session values', async () => {
    const s = server();
    let facts!: Awaited<ReturnType<typeof gatherFacts>>;
    const opened = await connectionsOpenedBy(s, async () => {
      facts = await gatherFacts(target(s), {}, { thresholds: resolveThresholds() });
    });
    expect(opened).toBe(1);
    expect(facts.unavailable).toEqual([]);
    const st = facts.settings!.settings.find((x) => x.name === 'statement_timeout')!;
    // dbdoctor SETs statement_timeout on its own session; the server's value is reported.
    expect(st).toMatchObject({ value: '0', unit: 'ms' });
    const names = facts.settings!.settings.map((x) => x.name);
    expect(names).toContain('idle_session_timeout');
    if (s.major >= 17) expect(names).toContain('transaction_timeout');
    else expect(names).not.toContain('transaction_timeout');
  });

  test('an optional read that fails (a catalog revoked from PUBLIC) is unavailable; the diagnosis goes on', async () => {
    const s = server();
    // The first round trip carries the optional reads too; its failure sends the reads again
    // apart, and only the settings and the statements probe are lost.
    await s.sql('REVOKE SELECT ON pg_catalog.pg_db_role_setting FROM PUBLIC');
    try {
      let facts!: Awaited<ReturnType<typeof gatherFacts>>;
      const opened = await connectionsOpenedBy(s, async () => {
        facts = await gatherFacts(target(s, 'app_user'), {}, { thresholds: resolveThresholds() });
      });
      expect(opened).toBe(1);
      expect(facts.gather_error).toBeNull();
      expect(facts.server?.current_user).toBe('app_user');
      expect(facts.activity?.rows.some((r) => r.is_self)).toBe(true);
      expect(facts.settings).toBeNull();
      expect(facts.unavailable.map((u) => u.what)).toEqual(['settings', 'statements']);
      expect(facts.unavailable[0]!.reason).toMatch(/permission denied.*pg_db_role_setting/);
      const r = diagnose(facts, resolveThresholds());
      expect(r.path.find((p) => p.node === 'settings')).toMatchObject({ branch: 'unavailable' });
    } finally {
      await s.sql('GRANT SELECT ON pg_catalog.pg_db_role_setting TO PUBLIC');
    }
  });

  test('the lock table locked away: who blocks whom from pg_blocking_pids(), and the settings and statements read before it stand', async () => {
    const s = server();
    // The waiters behind the first wait for a tuple lock, whose relation their wait_event does not
    // name: the lock table is read, in a round trip after the one that read the settings and the
    // statements probe. A lock on pg_locks makes that round trip wait until statement_timeout,
    // after which reading the settings and the statements again would wait as long again.
    const chain = await lockChain(s, { app: 'billing', waiterApp: 'billing-worker' });
    const locker = await s.client({ application_name: 'pg-locks-locker' });
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE pg_catalog.pg_locks IN ACCESS EXCLUSIVE MODE');
      let facts!: Awaited<ReturnType<typeof gatherFacts>>;
      const opened = await connectionsOpenedBy(s, async () => {
        facts = await gatherFacts(target(s), { statementTimeoutMs: 1500, lockTimeoutMs: 10_000 }, { thresholds: resolveThresholds() });
      });
      expect(opened).toBe(1);
      expect(facts.gather_error).toBeNull();
      expect(facts.unavailable).toEqual([]);
      expect(facts.settings?.settings.some((x) => x.name === 'statement_timeout')).toBe(true);
      expect(facts.statements).toMatchObject({ pg_stat_statements: 'available' });
      const rows = new Map(facts.activity!.rows.map((r) => [r.pid, r]));
      expect(rows.get(chain.direct[0]!)?.blocked_by).toEqual([chain.blocker]);
      for (const pid of chain.behind) expect(rows.get(pid)?.blocked_by?.length).toBeGreaterThan(0);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      await chain.release();
    }
  });

  test('per-role, per-database and per-role-in-database overrides', async () => {
    const s = server();
    await s.sql(`ALTER ROLE other_user SET statement_timeout = '5s'; ALTER DATABASE postgres SET lock_timeout = 2000;
      ALTER ROLE other_user IN DATABASE postgres SET idle_in_transaction_session_timeout = '1min'; ALTER ROLE app_user SET work_mem = '8MB'`);
    try {
      const facts = await gatherFacts(target(s), {}, { thresholds: resolveThresholds() });
      expect(facts.settings!.overrides).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ role: 'other_user', database: null, name: 'statement_timeout', value: '5s' }),
          expect.objectContaining({ role: null, database: 'postgres', name: 'lock_timeout', value: '2000' }),
          expect.objectContaining({ role: 'other_user', database: 'postgres', name: 'idle_in_transaction_session_timeout', value: '1min' }),
        ]),
      );
      // Settings that are no guard are not read.
      expect(facts.settings!.overrides.some((o) => o.name === 'work_mem')).toBe(false);
      // lock_timeout is overridden for dbdoctor's own database: its server value is masked,
      // so a lock incident is not blamed on a server value dbdoctor cannot know.
      expect(facts.settings!.settings.find((x) => x.name === 'lock_timeout')!.value).toBe('2000');
    } finally {
      await s.sql(`ALTER ROLE other_user RESET ALL; ALTER DATABASE postgres RESET lock_timeout; ALTER ROLE other_user IN DATABASE postgres RESET ALL; ALTER ROLE app_user RESET ALL`);
    }
  });

  test('pg_stat_statements and sequential-scan tables', async () => {
    const s = server();
    for (let i = 0; i < 6; i++) await s.sql(`SELECT count(*) FROM files WHERE name LIKE '%ab%'`);
    // Table statistics arrive asynchronously (PostgreSQL 14's stats collector lags up to ~0.5 s;
    // 15+ flushes at most once a second): wait, bounded, until the scans are counted.
    await waitFor(s, `SELECT coalesce(sum(seq_scan), 0)::int AS n FROM pg_stat_user_tables WHERE relname = 'files'`, [], (rows) => Number(rows[0]?.n) >= 6, 15_000);
    const facts = await gatherFacts(target(s), {}, { thresholds: resolveThresholds() });
    expect(facts.statements).toMatchObject({ pg_stat_statements: 'available', extension_schema: 'public' });
    expect(facts.statements!.by_total.length).toBeGreaterThan(0);
    expect(facts.statements!.seq_scan_tables.map((x) => x.table)).toContain('public.files');
    const r = await diagnoseNow(s);
    expect(mustFind(r, 'seq-scans').evidence.facts[0]).toMatch(/^public\.files: \d+ sequential scans read \d+ rows \(20000 live rows/);
    expect(mustFind(r, 'top-statements').severity).toBe('info');
  });

  test('seq-scans: only tables really read by sequential scans; the summary is whole in text, JSON and nagios', async () => {
    const s = server();
    // Big tables that are no finding: one scanned once, one scanned often but reading nothing
    // (LIMIT 0 plans no scan at all; an empty result of a filter still reads, so: scans of an
    // empty-then-filled table are counted before the rows arrive), one read by its index.
    await s.sql(`CREATE TABLE once_read (id int PRIMARY KEY, v text);
      INSERT INTO once_read SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
      CREATE TABLE empty_reads (id int PRIMARY KEY, v text);
      CREATE TABLE by_index (id int PRIMARY KEY, v text);
      INSERT INTO by_index SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
      ANALYZE once_read; ANALYZE by_index;`);
    for (let i = 0; i < 6; i++) await s.sql(`SELECT count(*) FROM empty_reads`);
    await s.sql(`INSERT INTO empty_reads SELECT g, md5(g::text) FROM generate_series(1, 20000) g; ANALYZE empty_reads;`);
    await s.sql(`SELECT count(*) FROM once_read`);
    await s.sql(`SET enable_seqscan = off; SELECT v FROM by_index WHERE id = 1`);
    for (let i = 0; i < 6; i++) await s.sql(`SELECT count(*) FROM files WHERE name LIKE '%cd%'`);
    await waitFor(
      s,
      `SELECT count(*)::int AS n FROM pg_stat_user_tables WHERE (relname = 'once_read' AND seq_scan >= 1) OR (relname = 'empty_reads' AND seq_scan >= 6 AND n_live_tup >= 20000) OR (relname = 'files' AND seq_scan >= 6)`,
      [],
      (rows) => rows[0]?.n === 3,
      15_000,
    );
    const r = await diagnoseNow(s, { seq_scan_rows: '10000' });
    const f = mustFind(r, 'seq-scans');
    const tables = f.evidence.facts.map((x) => x.split(':')[0]);
    expect(tables).toContain('public.files');
    expect(tables).not.toContain('public.once_read');
    expect(tables).not.toContain('public.empty_reads');
    expect(tables).not.toContain('public.by_index');
    // The summary is a whole phrase (no "…; most"), in the report, the text and the nagios line.
    expect(f.summary).toMatch(/^\d+ tables? read mostly by sequential scans \(public\.files\)$/);
    const { renderDiagnose, renderNagios } = await import('../../src/render/diagnose.js');
    const { Chalk } = await import('chalk');
    const text = renderDiagnose(r, new Chalk({ level: 0 }), { verbose: true });
    expect(text).not.toMatch(/; most\b|most:$/m);
    expect(renderNagios(r)).not.toMatch(/; most\b/);
    expect(JSON.stringify(envelope('diagnose', r, '0'))).not.toMatch(/; most"/);
    await s.sql('DROP TABLE once_read, empty_reads, by_index');
  });

  test('a database without the extension: pg_stat_statements is unavailable, and the path says why', async () => {
    const s = server();
    await s.sql('CREATE DATABASE plain_db');
    try {
      const r = await diagnoseNow(s, {}, target(s, 'postgres', undefined, 'plain_db'));
      expect(findingOf(r, 'top-statements')).toBeUndefined();
      expect(r.path.find((p) => p.node === 'top-statements')).toMatchObject({ branch: 'unavailable' });
      expect(r.path.find((p) => p.node === 'top-statements')!.detail).toMatch(/not installed in database plain_db/);
    } finally {
      await s.sql('DROP DATABASE plain_db');
    }
  });
});

describe('the acceptance incidents', () => {
  test("seeds/000: an application's pool of 25 full of unread cursors and sessions idle in transaction", async () => {
    const s = server();
    // 40 slots, 3 for superusers: 37 ordinary. The pool of 25 and the other sessions fill them.
    const filler = await idleSessions(s, 10, { app: 'other-service', user: 'other_user' });
    const cursors = await unreadCursor(s, 15, { app: 'cloudvault', user: 'app_user' });
    const iit = await idleInTransaction(s, 10, { app: 'cloudvault', user: 'app_user' }, 'SELECT COALESCE(MAX(id), 0) FROM files WHERE user_id = 7');
    try {
      await aged(s, [...cursors.pids, ...iit.pids]);
      const r = await diagnoseNow(s, LOW);
      expect(r.verdict).toBe('critical');
      expect(mustFind(r, 'capacity').severity).toBe('critical');

      const unread = mustFind(r, 'unread-results');
      expect(unread.severity).toBe('critical');
      expect(unread.evidence.pids).toEqual(sorted(cursors.pids));
      expect(unread.evidence.applications).toEqual(['cloudvault']);
      expect(unread.evidence.statements[0]).toMatch(/generate_series\(1, 100000\)/);
      expect(commandsOf(unread)).toContain('dbdoctor terminate --state active --app cloudvault --older-than 1s --max 15');

      const leak = mustFind(r, 'idle-in-transaction');
      expect(leak.severity).toBe('critical');
      expect(leak.evidence.pids).toEqual(sorted(iit.pids));
      expect(leak.evidence.groups[0]!.statement).toBe('SELECT COALESCE(MAX(id), 0) FROM files WHERE user_id = 7');
      expect(commandsOf(leak)).toContain('dbdoctor terminate --state "idle in transaction" --app cloudvault --older-than 1s');

      expect(mustFind(r, 'setting-idle-in-transaction-session-timeout').next[0]!.sql).toBe(`ALTER ROLE "app_user" SET idle_in_transaction_session_timeout = '5min';`);
      if (s.major >= 17) expect(mustFind(r, 'setting-transaction-timeout').severity).toBe('warning');
      else expect(findingOf(r, 'setting-transaction-timeout')).toBeUndefined();
      // The filler is idle and young: not a leak.
      for (const f of r.findings) if (f.id !== 'who-holds' && f.id !== 'capacity') expect(f.evidence.applications).not.toContain('other-service');
    } finally {
      await cursors.release();
      await iit.release();
      await filler.release();
    }
  });

  test('a blocking chain rooted in a session idle in transaction', async () => {
    const s = server();
    const chain = await lockChain(s, { app: 'billing', waiterApp: 'billing-worker' });
    try {
      await aged(s, chain.direct);
      const r = await diagnoseNow(s);
      const b = mustFind(r, 'blocking');
      expect(b.severity).toBe('critical');
      expect(b.evidence.groups[0]!.pids[0]).toBe(chain.blocker);
      expect(b.evidence.groups[0]!.count).toBe(3);
      expect(sorted(b.evidence.groups[0]!.pids.slice(1))).toEqual(sorted([...chain.direct, ...chain.behind]));
      expect(b.title).toMatch(new RegExp(`^pid ${chain.blocker} \\(billing, idle in transaction`));
      // The test's sessions are the superuser's: terminate needs to be told.
      expect(commandsOf(b)).toContain(`dbdoctor terminate --pid ${chain.blocker} --include-superusers`);
      expect(r.verdict).toBe('critical');
    } finally {
      await chain.release();
    }
  });

  test('seeds/004: 20 sessions running the same slow statement', async () => {
    const s = server();
    const same = await sameStatement(s, 20, { app: 'reports', user: 'app_user' });
    try {
      await aged(s, same.pids);
      const r = await diagnoseNow(s);
      const f = mustFind(r, 'same-statement');
      expect(f.evidence.groups[0]!.pids).toEqual(sorted(same.pids));
      expect(f.evidence.groups[0]!.count).toBe(20);
      expect(f.title).toMatch(/^20 sessions run the same statement at once \(reports/);
      expect(['warning', 'critical']).toContain(f.severity);
      expect(commandsOf(f)).toContain('dbdoctor queries --group');
    } finally {
      await same.release();
    }
  });

  test("seeds/001: LISTEN connections held by design are not a leak", async () => {
    const s = server();
    const listen = await listeners(s, 9, { app: 'outbox-listen', user: 'app_user' });
    const main = await idleSessions(s, 6, { app: 'main', user: 'app_user' });
    try {
      await aged(s, [...listen.pids, ...main.pids]);
      const r = await diagnoseNow(s, { idle: '1s', idle_pool: '5' });
      for (const f of r.findings) {
        if (f.id === 'who-holds') continue;
        for (const p of listen.pids) expect([f.id, f.evidence.pids.includes(p)]).toEqual([f.id, false]);
      }
      expect(mustFind(r, 'idle-pool').evidence.applications).toEqual(['main']);
      expect(r.holders.find((h) => h.application === 'outbox-listen')).toMatchObject({ count: 9, listeners: 9 });
    } finally {
      await listen.release();
      await main.release();
    }
  });

  test('a healthy, busy server: OK, nothing at warning or worse', async () => {
    const s = server();
    const load = await busyWorkload(s, { app: 'web', user: 'app_user', clients: 6 });
    try {
      await waitFor(s, 'SELECT 1 AS one', [], () => load.committed() >= 200, 20_000);
      const r = await diagnoseNow(s);
      expect(r.findings.filter((f) => ['warning', 'critical', 'unknown'].includes(f.severity)).map((f) => f.id)).toEqual([]);
      expect(r.verdict).toBe('ok');
    } finally {
      expect(await load.stop()).toBeGreaterThan(0);
    }
  });

  test('a role without monitoring privileges, on a server with an incident: never OK', async () => {
    const s = server();
    const iit = await idleInTransaction(s, 5, { app: 'worker', user: 'other_user' });
    try {
      await aged(s, iit.pids);
      const r = await diagnoseNow(s, LOW, target(s, 'app_user'));
      expect(r.verdict).not.toBe('ok');
      expect(r.verdict).toBe('unknown');
      expect(mustFind(r, 'visibility').evidence.pids).toEqual(expect.arrayContaining(iit.pids));
      expect(r.visibility!.hidden).toBeGreaterThanOrEqual(5);
      // And with pg_monitor, the same incident is seen and judged.
      const seen = await diagnoseNow(s, LOW, target(s, 'monitor_user'));
      expect(mustFind(seen, 'idle-in-transaction').evidence.pids).toEqual(sorted(iit.pids));
      expect(findingOf(seen, 'visibility')).toBeUndefined();
    } finally {
      await iit.release();
    }
  });
});

describe('cannot connect', () => {
  test('a server that is down: CRITICAL, and a wrong password: UNKNOWN, both as reports', async () => {
    const s = server();
    const down = await runDiagnose({ target: { ...target(s), port: await freePort() }, session: {}, thresholds: resolveThresholds() });
    expectValidDiagnoseDoc(envelope('diagnose', down, '0.0.0-test'));
    expect(down).toMatchObject({ verdict: 'critical', exit_code: 2, connected: false });
    expect(mustFind(down, 'connect').evidence.facts).toContain('cause: refused (ECONNREFUSED)');
    const wrong = await runDiagnose({ target: target(s, 'postgres', 'Wrong-pw-1'), session: {}, thresholds: resolveThresholds() });
    expectValidDiagnoseDoc(envelope('diagnose', wrong, '0.0.0-test'));
    expect(wrong).toMatchObject({ verdict: 'unknown', exit_code: 3 });
    expect(mustFind(wrong, 'connect').runbook).toBe('runbooks/cannot-connect.md#auth');
    expect(JSON.stringify(wrong)).not.toContain('Wrong-pw-1');
  });
});

describe("dbdoctor's own connection options", () => {
  // idle_in_transaction_session_timeout is 1h at server level here (the sessions are not ended)
  let guarded: TestServer;
  beforeAll(async () => {
    guarded = await startTestServer({ settings: { max_connections: 20, idle_in_transaction_session_timeout: '1h' } });
  }, 60_000);
  afterAll(async () => {
    await guarded?.stop();
  });

  test("a setting they set (PGOPTIONS) is the client's, not the server's: no guard is claimed off because of it", async () => {
    const sessions = await idleInTransaction(guarded, 2, { app: 'worker' });
    try {
      await aged(guarded, sessions.pids);
      // the server sets the guard: no finding about it
      expect(findingOf(await diagnoseNow(guarded, LOW), 'setting-idle-in-transaction-session-timeout')).toBeUndefined();
      // '-c idle_in_transaction_session_timeout=0' in the options makes reset_val 0 for dbdoctor's
      // session only: read as the server's value, it claimed the guard off for every role
      const t = { ...target(guarded), options: '-c idle_in_transaction_session_timeout=0' };
      const facts = await gatherFacts(t, {}, { thresholds: resolveThresholds({ flags: LOW }) });
      expect(facts.settings!.client_options).toEqual(['idle_in_transaction_session_timeout']);
      expect(facts.settings!.settings.find((x) => x.name === 'idle_in_transaction_session_timeout')!.value).toBe('0');
      const r = await diagnoseNow(guarded, LOW, t);
      expect(findingOf(r, 'setting-idle-in-transaction-session-timeout')).toBeUndefined();
      // the sessions idle in transaction themselves are still found
      expect(mustFind(r, 'idle-in-transaction').evidence.pids).toEqual(sorted(sessions.pids));
    } finally {
      await sessions.release();
    }
  });
});

describe('another major version', () => {
  let old: TestServer;
  beforeAll(async () => {
    old = await startTestServer({ major: 14, settings: { max_connections: 20 } });
  }, 60_000);
  afterAll(async () => {
    await old?.stop();
  });

  test('PostgreSQL 14: no transaction_timeout is read or recommended; the rest works', async () => {
    const iit = await idleInTransaction(old, 3, { app: 'worker', user: 'app_user' });
    const cursors = await unreadCursor(old, 2, { app: 'leaky', user: 'app_user' });
    try {
      await aged(old, [...iit.pids, ...cursors.pids]);
      const facts = await gatherFacts(target(old), {}, { thresholds: resolveThresholds() });
      expect(facts.server!.server_version_num).toBeLessThan(150000);
      expect(facts.settings!.settings.map((x) => x.name)).not.toContain('transaction_timeout');
      const r = await diagnoseNow(old, LOW);
      expect(mustFind(r, 'idle-in-transaction').evidence.pids).toEqual(sorted(iit.pids));
      expect(mustFind(r, 'unread-results').evidence.pids).toEqual(sorted(cursors.pids));
      expect(findingOf(r, 'setting-transaction-timeout')).toBeUndefined();
    } finally {
      await iit.release();
      await cursors.release();
    }
  });
});
