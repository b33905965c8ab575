/**
 * PgBouncer's console read by column name: the installed version's layout is exercised against a
 * real PgBouncer in test/e2e/pgbouncer.test.ts; here, layouts of other versions, replayed from
 * recorded SHOW results (1.15's SHOW POOLS with cl_cancel_req and no cancel columns; 1.24's SHOW
 * DATABASES with reserve_pool_size; one without maxwait_us), the findings, the join with the
 * server's sessions, and PgBouncer's own errors told from PostgreSQL's.
 */
import { describe, expect, test } from '@jest/globals';
import { classifyConnectError } from '../../src/core/classify.js';
import { type ConsoleFacts, joinPooler, pgbouncerReport } from '../../src/core/pgbouncer.js';

const config = (over: Record<string, string> = {}) =>
  Object.entries({ max_client_conn: '100', default_pool_size: '5', max_db_connections: '0', max_user_connections: '0', reserve_pool_size: '0', query_wait_timeout: '120', idle_transaction_timeout: '0', server_idle_timeout: '600', server_lifetime: '3600', client_idle_timeout: '0', ...over }).map(
    ([key, value]) => ({ key, value, default: value, changeable: 'yes' }),
  );

/** PgBouncer 1.15: SHOW POOLS has cl_cancel_req (split in 1.18), no sv_active_cancel; SHOW DATABASES has reserve_pool. */
const v115: ConsoleFacts = {
  version: 'PgBouncer 1.15.0',
  pools: [
    { database: 'pgbouncer', user: 'pgbouncer', cl_active: 1, cl_waiting: 0, cl_cancel_req: 0, sv_active: 0, sv_idle: 0, sv_used: 0, sv_tested: 0, sv_login: 0, maxwait: 0, maxwait_us: 0, pool_mode: 'statement' },
    { database: 'app', user: 'api', cl_active: 20, cl_waiting: 10, cl_cancel_req: 0, sv_active: 5, sv_idle: 0, sv_used: 0, sv_tested: 0, sv_login: 0, maxwait: 7, maxwait_us: 250000, pool_mode: 'transaction' },
  ],
  databases: [{ name: 'app', host: 'db1', port: 5432, database: 'app', force_user: null, pool_size: 5, min_pool_size: 0, reserve_pool: 2, pool_mode: null, max_connections: 0, current_connections: 5, paused: 0, disabled: 0 }],
  users: [{ name: 'api', pool_mode: null }],
  config: config(),
  // 1.15's SHOW CLIENTS has no application_name column
  clients: [...Array.from({ length: 20 }, () => ({ type: 'C', user: 'api', database: 'app', state: 'active' })), ...Array.from({ length: 10 }, () => ({ type: 'C', user: 'api', database: 'app', state: 'waiting' }))],
  servers: Array.from({ length: 5 }, (_, i) => ({ type: 'S', user: 'api', database: 'app', state: 'active', addr: '10.0.0.1', port: 5432, local_addr: '10.0.0.9', local_port: 40000 + i, remote_pid: 1000 + i })),
};

/** PgBouncer 1.24: SHOW DATABASES says reserve_pool_size; SHOW CLIENTS has application_name; no maxwait_us here (a trimmed build). */
const v124: ConsoleFacts = {
  version: 'PgBouncer 1.24.1',
  pools: [{ database: 'app', user: 'api', cl_active: 3, cl_waiting: 1, cl_active_cancel_req: 0, cl_waiting_cancel_req: 0, sv_active: 2, sv_active_cancel: 0, sv_being_canceled: 0, sv_idle: 0, sv_used: 0, sv_tested: 0, sv_login: 0, maxwait: 0, pool_mode: 'session', load_balance_hosts: 'round-robin' }],
  databases: [{ name: 'app', host: 'db1', port: 5432, database: 'app', pool_size: 0, reserve_pool_size: 3, max_connections: 0 }],
  users: null,
  config: config({ default_pool_size: '2', query_wait_timeout: '0', max_client_conn: '4' }),
  clients: [
    { database: 'app', user: 'api', state: 'active', application_name: 'worker' },
    { database: 'app', user: 'api', state: 'active', application_name: 'worker' },
    { database: 'app', user: 'api', state: 'active', application_name: 'worker' },
    { database: 'app', user: 'api', state: 'waiting', application_name: 'cron' },
  ],
  servers: null,
};

