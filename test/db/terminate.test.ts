/**
 * runTerminate against real incidents on a real server: selection, the race re-check, permissions,
 * --cancel-first, --blockers, the lock, and the audit trail. The prompter is the test's (a fake
 * terminal); PostgreSQL is real.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type TerminateOptions, runTerminate } from '../../src/commands/terminate.js';
import { DbdoctorError } from '../../src/core/errors.js';
import { ExitCode } from '../../src/core/exit-codes.js';
import type { Target } from '../../src/core/target.js';
import { emptyFilters, type PlannedSession, type TerminateFilters } from '../../src/core/terminate.js';
import { openSession, type Session } from '../../src/db/session.js';
import { batchSql, readTerminateSnapshot, signalSession } from '../../src/db/sql/terminate.js';
import { planTermination } from '../../src/core/terminate.js';
import type { AuditLog } from '../../src/ui/audit.js';
import type { Choice, Prompter } from '../../src/ui/prompts.js';
import { alive, dbdoctorSessionsLeft, idleInTransaction, idleSessions, lockChain, longQueries, sorted, waitFor, waitForState } from '../support/incidents.js';
import { ROLE_PASSWORD, type TestServer, useServer } from '../support/server.js';
import { scaled } from '../support/timing.js';

const server = useServer();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbdoctor-terminate-db-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function target(s: TestServer, user = 'postgres', dbname = 'postgres'): Target {
  return {
    host: s.host,
    port: s.port,
    user,
    dbname,
    password: user === 'postgres' ? s.password : ROLE_PASSWORD,
    sslmode: 'disable',
    sslrootcert: undefined,
    connectTimeoutMs: 5000,
    service: undefined,
  };
}

let runs = 0;
function options(s: TestServer, f: Partial<TerminateFilters>, over: Partial<TerminateOptions> = {}): TerminateOptions {
  runs++;
  return {
    target: target(s),
    session: {},
    filters: { ...emptyFilters(), ...f },
    allDatabases: false,
    includeSuperusers: false,
    dryRun: false,
    yes: true,
    max: 10,
    cancelFirst: false,
    graceMs: 300,
    lockFile: join(dir, `lock-${runs}`),
    auditLog: join(dir, `audit-${runs}.jsonl`),
    ...over,
  };
}

/** A fake terminal: records what it was asked, answers as told, runs hooks between questions. */
function fakePrompter(opts: { keep?: (pids: number[]) => number[]; beforeConfirm?: () => Promise<void>; answer?: boolean; onCheckbox?: () => Promise<void> }) {
  const asked: string[] = [];
  const prompter: Prompter = {
    async checkbox<V>(message: string, choices: Array<Choice<V>>) {
      asked.push(message);
      await opts.onCheckbox?.();
      const all = choices.filter((c) => c.checked).map((c) => c.value);
      return (opts.keep ? opts.keep(all as unknown as number[]) : all) as unknown as V[];
    },
    async confirm(message: string) {
      asked.push(message);
      await opts.beforeConfirm?.();
      return opts.answer ?? true;
    },
  };
  return { prompter, asked };
}

async function waitGone(s: TestServer, pids: number[]): Promise<void> {
  await waitFor(s, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1)', [pids], (rows) => rows[0]?.n === 0);
}


