/**
 * PgBouncer, real (Debian's pgbouncer), in front of the test server: an incident where an
 * application's clients queue in a full pool, read through the admin console by `pools` and
 * `diagnose`; dbdoctor's own session through the pooler (terminate refuses, inspections say so);
 * PgBouncer's own refusals named as PgBouncer's. Ground truth is what the test's clients did.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import type { PgBouncerReport } from '../../src/core/pgbouncer.js';
import { parseJson, runCli } from '../support/cli.js';
import { type RunningPgBouncer, startPgBouncer } from '../support/pgbouncer.js';
import { expectValidDiagnoseDoc, expectValidPgBouncerDoc } from '../support/schemas.js';
import type { PoolerJoin } from '../../src/core/pgbouncer.js';
import { ROLE_PASSWORD, useServer } from '../support/server.js';
import { scaled } from '../support/timing.js';

interface Doc<R> {
  schema: string;
  report: R;
}

const server = useServer();
/** An empty home for dbdoctor's runs (no ~/.pgpass, no certificates); never a shared path such as /nonexistent, which root would create. */
const home = mkdtempSync(join(tmpdir(), 'dbdoctor-pgb-home-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** A client through PgBouncer; errors after the test ends it are expected and ignored. */
async function client(b: RunningPgBouncer, opts: { user?: string; password?: string; application_name?: string; database?: string } = {}): Promise<pg.Client> {
  const c = new pg.Client({ host: b.host, port: b.port, user: opts.user ?? 'app_user', password: opts.password ?? ROLE_PASSWORD, database: opts.database ?? 'postgres', application_name: opts.application_name ?? 'api', ssl: false });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function showPools(b: RunningPgBouncer): Promise<Array<Record<string, unknown>>> {
  const c = await client(b, { user: 'postgres', password: b.password, database: 'pgbouncer' });
  try {
    return (await c.query('SHOW POOLS')).rows as Array<Record<string, unknown>>;
  } finally {
    await c.end();
  }
}

async function waitFor(what: string, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + scaled(15_000);
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('transaction pooling, default_pool_size = 5: 20 clients of api (5 of them in open transactions), 10 more waiting', () => {
  let b: RunningPgBouncer;
  const clients: pg.Client[] = [];
  const holderPids: number[] = [];
  beforeAll(async () => {
    b = await startPgBouncer(server(), { app_user: ROLE_PASSWORD, monitor_user: ROLE_PASSWORD }, { poolMode: 'transaction', defaultPoolSize: 5 });
    for (let i = 0; i < 30; i++) clients.push(await client(b));
    for (const c of clients.slice(0, 5)) {
      await c.query('BEGIN');
      holderPids.push((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    }
    // these wait in PgBouncer for one of the 5 server connections (never answered while the test runs)
    for (const c of clients.slice(5, 15)) void c.query('SELECT 1').catch(() => undefined);
    await waitFor('10 waiting clients', async () => (await showPools(b)).some((p) => p.user === 'app_user' && p.cl_waiting === 10));
  }, scaled(60_000));
  afterAll(async () => {
    for (const c of clients.slice(0, 5)) await c.query('ROLLBACK').catch(() => undefined);
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await b?.stop();
  }, scaled(60_000));

  const env = () => ({ PGPASSWORD: b.password, HOME: home });
  const at = () => ['-h', b.host, '-p', String(b.port), '-U', 'postgres'];

  test('pools shows the pool with cl_waiting = 10, its 5 server connections busy, transaction pooling', async () => {
    const r = await runCli(['pools', '--json', ...at()], { env: env() });
    const doc = parseJson<Doc<PgBouncerReport>>(r);
    expectValidPgBouncerDoc(doc);
    expect(doc.schema).toBe('dbdoctor.pgbouncer');
    const pool = doc.report.pools.find((p) => p.database === 'postgres' && p.user === 'app_user')!;
    expect(pool).toMatchObject({ cl_active: 20, cl_waiting: 10, sv_active: 5, pool_size: 5, pool_mode: 'transaction' });
    expect(pool.maxwait_s).toBeGreaterThanOrEqual(0);
    expect(pool.waiting_applications).toEqual([{ application_name: 'api', clients: 10 }]);
    expect(doc.report.verdict).toBe('critical');
    expect(r.exitCode).toBe(2);
    const text = await runCli(['pools', ...at()], { env: env() });
    expect(text.stdout).toMatch(/postgres\/app_user/);
    expect(text.stdout).toMatch(/10 clients waiting in pool postgres\/app_user/);
  });

  test('diagnose on the console names the pool, the waiting clients and their application, and maxwait', async () => {
    const r = await runCli(['diagnose', '--json', ...at(), '-d', 'pgbouncer'], { env: env() });
    expect(r.exitCode).toBe(2);
    const doc = parseJson<Doc<PgBouncerReport>>(r);
    expectValidPgBouncerDoc(doc);
    const waiting = doc.report.findings.find((f) => f.id === 'pgbouncer_clients_waiting')!;
    expect(waiting).toMatchObject({ severity: 'critical', pool: { database: 'postgres', user: 'app_user' }, runbook: 'pgbouncer-clients-waiting' });
    expect(waiting.summary).toMatch(/^10 clients waiting in pool postgres\/app_user, the oldest for \d+\.\ds$/);
    expect(waiting.evidence).toMatch(/waiting: api \(10\)/);
    expect(doc.report.findings.map((f) => f.id)).toContain('pgbouncer_servers_in_transaction');
    const nagios = await runCli(['diagnose', '--format', 'nagios', ...at(), '-d', 'pgbouncer'], { env: env() });
    expect(nagios.stdout).toMatch(/^DBDOCTOR PGBOUNCER CRITICAL: 10 clients waiting in pool postgres\/app_user.* \| 'postgres\/app_user cl_waiting'=10 /);
  });

  test('diagnose --pgbouncer beside the server names the 5 server sessions idle in transaction behind the pool, and the application', async () => {
    const s = server();
    const args = ['diagnose', '--json', '-h', s.host, '-p', String(s.port), '-U', 'postgres', '-d', 'postgres', '--pgbouncer', b.conninfo('pgbouncer'), '--pgbouncer-instances', '30'];
    const r = await runCli(args, { env: env() });
    const doc = parseJson<Doc<{ verdict: string; pgbouncer: PoolerJoin }>>(r);
    expectValidDiagnoseDoc(doc);
    const join = doc.report.pgbouncer;
    const pool = join.pools.find((p) => p.database === 'postgres' && p.user === 'app_user')!;
    expect(pool.cl_waiting).toBe(10);
    expect(pool.waiting_applications).toEqual([{ application_name: 'api', clients: 10 }]);
    expect(pool.server_sessions.map((x) => x.pid).sort((a, c) => a - c)).toEqual([...holderPids].sort((a, c) => a - c));
    expect(pool.server_sessions.every((x) => x.state === 'idle in transaction' && x.application_name === 'api')).toBe(true);
    expect(pool.unmatched).toBe(0);
    const waiting = join.findings.find((f) => f.id === 'pgbouncer_clients_waiting')!;
    expect(waiting.next).toMatch(/5 server sessions behind the pool are idle in transaction .*application api.*dbdoctor terminate --pid \d+(,\d+){4}/);
    // pools × instances against the server's ordinary slots
    expect(join.arithmetic).toMatchObject({ instances: 30, exceeds: true });
    expect(join.arithmetic.may_open).toBe(join.arithmetic.pool_size_sum! * 30);
    expect(join.findings.map((f) => f.id)).toContain('pgbouncer_pools_exceed_server');
    expect(r.exitCode).toBe(2);
    const text = await runCli(args.filter((a) => a !== '--json'), { env: env() });
    expect(text.stdout).toMatch(/pool postgres\/app_user \(transaction\): 10 waiting \(api 10\)/);
    for (const pid of holderPids) expect(text.stdout).toMatch(new RegExp(`pid ${pid}  idle in transaction`));
  });

  test('through the pooler: terminate refuses, connections says it sees the server side of the pool', async () => {
    const through = ['-h', b.host, '-p', String(b.port), '-U', 'postgres', '-d', 'postgres'];
    const t = await runCli(['terminate', '--dry-run', '--state', 'idle in transaction', ...through], { env: env() });
    expect(t.exitCode).toBe(3);
    expect(t.stderr).toMatch(/terminate refuses to work through a connection pooler/);
    expect(t.stderr).toMatch(/connect to the PostgreSQL server directly/);
    const c = await runCli(['connections', ...through], { env: env() });
    expect(c.stderr).toMatch(/note: dbdoctor's connection goes through a connection pooler/);
    // and pointed at the console, the server commands say what it is
    const k = await runCli(['check', ...at(), '-d', 'pgbouncer'], { env: env() });
    expect(k.exitCode).toBe(64);
    expect(k.stderr).toMatch(/PgBouncer's admin console.*\n.*dbdoctor pools/);
    // the ground truth is untouched
    expect((await server().sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND state = 'idle in transaction'`, [holderPids]))[0]!.n).toBe(5);
  });
});

describe("PgBouncer's own refusals, named as PgBouncer's", () => {
  test('max_client_conn reached: check names PgBouncer and its setting, with the exit code of an unreachable server', async () => {
    const b = await startPgBouncer(server(), { app_user: ROLE_PASSWORD }, { poolMode: 'session', maxClientConn: 2 });
    const held: pg.Client[] = [];
    try {
      held.push(await client(b), await client(b));
      const r = await runCli(['check', '--json', '-h', b.host, '-p', String(b.port), '-U', 'app_user', '-d', 'postgres'], { env: { PGPASSWORD: ROLE_PASSWORD, HOME: home } });
      expect(r.exitCode).toBe(2);
      const doc = parseJson<Doc<{ failure: { cause: string; message: string; hint: string; runbook: string } }>>(r);
      expect(doc.report.failure).toMatchObject({ cause: 'pgbouncer_max_client_conn', runbook: 'pgbouncer-errors' });
      expect(doc.report.failure.message).toMatch(/PgBouncer refused the connection: its max_client_conn is reached/);
      const text = await runCli(['check', '-h', b.host, '-p', String(b.port), '-U', 'app_user', '-d', 'postgres'], { env: { PGPASSWORD: ROLE_PASSWORD, HOME: home } });
      expect(text.stdout).not.toMatch(/broke the protocol/);
    } finally {
      await Promise.all(held.map((c) => c.end().catch(() => undefined)));
      await b.stop();
    }
  });

  test('session pooling, a full pool: the saturated pool is named, not a transaction', async () => {
    const b = await startPgBouncer(server(), { app_user: ROLE_PASSWORD }, { poolMode: 'session', defaultPoolSize: 2 });
    const held: pg.Client[] = [];
    try {
      // the waiting client's application_name is hostile terminal text
      for (let i = 0; i < 3; i++) held.push(await client(b, { application_name: i < 2 ? 'worker' : 'evil\u001b]0;pwned\u0007\u001b[31mred' }));
      await held[0]!.query('SELECT 1');
      await held[1]!.query('SELECT 1');
      void held[2]!.query('SELECT 1').catch(() => undefined);
      await waitFor('1 waiting client', async () => (await showPools(b)).some((p) => p.user === 'app_user' && p.cl_waiting === 1));
      const r = await runCli(['pools', '--json', '-h', b.host, '-p', String(b.port), '-U', 'postgres'], { env: { PGPASSWORD: b.password, HOME: home } });
      const doc = parseJson<Doc<PgBouncerReport>>(r);
      expect(doc.report.findings.map((f) => f.id)).toEqual(expect.arrayContaining(['pgbouncer_clients_waiting', 'pgbouncer_pool_saturated']));
      expect(doc.report.pools.find((p) => p.user === 'app_user')).toMatchObject({ pool_mode: 'session', sv_active: 2, cl_waiting: 1 });
      const text = await runCli(['pools', '-h', b.host, '-p', String(b.port), '-U', 'postgres'], { env: { PGPASSWORD: b.password, HOME: home } });
      expect(text.stdout).toMatch(/waiting: evil/);
      expect(text.stdout + text.stderr).not.toMatch(/\u001b|\u0007/);
    } finally {
      await Promise.all(held.map((c) => c.end().catch(() => undefined)));
      await b.stop();
    }
  });
});
