/**
 * runConnections against real sessions: filters, grouping keys, parallel workers counted under
 * their leader, and what a role without pg_read_all_stats sees.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Chalk } from 'chalk';
import type pg from 'pg';
import { runConnections } from '../../src/commands/connections.js';
import type { GroupKey, SessionFilter } from '../../src/core/connections.js';
import { DbdoctorError } from '../../src/core/errors.js';
import { ExitCode } from '../../src/core/exit-codes.js';
import type { Target } from '../../src/core/target.js';
import { renderConnections } from '../../src/render/connections.js';
import { dbdoctorSessionsLeft, idleInTransaction, idleSessions, type Incident, sorted, waitFor } from '../support/incidents.js';
import { ROLE_PASSWORD, startTestServer, type TestServer, useServer } from '../support/server.js';

const server = useServer();
const plain = new Chalk({ level: 0 });

function target(s: TestServer, user = 'postgres'): Target {
  return { host: s.host, port: s.port, user, dbname: 'postgres', password: user === 'postgres' ? s.password : ROLE_PASSWORD, sslmode: 'disable', sslrootcert: undefined, connectTimeoutMs: 5000, service: undefined };
}

describe('runConnections', () => {
  let alpha: Incident;
  let beta: Incident;
  let jobs: Incident;
  beforeAll(async () => {
    const s = server();
    alpha = await idleSessions(s, 3, { app: 'alpha' });
    beta = await idleSessions(s, 2, { app: 'beta', user: 'other_user' });
    jobs = await idleInTransaction(s, 2, { app: 'alpha-jobs' });
  }, 60_000);
  afterAll(async () => {
    for (const i of [alpha, beta, jobs]) await i?.release();
  });

  test('filters: app glob, user, state, client address and CIDR, database, minimum age', async () => {
    const s = server();
    const run = async (filter: SessionFilter, by: GroupKey[] = ['app']) => runConnections(target(s), {}, { filter, by });
    const apps = (r: Awaited<ReturnType<typeof runConnections>>) => Object.fromEntries(r.groups.map((g) => [g.app, g.pids]));
    expect(apps(await run({ app: ['alpha*'] }))).toEqual({ alpha: sorted(alpha.pids), 'alpha-jobs': sorted(jobs.pids) });
    expect(apps(await run({ app: ['alph?'] }))).toEqual({ alpha: sorted(alpha.pids) });
    expect(apps(await run({ user: ['other_user'] }))).toEqual({ beta: sorted(beta.pids) });
    expect(apps(await run({ state: ['idle in transaction'], app: ['alpha*', 'beta'] }))).toEqual({ 'alpha-jobs': sorted(jobs.pids) });
    expect(apps(await run({ client: ['127.0.0.0/8'], app: ['beta'] }))).toEqual({ beta: sorted(beta.pids) });
    expect(apps(await run({ client: ['127.0.0.1'], app: ['beta'] }))).toEqual({ beta: sorted(beta.pids) });
    expect(apps(await run({ client: ['::ffff:127.0.0.1/128'], app: ['beta'] }))).toEqual({ beta: sorted(beta.pids) });
    expect((await run({ client: ['10.0.0.0/8'] })).groups).toEqual([]);
    expect((await run({ client: ['local'] })).groups).toEqual([]);
    expect(apps(await run({ db: ['postgres'], app: ['beta'] }))).toEqual({ beta: sorted(beta.pids) });
    expect((await run({ db: ['template1'] })).groups).toEqual([]);
    expect((await run({ minAgeMs: 3_600_000 })).groups).toEqual([]);
    const r = await run({ app: ['beta'], minAgeMs: 1 });
    expect(r.total).toBe(2);
    expect(r.filters).toEqual({ app: ['beta'], user: null, db: null, state: null, client: null, min_age_ms: 1 });
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test('grouping by user and client, and --list', async () => {
    const s = server();
    const r = await runConnections(target(s), {}, { by: ['user', 'client'], filter: { app: ['alpha*', 'beta'] }, list: true });
    expect(r.groups.map((g) => [g.user, g.client, g.count])).toEqual([
      ['postgres', '127.0.0.1', 5],
      ['other_user', '127.0.0.1', 2],
    ]);
    expect(r.groups[0]).not.toHaveProperty('app');
    expect(r.sessions!.map((x) => x.pid).sort((a, b) => a - b)).toEqual(sorted([...alpha.pids, ...beta.pids, ...jobs.pids]));
    expect(r.sessions!.find((x) => x.pid === jobs.pids[0])).toMatchObject({ state: 'idle in transaction', application_name: 'alpha-jobs', usename: 'postgres', datname: 'postgres', client_addr: '127.0.0.1', query: 'SELECT 1' });
    const text = renderConnections(r, plain, 80);
    expect(text).toMatch(/^every group below: client 127\.0\.0\.1$/m);
    expect(text).toMatch(/│ postgres +│ 5 │/);
    for (const l of text.split('\n')) expect(l.length).toBeLessThanOrEqual(80);
  });

  test("times in ISO form whatever DateStyle the role has ('SQL, DMY' here)", async () => {
    const s = server();
    await s.sql(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dmy_user') THEN CREATE ROLE dmy_user LOGIN PASSWORD '${ROLE_PASSWORD}' IN ROLE pg_read_all_stats; END IF; END $$`);
    await s.sql(`ALTER ROLE dmy_user SET DateStyle = 'SQL, DMY'`);
    const c = await s.client({ user: 'dmy_user' });
    const shown = await c.query<{ now: string }>('SELECT now()::text AS now');
    await c.end();
    // what any client of that role reads: 07/12/2026 03:14:35.123456 UTC
    expect(shown.rows[0]!.now).toMatch(/^\d\d\/\d\d\/\d{4} /);
    const iso = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d(:\d\d)?$/;
    const r = await runConnections(target(s, 'dmy_user'), {}, { filter: { app: ['alpha'] }, list: true });
    expect(r.taken_at).toMatch(iso);
    expect(r.sessions!.length).toBe(3);
    for (const x of r.sessions!) expect(x.backend_start).toMatch(iso);
  });

  test('a bad filter is refused before connecting', async () => {
    const s = server();
    await expect(runConnections(target(s), {}, { filter: { client: ['10.0.0.0/33'] } })).rejects.toMatchObject({ exitCode: ExitCode.USAGE });
    await expect(runConnections(target(s), {}, { filter: { state: ['sleeping'] } })).rejects.toBeInstanceOf(DbdoctorError);
  });

  test('a role without pg_read_all_stats: its own sessions visible, the others hidden and counted', async () => {
    const s = server();
    const r = await runConnections(target(s, 'other_user'), {}, { by: ['app', 'state'], filter: { app: ['alpha*', 'beta'] } });
    const byKey = Object.fromEntries(r.groups.map((g) => [`${g.app}/${g.state}`, g.count]));
    expect(byKey).toEqual({ 'alpha/hidden': 3, 'alpha-jobs/hidden': 2, 'beta/idle': 2 });
    expect(r.visibility.partial).toBe(true);
    expect(r.visibility.hidden).toBeGreaterThanOrEqual(5);
    expect(r.status).toBe('unknown');
    expect(r.visibility.warning).toMatch(/grant it pg_monitor/);
    expect(r.visibility.fix).toBe('GRANT pg_monitor TO "other_user";');
  });

  test('who blocks whom is not read: a waiter is counted as any session, and a server that revokes pg_blocking_pids() is no obstacle', async () => {
    const s = server();
    const holder = await s.client({ application_name: 'conn-holder' });
    const waiter = await s.client({ application_name: 'conn-waiter' });
    await s.sql('GRANT pg_monitor TO other_user');
    // EXECUTE is checked when the statement starts, whether or not a row reaches the call.
    await s.sql('REVOKE EXECUTE ON FUNCTION pg_blocking_pids(integer) FROM PUBLIC');
    try {
      await holder.query('SELECT pg_advisory_lock(515)');
      waiter.query('SELECT pg_advisory_lock(515)').catch(() => undefined);
      await waitFor(s, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'conn-waiter' AND wait_event_type = 'Lock'", [], (rows) => rows[0]?.n === 1);
      const r = await runConnections(target(s, 'other_user'), {}, { by: ['app', 'state'], filter: { app: ['conn-*'] } });
      expect(Object.fromEntries(r.groups.map((g) => [`${g.app}/${g.state}`, g.count]))).toEqual({ 'conn-holder/idle': 1, 'conn-waiter/active': 1 });
      expect(r.visibility.partial).toBe(false);
    } finally {
      await s.sql('GRANT EXECUTE ON FUNCTION pg_blocking_pids(integer) TO PUBLIC');
      await s.sql('REVOKE pg_monitor FROM other_user');
      await s.sql('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [[holder, waiter].map((c) => (c as unknown as { processID: number }).processID)]);
      await Promise.all([holder, waiter].map((c) => c.end().catch(() => undefined)));
    }
  });
});

describe('parallel workers', () => {
  test('are counted under their leader, never as client sessions', async () => {
    const s = server();
    await s.sql('CREATE TABLE IF NOT EXISTS par_big AS SELECT g FROM generate_series(1, 3000) g');
    const c: pg.Client = await s.client({ application_name: 'parallel-leader' });
    const leader = (c as unknown as { processID: number }).processID;
    try {
      await c.query('SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0');
      const running = c.query('SELECT count(*) FROM par_big WHERE pg_sleep(0.01) IS NOT NULL').catch(() => undefined);
      await waitFor(s, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE leader_pid = $1', [leader], (rows) => (rows[0]?.n as number) >= 1);
      const r = await runConnections(target(s), {}, { by: ['app'], list: true });
      const g = r.groups.find((x) => x.app === 'parallel-leader')!;
      expect(g.count).toBe(1);
      expect(g.pids).toEqual([leader]);
      expect(g.parallel_workers).toBeGreaterThanOrEqual(1);
      expect(r.sessions!.find((x) => x.pid === leader)!.parallel_workers).toBe(g.parallel_workers);
      const workers = r.other_processes.find((p) => p.backend_type === 'parallel worker')!;
      expect(workers.count).toBe(g.parallel_workers);
      expect(workers.leader_pids).toEqual([leader]);
      expect(r.sessions!.some((x) => workers.pids.includes(x.pid))).toBe(false);
      await s.sql('SELECT pg_cancel_backend($1)', [leader]);
      await running;
    } finally {
      await c.end().catch(() => undefined);
    }
  });
});

describe('a capacity warning with filters is labelled as capacity', () => {
  let small: TestServer;
  beforeAll(async () => {
    // 10 slots, 3 for superusers: 7 ordinary ones; 5 idle sessions and dbdoctor's own use 86%.
    small = await startTestServer({ settings: { max_connections: 10, superuser_reserved_connections: 3 } });
  }, 60_000);
  afterAll(async () => {
    await small?.stop();
  });

  test('WARNING capacity: ..., then the matching sessions on a line of their own', async () => {
    const busy = await idleSessions(small, 5, { app: 'busy' });
    try {
      const r = await runConnections(target(small), {}, { filter: { app: ['nothing-matches'] }, by: ['app'] });
      expect(r.status).toBe('warning');
      expect(r.total).toBe(0);
      const text = renderConnections(r, plain, 80);
      const lines = text.split('\n');
      const verdict = lines.find((l) => l.startsWith('WARNING'))!;
      expect(verdict).toMatch(/^WARNING {2}capacity: 6 of 7 ordinary slots in use on the server, headroom 1/);
      // Never the severity of the filtered sessions: no "WARNING  0 client sessions ...".
      expect(text).not.toMatch(/WARNING {2}\d+ client session/);
      expect(text).toMatch(/^0 client sessions of \d+ matching app nothing-matches/m);
      // Without filters the line is about every session, and keeps its label.
      const all = renderConnections(await runConnections(target(small), {}, { filter: {}, by: ['app'] }), plain, 80);
      expect(all).toMatch(/^WARNING {2}5 client sessions \(dbdoctor itself left out\)/m);
    } finally {
      await busy.release();
    }
  });
});