function auditLines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('selection and acting', () => {
  test('terminates exactly the selected sessions, confirms their exit, and audits each attempt', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 2, { app: 'db-leak', user: 'app_user' });
    const other = await idleInTransaction(s, 1, { app: 'db-other', user: 'app_user' });
    const idle = await idleSessions(s, 1, { app: 'db-leak', user: 'app_user' });
    try {
      const o = options(s, { states: ['idle in transaction'], apps: ['db-l*'] });
      const r = await runTerminate(o, { prompter: null, version: 'test' });
      expect(r).toMatchObject({ status: 'done', exit_code: 0, counts: { planned: 2, terminated: 2, done: 2 } });
      expect(r.planned.map((p) => p.pid)).toEqual([...leak.pids].sort((a, b) => a - b));
      expect(r.results.every((x) => x.outcome === 'terminated')).toBe(true);
      // pg_terminate_backend waited for the exit: they are gone now, without polling.
      expect(await alive(s, leak.pids)).toEqual([]);
      expect(await alive(s, [...other.pids, ...idle.pids])).toEqual([...other.pids, ...idle.pids].sort((a, b) => a - b));
      const lines = auditLines(o.auditLog);
      // One batch: its intent lines, written together before its signals, then its outcomes.
      expect(lines.map((l) => [l.event, l.pid])).toEqual([...r.planned.map((p) => ['intent', p.pid]), ...r.planned.map((p) => ['outcome', p.pid])]);
      expect(lines.filter((l) => l.event === 'outcome').every((l) => l.outcome === 'terminated')).toBe(true);
      expect(lines[0]).toMatchObject({ action: 'terminate', host: s.host, port: s.port, database: 'postgres', role: 'postgres', app: 'db-leak', user: 'app_user', state: 'idle in transaction', dbdoctor_version: 'test' });
      expect(readFileSync(o.auditLog, 'utf8')).not.toContain(s.password);
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    } finally {
      await Promise.all([leak.release(), other.release(), idle.release()]);
    }
  });

  test('a session that runs a new statement between the plan and the confirmation is changed and survives', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 3, { app: 'db-race', user: 'app_user' });
    const [moved, activeNow, untouched] = leak.clients;
    const [movedPid, activePid, untouchedPid] = leak.pids as [number, number, number];
    let sleeping: Promise<unknown> | undefined;
    try {
      const { prompter, asked } = fakePrompter({
        beforeConfirm: async () => {
          // One runs a statement and is idle in transaction again; one is busy right now.
          await moved!.query('SELECT 2');
          sleeping = activeNow!.query('SELECT pg_sleep(3600)').catch(() => undefined);
          await waitForState(s, [activePid], 'active');
        },
      });
      const shown: string[] = [];
      const r = await runTerminate(options(s, { states: ['idle in transaction'], apps: ['db-race'] }, { yes: false }), {
        prompter,
        showPlan: (p) => shown.push(p.status),
      });
      expect(shown).toHaveLength(1);
      expect(asked[1]).toMatch(/^Terminate 3 sessions on postgres:\/\/postgres@/);
      const by = Object.fromEntries(r.results.map((x) => [x.pid, x]));
      expect(by[movedPid]).toMatchObject({ outcome: 'changed', detail: expect.stringContaining('new statement') });
      expect(by[activePid]).toMatchObject({ outcome: 'changed', detail: expect.stringContaining('now active') });
      expect(by[untouchedPid]!.outcome).toBe('terminated');
      expect(r).toMatchObject({ status: 'partly_done', exit_code: ExitCode.WARNING });
      expect(await alive(s, leak.pids)).toEqual([movedPid, activePid].sort((a, b) => a - b));
      // The survivor's transaction is intact.
      expect((await moved!.query('SELECT 3 AS x')).rows[0]).toEqual({ x: 3 });
      void untouched;
    } finally {
      await s.sql('SELECT pg_cancel_backend($1)', [activePid]);
      await sleeping;
      await leak.release();
    }
  });

  test('a session that changes between the plan and its batch is changed and survives; each batch is announced whole before its signals', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 4, { app: 'db-batch', user: 'app_user' });
    const sortedPids = sorted(leak.pids);
    const clientOf = (pid: number) => leak.clients[leak.pids.indexOf(pid)]!;
    const o = options(s, { states: ['idle in transaction'], apps: ['db-batch'] }, { batchSize: 2 });
    const seen: Array<Array<[unknown, unknown]>> = [];
    try {
      const r = await runTerminate(o, {
        prompter: null,
        beforeBatch: async (index) => {
          seen.push(auditLines(o.auditLog).map((l) => [l.event, l.pid]));
          // After the first batch went out and before the second: one of the second batch's
          // sessions runs a statement (still idle in transaction, but not the session planned).
          if (index === 1) await clientOf(sortedPids[3]!).query('SELECT 2');
        },
      });
      const by = Object.fromEntries(r.results.map((x) => [x.pid, x]));
      expect(by[sortedPids[3]!]).toMatchObject({ outcome: 'changed', detail: expect.stringContaining('new statement') });
      for (const pid of sortedPids.slice(0, 3)) expect(by[pid]!.outcome).toBe('terminated');
      expect(await alive(s, leak.pids)).toEqual([sortedPids[3]]);
      expect((await clientOf(sortedPids[3]!).query('SELECT 3 AS x')).rows[0]).toEqual({ x: 3 });
      // Before batch 0 nothing was written; before batch 1, batch 0's two intents then its two outcomes.
      expect(seen[0]).toEqual([]);
      expect(seen[1]).toEqual([
        ['intent', sortedPids[0]],
        ['intent', sortedPids[1]],
        ['outcome', sortedPids[0]],
        ['outcome', sortedPids[1]],
      ]);
      const lines = auditLines(o.auditLog);
      expect(lines.slice(4).map((l) => [l.event, l.pid])).toEqual([
        ['intent', sortedPids[2]],
        ['intent', sortedPids[3]],
        ['outcome', sortedPids[2]],
        ['outcome', sortedPids[3]],
      ]);
      expect(lines[7]).toMatchObject({ outcome: 'changed' });
    } finally {
      await leak.release();
    }
  });

  test('a role made a superuser between the plan and its batch: its sessions are left alone, unless --include-superusers', async () => {
    const s = server();
    await s.sql(`CREATE ROLE db_promo LOGIN PASSWORD '${ROLE_PASSWORD}'`);
    const idle = await idleSessions(s, 2, { app: 'db-promo', user: 'db_promo' });
    try {
      const o = options(s, { apps: ['db-promo'] }, { batchSize: 1 });
      const r = await runTerminate(o, {
        prompter: null,
        beforeBatch: async (index) => {
          if (index === 0) await s.sql('ALTER ROLE db_promo SUPERUSER');
        },
      });
      expect(r.results.map((x) => x.outcome)).toEqual(['changed', 'changed']);
      expect(r.results[0]!.detail).toContain('became a superuser');
      expect(await alive(s, idle.pids)).toEqual(sorted(idle.pids));
      // One by one (a batch's fallback) re-checks it too.
      const session = await openSession(target(s));
      try {
        const snap = await readTerminateSnapshot(session, false);
        const [p] = planTermination(snap.activity, snap.fingerprints, { filters: { ...emptyFilters(), apps: ['db-promo'] }, allDatabases: false, includeSuperusers: true, cancelFirst: false }).planned;
        const before = { ...p!, superuser: false };
        expect(await signalSession(session, before, 'terminate', { timeoutMs: 2000, minAgeMs: null, stillBlocking: false, includeSuperusers: false })).toMatchObject({ ok: true, raw: { superuser_now: true, signalled: null } });
        expect(await alive(s, idle.pids)).toEqual(sorted(idle.pids));
      } finally {
        await session.close();
      }
      const all = await runTerminate(options(s, { apps: ['db-promo'] }, { batchSize: 1, includeSuperusers: true }), { prompter: null });
      expect(all.results.map((x) => x.outcome)).toEqual(['terminated', 'terminated']);
      expect(await alive(s, idle.pids)).toEqual([]);
    } finally {
      await idle.release();
      await s.sql('DROP ROLE db_promo');
    }
  });

  test('Ctrl-C while a batch waits for an exit: every intent gets its outcome line, the one signalled said so', async () => {
    const s = server();
    const slow = await s.client({ user: 'app_user', password: ROLE_PASSWORD, application_name: 'db-ctrl-c' });
    const other = await s.client({ user: 'app_user', password: ROLE_PASSWORD, application_name: 'db-ctrl-c' });
    const slowPid = (await slow.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const otherPid = (await other.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const abort = new AbortController();
    // the session takes the signal too, as the CLI gives it (a Ctrl-C cancels what runs)
    const o = options(s, { apps: ['db-ctrl-c'] }, { session: { signal: abort.signal } });
    let stopped = false;
    try {
      const run = runTerminate(o, {
        prompter: null,
        signal: abort.signal,
        beforeBatch: async () => {
          // the other one runs a statement (changed, left alone); the slow one's backend is stopped,
          // so it takes the SIGTERM and cannot exit: Ctrl-C comes while dbdoctor waits for the exit
          await other.query('SELECT 2');
          process.kill(slowPid, 'SIGSTOP');
          stopped = true;
          setTimeout(() => abort.abort(), 500);
        },
      });
      await expect(run).rejects.toMatchObject({ cause_id: 'interrupted' });
      const lines = auditLines(o.auditLog);
      expect(lines.map((l) => [l.event, l.pid])).toEqual([
        ['intent', Math.min(slowPid, otherPid)],
        ['intent', Math.max(slowPid, otherPid)],
        ['outcome', Math.min(slowPid, otherPid)],
        ['outcome', Math.max(slowPid, otherPid)],
      ]);
      const outcome = (pid: number) => lines.find((l) => l.event === 'outcome' && l.pid === pid)!;
      expect(outcome(otherPid)).toMatchObject({ outcome: 'changed' });
      expect(outcome(slowPid)).toMatchObject({ outcome: 'failed', detail: expect.stringContaining('SIGTERM sent; interrupted before its exit was confirmed') });
      expect((await other.query('SELECT 3 AS x')).rows[0]).toEqual({ x: 3 });
    } finally {
      if (stopped) process.kill(slowPid, 'SIGCONT');
      await slow.end().catch(() => undefined);
      await other.end().catch(() => undefined);
    }
  }, 60_000);

  test('a session that stops answering (its backend stopped) ends the run: the rest not attempted, no intent written for them', async () => {
    const s = server();
    const idle = await idleSessions(s, 3, { app: 'db-no-answer', user: 'app_user' });
    const o = options(s, { apps: ['db-no-answer'] }, { batchSize: 1, session: { statementTimeoutMs: 1500 } });
    let stopped: number | null = null;
    try {
      const r = await runTerminate(o, {
        prompter: null,
        beforeBatch: async (index) => {
          if (index !== 0) return;
          const [own] = await s.sql<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'dbdoctor' AND pid <> pg_backend_pid()");
          stopped = own!.pid;
          process.kill(stopped, 'SIGSTOP');
        },
      });
      expect(r.results.map((x) => x.outcome)).toEqual(['failed', 'not_attempted', 'not_attempted']);
      expect(r.results[0]!.detail).toContain('no answer');
      expect(auditLines(o.auditLog).map((l) => l.event)).toEqual(['intent', 'outcome']);
    } finally {
      if (stopped !== null) process.kill(stopped, 'SIGCONT');
      await idle.release();
    }
  }, 30_000);

  test('a pid that now belongs to another session (pid reuse) is changed, never signalled', async () => {
    const s = server();
    const one = await idleSessions(s, 1, { app: 'db-reuse', user: 'app_user' });
    const session = await openSession(target(s));
    try {
      const snap = await readTerminateSnapshot(session, false);
      const plan = planTermination(snap.activity, snap.fingerprints, { filters: { ...emptyFilters(), apps: ['db-reuse'] }, allDatabases: false, includeSuperusers: false, cancelFirst: false });
      const p = plan.planned[0]!;
      const earlier = { ...p, backend_start: p.backend_start.replace(/^(\d{4})/, (y) => String(Number(y) - 1)) };
      const r = await signalSession(session, earlier, 'terminate', { timeoutMs: 2000, minAgeMs: null, stillBlocking: false, includeSuperusers: false });
      expect(r).toMatchObject({ ok: true, raw: { present: true, signalled: null } });
      expect(await alive(s, one.pids)).toEqual(one.pids);
      // A microsecond off is another session too: the text comparison keeps every digit.
      const micro = { ...p, backend_start: p.backend_start.replace(/(\d)(?=[+-]\d{2}(:\d{2})?$)/, (d) => String((Number(d) + 1) % 10)) };
      expect(micro.backend_start).not.toBe(p.backend_start);
      expect(await signalSession(session, micro, 'terminate', { timeoutMs: 2000, minAgeMs: null, stillBlocking: false, includeSuperusers: false })).toMatchObject({ ok: true, raw: { signalled: null } });
      expect(await alive(s, one.pids)).toEqual(one.pids);
      // And the real fingerprint is accepted.
      expect(await signalSession(session, p, 'terminate', { timeoutMs: 2000, minAgeMs: null, stillBlocking: false, includeSuperusers: false })).toMatchObject({ ok: true, raw: { signalled: true } });
      expect(await alive(s, one.pids)).toEqual([]);
      // Gone now: a second attempt finds nobody.
      expect(await signalSession(session, p, 'terminate', { timeoutMs: 2000, minAgeMs: null, stillBlocking: false, includeSuperusers: false })).toMatchObject({ ok: true, raw: { present: false } });
    } finally {
      await session.close();
      await one.release();
    }
  });

  test('a session that ends by itself before the confirmation is reported as already gone', async () => {
    const s = server();
    const two = await idleSessions(s, 2, { app: 'db-gone', user: 'app_user' });
    try {
      const { prompter } = fakePrompter({
        beforeConfirm: async () => {
          await two.clients[0]!.end();
          await waitGone(s, [two.pids[0]!]);
        },
      });
      const r = await runTerminate(options(s, { apps: ['db-gone'] }, { yes: false }), { prompter });
      expect(r.results.map((x) => [x.pid, x.outcome])).toEqual([
        [two.pids[0], 'gone'],
        [two.pids[1], 'terminated'],
      ]);
      expect(r).toMatchObject({ status: 'done', exit_code: 0 });
    } finally {
      await two.release();
    }
  });
});

