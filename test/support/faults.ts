/**
 * Fault injection for the reliability suite: peers that are not PostgreSQL, a dbdoctor run the
 * test can act on while it runs, locks that hold dbdoctor's reads, a polling observer that sees
 * dbdoctor's session from the outside, and a hot standby built with the low-level base backup.
 * Everything here is bounded in time, and everything it starts has a stop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, closeSync } from 'node:fs';
import { createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import pg from 'pg';
import { freePort, serverBinaries, stopPostmaster } from '../../src/db/embedded.js';
import { serverProgramEnv } from '../../src/db/find-postgres.js';
import { BIN, type CliResult, cleanEnv } from './cli.js';
import { ROLE_PASSWORD, type TestServer } from './server.js';
import { scaled } from './timing.js';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

// ---------------------------------------------------------------------------------------------
// Peers that are not PostgreSQL

export interface FakePeer {
  port: number;
  /** Connections the peer accepted. */
  accepted(): number;
  close(): Promise<void>;
}

/**
 * A TCP peer on loopback. `reply` is written when a client connects (`on: 'connect'`) or after the
 * first bytes arrive (`on: 'data'`), then the socket is closed (`close: true`) or left open.
 * With no reply, it accepts and never answers.
 */
export async function fakePeer(opts: { reply?: Buffer | string; on?: 'connect' | 'data'; close?: boolean } = {}): Promise<FakePeer> {
  const sockets: Socket[] = [];
  let count = 0;
  const server: Server = createServer((sock) => {
    count++;
    sockets.push(sock);
    sock.on('error', () => undefined);
    if (opts.reply === undefined) return;
    const answer = () => {
      sock.write(opts.reply!);
      if (opts.close) sock.end();
    };
    if (opts.on === 'data') sock.once('data', answer);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    accepted: () => count,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A dbdoctor run the test can act on while it runs

export interface RunningCli {
  child: ChildProcess;
  done: Promise<CliResult & { ms: number; signal: string | null }>;
}

/** Starts the built binary without waiting for it (a hard time limit kills it: a hang fails). */
export function startCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): RunningCli {
  const started = Date.now();
  const sub: ResultPromise = execa('node', [BIN, ...args], {
    env: cleanEnv(opts.env),
    extendEnv: false,
    reject: false,
    timeout: scaled(opts.timeoutMs ?? 30_000),
    stdin: 'ignore',
  });
  const done = sub.then((r) => ({
    exitCode: r.exitCode ?? -1,
    stdout: String(r.stdout),
    stderr: String(r.stderr),
    ms: Date.now() - started,
    signal: r.signal ?? null,
  }));
  return { child: sub as unknown as ChildProcess, done };
}

// ---------------------------------------------------------------------------------------------
// Watching dbdoctor from the outside

/** A superuser client that stays open, for polling while dbdoctor runs. */
export async function observer(s: TestServer): Promise<pg.Client> {
  return s.client({ application_name: 'reliability-observer' });
}

export interface DbdoctorBackend {
  pid: number;
  state: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
  query: string | null;
}

/** Polls (bounded) until some dbdoctor session satisfies `ok`; returns it. */
export async function waitForDbdoctor(obs: pg.Client, ok: (b: DbdoctorBackend) => boolean, ms = 10_000): Promise<DbdoctorBackend> {
  const deadline = Date.now() + scaled(ms);
  let last: DbdoctorBackend[] = [];
  while (Date.now() < deadline) {
    last = (
      await obs.query<DbdoctorBackend>(
        // the function, not the view (a test may hold a catalog view locked, as holdRolesView does)
        `SELECT pid, state, wait_event_type, wait_event, query FROM pg_stat_get_activity(NULL) WHERE application_name = 'dbdoctor' AND backend_type = 'client backend'`,
      )
    ).rows;
    const hit = last.find(ok);
    if (hit) return hit;
    await sleep(10);
  }
  throw new Error(`no dbdoctor session matched within ${ms} ms; last seen: ${JSON.stringify(last)}`);
}

/** The locks a backend holds or waits for, as pg_locks shows them. */
export async function locksOf(obs: pg.Client, pid: number): Promise<Array<{ locktype: string; mode: string; granted: boolean; relation: string | null }>> {
  return (
    await obs.query(
      `SELECT locktype, mode, granted, relation::regclass::text AS relation FROM pg_locks WHERE pid = $1 ORDER BY granted DESC, locktype, relation`,
      [pid],
    )
  ).rows;
}

// ---------------------------------------------------------------------------------------------
// Locks that hold dbdoctor's reads

export interface HeldLock {
  pid: number;
  release(): Promise<void>;
}

/** The lock its client holds in an open transaction, released by rolling back and closing it. */
function heldBy(c: pg.Client): HeldLock {
  return {
    pid: (c as unknown as { processID: number }).processID,
    async release() {
      await c.query('ROLLBACK').catch(() => undefined);
      await Promise.race([c.end().catch(() => undefined), sleep(3000)]);
    },
  };
}

/**
 * Holds `LOCK <relation> IN <mode> MODE` in an open transaction. pg_locks is a view over
 * pg_lock_status() alone, so holding it ACCESS EXCLUSIVE makes every statement that reads it wait
 * (lock_timeout / statement_timeout apply) without blocking new connections, which a lock on
 * pg_authid or pg_database would.
 */
export async function holdLock(s: TestServer, relation = 'pg_catalog.pg_locks', mode = 'ACCESS EXCLUSIVE'): Promise<HeldLock> {
  const c = await s.client({ application_name: 'reliability-lock-holder' });
  await c.query('BEGIN');
  await c.query(`LOCK TABLE ${relation} IN ${mode} MODE`);
  return heldBy(c);
}

/**
 * Holds pg_roles, which every command's reads name (the server facts read the role's row, the
 * activity read each session's role; pg_stat_activity itself is read from the function under it),
 * ACCESS EXCLUSIVE in an open transaction, without blocking new connections: `ALTER VIEW ... OWNER
 * TO` its current owner changes nothing (and is rolled back) but locks the view itself only. LOCK
 * TABLE on a view would also lock the tables under it (pg_authid, pg_db_role_setting), which
 * every new connection reads.
 */
export async function holdRolesView(s: TestServer): Promise<HeldLock> {
  const c = await s.client({ application_name: 'reliability-lock-holder' });
  await c.query('BEGIN');
  const [owner] = (await c.query<{ o: string }>(`SELECT pg_get_userbyid(relowner)::text AS o FROM pg_class WHERE oid = 'pg_catalog.pg_roles'::regclass`)).rows;
  await c.query(`ALTER VIEW pg_catalog.pg_roles OWNER TO "${owner!.o.replace(/"/g, '""')}"`);
  return heldBy(c);
}

// ---------------------------------------------------------------------------------------------
// Server-side logs

/** Lines the server logged while `fn` ran (needs an embedded server). */
export async function serverLogDuring<T>(s: TestServer, fn: () => Promise<T>): Promise<{ result: T; log: string }> {
  if (!s.embedded) throw new Error('serverLogDuring needs an embedded server');
  const before = readFileSync(s.embedded.logFile, 'utf8').length;
  const result = await fn();
  await sleep(300);
  return { result, log: readFileSync(s.embedded.logFile, 'utf8').slice(before) };
}

export interface DbdoctorConnectionLog {
  pid: number;
  statements: string[];
}

/**
 * The connections dbdoctor opened and the statements each ran, from a log written with
 * log_connections=on, log_statement=all and the default log_line_prefix ('%m [%p] ').
 */
export function dbdoctorConnections(log: string): DbdoctorConnectionLog[] {
  const lines = log.split('\n');
  const pids = new Set<number>();
  for (const l of lines) {
    const m = /\[(\d+)\][^\n]*connection authorized: [^\n]*application_name=dbdoctor\b/.exec(l);
    if (m) pids.add(Number(m[1]));
  }
  const out = new Map<number, string[]>([...pids].map((p) => [p, []]));
  let current: string[] | null = null;
  for (const l of lines) {
    // simple protocol: "statement: ..."; extended protocol (bound parameters): "execute <unnamed>: ..."
    const m = /^\S+ \S+ \S+ \[(\d+)\] (?:\S+: )?LOG: {2}(?:statement|execute [^:]*): ([\s\S]*)$/.exec(l);
    if (m) {
      current = out.get(Number(m[1])) ?? null;
      current?.push(m[2]!);
      continue;
    }
    // a statement's continuation lines (multi-line SQL) start with whitespace or no timestamp
    if (current && l !== '' && !/^\d{4}-\d\d-\d\d /.test(l)) current[current.length - 1] += `\n${l}`;
    else if (/^\d{4}-\d\d-\d\d /.test(l)) current = null;
  }
  return [...out].map(([pid, statements]) => ({ pid, statements }));
}

// ---------------------------------------------------------------------------------------------
// A hot standby

export interface Standby {
  host: string;
  port: number;
  pid: number;
  url(opts?: { user?: string; password?: string; dbname?: string }): string;
  sql<T extends object = Record<string, unknown>>(text: string): Promise<T[]>;
  stop(): Promise<void>;
}

function chownTree(path: string, as: { uid: number; gid: number }): void {
  chownSync(path, as.uid, as.gid);
  if (statSync(path).isDirectory()) for (const e of readdirSync(path)) chownTree(join(path, e), as);
}

/**
 * A streaming hot standby of `primary`, made with the low-level base backup API
 * (pg_backup_start/pg_backup_stop on 15+, pg_start_backup/pg_stop_backup on 14): the npm-shipped
 * binaries have no pg_basebackup, and the machine's may be another major. The data directory is
 * copied while the backup is open, backup_label is written from pg_backup_stop's answer, and
 * standby.signal + primary_conninfo make it stream from the primary.
 */
export async function startStandby(primary: TestServer, settings: Record<string, string | number> = {}): Promise<Standby> {
  if (!primary.embedded) throw new Error('startStandby needs an embedded primary');
  // Binaries the server's OS user can reach (copied to a shared cache when the clone is private).
  const found = serverBinaries(primary.major);
  if (!found) throw new Error(`no PostgreSQL ${primary.major} binaries`);
  const { bins, runAs: as } = found;
  const srcData = join(primary.embedded.dir, 'data');
  const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-standby-'));
  const data = join(dir, 'data');
  const c = await primary.client({ application_name: 'reliability-basebackup' });
  let child: ChildProcess | undefined;
  try {
    const v15 = primary.major >= 15;
    await c.query(v15 ? `SELECT pg_backup_start('reliability', true)` : `SELECT pg_start_backup('reliability', true, false)`);
    cpSync(srcData, data, {
      recursive: true,
      filter: (p) => !/[/\\](postmaster\.pid|postmaster\.opts)$/.test(p),
    });
    const stop = (await c.query<{ labelfile: string; spcmapfile: string | null }>(v15 ? 'SELECT labelfile, spcmapfile FROM pg_backup_stop(false)' : 'SELECT labelfile, spcmapfile FROM pg_stop_backup(false, false)')).rows[0]!;
    // The WAL written up to the backup's end, so the standby reaches consistency even before streaming.
    cpSync(join(srcData, 'pg_wal'), join(data, 'pg_wal'), { recursive: true, force: true });
    writeFileSync(join(data, 'backup_label'), stop.labelfile);
    if (stop.spcmapfile) writeFileSync(join(data, 'tablespace_map'), stop.spcmapfile);
    writeFileSync(join(data, 'standby.signal'), '');
    const port = await freePort();
    const conninfo = `host=127.0.0.1 port=${primary.port} user=postgres password=${primary.password} application_name=reliability-standby`;
    writeFileSync(join(data, 'postgresql.auto.conf'), `primary_conninfo = '${conninfo.replace(/'/g, "''")}'\n`);
    if (as) chownTree(dir, as);
    const logFile = join(dir, 'server.log');
    const fd = openSync(logFile, 'a');
    if (as) chownSync(logFile, as.uid, as.gid);
    const all: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      port,
      unix_socket_directories: dir,
      shared_buffers: '16MB',
      fsync: 'off',
      max_connections: 100,
      hot_standby: 'on',
      ...settings,
    };
    const args = ['-D', data];
    for (const [k, v] of Object.entries(all)) args.push('-c', `${k}=${v}`);
    child = spawn(join(bins.binDir, 'postgres'), args, { cwd: dir, stdio: ['ignore', fd, fd], env: serverProgramEnv(), ...(as ?? {}) });
    child.on('error', () => undefined);
    closeSync(fd);
    const proc = child;
    const url = ({ user = 'postgres', password, dbname = 'postgres' }: { user?: string; password?: string; dbname?: string } = {}) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password ?? (user === 'postgres' ? primary.password : ROLE_PASSWORD))}@127.0.0.1:${port}/${encodeURIComponent(dbname)}`;
    const standby: Standby = {
      host: '127.0.0.1',
      port,
      pid: proc.pid ?? 0,
      url,
      async sql<T extends object>(text: string) {
        const sc = new pg.Client({ connectionString: url(), application_name: 'reliability-observer' });
        sc.on('error', () => undefined);
        await sc.connect();
        try {
          return (await sc.query(text)).rows as T[];
        } finally {
          await sc.end();
        }
      },
      async stop() {
        await stopPostmaster(proc, 'fast');
        rmSync(dir, { recursive: true, force: true });
      },
    };
    if (settings.hot_standby === 'off') {
      // it never accepts connections; wait until it has at least started to reject them
      await waitForLog(logFile, /database system is ready to accept read-only connections|consistent recovery state reached|entering standby mode/, 30_000);
      return standby;
    }
    const deadline = Date.now() + 30_000;
    let last = '';
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) break;
      try {
        const [r] = await standby.sql<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        if (r?.r) return standby;
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(100);
    }
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
    await standby.stop();
    throw new Error(`the standby did not come up: ${last}\n${log}`);
  } catch (err) {
    if (!child) rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function waitForLog(file: string, re: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (existsSync(file) && re.test(readFileSync(file, 'utf8'))) return;
    await sleep(100);
  }
  throw new Error(`the server log never matched ${re}`);
}

// ---------------------------------------------------------------------------------------------
// A network path that goes silent

export interface FreezingProxy {
  port: number;
  /** True once the proxy has stopped forwarding. */
  frozen(): boolean;
  close(): Promise<void>;
}

/**
 * A TCP proxy to `upstreamPort` that forwards the start-up, authentication and the first
 * `passQueries` query messages (simple 'Q' or extended 'P'), then goes silent in both directions
 * with every socket left open: the server is alive, the session exists, and nothing more arrives
 * (a network partition, a frozen load balancer). Use sslmode=disable so the messages are readable.
 */
export async function freezingProxy(upstreamPort: number, passQueries = 1): Promise<FreezingProxy> {
  const sockets: Socket[] = [];
  let isFrozen = false;
  const server = createServer((client) => {
    sockets.push(client);
    client.on('error', () => undefined);
    const upstream = new Socket();
    sockets.push(upstream);
    upstream.on('error', () => undefined);
    upstream.connect(upstreamPort, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let startedUp = false;
    let queries = 0;
    let silent = false;
    client.on('data', (chunk: Buffer) => {
      if (silent) return;
      buf = Buffer.concat([buf, chunk]);
      // forward whole messages until the query that is to be held
      for (;;) {
        if (!startedUp) {
          if (buf.length < 8) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const code = buf.readInt32BE(4);
          upstream.write(buf.subarray(0, len));
          buf = buf.subarray(len);
          // an SSLRequest is followed by the real start-up message
          if (code !== 80877103) startedUp = true;
          continue;
        }
        if (buf.length < 5) return;
        const type = String.fromCharCode(buf[0]!);
        const len = buf.readInt32BE(1) + 1;
        if (buf.length < len) return;
        if (type === 'Q' || type === 'P') {
          queries++;
          if (queries > passQueries) {
            silent = true;
            isFrozen = true;
            return;
          }
        }
        upstream.write(buf.subarray(0, len));
        buf = buf.subarray(len);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!silent) client.write(chunk);
    });
    upstream.on('close', () => {
      if (!silent) client.destroy();
    });
    client.on('close', () => {
      if (!silent) upstream.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    frozen: () => isFrozen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
