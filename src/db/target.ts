/**
 * Resolving where to connect, with the files libpq reads: pg_service.conf and ~/.pgpass. The
 * deciding is in core/target.ts; this module only reads files.
 */
import { statSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { type ConnParams, parseServiceFile } from '../core/conninfo.js';
import { DbdoctorError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { type ConnectionFlags, resolveTarget, type Target } from '../core/target.js';
import { FileProblem, readRegularText } from '../ui/files.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Where libpq builds keep the system-wide pg_service.conf when PGSYSCONFDIR is not set: Debian's
 * and Ubuntu's, the PGDG RPMs', Homebrew's (Apple silicon, Intel) and PostgreSQL's own default.
 * libpq reads the one it was built with; dbdoctor, built with none, reads the first that exists.
 */
const SYSCONF_DIRS = ['/etc/postgresql-common', '/etc/sysconfig/pgsql', '/opt/homebrew/etc', '/usr/local/etc', '/usr/local/pgsql/etc'];

function serviceFiles(env: Env): string[] {
  // As in libpq, a variable that is set but empty counts as unset.
  const user = env.PGSERVICEFILE || join(homedir(), '.pg_service.conf');
  if (env.PGSYSCONFDIR) return [user, join(env.PGSYSCONFDIR, 'pg_service.conf')];
  const system = SYSCONF_DIRS.map((d) => join(d, 'pg_service.conf')).find((f) => exists(f));
  return system ? [user, system] : [user];
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where libpq's builds put the server's Unix socket: Debian's, Ubuntu's and the PGDG packages'
 * directory first, then PostgreSQL's own default (/tmp, which Homebrew and most source builds use).
 */
export const SOCKET_DIRS = ['/var/run/postgresql', '/tmp'];

/** The first of libpq's socket directories where a server listens on this port (a socket file is there). */
export function findSocketDir(port: number, dirs: readonly string[] = SOCKET_DIRS): string | undefined {
  return dirs.find((d) => {
    try {
      return statSync(join(d, `.s.PGSQL.${port}`)).isSocket();
    } catch {
      return false;
    }
  });
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
    const found = parseServiceFile(text, name, file);
    if (found) return found;
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
  return resolveTarget({ flags, env, osUser: osUser(env), lookupService: (name) => lookupService(name, env), findSocketDir: (port) => findSocketDir(port) });
}

/** The password from ~/.pgpass (or PGPASSFILE) for this target, as libpq would find it. */
export async function pgpassPassword(t: Target): Promise<string | undefined> {
  const { default: pgpass } = (await import('pgpass')) as unknown as {
    default: (info: object, cb: (pw: string | undefined) => void) => void;
  };
  return new Promise((resolve) => {
    // libpq looks a Unix socket's connection up as "localhost"
    pgpass({ host: t.host.startsWith('/') ? 'localhost' : t.host, port: t.port, database: t.dbname, user: t.user }, (pw) => resolve(pw || undefined));
  });
}