describe('nothing happens without a confirmation', () => {
  test('no terminal and no --yes; over --max; answered No; everything deselected; --dry-run', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 3, { app: 'db-confirm', user: 'app_user' });
    try {
      const f = { apps: ['db-confirm'] };
      const noTty = await runTerminate(options(s, f, { yes: false }), { prompter: null });
      expect(noTty).toMatchObject({ status: 'not_confirmed', not_confirmed_reason: 'no_tty', exit_code: ExitCode.NOT_CONFIRMED, results: [] });
      expect(noTty.planned).toHaveLength(3);

      const over = await runTerminate(options(s, f, { max: 2 }), { prompter: null });
      expect(over).toMatchObject({ status: 'over_max', exit_code: ExitCode.NOT_CONFIRMED, results: [] });
      expect(over.summary).toContain('more than --max 2');

      const no = fakePrompter({ answer: false });
      const answeredNo = await runTerminate(options(s, f, { yes: false }), { prompter: no.prompter });
      expect(answeredNo).toMatchObject({ status: 'not_confirmed', not_confirmed_reason: 'answered_no', exit_code: ExitCode.NOT_CONFIRMED });

      const none = fakePrompter({ keep: () => [] });
      const deselected = await runTerminate(options(s, f, { yes: false }), { prompter: none.prompter });
      expect(deselected).toMatchObject({ status: 'not_confirmed', not_confirmed_reason: 'none_selected', exit_code: ExitCode.NOT_CONFIRMED });
      expect(none.asked).toHaveLength(1);

      const dry = await runTerminate(options(s, f, { dryRun: true }), { prompter: null });
      expect(dry).toMatchObject({ status: 'dry_run', exit_code: 0, audit_log: null, lock_file: null });

      expect(await alive(s, leak.pids)).toEqual([...leak.pids].sort((a, b) => a - b));
    } finally {
      await leak.release();
    }
  });

  test('deselecting at the checkbox keeps those sessions', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 2, { app: 'db-deselect', user: 'app_user' });
    try {
      const { prompter, asked } = fakePrompter({ keep: (pids) => pids.filter((p) => p !== leak.pids[0]) });
      const r = await runTerminate(options(s, { apps: ['db-deselect'] }, { yes: false }), { prompter });
      expect(asked[1]).toMatch(/^Terminate 1 session on /);
      expect(r).toMatchObject({ status: 'done', deselected: [leak.pids[0]], results: [{ pid: leak.pids[1], outcome: 'terminated' }] });
      expect(await alive(s, leak.pids)).toEqual([leak.pids[0]]);
    } finally {
      await leak.release();
    }
  });
});