describe('the pools, whatever the version: columns by name', () => {
  test('1.15: the pool, its size from SHOW DATABASES, maxwait with microseconds; the console pool left out', () => {
    const r = pgbouncerReport(v115, 'console', 'host=pgb port=6432 user=admin dbname=pgbouncer');
    expect(r.pools).toEqual([
      expect.objectContaining({ database: 'app', user: 'api', pool_mode: 'transaction', cl_active: 20, cl_waiting: 10, sv_active: 5, pool_size: 5, reserve_pool_size: 2, maxwait_s: 7.25, waiting_applications: [{ application_name: '', clients: 10 }] }),
    ]);
    expect(r.findings.map((f) => [f.id, f.severity])).toEqual([
      ['pgbouncer_clients_waiting', 'critical'],
      ['pgbouncer_servers_in_transaction', 'critical'],
      ['pgbouncer_guard_off', 'info'],
    ]);
    expect(r.verdict).toBe('critical');
    expect(r.exit_code).toBe(2);
    expect(r.clients).toEqual({ total: 30, waiting: 10 });
    expect(r.summary).toBe('10 clients waiting in pool app/api, the oldest for 7.3s');
  });
  test('1.24: reserve_pool_size by its new name, default_pool_size when pool_size is 0; a missing column and a failed SHOW are listed, not guessed', () => {
    const r = pgbouncerReport(v124, 'console', 'x');
    expect(r.pools[0]).toMatchObject({ pool_mode: 'session', pool_size: 2, reserve_pool_size: 3, maxwait_s: 0, waiting_applications: [{ application_name: 'cron', clients: 1 }] });
    expect(r.unavailable).toEqual(['SHOW SERVERS', 'SHOW USERS', 'pools.maxwait_us']);
    expect(r.findings.map((f) => f.id)).toEqual(['pgbouncer_clients_waiting', 'pgbouncer_pool_saturated', 'pgbouncer_max_client_conn', 'pgbouncer_guard_off']);
    expect(r.findings.find((f) => f.id === 'pgbouncer_max_client_conn')).toMatchObject({ severity: 'critical', summary: '4 of max_client_conn 4 client connections in use: new clients are refused' });
    expect(r.findings.find((f) => f.id === 'pgbouncer_guard_off')!.summary).toMatch(/^query_wait_timeout is 0/);
  });
  test('no SHOW POOLS answer: unknown, not OK', () => {
    const r = pgbouncerReport({ ...v124, pools: null }, 'console', 'x');
    expect(r).toMatchObject({ verdict: 'unknown', exit_code: 3, summary: 'PgBouncer did not answer SHOW POOLS' });
  });
});

describe('the pooler joined with the server', () => {
  const rows = [0, 1, 2, 3, 4].map((i) => ({
    pid: 1000 + i,
    state: i < 4 ? 'idle in transaction' : 'active',
    application_name: 'api',
    client_port: 40000 + i,
    xact_age_ms: 60_000 - i,
    wait_event_type: 'Client',
    wait_event: 'ClientRead',
    blocked_by: i === 4 ? [1000] : null,
  }));
  test('server sessions by remote_pid and local port; the idle-in-transaction ones named with the terminate to run; pools x instances against the slots', () => {
    const j = joinPooler(v115, 'console', 'args', rows, 97, 20);
    const pool = j.pools[0]!;
    expect(pool.server_sessions.map((s) => s.pid)).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(pool.server_sessions[0]).toMatchObject({ blocks_others: true, state: 'idle in transaction' });
    expect(pool.unmatched).toBe(0);
    expect(j.findings[0]!.next).toBe('4 server sessions behind the pool are idle in transaction (pids 1000,1001,1002,1003; application api): end them on the server, dbdoctor terminate --pid 1000,1001,1002,1003 (with the server\'s -h and -p)');
    expect(j.arithmetic).toEqual({ instances: 20, pool_size_sum: 5, may_open: 100, server_ordinary_slots: 97, exceeds: true, summary: expect.stringMatching(/= 100 server connections, against 97 ordinary slots on the server: the pools can exhaust the server/) });
    expect(j.findings.map((f) => f.id)).toContain('pgbouncer_pools_exceed_server');
  });
  test('a server connection whose pid is on the server but whose port is not PgBouncer\'s is not taken for it', () => {
    const moved = rows.map((r) => (r.pid === 1001 ? { ...r, client_port: 55555 } : r));
    expect(joinPooler(v115, 'console', 'args', moved, 97, 1).pools[0]!.unmatched).toBe(1);
  });
});

describe("PgBouncer's errors, told from PostgreSQL's by structure", () => {
  const ctx = { host: 'pgb', port: 6432, user: 'u', dbname: 'd', connectTimeoutMs: 5000, sslmode: 'prefer' as const };
  test.each([
    ['no more connections allowed (max_client_conn)', 'pgbouncer_max_client_conn', 'slots'],
    ['pgbouncer cannot connect to server', 'pgbouncer_server_down', 'startup'],
    ['query_wait_timeout', 'pgbouncer_query_wait_timeout', 'startup'],
  ])('%s', (message, cause, step) => {
    const f = classifyConnectError({ code: '08P01', message, severity: 'ERROR' }, ctx);
    expect(f).toMatchObject({ cause, step, exit_code: 2, runbook: 'pgbouncer-errors' });
  });
  test('the same words with a source location are PostgreSQL\'s (or anyone\'s), never taken for PgBouncer\'s', () => {
    const f = classifyConnectError({ code: '08P01', message: 'no more connections allowed (max_client_conn)', severity: 'FATAL', routine: 'ProcessStartupPacket', file: 'backend_startup.c' }, ctx);
    expect(f.cause).toBe('protocol_violation');
  });
});
