/**
 * A real PgBouncer (Debian's `pgbouncer`, which .ci/run installs when it is missing) on loopback
 * in front of a test server, started and stopped by the test that asks for it. No pgbouncer on
 * PATH (or in /usr/sbin) is a failed test, never a skipped one. As root it runs as `nobody`.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/db/embedded.js';
import type { TestServer } from './server.js';
import { scaled } from './timing.js';

export interface PgBouncerOptions {
  poolMode: 'session' | 'transaction';
  defaultPoolSize?: number;
  maxClientConn?: number;
  /** Extra [pgbouncer] settings. */
  settings?: Record<string, string | number>;
}

export interface RunningPgBouncer {
  host: string;
  port: number;
  /** The password of `postgres` (admin_users) and of every role the tests use through it. */
  password: string;
  /** A conninfo string for a database through PgBouncer (`pgbouncer` for its console). */
  conninfo(dbname: string, user?: string): string;
  log(): string;
  stop(): Promise<void>;
}

export function pgbouncerPath(): string {
  for (const p of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer', '/opt/homebrew/bin/pgbouncer']) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error('no pgbouncer to test with: install it (apt-get install pgbouncer; brew install pgbouncer)');
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** PgBouncer in front of `server`, every database of it reachable under its own name, with `postgres` and the test roles. */
export async function startPgBouncer(server: TestServer, roles: Record<string, string>, opts: PgBouncerOptions): Promise<RunningPgBouncer> {
  const bin = pgbouncerPath();
  const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-pgb-'));
  const port = await freePort();
  const users = { postgres: server.password, ...roles };
  const quote = (v: string) => `"${v.replace(/"/g, '""')}"`;
  writeFileSync(join(dir, 'userlist.txt'), `${Object.entries(users).map(([u, p]) => `${quote(u)} ${quote(p)}`).join('\n')}\n`, { mode: 0o600 });
  const settings: Record<string, string | number> = {
    listen_addr: '127.0.0.1',
    listen_port: port,
    unix_socket_dir: '',
    auth_type: 'scram-sha-256',
    auth_file: join(dir, 'userlist.txt'),
    admin_users: 'postgres',
    stats_users: 'monitor_user',
    pool_mode: opts.poolMode,
    default_pool_size: opts.defaultPoolSize ?? 20,
    max_client_conn: opts.maxClientConn ?? 200,
    logfile: join(dir, 'pgbouncer.log'),
    ignore_startup_parameters: 'extra_float_digits,options',
    ...opts.settings,
  };
  const ini = [
    '[databases]',
    // every database by its own name; the server password from auth_file (same role names)
    `* = host=${server.host} port=${server.port}`,
    '',
    '[pgbouncer]',
    ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'pgbouncer.ini'), ini, { mode: 0o600 });
  const root = process.getuid?.() === 0;
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());
    chmodSync(dir, 0o700);
    for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), uid, gid);
  }
  const child: ChildProcess = spawn(bin, [...(root ? ['-u', 'nobody'] : []), join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  child.on('error', () => undefined);
  const log = () => {
    try {
      return readFileSync(join(dir, 'pgbouncer.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const waitExit = (ms: number) =>
    new Promise<void>((resolve) => {
      if (exited()) return resolve();
      const t = setTimeout(resolve, ms);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  const stop = async () => {
    if (!exited()) {
      child.kill('SIGTERM');
      await waitExit(5000);
      if (!exited()) child.kill('SIGKILL');
      await waitExit(5000);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + scaled(15_000);
  while (!(await listening(port))) {
    if (exited() || Date.now() > deadline) {
      const why = log();
      await stop();
      throw new Error(`pgbouncer did not start on 127.0.0.1:${port}:\n${why}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: '127.0.0.1',
    port,
    password: server.password,
    conninfo: (dbname, user = 'postgres') => `host=127.0.0.1 port=${port} dbname=${dbname} user=${user}`,
    log,
    stop,
  };
}
