/**
 * dbdoctor's own footprint on the server, observed from the outside for every command: one
 * connection, statement_timeout and lock_timeout set on it first (seen in the server's statement
 * log: pg_settings is per session), only reading statements (terminate: plus its signal
 * statement), no lock stronger than AccessShareLock while it runs (seen in pg_locks while one of
 * its reads is held), and no session left behind (a disconnection line, and pg_stat_activity).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { runCli } from '../support/cli.js';
import { CONNECTING, landed } from '../support/commands.js';
import { dbdoctorConnections, holdRolesView, locksOf, observer, serverLogDuring, startCli, waitForDbdoctor } from '../support/faults.js';
import { dbdoctorSessionsLeft, idleInTransaction, type Incident, lockChain, longQueries } from '../support/incidents.js';
import { expectNoStack } from '../support/reliability.js';
import { useServer } from '../support/server.js';

const incidents: Incident[] = [];
afterAll(async () => {
  for (const i of incidents.splice(0).reverse()) await i.release();
});
const server = useServer({ settings: { max_connections: 50, log_connections: 'on', log_disconnections: 'on', log_statement: 'all' } });

let state: string;
beforeAll(async () => {
  const s = server();
  state = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-foot-'));
  incidents.push(await lockChain(s, { app: 'rel-foot-lock' }, 2));
  incidents.push(await idleInTransaction(s, 2, { app: 'rel-foot-iit', user: 'app_user' }));
  incidents.push(await longQueries(s, 1, { app: 'rel-foot-long', user: 'app_user' }));
}, 60_000);
afterAll(() => {
  rmSync(state, { recursive: true, force: true });
});

/** Each command as an operator runs it; terminate both as a dry run and for real. */
const runs = [
  ...landed(CONNECTING).map((c) => ({ label: c.name, args: [c.name, ...c.args], writes: false })),
  ...landed(CONNECTING)
    .filter((c) => c.name === 'terminate')
    .flatMap(() => [
      { label: 'terminate --yes', args: ['terminate', '--app', 'rel-foot-iit', '--yes'], writes: true },
      { label: 'terminate --blockers --cancel-first --yes', args: ['terminate', '--blockers', '--cancel-first', '--grace', '200ms', '--include-superusers', '--yes'], writes: true },
    ]),
];

/** The first word of a statement, comments and whitespace skipped. */
function verb(sql: string): string {
  return sql
    .replace(/^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)+/, '')
    .split(/\s+/)[0]!
    .toUpperCase();
}

const READ_VERBS = new Set(['SELECT', 'WITH', 'SET', 'SHOW', 'BEGIN', 'COMMIT', 'ROLLBACK', 'START']);

