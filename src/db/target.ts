/**
 * Resolving where to connect, with the files libpq reads: pg_service.conf and ~/.pgpass. The
 * deciding is in core/target.ts; this module only reads files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parse as parseIni } from 'ini';
import type { ConnParams } from '../core/conninfo.js';
import { type ConnectionFlags, resolveTarget, type Target } from '../core/target.js';

type Env = Readonly<Record<string, string | undefined>>;

function serviceFiles(env: Env): string[] {
  const files: string[] = [];
  files.push(env.PGSERVICEFILE ?? join(homedir(), '.pg_service.conf'));
  files.push(join(env.PGSYSCONFDIR ?? '/etc/postgresql-common', 'pg_service.conf'));
  return files;
}

/** libpq reads the user's file first and the system file second; the first file naming the service wins. */
export function lookupService(name: string, env: Env): ConnParams | undefined {
  for (const file of serviceFiles(env)) {
    if (!existsSync(file)) continue;
    const sections = parseIni(readFileSync(file, 'utf8')) as Record<string, unknown>;
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