describe('permissions', () => {
  test('without pg_signal_backend: permission denied for that session, no crash; with it: terminated', async () => {
    const s = server();
    // monitor_user sees every session (pg_monitor) but may not signal other roles' sessions.
    const victims = await idleInTransaction(s, 2, { app: 'db-perm', user: 'app_user' });
    const su = await idleSessions(s, 1, { app: 'db-perm' });
    try {
      const denied = await runTerminate(options(s, { apps: ['db-perm'] }, { target: target(s, 'monitor_user') }), { prompter: null });
      expect(denied).toMatchObject({ status: 'not_done', exit_code: ExitCode.CRITICAL, counts: { permission_denied: 2 } });
      expect(denied.excluded).toMatchObject([{ pid: su.pids[0], reason: 'superuser' }]);
      expect(denied.results[0]!.detail).toMatch(/permission denied/);
      expect(denied.hint).toContain('pg_signal_backend');
      expect(await alive(s, victims.pids)).toHaveLength(2);

      await s.sql('GRANT pg_signal_backend TO monitor_user');
      try {
        const granted = await runTerminate(
          options(s, { apps: ['db-perm'] }, { target: target(s, 'monitor_user'), includeSuperusers: true }),
          { prompter: null },
        );
        const by = Object.fromEntries(granted.results.map((x) => [x.pid, x.outcome]));
        expect(by).toEqual({ [victims.pids[0]!]: 'terminated', [victims.pids[1]!]: 'terminated', [su.pids[0]!]: 'permission_denied' });
        expect(granted).toMatchObject({ status: 'partly_done', exit_code: ExitCode.WARNING });
        expect(await alive(s, [...victims.pids, ...su.pids])).toEqual(su.pids);
      } finally {
        await s.sql('REVOKE pg_signal_backend FROM monitor_user');
      }
    } finally {
      await Promise.all([victims.release(), su.release()]);
    }
  });

  test('a role that cannot see other sessions does not act on them, and says so (exit 3)', async () => {
    const s = server();
    const theirs = await idleInTransaction(s, 2, { app: 'db-hidden', user: 'app_user' });
    try {
      // signal_user may signal, but without pg_read_all_stats it cannot see state or identity.
      const r = await runTerminate(options(s, { apps: ['db-hidden'], states: ['idle in transaction'] }, { target: target(s, 'signal_user') }), { prompter: null });
      expect(r).toMatchObject({ status: 'nothing_to_do', exit_code: ExitCode.UNKNOWN, hidden_sessions: 2 });
      expect(r.excluded.map((e) => e.reason)).toEqual(['hidden', 'hidden']);
      expect(r.hint).toContain('pg_read_all_stats');
      expect(await alive(s, theirs.pids)).toHaveLength(2);
    } finally {
      await theirs.release();
    }
  });
});