describe('one connection, its timeouts, only reads, nothing left behind', () => {
  test.each(runs.map((r) => [r.label, r] as const))('%s', async (_label, run) => {
    const s = server();
    const extra = run.args[0] === 'terminate' ? ['--lock-file', join(state, 'lock'), '--audit-log', join(state, 'audit.jsonl')] : [];
    const { result: r, log } = await serverLogDuring(s, () => runCli([...run.args, ...extra, '-d', s.url(), '--statement-timeout', '7s']));
    expectNoStack(r);
    expect([0, 1, 2, 3]).toContain(r.exitCode);
    const conns = dbdoctorConnections(log);
    // exactly one connection (a Ctrl-C CancelRequest is not a session and never shows here)
    expect(conns).toHaveLength(1);
    const [conn] = conns;
    const first = conn!.statements[0] ?? '';
    // the timeouts are set first, on its own session, to what was asked
    expect(first).toMatch(/SET statement_timeout = 7000\b/);
    const lock = /SET lock_timeout = (\d+)/.exec(first);
    expect(lock).not.toBeNull();
    expect(Number(lock![1])).toBeGreaterThan(0);
    expect(Number(lock![1])).toBeLessThan(7000);
    for (const sql of conn!.statements) {
      expect({ sql, verb: verb(sql) }).toMatchObject({ verb: expect.stringMatching(/^(SELECT|WITH|SET|SHOW|BEGIN|COMMIT|ROLLBACK|START)$/) });
      expect(READ_VERBS.has(verb(sql))).toBe(true);
      expect(sql).not.toMatch(/\bFOR\s+(NO\s+KEY\s+)?(UPDATE|SHARE|KEY\s+SHARE)\b/i);
      if (/^BEGIN|^START/i.test(verb(sql))) expect(sql).toMatch(/READ ONLY/i);
      if (!run.writes) expect(sql).not.toMatch(/pg_(terminate|cancel)_backend\s*\(/i);
    }
    // it said goodbye: a disconnection line for that backend, and nothing in pg_stat_activity
    expect(log).toMatch(new RegExp(`\\[${conn!.pid}\\][^\\n]*disconnection: session time`));
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });
});

describe('no lock beyond what reading the statistics views takes', () => {
  test.each(landed(CONNECTING).map((c) => [c.name, c.name === 'terminate' ? ['--blockers', '--dry-run'] : c.args] as const))('%s: while its read of pg_roles is held, it holds only AccessShareLock', async (name, args) => {
    const s = server();
    const hold = await holdRolesView(s);
    const obs = await observer(s);
    try {
      const run = startCli([name, ...args, '-d', s.url()], { env: { XDG_STATE_HOME: state } });
      const b = await waitForDbdoctor(obs, (x) => x.wait_event_type === 'Lock', 10_000);
      const locks = await locksOf(obs, b.pid);
      await hold.release();
      for (const l of locks) {
        if (l.locktype === 'virtualxid') {
          expect(l.mode).toBe('ExclusiveLock');
          continue;
        }
        expect(l).toMatchObject({ locktype: 'relation', mode: 'AccessShareLock' });
      }
      expect(locks.filter((l) => !l.granted)).toEqual([{ locktype: 'relation', mode: 'AccessShareLock', granted: false, relation: 'pg_roles' }]);
      const r = await run.done;
      expectNoStack(r);
      // released within its lock_timeout it finishes normally; on a loaded machine it may not be
      expect([0, 1, 2, 3]).toContain(r.exitCode);
    } finally {
      await hold.release();
      await obs.end();
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });
});

describe('Ctrl-C while a statement runs: the second connection is only the cancel', () => {
  test.each(landed(CONNECTING).map((c) => [c.name, c.name === 'terminate' ? ['--blockers', '--dry-run'] : c.args] as const))('%s: exit 130 at once, the statement cancelled, one session, nothing left', async (name, args) => {
    const s = server();
    const hold = await holdRolesView(s);
    const obs = await observer(s);
    try {
      const { result: r, log } = await serverLogDuring(s, async () => {
        const run = startCli([name, ...args, '-d', s.url(), '--statement-timeout', '20s'], { env: { XDG_STATE_HOME: state } });
        await waitForDbdoctor(obs, (x) => x.wait_event_type === 'Lock', 10_000);
        run.child.kill('SIGINT');
        return run.done;
      });
      expectNoStack(r);
      expect(r.exitCode).toBe(130);
      expect(r.stderr).toMatch(/interrupted/);
      // one session, plus the CancelRequest's connection (received, never authorized)
      expect(dbdoctorConnections(log)).toHaveLength(1);
      const received = log.split('\n').filter((l) => /connection received: host=127\.0\.0\.1/.test(l)).length;
      expect(received).toBe(2);
      expect(log).toMatch(/canceling statement due to user request/);
    } finally {
      await hold.release();
      await obs.end();
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });
});

describe('sslmode=prefer (the default) against a server without TLS', () => {
  /** Connections the server received while `args` ran, and the sessions dbdoctor authorized. */
  async function counted(s: ReturnType<typeof server>, args: string[], env: Record<string, string> = {}): Promise<{ received: number; sessions: number }> {
    const { result: r, log } = await serverLogDuring(s, () => runCli(['check', '--json', ...args], { env }));
    expectNoStack(r);
    expect(r.exitCode).toBe(0);
    return { received: log.split('\n').filter((l) => /connection received: host=/.test(l)).length, sessions: dbdoctorConnections(log).length };
  }

  test('over TCP: one connection, as libpq: the server says no to TLS and the session goes on over the same socket', async () => {
    const s = server();
    expect(await counted(s, ['-d', s.url()])).toEqual({ received: 1, sessions: 1 });
    expect(await counted(s, ['-d', `${s.url()}?sslmode=disable`])).toEqual({ received: 1, sessions: 1 });
    const { result, log } = await serverLogDuring(s, () => runCli(['check', '--json', '-d', s.url()]));
    expect(result.exitCode).toBe(0);
    expect(log).toMatch(/connection authorized: user=postgres/);
    expect(log).not.toMatch(/incomplete startup packet|could not receive data|unexpected EOF|could not send data/i);
  });

  test('over a Unix socket: no TLS attempt at all, as libpq', async () => {
    const s = server();
    const args = ['-h', s.embedded!.dir, '-p', String(s.port), '-U', 'postgres', '-d', 'postgres'];
    expect(await counted(s, args, { PGPASSWORD: s.password })).toEqual({ received: 1, sessions: 1 });
  });
});
