/**
 * The privilege matrix: superuser, pg_monitor, pg_signal_backend and a plain role, for every
 * command. What each can see and do is reported honestly, and a partial view never yields OK,
 * not even when everything the role can see is healthy.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { parseJson, runCli } from '../support/cli.js';
import { COMMANDS, landed } from '../support/commands.js';
import { dbdoctorSessionsLeft, idleInTransaction, idleSessions, type Incident, lockChain } from '../support/incidents.js';
import { expectNoStack } from '../support/reliability.js';
import { ROLE_PASSWORD, useServer } from '../support/server.js';

interface Role {
  user: string;
  /** pg_read_all_stats (superuser or pg_monitor): sees every session. */
  seesAll: boolean;
  /** pg_signal_backend (or superuser): may signal other roles' non-superuser sessions. */
  signals: boolean;
  superuser: boolean;
}

const ROLES: Role[] = [
  { user: 'postgres', seesAll: true, signals: true, superuser: true },
  { user: 'monitor_user', seesAll: true, signals: false, superuser: false },
  { user: 'signal_user', seesAll: false, signals: true, superuser: false },
  { user: 'app_user', seesAll: false, signals: false, superuser: false },
];

interface Doc {
  report: {
    status?: string;
    verdict?: string;
    exit_code?: number;
    visibility?: { partial: boolean; hidden: number } | null;
    hidden_sessions?: number;
    privileges?: { superuser: boolean; can_see_other_sessions: boolean; can_terminate_other_roles: boolean };
  };
}

const incidents: Incident[] = [];
afterAll(async () => {
  for (const i of incidents.splice(0).reverse()) await i.release();
});
const server = useServer({ settings: { max_connections: 60 } });
const url = (r: Role) => server().url({ user: r.user, password: r.user === 'postgres' ? undefined : ROLE_PASSWORD });
const reads = landed(COMMANDS).filter((c) => c.kind === 'read');
const matrix = reads.flatMap((c) => ROLES.map((r) => [c.name, r.user, r] as const));
const verdictOf = (d: Doc) => d.report.status ?? d.report.verdict;

let state: string;
beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-priv-'));
});
afterEach(() => {
  rmSync(state, { recursive: true, force: true });
});

describe('a healthy server whose sessions belong to another role', () => {
  let calm: Incident | undefined;
  test('set up: idle sessions of other_user only', async () => {
    calm = await idleSessions(server(), 3, { app: 'rel-priv-calm', user: 'other_user' });
    incidents.push(calm);
  });

  test.each(matrix)('%s as %s: the view is honest about what the role cannot see', async (name, _user, role) => {
    const spec = reads.find((c) => c.name === name)!;
    const r = await runCli([name, ...spec.args, '-d', url(role), '--json']);
    expectNoStack(r);
    const doc = parseJson<Doc>(r);
    if (name === 'check') {
      expect(doc.report.privileges).toMatchObject({ superuser: role.superuser, can_see_other_sessions: role.seesAll, can_terminate_other_roles: role.signals });
      return;
    }
    if (role.seesAll) {
      // the whole view, and nothing wrong in it
      expect(verdictOf(doc)).toBe('ok');
      expect(r.exitCode).toBe(0);
      expect(doc.report.visibility).toMatchObject({ partial: false, hidden: 0 });
    } else {
      // everything it can see is fine, and that is still not OK
      expect(verdictOf(doc)).not.toBe('ok');
      expect(r.exitCode).not.toBe(0);
      expect(doc.report.visibility).toMatchObject({ partial: true, hidden: 3 });
      const human = await runCli([name, ...spec.args, '-d', url(role)]);
      expect(human.exitCode).toBe(r.exitCode);
      expect(human.stdout + human.stderr).toMatch(/partial|cannot see|hidden/i);
      expect(human.stdout.split('\n')[0]).not.toMatch(/^OK\b/);
    }
    expect(await dbdoctorSessionsLeft(server())).toBe(0);
  });

  test('tear down', async () => {
    await calm?.release();
  });
});

