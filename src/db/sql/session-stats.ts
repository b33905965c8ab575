/**
 * pg_stat_database's session counters, summed over the databases: sessions started, and those
 * that ended abandoned (no Terminate message), fatal or killed. PostgreSQL 14+ (these columns are
 * new in 14): chosen from server_version_num; before 14 the read gives null. Cumulative counters:
 * `watch` takes their deltas.
 */
import type { SessionStats } from '../../core/watch.js';
import type { Session } from '../session.js';
import type { Read } from './read.js';

const SQL = `SELECT coalesce(sum(sessions), 0)::float8 AS sessions,
       coalesce(sum(sessions_abandoned), 0)::float8 AS abandoned,
       coalesce(sum(sessions_fatal), 0)::float8 AS fatal,
       coalesce(sum(sessions_killed), 0)::float8 AS killed
  FROM pg_stat_database`;

export function sessionStatsRead(s: Session): Read<SessionStats | null> {
  if (s.serverVersionNum < 140000) return { statements: ['SELECT 1 AS none'], parse: () => null };
  return {
    statements: [SQL],
    parse: ([rows = []]) => (rows[0] as SessionStats | undefined) ?? null,
  };
}
