/**
 * PgBouncer's admin console: the database `pgbouncer` on PgBouncer's port. It speaks only the
 * simple query protocol and knows only its own commands (SHOW ..., no SET, no SELECT), so it gets
 * a connection of its own (src/db/session.ts connectClient) and no session set-up. Every SHOW is
 * asked for alone; one that fails (a stats user may not run some, an old version lacks one) is
 * reported as unavailable by the caller, and the rest are still read.
 */
import type { ConsoleFacts, ConsoleRow } from '../core/pgbouncer.js';
import { DbdoctorError, InterruptedError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import type { Target } from '../core/target.js';
import { connectClient, DEFAULT_STATEMENT_TIMEOUT_MS, type SessionOptions } from './session.js';

/** The console's commands dbdoctor reads, in the order it asks them. */
const SHOW = {
  version: 'SHOW VERSION',
  pools: 'SHOW POOLS',
  databases: 'SHOW DATABASES',
  users: 'SHOW USERS',
  config: 'SHOW CONFIG',
  clients: 'SHOW CLIENTS',
  servers: 'SHOW SERVERS',
} as const;

export async function readConsole(t: Target, opts: SessionOptions = {}): Promise<ConsoleFacts> {
  const { client } = await connectClient(t, opts);
  const timeoutMs = opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const show = async (sql: string): Promise<ConsoleRow[] | null> => {
    if (opts.signal?.aborted) throw new InterruptedError();
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = client.query(sql) as Promise<{ rows: ConsoleRow[] }>;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new DbdoctorError(`PgBouncer's console did not answer ${sql} within ${timeoutMs} ms`, {
                exitCode: ExitCode.UNKNOWN,
                hint: 'PgBouncer may be overloaded (it is single-threaded); raise --statement-timeout',
                cause: 'statement_timeout',
              }),
            ),
          timeoutMs,
        );
      });
      return (await Promise.race([answer, late])).rows;
    } catch (err) {
      if (err instanceof DbdoctorError) throw err;
      // the console's own refusal (a command this version or role may not run): unavailable
      if ((err as { code?: string }).code === '08P01') return null;
      throw new DbdoctorError(`PgBouncer's console failed: ${(err as Error).message}`, { exitCode: ExitCode.UNKNOWN, hint: 'connect with -d pgbouncer as a user in admin_users or stats_users', cause: 'query_failed' });
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    const facts: Record<string, ConsoleRow[] | string | null> = {};
    for (const [key, sql] of Object.entries(SHOW)) {
      const rows = await show(sql);
      facts[key] = key === 'version' ? (rows?.[0] ? String(Object.values(rows[0])[0]) : null) : rows;
    }
    return facts as unknown as ConsoleFacts;
  } finally {
    await client.end().catch(() => undefined);
  }
}
