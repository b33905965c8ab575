/** Runs the built binary (bin/dbdoctor.cjs -> dist/app/cli.cjs) as a user would, with execa. */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { scaled } from './timing.js';

export const BIN = fileURLToPath(new URL('../../bin/dbdoctor.cjs', import.meta.url));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A clean environment: no PG* variables from the developer's shell leak into a test. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^PG|^DATABASE_URL$|^FORCE_COLOR$|^NO_COLOR$/.test(k)) continue;
    env[k] = v;
  }
  env.PGPASSFILE = '/nonexistent/pgpass';
  env.PGSERVICEFILE = '/nonexistent/pg_service.conf';
  env.PGSYSCONFDIR = '/nonexistent';
  return { ...env, ...extra };
}

/**
 * A user's client environment that must not reach a server dbdoctor starts itself (the demo's):
 * each of these broke the demo once or would point its clients elsewhere. PGPORT= (set but empty)
 * made initdb fail; PGOPTIONS stopped the server's clients from connecting.
 */
export const HOSTILE_PG_ENV: Record<string, string> = {
  PGHOST: '',
  PGPORT: '',
  PGOPTIONS: '-c work_mem=banana',
  PGUSER: 'nobody-here',
  PGDATABASE: 'nowhere',
  PGPASSWORD: 'wrong',
  PGSSLMODE: 'verify-full',
  PGSSLNEGOTIATION: 'direct',
  PGAPPNAME: 'not-the-demo',
  PGCONNECT_TIMEOUT: '1',
  PGSERVICE: 'no-such-service',
  PGDATA: '/nonexistent',
  PGCLIENT_ENCODING: 'LATIN1',
  DATABASE_URL: 'postgres://someone@nowhere.invalid/db',
};

export async function runCli(args: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const r = await execa('node', [BIN, ...args], {
    env: cleanEnv(opts.env),
    extendEnv: false,
    reject: false,
    timeout: scaled(opts.timeoutMs ?? 30_000),
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' }),
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Parses the one JSON document a --json run must print, failing loudly on anything else. */
export function parseJson<T = Record<string, unknown>>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${r.exitCode}):\n${r.stdout}\n--- stderr:\n${r.stderr}`);
  }
}

/** One definition of "a stack trace" for every suite: a V8 frame, not any line starting with "at". */
export { expectNoStack as expectNoStackTrace } from './reliability.js';
