/**
 * PgBouncer, as its admin console shows it: the pools, their limits and the guards, read by
 * column name (the columns differ between PgBouncer versions: a missing one is reported as
 * unavailable, an unknown one ignored), and the runbook's decisions about them. No I/O here: the
 * console is read in src/db/pgbouncer.ts.
 */
import { byPid, type SessionRow } from './activity.js';
import { worst } from './capacity.js';
import { conninfoPair } from './conninfo.js';
import { plural } from './count.js';
import { RANK } from './diagnose/shared.js';
import { DbdoctorError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { shellWord } from './printed.js';
import type { Target } from './target.js';
import { exitCodeForSeverity, type ExitCodeValue, type Severity } from './exit-codes.js';

/** One row of a SHOW command, as the console sent it. */
export type ConsoleRow = Readonly<Record<string, unknown>>;

/** What the console answered: each SHOW's rows, or null when the command failed (an older version, a stats user). */
export interface ConsoleFacts {
  version: string | null;
  pools: ConsoleRow[] | null;
  databases: ConsoleRow[] | null;
  users: ConsoleRow[] | null;
  config: ConsoleRow[] | null;
  clients: ConsoleRow[] | null;
  servers: ConsoleRow[] | null;
}

export interface Pool {
  database: string;
  user: string;
  pool_mode: string | null;
  cl_active: number | null;
  cl_waiting: number | null;
  sv_active: number | null;
  sv_idle: number | null;
  sv_used: number | null;
  sv_tested: number | null;
  sv_login: number | null;
  /** How long the oldest waiting client has waited, in seconds (maxwait + maxwait_us). */
  maxwait_s: number | null;
  /** The server connections this pool may open: the database's pool_size, else default_pool_size. */
  pool_size: number | null;
  reserve_pool_size: number | null;
  /** The database's max_db_connections (0: no limit). */
  max_db_connections: number | null;
  /** Applications of the clients waiting in this pool, most first (SHOW CLIENTS, 1.18+). */
  waiting_applications: Array<{ application_name: string; clients: number }>;
}

export interface PgBouncerLimits {
  max_client_conn: number | null;
  default_pool_size: number | null;
  max_db_connections: number | null;
  max_user_connections: number | null;
  reserve_pool_size: number | null;
}

/** The settings that would have bounded an incident (0 means off). */
export const GUARD_SETTINGS = ['query_wait_timeout', 'idle_transaction_timeout', 'server_idle_timeout', 'server_lifetime', 'client_idle_timeout'] as const;
export type GuardSetting = (typeof GUARD_SETTINGS)[number];

export interface PoolerFinding {
  id: 'pgbouncer_clients_waiting' | 'pgbouncer_pool_saturated' | 'pgbouncer_servers_in_transaction' | 'pgbouncer_max_client_conn' | 'pgbouncer_guard_off' | 'pgbouncer_pools_exceed_server';
  severity: Severity;
  summary: string;
  /** The pool (database/user) it is about, when it is about one. */
  pool: { database: string; user: string } | null;
  evidence: string;
  /** What to look at or run next. */
  next: string;
  /** The runbook node (an anchor in runbooks/pgbouncer.md). */
  runbook: string;
}

export interface PgBouncerReport {
  verdict: Severity;
  exit_code: ExitCodeValue;
  summary: string;
  target: string;
  version: string | null;
  pools: Pool[];
  limits: PgBouncerLimits;
  clients: { total: number | null; waiting: number | null };
  guards: Record<GuardSetting, number | null>;
  findings: PoolerFinding[];
  /** What the console did not show (a SHOW that failed, a column this version lacks). */
  unavailable: string[];
}

/** The conninfo that reaches this console again, for the next command a finding suggests: never the password. */
export function consoleConninfo(t: Pick<Target, 'host' | 'hostaddr' | 'port' | 'user'>): string {
  return [conninfoPair('host', t.hostaddr ?? t.host), `port=${t.port}`, conninfoPair('user', t.user), 'dbname=pgbouncer'].join(' ');
}

/** The admin console is the database named pgbouncer, on PgBouncer's port (as psql users reach it). */
export function isConsoleTarget(t: { dbname: string }): boolean {
  return t.dbname === 'pgbouncer';
}

function num(row: ConsoleRow, column: string, missing: Set<string>, what: string): number | null {
  if (!(column in row)) {
    missing.add(`${what}.${column}`);
    return null;
  }
  const v = row[column];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : null;
}

/** A pool's key: its database and user. */
function poolKey(database: string | null, user: string | null): string {
  return `${database}\u0000${user}`;
}

function str(row: ConsoleRow, column: string): string | null {
  const v = row[column];
  return v === null || v === undefined ? null : String(v);
}

function configValue(config: ConsoleRow[] | null, key: string): number | null {
  const row = config?.find((r) => r.key === key);
  if (!row) return null;
  const n = Number(row.value);
  return Number.isFinite(n) ? n : null;
}

/** The pools as one shape whatever the version: columns read by name. */
export function normalizePools(facts: ConsoleFacts, unavailable: Set<string>): Pool[] {
  if (!facts.pools) return [];
  const defaultPoolSize = configValue(facts.config, 'default_pool_size');
  const waiting = new Map<string, Map<string, number>>();
  for (const c of facts.clients ?? []) {
    if (str(c, 'state') !== 'waiting') continue;
    const key = poolKey(str(c, 'database'), str(c, 'user'));
    const apps = waiting.get(key) ?? new Map<string, number>();
    const app = str(c, 'application_name') ?? '';
    apps.set(app, (apps.get(app) ?? 0) + 1);
    waiting.set(key, apps);
  }
  // The first row of each name, as find() gave it: looked up once per pool.
  const databases = new Map<string, ConsoleRow>();
  for (const d of facts.databases ?? []) {
    const name = str(d, 'name');
    if (name !== null && !databases.has(name)) databases.set(name, d);
  }
  return facts.pools
    .filter((r) => str(r, 'database') !== 'pgbouncer')
    .map((r) => {
      const database = str(r, 'database') ?? '';
      const user = str(r, 'user') ?? '';
      const db = databases.get(database);
      const dbPoolSize = db ? num(db, 'pool_size', unavailable, 'databases') : null;
      // the column is reserve_pool before 1.24 and reserve_pool_size from 1.24
      const reserve = db ? (num(db, 'reserve_pool_size', new Set(), 'databases') ?? num(db, 'reserve_pool', new Set(), 'databases')) : null;
      const maxwait = num(r, 'maxwait', unavailable, 'pools');
      const maxwaitUs = num(r, 'maxwait_us', unavailable, 'pools');
      const apps = waiting.get(poolKey(database, user)) ?? new Map<string, number>();
      return {
        database,
        user,
        pool_mode: str(r, 'pool_mode') ?? (db ? str(db, 'pool_mode') : null),
        cl_active: num(r, 'cl_active', unavailable, 'pools'),
        cl_waiting: num(r, 'cl_waiting', unavailable, 'pools'),
        sv_active: num(r, 'sv_active', unavailable, 'pools'),
        sv_idle: num(r, 'sv_idle', unavailable, 'pools'),
        sv_used: num(r, 'sv_used', unavailable, 'pools'),
        sv_tested: num(r, 'sv_tested', unavailable, 'pools'),
        sv_login: num(r, 'sv_login', unavailable, 'pools'),
        maxwait_s: maxwait === null ? null : maxwait + (maxwaitUs ?? 0) / 1e6,
        pool_size: dbPoolSize !== null && dbPoolSize > 0 ? dbPoolSize : defaultPoolSize,
        reserve_pool_size: reserve,
        max_db_connections: db ? num(db, 'max_connections', unavailable, 'databases') : null,
        waiting_applications: [...apps.entries()].map(([application_name, clients]) => ({ application_name, clients })).sort((a, b) => b.clients - a.clients),
      };
    });
}

/** A pool's name as PgBouncer's log and SHOW POOLS name it. */
export const poolName = (p: { database: string; user: string }) => `${p.database}/${p.user}`;

/** Seconds at or above which a waiting client is a critical finding (clients time out at query_wait_timeout). */
export const MAXWAIT_CRITICAL_S = 5;

export function poolerFindings(pools: Pool[], limits: PgBouncerLimits, clients: { total: number | null }, guards: Record<GuardSetting, number | null>, consoleArgs: string): PoolerFinding[] {
  const out: PoolerFinding[] = [];
  for (const p of pools) {
    const waiting = p.cl_waiting ?? 0;
    const full = p.pool_size !== null && p.sv_active !== null && p.pool_size > 0 && p.sv_active >= p.pool_size;
    const apps = p.waiting_applications.filter((a) => a.application_name !== '').map((a) => `${a.application_name} (${a.clients})`);
    if (waiting > 0) {
      out.push({
        id: 'pgbouncer_clients_waiting',
        severity: (p.maxwait_s ?? 0) >= MAXWAIT_CRITICAL_S || full ? 'critical' : 'warning',
        summary: `${plural(waiting, 'client')} waiting in pool ${poolName(p)}, the oldest for ${(p.maxwait_s ?? 0).toFixed(1)}s`,
        pool: { database: p.database, user: p.user },
        evidence: `cl_waiting ${waiting}, maxwait ${(p.maxwait_s ?? 0).toFixed(1)}s, cl_active ${p.cl_active ?? '?'}, sv_active ${p.sv_active ?? '?'} of pool_size ${p.pool_size ?? '?'}${apps.length ? `; waiting: ${apps.join(', ')}` : ''}`,
        next: full
          ? `every server connection of the pool is busy: see what holds them on the server (dbdoctor diagnose -h <server> --pgbouncer ${shellWord(consoleArgs)})`
          : 'the pool has room: look at server_login and max_db_connections/max_user_connections (SHOW POOLS, SHOW DATABASES)',
        runbook: 'pgbouncer-clients-waiting',
      });
    }
    if (full) {
      const inTransaction = p.pool_mode === 'transaction';
      out.push({
        id: inTransaction ? 'pgbouncer_servers_in_transaction' : 'pgbouncer_pool_saturated',
        severity: waiting > 0 ? 'critical' : 'warning',
        summary: inTransaction
          ? `all ${plural(p.pool_size ?? 0, 'server connection')} of pool ${poolName(p)} are held by clients in a transaction`
          : `pool ${poolName(p)} is saturated: all ${plural(p.pool_size ?? 0, 'server connection')} are linked to clients`,
        pool: { database: p.database, user: p.user },
        evidence: `sv_active ${p.sv_active} of pool_size ${p.pool_size} (${p.pool_mode ?? '?'} pooling), sv_idle ${p.sv_idle ?? '?'}, cl_waiting ${waiting}`,
        next: inTransaction
          ? `a server connection is held for a whole transaction: find the transactions left open (dbdoctor diagnose -h <server> --pgbouncer ${shellWord(consoleArgs)})`
          : 'in session pooling a client keeps its server connection until it disconnects: look for idle clients holding them, or use transaction pooling',
        runbook: inTransaction ? 'pgbouncer-servers-in-transaction' : 'pgbouncer-pool-saturated',
      });
    }
  }
  if (limits.max_client_conn !== null && clients.total !== null && limits.max_client_conn > 0) {
    const pct = (clients.total / limits.max_client_conn) * 100;
    if (pct >= 90) {
      out.push({
        id: 'pgbouncer_max_client_conn',
        severity: clients.total >= limits.max_client_conn ? 'critical' : 'warning',
        summary: `${clients.total} of max_client_conn ${limits.max_client_conn} client connections in use${clients.total >= limits.max_client_conn ? ': new clients are refused' : ''}`,
        pool: null,
        evidence: `SHOW CLIENTS: ${plural(clients.total, 'client')}; max_client_conn ${limits.max_client_conn} (${Math.round(pct)}%)`,
        next: 'find the application opening clients without closing them (SHOW CLIENTS by application_name and addr), then raise max_client_conn only with the file-descriptor limit',
        runbook: 'pgbouncer-max-client-conn',
      });
    }
  }
  const anyTransaction = pools.some((p) => p.pool_mode === 'transaction');
  const advice: Array<[GuardSetting, boolean, string]> = [
    ['query_wait_timeout', true, 'clients wait for a server connection forever'],
    ['idle_transaction_timeout', anyTransaction, 'a client idle in a transaction holds its server connection forever'],
    ['client_idle_timeout', false, 'idle clients are never closed'],
  ];
  for (const [name, matters, why] of advice) {
    if (matters && guards[name] === 0) {
      out.push({
        id: 'pgbouncer_guard_off',
        severity: 'info',
        summary: `${name} is 0 (off): ${why}`,
        pool: null,
        evidence: `SHOW CONFIG: ${name} = 0`,
        next: `set ${name} in pgbouncer.ini (then RELOAD on the console)`,
        runbook: 'pgbouncer-guards',
      });
    }
  }
  return out.sort((a, b) => RANK[b.severity] - RANK[a.severity]);
}

/** The console's facts, judged: the report `pools` and `diagnose` (on a console) print. */
export function pgbouncerReport(facts: ConsoleFacts, target: string, consoleArgs: string): PgBouncerReport {
  const unavailable = new Set<string>();
  for (const [name, rows] of Object.entries(facts) as Array<[string, unknown]>) if (rows === null) unavailable.add(`SHOW ${name.toUpperCase()}`);
  const pools = normalizePools(facts, unavailable);
  const limits: PgBouncerLimits = {
    max_client_conn: configValue(facts.config, 'max_client_conn'),
    default_pool_size: configValue(facts.config, 'default_pool_size'),
    max_db_connections: configValue(facts.config, 'max_db_connections'),
    max_user_connections: configValue(facts.config, 'max_user_connections'),
    reserve_pool_size: configValue(facts.config, 'reserve_pool_size'),
  };
  const guards = Object.fromEntries(GUARD_SETTINGS.map((g) => [g, configValue(facts.config, g)])) as Record<GuardSetting, number | null>;
  const clients = {
    total: facts.clients ? facts.clients.length : null,
    waiting: facts.pools ? pools.reduce((n, p) => n + (p.cl_waiting ?? 0), 0) : null,
  };
  const findings = poolerFindings(pools, limits, clients, guards, consoleArgs);
  const verdict = facts.pools === null ? 'unknown' : worst('ok', ...findings.map((f) => f.severity));
  const top = findings.find((f) => f.severity !== 'info');
  const summary =
    facts.pools === null
      ? 'PgBouncer did not answer SHOW POOLS'
      : top
        ? top.summary
        : `${plural(pools.length, 'pool')}, ${plural(clients.waiting ?? 0, 'client')} waiting`;
  return {
    verdict,
    exit_code: exitCodeForSeverity(verdict),
    summary,
    target,
    version: facts.version,
    pools,
    limits,
    clients,
    guards,
    findings,
    unavailable: [...unavailable].sort(),
  };
}

/**
 * terminate through a pooler would signal a pooled server connection (shared by many clients, or
 * by none of the ones meant), and its own session settings land on a shared connection: refused.
 */
export function throughPoolerRefusal(): DbdoctorError {
  return new DbdoctorError('terminate refuses to work through a connection pooler (PgBouncer or the like): a pid there is a pooled server connection, not one client', {
    exitCode: ExitCode.UNKNOWN,
    hint: "connect to the PostgreSQL server directly (its host and port, not the pooler's); to see the pooler, run dbdoctor pools",
    cause: 'through_pooler',
  });
}

/** What the inspections say when their session goes through a pooler. */
export const THROUGH_POOLER_NOTE =
  "dbdoctor's connection goes through a connection pooler (PgBouncer or the like): this is the server side of the pool; client addresses are the pooler's. For the pooler itself: dbdoctor pools";

/** A server session that holds one of a pool's server connections, as pg_stat_activity shows it. */
export interface PoolServerSession {
  pid: number;
  state: string | null;
  application_name: string;
  xact_age_ms: number | null;
  wait_event_type: string | null;
  wait_event: string | null;
  /** Other sessions wait for a lock this one holds. */
  blocks_others: boolean;
}

export interface JoinedPool {
  database: string;
  user: string;
  pool_mode: string | null;
  cl_waiting: number | null;
  maxwait_s: number | null;
  waiting_applications: Array<{ application_name: string; clients: number }>;
  /** The server sessions behind the pool's server connections (SHOW SERVERS joined with pg_stat_activity). */
  server_sessions: PoolServerSession[];
  /** Server connections of the pool not found in pg_stat_activity (another server, or hidden). */
  unmatched: number;
}

export interface PoolerJoin {
  verdict: Severity;
  console: string;
  version: string | null;
  pools: JoinedPool[];
  /** "Too many clients": what the PgBouncer instances may open against what the server allows. */
  arithmetic: {
    instances: number;
    pool_size_sum: number | null;
    may_open: number | null;
    server_ordinary_slots: number | null;
    exceeds: boolean | null;
    summary: string;
  };
  findings: PoolerFinding[];
  unavailable: string[];
}

/** The pooler's side and the server's side, joined by the server connection (its pid, PgBouncer's local port). */
export function joinPooler(
  facts: ConsoleFacts,
  consoleName: string,
  consoleArgs: string,
  rows: readonly Pick<SessionRow, 'pid' | 'state' | 'application_name' | 'client_port' | 'xact_age_ms' | 'wait_event_type' | 'wait_event' | 'blocked_by'>[],
  serverOrdinarySlots: number | null,
  instances: number,
): PoolerJoin {
  const report = pgbouncerReport(facts, consoleName, consoleArgs);
  const blockers = new Set(rows.flatMap((r) => r.blocked_by ?? []));
  const rowOf = byPid(rows);
  const byPort = new Map(rows.filter((r) => r.client_port !== null).map((r) => [r.client_port!, r]));
  const unavailable = new Set(report.unavailable);
  // Each pool's server connections, bucketed once (in PgBouncer's order) rather than filtered per pool.
  const serversOf = new Map<string, ConsoleRow[]>();
  for (const s of facts.servers ?? []) {
    const database = str(s, 'database');
    const user = str(s, 'user');
    if (database === null || user === null) continue;
    const k = poolKey(database, user);
    const same = serversOf.get(k);
    if (same) same.push(s);
    else serversOf.set(k, [s]);
  }
  const pools: JoinedPool[] = report.pools.map((p) => {
    const servers = serversOf.get(poolKey(p.database, p.user)) ?? [];
    const sessions: PoolServerSession[] = [];
    let unmatched = 0;
    for (const s of servers) {
      const pid = num(s, 'remote_pid', unavailable, 'servers');
      const port = num(s, 'local_port', unavailable, 'servers');
      // the pid PgBouncer knows, checked against PgBouncer's own end of the connection when it says
      const row = pid !== null && pid > 0 ? rowOf.get(pid) : port !== null ? byPort.get(port) : undefined;
      if (!row || (port !== null && row.client_port !== null && row.client_port !== port)) {
        unmatched++;
        continue;
      }
      sessions.push({
        pid: row.pid,
        state: row.state,
        application_name: row.application_name,
        xact_age_ms: row.xact_age_ms,
        wait_event_type: row.wait_event_type,
        wait_event: row.wait_event,
        blocks_others: blockers.has(row.pid),
      });
    }
    sessions.sort((a, b) => (b.xact_age_ms ?? -1) - (a.xact_age_ms ?? -1) || a.pid - b.pid);
    return { database: p.database, user: p.user, pool_mode: p.pool_mode, cl_waiting: p.cl_waiting, maxwait_s: p.maxwait_s, waiting_applications: p.waiting_applications, server_sessions: sessions, unmatched };
  });
  const sizes = report.pools.map((p) => p.pool_size);
  const sum = sizes.every((s) => s !== null) ? sizes.reduce<number>((a, b) => a + (b ?? 0), 0) : null;
  const mayOpen = sum === null ? null : sum * instances;
  const exceeds = mayOpen === null || serverOrdinarySlots === null ? null : mayOpen > serverOrdinarySlots;
  const summary =
    mayOpen === null || serverOrdinarySlots === null
      ? 'the pool sizes or the server slots are unknown'
      : `${plural(report.pools.length, 'pool')} of ${plural(sum ?? 0, 'server connection')} in all × ${plural(instances, 'PgBouncer instance')} = ${plural(mayOpen ?? 0, 'server connection')}, against ${plural(serverOrdinarySlots ?? 0, 'ordinary slot')} on the server${exceeds ? ': the pools can exhaust the server (too many clients)' : ''}`;
  const poolOf = new Map<string, JoinedPool>();
  for (const p of pools) if (!poolOf.has(poolKey(p.database, p.user))) poolOf.set(poolKey(p.database, p.user), p);
  const findings = report.findings.map((f) => (f.pool ? { ...f, next: joinedNext(f, poolOf.get(poolKey(f.pool.database, f.pool.user))) } : f));
  if (exceeds) {
    findings.push({
      id: 'pgbouncer_pools_exceed_server',
      severity: 'warning',
      summary,
      pool: null,
      evidence: `pool sizes ${sizes.join(' + ')} = ${sum}, × ${instances} = ${mayOpen}; server ordinary slots ${serverOrdinarySlots}`,
      next: 'lower default_pool_size/pool_size or max_db_connections so that pools × instances fit the server, or raise max_connections',
      runbook: 'pgbouncer-pool-saturated',
    });
  }
  return {
    verdict: worst('ok', ...findings.map((f) => f.severity)),
    console: consoleName,
    version: report.version,
    pools,
    arithmetic: { instances, pool_size_sum: sum, may_open: mayOpen, server_ordinary_slots: serverOrdinarySlots, exceeds, summary },
    findings,
    unavailable: [...unavailable].sort(),
  };
}

/** With the server side in view, a pool's finding says which server sessions hold it. */
function joinedNext(f: PoolerFinding, pool: JoinedPool | undefined): string {
  if (!pool || pool.server_sessions.length === 0) return f.next;
  const idle = pool.server_sessions.filter((s) => s.state === 'idle in transaction' || s.state === 'idle in transaction (aborted)');
  const apps = [...new Set(pool.server_sessions.map((s) => s.application_name).filter((a) => a !== ''))];
  if (idle.length > 0) {
    const pids = idle.map((s) => s.pid).join(',');
    return `${plural(idle.length, 'server session')} behind the pool ${idle.length === 1 ? 'is' : 'are'} idle in transaction (pids ${pids}${apps.length ? `; application ${apps.join(', ')}` : ''}): end them on the server, dbdoctor terminate --pid ${pids} (with the server's -h and -p)`;
  }
  return `the pool's server sessions: pids ${pool.server_sessions.map((s) => `${s.pid} (${s.state ?? '?'})`).join(', ')}`;
}