describe('an incident among another role\'s sessions (idle in transaction, a lock chain)', () => {
  let iit: Incident | undefined;
  let chain: Incident | undefined;
  test('set up', async () => {
    // lockChain creates its table as the superuser; other_user must be able to update it
    await server().sql('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO PUBLIC');
    iit = await idleInTransaction(server(), 2, { app: 'rel-priv-iit', user: 'other_user' });
    chain = await lockChain(server(), { app: 'rel-priv-lock', user: 'other_user' }, 2);
    incidents.push(iit, chain);
    // past diagnose's lock-wait threshold (1 s)
    await new Promise((r) => setTimeout(r, 1500));
  });

  test.each(matrix)('%s as %s: never OK when partial; a role that sees all finds the incident', async (name, _user, role) => {
    if (name === 'check') return;
    const spec = reads.find((c) => c.name === name)!;
    const r = await runCli([name, ...spec.args, '-d', url(role), '--json']);
    expectNoStack(r);
    const doc = parseJson<Doc>(r);
    if (role.seesAll) {
      expect(doc.report.visibility).toMatchObject({ partial: false, hidden: 0 });
      // the lock chain is in plain sight: a warning or worse, never "unknown" (connections is about capacity)
      if (name === 'locks' || name === 'diagnose') {
        expect(['warning', 'critical']).toContain(verdictOf(doc));
        expect([1, 2]).toContain(r.exitCode);
      }
    } else {
      expect(verdictOf(doc)).not.toBe('ok');
      expect(r.exitCode).not.toBe(0);
      // 2 idle in transaction + the blocker + 2 waiters, all other_user's
      expect(doc.report.visibility).toMatchObject({ partial: true, hidden: 5 });
    }
  });

  test.each(ROLES.map((r) => [r.user, r] as const))('terminate as %s: does what the role may, says what it may not, kills nothing it should not', async (_user, role) => {
    if (!landed(COMMANDS).some((c) => c.name === 'terminate')) return;
    const s = server();
    const victims = await idleInTransaction(s, 2, { app: 'rel-priv-victim', user: 'other_user' });
    incidents.push(victims);
    try {
      const r = await runCli(['terminate', '--app', 'rel-priv-victim', '--yes', '--json', '-d', url(role), '--lock-file', join(state, 'lock'), '--audit-log', join(state, 'audit.jsonl')]);
      expectNoStack(r);
      const doc = parseJson<{ report: { status: string; hidden_sessions: number; results: Array<{ pid: number; outcome: string }>; counts: { terminated: number } | null } }>(r);
      const alive = await s.sql<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])', [victims.pids]);
      if (!role.seesAll) {
        // it cannot see the sessions' state or identity: nothing done, and it says why (exit 3)
        expect(doc.report.status).toBe('nothing_to_do');
        expect(doc.report.hidden_sessions).toBe(2);
        expect(r.exitCode).toBe(3);
        expect(alive).toHaveLength(2);
      } else if (!role.signals) {
        // it sees them but may not signal another role's sessions: permission denied, each
        expect(doc.report.results.map((x) => x.outcome)).toEqual(['permission_denied', 'permission_denied']);
        expect(r.exitCode).toBe(2);
        expect(alive).toHaveLength(2);
      } else {
        expect(doc.report.counts?.terminated).toBe(2);
        expect(r.exitCode).toBe(0);
        expect(alive).toHaveLength(0);
      }
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    } finally {
      await victims.release();
    }
  });

  test('terminate as a role with pg_signal_backend and pg_monitor terminates; a superuser session stays out of reach', async () => {
    if (!landed(COMMANDS).some((c) => c.name === 'terminate')) return;
    const s = server();
    await s.sql(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rel_ops') THEN CREATE ROLE rel_ops LOGIN PASSWORD '${ROLE_PASSWORD}' IN ROLE pg_monitor, pg_signal_backend; END IF; END $$`);
    const theirs = await idleInTransaction(s, 1, { app: 'rel-priv-mixed', user: 'other_user' });
    const su = await idleInTransaction(s, 1, { app: 'rel-priv-mixed', user: 'postgres' });
    incidents.push(theirs, su);
    try {
      const ops = s.url({ user: 'rel_ops', password: ROLE_PASSWORD });
      // without --include-superusers even a superuser's run leaves a superuser's session out, saying why
      const asSu = await runCli(['terminate', '--app', 'rel-priv-mixed', '--dry-run', '--json', '-d', s.url()]);
      const dry = parseJson<{ report: { planned: Array<{ pid: number }>; excluded: Array<{ pid: number; reason: string }> } }>(asSu).report;
      expect(dry.planned.map((p) => p.pid)).toEqual(theirs.pids);
      expect(dry.excluded.find((e) => e.pid === su.pids[0])?.reason).toBe('superuser');
      const r = await runCli(['terminate', '--app', 'rel-priv-mixed', '--include-superusers', '--yes', '--json', '-d', ops, '--lock-file', join(state, 'lock'), '--audit-log', join(state, 'audit.jsonl')]);
      expectNoStack(r);
      const results = parseJson<{ report: { results: Array<{ pid: number; outcome: string }> } }>(r).report.results;
      expect(results.find((x) => x.pid === theirs.pids[0])?.outcome).toBe('terminated');
      // only a superuser may signal a superuser's session
      expect(results.find((x) => x.pid === su.pids[0])?.outcome).toBe('permission_denied');
      expect(r.exitCode).toBe(1);
      expect(await s.sql('SELECT pid FROM pg_stat_activity WHERE pid = $1', [su.pids[0]])).toHaveLength(1);
    } finally {
      await su.release();
      await theirs.release();
    }
  });

  test('tear down', async () => {
    await chain?.release();
    await iit?.release();
  });
});