describe('--cancel-first, --blockers, scope', () => {
  test('cancels active queries, waits, and terminates only the ones still running', async () => {
    const s = server();
    await s.sql(`CREATE OR REPLACE FUNCTION stubborn_sleep() RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_sleep(3600);
      EXCEPTION WHEN query_canceled THEN
        PERFORM pg_sleep(3600);
      END $$`);
    const polite = await longQueries(s, 1, { app: 'db-cancel', user: 'app_user' });
    const stubborn = await longQueries(s, 1, { app: 'db-cancel', user: 'app_user' }, 3600, 'SELECT stubborn_sleep()');
    const idle = await idleInTransaction(s, 1, { app: 'db-cancel', user: 'app_user' });
    try {
      const o = options(s, { apps: ['db-cancel'] }, { cancelFirst: true, graceMs: scaled(2000) });
      const r = await runTerminate(o, { prompter: null });
      const by = Object.fromEntries(r.results.map((x) => [x.pid, x]));
      expect(by[polite.pids[0]!]).toMatchObject({ action: 'cancel_then_terminate', outcome: 'cancelled' });
      expect(by[stubborn.pids[0]!]).toMatchObject({ action: 'cancel_then_terminate', outcome: 'terminated' });
      expect(by[idle.pids[0]!]).toMatchObject({ action: 'terminate', outcome: 'terminated' });
      expect(r).toMatchObject({ status: 'done', exit_code: 0 });
      // The cancelled query's session is kept; the other two are gone.
      expect(await alive(s, [...polite.pids, ...stubborn.pids, ...idle.pids])).toEqual(polite.pids);
      // One intent and one outcome per attempt: cancel + terminate for the active ones.
      const lines = auditLines(o.auditLog);
      const attempts = (pid: number) => lines.filter((l) => l.pid === pid).map((l) => `${l.event}:${l.action}`);
      expect(attempts(stubborn.pids[0]!)).toEqual(['intent:cancel', 'outcome:cancel', 'intent:terminate', 'outcome:terminate']);
      expect(attempts(idle.pids[0]!)).toEqual(['intent:terminate', 'outcome:terminate']);
      expect(lines.find((l) => l.pid === stubborn.pids[0] && l.event === 'outcome' && l.action === 'cancel')!.outcome).toBe('signalled');
    } finally {
      await Promise.all([polite.release(), stubborn.release(), idle.release()]);
    }
  });

  test('--blockers terminates the root blocker only, and the waiters go on', async () => {
    const s = server();
    const chain = await lockChain(s, { app: 'db-blocker', waiterApp: 'db-waiter' });
    try {
      const r = await runTerminate(options(s, { blockers: true }, { includeSuperusers: true }), { prompter: null });
      expect(r.planned.map((p) => [p.pid, p.blocks])).toEqual([[chain.blocker, 3]]);
      expect(r).toMatchObject({ status: 'done', results: [{ pid: chain.blocker, outcome: 'terminated' }] });
      await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND wait_event_type = 'Lock'`, [[...chain.direct, ...chain.behind]], (rows) => rows[0]?.n === 0);
      expect(await alive(s, [...chain.direct, ...chain.behind])).toHaveLength(3);
    } finally {
      await chain.release();
    }
  });

  /** The first root blocker among `app`'s sessions that terminate --blockers would plan (a fresh read). */
  async function plannedRoot(session: Session, app: string): Promise<PlannedSession> {
    const snap = await readTerminateSnapshot(session, true);
    const plan = planTermination(snap.activity, snap.fingerprints, { filters: { ...emptyFilters(), blockers: true, apps: [app] }, allDatabases: false, includeSuperusers: true, cancelFirst: false });
    return plan.planned[0]!;
  }

  test('the one-session statement (where a batch fails) re-checks --blockers as the batch does: the planned waiters first, then every Lock waiter', async () => {
    const s = server();
    const chain = await lockChain(s, { app: 'db-one-blocker', waiterApp: 'db-one-waiter' }, 2);
    const session = await openSession(target(s));
    const waitsOnLock = (pid: number, n: number) =>
      waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int AND wait_event_type = 'Lock'`, [pid], (rows) => rows[0]?.n === n);
    try {
      const p = await plannedRoot(session, 'db-one-blocker');
      // the first waiter waits for the root's transaction, the second for the first's row lock
      expect([p.pid, p.blocks, p.waiters]).toEqual([chain.blocker, 2, chain.direct]);
      // A cancel does nothing to a session idle in transaction: each call below answers and the root stays.
      // planned with --include-superusers (the test's sessions are the superuser's): re-checked so too
      const opts = { timeoutMs: 2000, minAgeMs: null, stillBlocking: true, includeSuperusers: true };
      expect(await signalSession(session, p, 'cancel', opts)).toMatchObject({ ok: true, raw: { blocking_now: true, waiting_now: false, signalled: true } });
      // the planned waiter gives up; the second now waits for the root's transaction itself: asked as every Lock waiter is
      await s.sql('SELECT pg_cancel_backend($1::int)', [chain.direct[0]]);
      await waitsOnLock(chain.direct[0]!, 0);
      await waitFor(s, `SELECT count(*)::int AS n FROM pg_blocking_pids($1::int) AS b WHERE $2::int = ANY (b)`, [chain.behind[0], chain.blocker], (rows) => rows[0]?.n === 1);
      expect(await signalSession(session, p, 'cancel', opts)).toMatchObject({ ok: true, raw: { blocking_now: true, signalled: true } });
      // nobody waits for it any more: not signalled
      await s.sql('SELECT pg_cancel_backend($1::int)', [chain.behind[0]]);
      await waitsOnLock(chain.behind[0]!, 0);
      expect(await signalSession(session, p, 'cancel', opts)).toMatchObject({ ok: true, raw: { present: true, blocking_now: false, signalled: null } });
      expect(await alive(s, [chain.blocker])).toEqual([chain.blocker]);
    } finally {
      await session.close();
      await chain.release();
    }
  });

  test('the batch asks every Lock waiter (its blockers CTE) only when no planned waiter still names the root: by the server\'s own plan', async () => {
    const s = server();
    const chain = await lockChain(s, { app: 'db-plan-first', waiterApp: 'db-plan-first-w' }, 2);
    const session = await openSession(target(s));
    try {
      const p = await plannedRoot(session, 'db-plan-first');
      expect([p.pid, p.waiters]).toEqual([chain.blocker, chain.direct]);
      // EXPLAIN ANALYZE runs the statement: a cancel, which does nothing to a session idle in transaction
      const blockersCte = async (waiters: number[]) => {
        const params = [[p.pid], [p.backend_start], [p.state], [p.state_change], [p.xact_start], null, true, [`{${waiters.join(',')}}`], true];
        const lines = (await s.sql<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ${batchSql('cancel')}`, params)).map((r) => r['QUERY PLAN']);
        const at = lines.findIndex((l) => /^\s*CTE blockers$/.test(l));
        expect(at).toBeGreaterThanOrEqual(0);
        return /never executed/.test(lines[at + 1]!) ? 'never executed' : 'executed';
      };
      expect(await blockersCte(p.waiters)).toBe('never executed');
      // no planned waiter (or none that still waits): every Lock waiter is asked
      expect(await blockersCte([])).toBe('executed');
      expect(await alive(s, [chain.blocker])).toEqual([chain.blocker]);
    } finally {
      await session.close();
      await chain.release();
    }
  });

  test('the plan reads who blocks whom only for --blockers (in a pile-up it is the costly part of the read)', async () => {
    const s = server();
    const chain = await lockChain(s, { app: 'db-plan-blocker', waiterApp: 'db-plan-waiter' });
    const session = await openSession(target(s));
    try {
      const blockedBy = async (blockers: boolean) => {
        const snap = await readTerminateSnapshot(session, blockers);
        return chain.direct.map((pid) => snap.activity.rows.find((r) => r.pid === pid)?.blocked_by);
      };
      expect(await blockedBy(false)).toEqual(chain.direct.map(() => null));
      expect(await blockedBy(true)).toEqual(chain.direct.map(() => [chain.blocker]));
    } finally {
      await session.close();
      await chain.release();
    }
  });

  test('the default scope is the connected database; --all-databases widens it', async () => {
    const s = server();
    await s.sql('DROP DATABASE IF EXISTS db_other');
    await s.sql('CREATE DATABASE db_other');
    const here = await idleSessions(s, 1, { app: 'db-scope', user: 'app_user' });
    const there = await idleSessions(s, 1, { app: 'db-scope', user: 'app_user', dbname: 'db_other' });
    try {
      const scoped = await runTerminate(options(s, { apps: ['db-scope'] }), { prompter: null });
      expect(scoped.results.map((x) => x.pid)).toEqual(here.pids);
      expect(scoped.excluded).toMatchObject([{ pid: there.pids[0], reason: 'other_database' }]);
      expect(await alive(s, there.pids)).toEqual(there.pids);
      const wide = await runTerminate(options(s, { apps: ['db-scope'], dbs: ['db_other'] }, { allDatabases: true }), { prompter: null });
      expect(wide.results).toMatchObject([{ pid: there.pids[0], outcome: 'terminated' }]);
      await waitGone(s, there.pids);
    } finally {
      await Promise.all([here.release(), there.release()]);
    }
  });
});

describe('the audit log', () => {
  test('when an intent line cannot be written, that session is not signalled and the run stops', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 3, { app: 'db-audit', user: 'app_user' });
    try {
      const written: object[] = [];
      let intents = 0;
      const failing = (path: string): AuditLog => ({
        path,
        append(record) {
          if ((record as { event: string }).event === 'intent' && ++intents === 2) throw new Error('cannot write the audit log (ENOSPC)');
          written.push(record);
        },
        close() {},
      });
      const r = await runTerminate(options(s, { apps: ['db-audit'] }), { prompter: null, openAuditLog: failing });
      expect(r.results.map((x) => x.outcome)).toEqual(['terminated', 'not_attempted', 'not_attempted']);
      expect(r.results[1]!.detail).toContain('ENOSPC');
      expect(r).toMatchObject({ status: 'partly_done', exit_code: ExitCode.WARNING, counts: { terminated: 1, not_attempted: 2 } });
      expect(await alive(s, leak.pids)).toEqual(sorted(leak.pids).slice(1));
      expect(written.map((l) => (l as { event: string }).event)).toEqual(['intent', 'outcome']);
    } finally {
      await leak.release();
    }
  });
});

describe('the lock', () => {
  test('a second run while the first holds the lock does nothing and throws LOCKED', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 2, { app: 'db-lock', user: 'app_user' });
    try {
      const shared = options(s, { apps: ['db-lock'] });
      let second: unknown;
      const { prompter } = fakePrompter({
        onCheckbox: async () => {
          // While the first run waits at its prompt (holding the lock), a cron run starts.
          second = await runTerminate({ ...shared, yes: true }, { prompter: null }).catch((e: unknown) => e);
          expect(await alive(s, leak.pids)).toHaveLength(2);
        },
      });
      const first = await runTerminate({ ...shared, yes: false }, { prompter });
      expect(second).toBeInstanceOf(DbdoctorError);
      expect((second as DbdoctorError).exitCode).toBe(ExitCode.LOCKED);
      expect((second as DbdoctorError).message).toMatch(/holds the lock/);
      expect(first).toMatchObject({ status: 'done', counts: { terminated: 2 } });
      // The audit log holds the first run's attempts only.
      expect(auditLines(shared.auditLog).map((l) => l.run_id).every((id) => id === first.run_id)).toBe(true);
      // Released: the next run may take it.
      const third = await runTerminate({ ...shared, yes: true }, { prompter: null });
      expect(third.status).toBe('nothing_to_do');
    } finally {
      await leak.release();
    }
  });
});
