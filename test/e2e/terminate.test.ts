/**
 * `dbdoctor terminate` as cron and scripts run it: the built binary, no terminal, real sessions.
 * The acceptance: the mixed incident, no TTY without --yes, --dry-run, --max, permissions,
 * the lock, and the audit trail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execa } from 'execa';
import { BIN, cleanEnv, expectNoStackTrace, parseJson, runCli } from '../support/cli.js';
import { alive, dbdoctorSessionsLeft, idleInTransaction, idleSessions, longQueries, sorted, waitFor } from '../support/incidents.js';
import { connectionsOpenedBy, LOG_CONNECTIONS, ROLE_PASSWORD, useServer } from '../support/server.js';

interface Doc {
  schema: string;
  report: {
    status: string;
    exit_code: number;
    summary: string;
    planned: Array<{ pid: number; app: string; state: string; query: string }>;
    excluded: Array<{ pid: number; reason: string }>;
    results: Array<{ pid: number; outcome: string; detail: string }>;
    counts: Record<string, number> | null;
    audit_log: string | null;
    lock_file: string | null;
  };
}

const server = useServer({ settings: LOG_CONNECTIONS });
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbdoctor-terminate-e2e-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function stateHome(): string {
  return join(dir, `state-${++n}`);
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function auditLines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the mixed incident', () => {
  test('--state "idle in transaction" --app worker --older-than 1s --yes terminates exactly the worker idle-in-transaction sessions', async () => {
    const s = server();
    // The worker's last statement carries a secret, to prove none reaches the output or the audit.
    const workerLeak = await idleInTransaction(s, 2, { app: 'worker', user: 'app_user' }, `SELECT 'postgres://app:${ROLE_PASSWORD}@db/app' AS url`);
    const webLeak = await idleInTransaction(s, 2, { app: 'web', user: 'app_user' });
    const idleWorker = await idleSessions(s, 2, { app: 'worker', user: 'app_user' });
    const idleWeb = await idleSessions(s, 1, { app: 'web', user: 'app_user' });
    const busy = await longQueries(s, 2, { app: 'worker', user: 'app_user' });
    const suIdle = await idleSessions(s, 1, { app: 'worker' });
    const suLeak = await idleInTransaction(s, 1, { app: 'worker' });
    const incidents = [workerLeak, webLeak, idleWorker, idleWeb, busy, suIdle, suLeak];
    try {
      const bystanders = [...webLeak.pids, ...idleWorker.pids, ...idleWeb.pids, ...busy.pids, ...suIdle.pids, ...suLeak.pids];
      await pause(1100);
      const home = stateHome();
      let r!: Awaited<ReturnType<typeof runCli>>;
      const opened = await connectionsOpenedBy(s, async () => {
        r = await runCli(['terminate', '--state', 'idle in transaction', '--app', 'worker', '--older-than', '1s', '--yes', '--json', '-d', s.url()], {
          env: { XDG_STATE_HOME: home },
        });
      });
      expectNoStackTrace(r);
      // One connection, never a pool: it reads, plans and signals on the same session.
      expect(opened).toBe(1);
      expect(r.exitCode).toBe(0);
      const doc = parseJson<Doc>(r);
      expect(doc.schema).toBe('dbdoctor.terminate');
      expect(doc.report).toMatchObject({ status: 'done', exit_code: 0, counts: { planned: 2, terminated: 2, done: 2 } });
      expect(doc.report.results.map((x) => x.pid)).toEqual(sorted(workerLeak.pids));
      expect(doc.report.results.every((x) => x.outcome === 'terminated')).toBe(true);
      // The superuser's worker transaction matched the filters: excluded, with the reason.
      expect(doc.report.excluded).toEqual([expect.objectContaining({ pid: suLeak.pids[0], reason: 'superuser' })]);
      // Exactly those are gone; every other session is still connected.
      expect(await alive(s, workerLeak.pids)).toEqual([]);
      expect(await alive(s, bystanders)).toEqual(sorted(bystanders));
      expect(await dbdoctorSessionsLeft(s)).toBe(0);

      // The audit log: one intent and one outcome per attempt, valid JSON, 0600, no password.
      const path = join(home, 'dbdoctor', 'audit.jsonl');
      expect(doc.report.audit_log).toBe(path);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const lines = auditLines(path);
      // one batch: its intent lines, written together before its signals, then its outcomes
      expect(lines.map((l) => `${l.event}:${l.pid}`)).toEqual([...sorted(workerLeak.pids).map((pid) => `intent:${pid}`), ...sorted(workerLeak.pids).map((pid) => `outcome:${pid}`)]);
      for (const l of lines.filter((x) => x.event === 'intent')) {
        expect(l).toMatchObject({ action: 'terminate', host: s.host, port: s.port, database: 'postgres', role: 'postgres', app: 'worker', user: 'app_user', state: 'idle in transaction', filters: { states: ['idle in transaction'], apps: ['worker'], older_than_ms: 1000 } });
        expect(typeof l.backend_start).toBe('string');
        expect(typeof l.ts).toBe('string');
        expect(l.query).toContain('postgres://app:***@db/app');
      }
      expect(lines.filter((x) => x.event === 'outcome').map((l) => l.outcome)).toEqual(['terminated', 'terminated']);
      const everything = readFileSync(path, 'utf8') + r.stdout + r.stderr;
      expect(everything).not.toContain(s.password);
      expect(everything).not.toContain(ROLE_PASSWORD);
    } finally {
      await Promise.all(incidents.map((i) => i.release()));
    }
  });
});

describe('nothing is terminated unless confirmed', () => {
  test('without a terminal and without --yes: exit 5, a clear line and hint, the plan shown, nothing terminated', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 2, { app: 'e2e-notty', user: 'app_user' });
    try {
      const home = stateHome();
      const r = await runCli(['terminate', '--app', 'e2e-notty', '-d', s.url()], { env: { XDG_STATE_HOME: home } });
      expectNoStackTrace(r);
      expect(r.exitCode).toBe(5);
      expect(r.stderr).toContain('dbdoctor: not confirmed: no terminal to ask on and no --yes; nothing was terminated');
      expect(r.stderr).toMatch(/^hint: .*--yes/m);
      expect(r.stdout).toMatch(/^NOT CONFIRMED {2}no terminal to ask on and no --yes; nothing was terminated/);
      for (const pid of leak.pids) expect(r.stdout).toContain(String(pid));
      expect(await alive(s, leak.pids)).toEqual(sorted(leak.pids));
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
      // No signal was sent, so there is nothing to audit.
      expect(() => statSync(join(home, 'dbdoctor', 'audit.jsonl'))).toThrow();

      const json = await runCli(['terminate', '--app', 'e2e-notty', '--json', '-d', s.url()], { env: { XDG_STATE_HOME: home } });
      expect(json.exitCode).toBe(5);
      expect(parseJson<Doc>(json).report).toMatchObject({ status: 'not_confirmed', not_confirmed_reason: 'no_tty', results: [] });
      expect(await alive(s, leak.pids)).toEqual(sorted(leak.pids));
    } finally {
      await leak.release();
    }
  });

  test('--dry-run prints the plan and stops', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 2, { app: 'e2e-dry', user: 'app_user' });
    try {
      const r = await runCli(['terminate', '--app', 'e2e-dry', '--dry-run', '--yes', '-d', s.url()], { env: { XDG_STATE_HOME: stateHome() } });
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/^DRY RUN {2}2 sessions would be terminated/);
      // Said once: the label, not the label and the words again.
      expect(r.stdout.match(/dry run/gi)).toHaveLength(1);
      expect(r.stdout).toMatch(/Plan: terminate 2 sessions/);
      expect(await alive(s, leak.pids)).toEqual(sorted(leak.pids));
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    } finally {
      await leak.release();
    }
  });

  test('a dry run over --max exits 5, as the real run would; within --max it exits 0', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 3, { app: 'e2e-dry-max', user: 'app_user' });
    try {
      const over = await runCli(['terminate', '--app', 'e2e-dry-max', '--dry-run', '--max', '2', '-d', s.url()], { env: { XDG_STATE_HOME: stateHome() } });
      expect(over.exitCode).toBe(5);
      expect(over.stdout).toMatch(/^DRY RUN {2}3 sessions would be terminated \(more than --max 2: a real run would\s+refuse\)/);
      const json = await runCli(['terminate', '--app', 'e2e-dry-max', '--dry-run', '--max', '2', '--json', '-d', s.url()], { env: { XDG_STATE_HOME: stateHome() } });
      expect(json.exitCode).toBe(5);
      expect(parseJson<Doc>(json).report).toMatchObject({ status: 'dry_run', exit_code: 5 });
      const real = await runCli(['terminate', '--app', 'e2e-dry-max', '--max', '2', '--yes', '-d', s.url()], { env: { XDG_STATE_HOME: stateHome() } });
      expect(real.exitCode).toBe(5);
      const within = await runCli(['terminate', '--app', 'e2e-dry-max', '--dry-run', '--max', '3', '-d', s.url()], { env: { XDG_STATE_HOME: stateHome() } });
      expect(within.exitCode).toBe(0);
      expect(await alive(s, leak.pids)).toEqual(sorted(leak.pids));
    } finally {
      await leak.release();
    }
  });

  test('--max smaller than the plan: nothing terminated, a clear message, exit 5', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 3, { app: 'e2e-max', user: 'app_user' });
    try {
      const r = await runCli(['terminate', '--app', 'e2e-max', '--max', '2', '--yes', '-d', s.url()], { env: { XDG_STATE_HOME: stateHome() } });
      expect(r.exitCode).toBe(5);
      expect(r.stderr).toContain('dbdoctor: the plan has 3 sessions, more than --max 2; nothing was terminated');
      expect(r.stderr).toMatch(/^hint: narrow the filters .*raise --max/m);
      expect(await alive(s, leak.pids)).toEqual(sorted(leak.pids));
      // The default is 10.
      const ten = await idleInTransaction(s, 8, { app: 'e2e-max', user: 'app_user' });
      try {
        const d = parseJson<Doc>(await runCli(['terminate', '--app', 'e2e-max', '--yes', '--json', '-d', s.url()], { env: { XDG_STATE_HOME: stateHome() } }));
        expect(d.report).toMatchObject({ status: 'over_max', max: 10, exit_code: 5 });
        expect(await alive(s, [...leak.pids, ...ten.pids])).toHaveLength(11);
      } finally {
        await ten.release();
      }
    } finally {
      await leak.release();
    }
  });

  test('no filter at all, and bad values, are usage errors (64) before connecting', async () => {
    const none = await runCli(['terminate', '--yes', '-h', '127.0.0.1', '-p', '1']);
    expect(none.exitCode).toBe(64);
    expect(none.stderr).toMatch(/terminate needs at least one filter/);
    expect(none.stderr).toMatch(/^hint: select with --state/m);
    const json = await runCli(['terminate', '--yes', '--json', '-h', '127.0.0.1', '-p', '1']);
    expect(json.exitCode).toBe(64);
    expect(JSON.parse(json.stdout)).toMatchObject({ schema: 'dbdoctor.error', report: { status: 'usage', exit_code: 64 } });
    for (const bad of [['--state', 'sleepy'], ['--client', '10.0.0.0/40'], ['--pid', '12x'], ['--max', '0'], ['--older-than', '5 parsecs'], ['--pid', '1', '--grace', '5s']]) {
      const r = await runCli(['terminate', ...bad, '-h', '127.0.0.1', '-p', '1']);
      expect(r.exitCode).toBe(64);
      expectNoStackTrace(r);
    }
  });
});

describe('permissions', () => {
  test('a role without pg_signal_backend: permission denied for that session, exit 2, no crash; granted: terminated', async () => {
    const s = server();
    const victim = await idleInTransaction(s, 1, { app: 'e2e-perm', user: 'app_user' });
    const url = s.url({ user: 'monitor_user', password: ROLE_PASSWORD });
    try {
      const denied = await runCli(['terminate', '--app', 'e2e-perm', '--yes', '-d', url], { env: { XDG_STATE_HOME: stateHome() } });
      expectNoStackTrace(denied);
      expect(denied.exitCode).toBe(2);
      expect(denied.stdout).toMatch(/CRITICAL {2}nothing done: 0 of 1 planned session dealt with\s+\(1 permission denied\)/);
      expect(denied.stdout).toMatch(/permission denied/);
      expect(denied.stderr).toMatch(/^hint: .*pg_signal_backend/m);
      expect(await alive(s, victim.pids)).toEqual(victim.pids);
      await s.sql('GRANT pg_signal_backend TO monitor_user');
      try {
        const granted = await runCli(['terminate', '--app', 'e2e-perm', '--yes', '--json', '-d', url], { env: { XDG_STATE_HOME: stateHome() } });
        expect(granted.exitCode).toBe(0);
        expect(parseJson<Doc>(granted).report.results).toEqual([expect.objectContaining({ pid: victim.pids[0], outcome: 'terminated' })]);
        expect(await alive(s, victim.pids)).toEqual([]);
      } finally {
        await s.sql('REVOKE pg_signal_backend FROM monitor_user');
      }
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    } finally {
      await victim.release();
    }
  });
});

describe('cron: the lock file', () => {
  test('a lock held by a live run: exit 4, nothing done; a stale lock (dead pid): taken over', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 1, { app: 'e2e-lock', user: 'app_user' });
    const lockFile = join(dir, 'cron.lock');
    try {
      // A live holder on this host: this test process.
      writeFileSync(lockFile, JSON.stringify({ pid: process.pid, host: hostname(), started_at: new Date().toISOString(), token: 'held' }));
      const held = await runCli(['terminate', '--app', 'e2e-lock', '--yes', '--lock-file', lockFile, '-d', s.url()], { env: { XDG_STATE_HOME: stateHome() } });
      expect(held.exitCode).toBe(4);
      expect(held.stderr).toContain(`another dbdoctor terminate run holds the lock ${lockFile} (pid ${process.pid} on ${hostname()}`);
      expect(held.stderr).toMatch(/^hint: wait for it to finish/m);
      expect(await alive(s, leak.pids)).toEqual(leak.pids);
      // It never connected: the lock is taken before the connection.
      expect(await dbdoctorSessionsLeft(s)).toBe(0);

      const dead = Number(String(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout));
      writeFileSync(lockFile, JSON.stringify({ pid: dead, host: hostname(), started_at: new Date().toISOString(), token: 'stale' }));
      const took = await runCli(['terminate', '--app', 'e2e-lock', '--yes', '--json', '--lock-file', lockFile, '-d', s.url()], { env: { XDG_STATE_HOME: stateHome() } });
      expect(took.exitCode).toBe(0);
      expect(parseJson<Doc>(took).report).toMatchObject({ status: 'done', lock_file: lockFile });
      expect(await alive(s, leak.pids)).toEqual([]);
      // Released afterwards.
      expect(() => statSync(lockFile)).toThrow();
    } finally {
      await leak.release();
    }
  });

  test('two runs started together with one lock file: each session is signalled once, by one run', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 4, { app: 'e2e-race', user: 'app_user' });
    const lockFile = join(dir, 'together.lock');
    const audit = join(dir, 'together.jsonl');
    try {
      const args = ['terminate', '--app', 'e2e-race', '--yes', '--json', '--lock-file', lockFile, '--audit-log', audit, '-d', s.url()];
      const [a, b] = await Promise.all([runCli(args, { env: { XDG_STATE_HOME: stateHome() } }), runCli(args, { env: { XDG_STATE_HOME: stateHome() } })]);
      const codes = [a.exitCode, b.exitCode].sort();
      // Either the second found the lock held (4), or it came after the first and found nothing left (0).
      expect([[0, 0], [0, 4]]).toContainEqual(codes);
      expect(await alive(s, leak.pids)).toEqual([]);
      const lines = auditLines(audit);
      const intents = lines.filter((l) => l.event === 'intent');
      expect(sorted(intents.map((l) => l.pid as number))).toEqual(sorted(leak.pids));
      expect(new Set(intents.map((l) => l.run_id)).size).toBe(1);
      expect(lines.filter((l) => l.event === 'outcome')).toHaveLength(4);
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    } finally {
      await leak.release();
    }
  });
});

describe('stopped from outside (cron\'s timeout, a service manager, a closed terminal)', () => {
  // One session's backend is stopped (SIGSTOP), so it takes the SIGTERM but cannot exit: the run
  // is waiting for that exit when the signal comes. Before, Node's default for SIGTERM and SIGHUP
  // ended dbdoctor there, leaving two intent lines and no outcome.
  test.each([
    ['SIGTERM', 'exits 130'],
    ['SIGHUP', 'ends by SIGHUP (the terminal is gone)'],
  ] as const)('%s while a batch waits for an exit: every intent gets its outcome line, the exit seen stays seen; it %s', async (sig, _outcome) => {
    const s = server();
    const app = `e2e-${sig.toLowerCase()}`;
    const idle = await idleSessions(s, 2, { app, user: 'app_user' });
    // The stopped one has the lower pid, which the exit wait asks for first: the quick one's exit
    // must still be seen while dbdoctor waits for the stopped one.
    const [slow, quick] = sorted(idle.pids) as [number, number];
    // The quick one takes a while to exit (it drops its temporary tables), so its exit comes after
    // dbdoctor's first look and while it already waits for the stopped one.
    const quickClient = idle.clients[idle.pids.indexOf(quick)]!;
    await quickClient.query("DO $$ BEGIN FOR i IN 1..1500 LOOP EXECUTE format('CREATE TEMP TABLE t%s (x int)', i); END LOOP; END $$");
    await waitFor(s, 'SELECT state FROM pg_stat_activity WHERE pid = $1', [quick], (rows) => rows[0]?.state === 'idle');
    const audit = join(dir, `${app}.jsonl`);
    process.kill(slow, 'SIGSTOP');
    let child: ReturnType<typeof execa> | undefined;
    try {
      child = execa(process.execPath, [BIN, 'terminate', '--app', app, '--yes', '--json', '--audit-log', audit, '-d', s.url()], {
        env: cleanEnv({ XDG_STATE_HOME: stateHome() }),
        extendEnv: false,
        reject: false,
        timeout: 60_000,
      });
      // The signal comes while dbdoctor waits for the stopped one, once the quick one has been
      // gone long enough to be seen: a wait statement that began before it went lists it, and
      // returns up to 250 ms later; the next one, which lists it gone, returns 250 ms after that.
      // So: gone, and dbdoctor still waiting for a termination 1 s later.
      const waiting = async () =>
        (await alive(s, [quick])).length === 0 &&
        (await s.sql("SELECT 1 FROM pg_stat_activity WHERE application_name = 'dbdoctor' AND wait_event = 'BackendTermination'")).length === 1;
      const settled = async () => {
        if (!existsSync(audit) || !(await waiting())) return false;
        await pause(1000);
        return waiting();
      };
      const deadline = Date.now() + 30_000;
      while (!(await settled()) && Date.now() < deadline) await pause(50);
      expect(auditLines(audit).filter((l) => l.event === 'intent')).toHaveLength(2);
      child.kill(sig);
      const r = await child;
      expectNoStackTrace({ exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) });
      if (sig === 'SIGTERM') expect([r.exitCode, r.signal]).toEqual([130, undefined]);
      else expect([r.exitCode, r.signal]).toEqual([undefined, 'SIGHUP']);
      expect(String(r.stderr)).toContain('dbdoctor: interrupted');
      const lines = auditLines(audit);
      expect(lines.map((l) => [l.event, l.pid])).toEqual([
        ['intent', slow],
        ['intent', quick],
        ['outcome', slow],
        ['outcome', quick],
      ]);
      const outcome = (pid: number) => lines.find((l) => l.event === 'outcome' && l.pid === pid)!;
      expect(outcome(quick)).toMatchObject({ outcome: 'terminated' });
      expect(outcome(slow)).toMatchObject({ outcome: 'failed', detail: expect.stringContaining('interrupted before its exit was confirmed') });
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await child?.catch(() => undefined);
      process.kill(slow, 'SIGCONT');
      await idle.release();
    }
    // Its pending SIGTERM ends the stopped backend once it runs again.
    await waitFor(s, 'SELECT pid FROM pg_stat_activity WHERE pid = $1', [slow], (rows) => rows.length === 0, 20_000);
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  }, 90_000);
});
