/**
 * Server facts for `check` and `diagnose`: version, uptime, role, capacity, limits, privileges.
 * Works on PostgreSQL 14-18; `reserved_connections` and `pg_use_reserved_connections` are 16+,
 * chosen from server_version_num. One round trip, one pg_stat_activity snapshot.
 */
import type { CheckFacts, ServerProfile } from '../../core/check.js';
import { canReadAllStats, type Session, superuserOrMember } from '../session.js';
import { BACKENDS } from './activity.js';
import { type Read, readOne } from './read.js';
import { nowMs } from '../clock.js';

/** The row this module reads is exactly the facts `check` decides on (core/check.ts). */
export type ServerFactsRow = CheckFacts;

export interface LimitRow {
  kind: 'database' | 'role';
  name: string;
  oid: number;
  conn_limit: number;
  connections: number;
}

export interface ServerFacts {
  server: ServerFactsRow;
  limits: LimitRow[];
}

/** The server facts without the backend counts (see serverProfileRead). */
export interface ServerProfileFacts {
  server: ServerProfile;
  limits: LimitRow[];
}

/**
 * The statements and their parser, to send alone (readServerFacts) or together with the activity
 * snapshot (src/db/sql/read.ts), which then shares its pg_stat_activity snapshot.
 */
export function serverFactsRead(s: Session): Read<ServerFacts> {
  // with the counts, the row is all of CheckFacts
  return factsRead(s, true) as Read<ServerFacts>;
}

/**
 * The same facts without the backend counts, for commands that read the activity in the same
 * round trip and count from it (diagnose, connections): the same snapshot, so the same counts,
 * without forming every pg_stat_activity row once more.
 */
export function serverProfileRead(s: Session): Read<ServerProfileFacts> {
  return factsRead(s, false);
}

function factsRead(s: Session, countBackends: boolean): Read<ServerProfileFacts> {
  const v16 = s.serverVersionNum >= 160000;
  const reserved = v16 ? `current_setting('reserved_connections')::int` : '0';
  const canUseReserved = v16
    ? superuserOrMember('r.rolsuper', 'pg_use_reserved_connections')
    : 'r.rolsuper';
  // Rows hidden by privileges have a NULL backend_type; client backends among them are the ones
  // with a database. pg_stat_activity is read once per statement (each read of it builds every
  // row, query text included), from the function its view reads (BACKENDS: these columns need
  // none of the view's joins).
  const isClient = `coalesce(backend_type = 'client backend', datid IS NOT NULL)`;
  const counts = countBackends
    ? {
        cte: `WITH b AS (SELECT count(*) FILTER (WHERE ${isClient})::int AS client, count(*) FILTER (WHERE NOT ${isClient})::int AS other
                    FROM ${BACKENDS})
`,
        columns: `
       b.client AS client_backends,
       b.other AS other_backends,`,
        join: ' CROSS JOIN b',
      }
    : { cte: '', columns: '', join: '' };
  return {
    statements: [
      `${counts.cte}SELECT version() AS version,
       current_setting('server_version_num')::int AS server_version_num,
       extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS uptime_s,
       pg_is_in_recovery() AS in_recovery,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       ${reserved} AS reserved,${counts.columns}
       current_user::text AS current_user,
       r.oid AS current_user_oid,
       current_database()::text AS current_database,
       r.rolsuper AS is_superuser,
       ${canReadAllStats('r.rolsuper')} AS can_read_all_stats,
       ${superuserOrMember('r.rolsuper', 'pg_signal_backend')} AS can_signal_backend,
       ${canUseReserved} AS can_use_reserved,
       ${superuserOrMember('r.rolsuper', 'pg_monitor')} AS has_monitor
  FROM pg_roles r${counts.join} WHERE r.rolname = current_user`,
      `WITH c AS MATERIALIZED (SELECT datid, usesysid FROM ${BACKENDS} WHERE ${isClient})
SELECT 'database' AS kind, d.datname::text AS name, d.oid, d.datconnlimit AS conn_limit,
       (SELECT count(*)::int FROM c WHERE c.datid = d.oid) AS connections
  FROM pg_database d WHERE d.datconnlimit >= 0
UNION ALL
SELECT 'role', r.rolname::text, r.oid, r.rolconnlimit, (SELECT count(*)::int FROM c WHERE c.usesysid = r.oid)
  FROM pg_roles r WHERE r.rolconnlimit >= 0 AND r.rolcanlogin
ORDER BY 1, 2`,
    ],
    parse([serverRows = [], limitRows = []]) {
      const server = serverRows[0] as ServerProfile | undefined;
      if (!server) throw new Error('the current role is missing from pg_roles');
      return { server, limits: limitRows as LimitRow[] };
    },
  };
}

/** Both statements in one round trip: as one implicit transaction they share one snapshot. */
export function readServerFacts(s: Session): Promise<ServerFacts> {
  return readOne(s, serverFactsRead(s));
}

/** One tiny round trip, to measure latency. */
export async function ping(s: Session): Promise<number> {
  const t0 = nowMs();
  await s.query('SELECT 1');
  return nowMs() - t0;
}
