/**
 * Resolving where to connect, with the files libpq reads: pg_service.conf and ~/.pgpass. The
 * deciding is in core/target.ts; this module only reads files.
 */
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parse as parseIni } from 'ini';
import type { ConnParams } from '../core/conninfo.js';
import { DbdoctorError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { type ConnectionFlags, resolveTarget, type Target } from '../core/target.js';
import { FileProblem, readRegularText } from '../ui/files.js';

type Env = Readonly<Record<string, string | undefined>>;

function serviceFiles(env: Env): string[] {
  const files: string[] = [];
  // As in libpq, a variable that is set but empty counts as unset.
  files.push(env.PGSERVICEFILE || join(homedir(), '.pg_service.conf'));
  files.push(join(env.PGSYSCONFDIR || '/etc/postgresql-common', 'pg_service.conf'));
  return files;
}

/** A service file's text, or null when there is none; a regular file only, never waited on. */
function readServiceFile(file: string): string | null {
  try {
    return readRegularText(file, 1024 * 1024);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOTDIR') return null;
    const why = err instanceof FileProblem ? `it is ${err.what}` : (code ?? String(err));
    throw new DbdoctorError(`cannot read the service file ${file}: ${why}`, { exitCode: ExitCode.UNKNOWN, hint: 'check PGSERVICEFILE / PGSYSCONFDIR', cause: 'service_file' });
  }
}

/** libpq reads the user's file first and the system file second; the first file naming the service wins. */
export function lookupService(name: string, env: Env): ConnParams | undefined {
  for (const file of serviceFiles(env)) {
    const text = readServiceFile(file);
    if (text === null) continue;
    const sections = parseIni(text) as Record<string, unknown>;
    const section = sections[name];
    if (section && typeof section === 'object') {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(section as Record<string, unknown>)) {
        const key = k === 'username' ? 'user' : k === 'database' ? 'dbname' : k;
        out[key] = String(v);
      }
      return out as ConnParams;
    }
  }
  return undefined;
}

function osUser(env: Env): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? 'postgres';
  }
}

export function resolveConnectionTarget(flags: ConnectionFlags, env: Env = process.env): Target {
  return resolveTarget({ flags, env, osUser: osUser(env), lookupService: (name) => lookupService(name, env) });
}

/** The password from ~/.pgpass (or PGPASSFILE) for this target, as libpq would find it. */
export async function pgpassPassword(t: Target): Promise<string | undefined> {
  const { default: pgpass } = (await import('pgpass')) as unknown as {
    default: (info: object, cb: (pw: string | undefined) => void) => void;
  };
  return new Promise((resolve) => {
    pgpass({ host: t.host, port: t.port, database: t.dbname, user: t.user }, (pw) => resolve(pw || undefined));
  });
}
