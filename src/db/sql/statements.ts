/**
 * Slow work as the statistics remember it: pg_stat_statements (when the extension is created in
 * this database, its library preloaded, and the view readable) and tables read mostly by
 * sequential scans (pg_stat_user_tables, this database). PostgreSQL 14-18.
 *
 * Two steps: the probe finds the extension (its schema, whether the library is loaded, the view's
 * actual columns) and reads the sequential-scan tables, in a round trip it may share; then, only
 * when the view is usable, a round trip of its own reads the top statements. Whether the library
 * is loaded is read from pg_settings (its GUCs exist only when it is preloaded), never by trying
 * the view and catching the error. Columns are chosen from the view's real attributes, not the server version: after
 * pg_upgrade an old extension version keeps its old column set (total_time before 1.8).
 */
import type { SeqScanTable, StatementsFacts, TopStatement } from '../../core/diagnose.js';
import { SEQ_SCAN_MIN_SCANS } from '../../core/diagnose/slow-queries.js';
import type { Session } from '../session.js';
import { intLiteral, type Read } from './read.js';

interface ProbeRow {
  schema: string | null;
  version: string | null;
  loaded: boolean;
  readable: boolean;
  columns: string[];
  has_info: boolean;
  seq_tables: SeqScanTable[];
}


const probeSql = (minRows: string, limit: string) => `WITH ext AS (
  SELECT n.nspname::text AS schema, e.extversion::text AS version,
         to_regclass(quote_ident(n.nspname) || '.pg_stat_statements') AS view,
         to_regclass(quote_ident(n.nspname) || '.pg_stat_statements_info') AS info
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pg_stat_statements'
)
SELECT (SELECT schema FROM ext) AS schema,
       (SELECT version FROM ext) AS version,
       EXISTS (SELECT 1 FROM pg_settings WHERE name = 'pg_stat_statements.max' AND vartype = 'integer') AS loaded,
       coalesce((SELECT has_table_privilege(view, 'SELECT') FROM ext WHERE view IS NOT NULL), false) AS readable,
       coalesce((SELECT json_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a, ext
                  WHERE a.attrelid = ext.view AND a.attnum > 0 AND NOT a.attisdropped), '[]'::json) AS columns,
       coalesce((SELECT info IS NOT NULL FROM ext), false) AS has_info,
       (SELECT coalesce(json_agg(t ORDER BY t.seq_tup_read DESC, t."table"), '[]'::json) FROM (
          SELECT quote_ident(schemaname) || '.' || quote_ident(relname) AS "table",
                 seq_scan::float8 AS seq_scan, seq_tup_read::float8 AS seq_tup_read,
                 coalesce(idx_scan, 0)::float8 AS idx_scan, n_live_tup::float8 AS live_rows
            FROM pg_stat_user_tables
           WHERE n_live_tup >= ${minRows}::bigint
             AND seq_scan >= ${SEQ_SCAN_MIN_SCANS} AND seq_tup_read >= ${minRows}::bigint
             AND seq_scan >= coalesce(idx_scan, 0) AND seq_tup_read > coalesce(idx_tup_fetch, 0)
           ORDER BY seq_tup_read DESC, relname
           LIMIT ${limit}) t) AS seq_tables`;

/** An identifier, always quoted (the schema name comes from the catalog, not from a user). */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function topSql(schema: string, columns: string[], hasInfo: boolean): string {
  const total = columns.includes('total_exec_time') ? 'total_exec_time' : 'total_time';
  const mean = columns.includes('mean_exec_time') ? 'mean_exec_time' : 'mean_time';
  const max = columns.includes('max_exec_time') ? 'max_exec_time' : 'max_time';
  const toplevel = columns.includes('toplevel') ? 'WHERE toplevel' : '';
  const view = `${ident(schema)}.pg_stat_statements`;
  const since = hasInfo ? `(SELECT stats_reset::text FROM ${ident(schema)}.pg_stat_statements_info)` : 'NULL::text';
  return `WITH s AS MATERIALIZED (
  SELECT queryid::text AS queryid, userid::regrole::text AS role,
         (SELECT datname::text FROM pg_database WHERE oid = dbid) AS database,
         calls::float8 AS calls, ${total}::float8 AS total_ms, ${mean}::float8 AS mean_ms,
         ${max}::float8 AS max_ms, rows::float8 AS rows, left(query, $1::int) AS query
    FROM ${view} ${toplevel}
), tot AS (SELECT coalesce(sum(total_ms), 0)::float8 AS all_ms, count(*)::int AS n FROM s)
SELECT x.*, tot.all_ms, tot.n AS entries, ${since} AS stats_reset FROM (
  (SELECT 'total'::text AS rank_by, s.* FROM s ORDER BY total_ms DESC LIMIT $2::int)
  UNION ALL
  (SELECT 'mean'::text, s.* FROM s WHERE calls > 0 ORDER BY mean_ms DESC LIMIT $2::int)
) x CROSS JOIN tot`;
}

interface TopRow extends TopStatement {
  rank_by: 'total' | 'mean';
  all_ms: number;
  entries: number;
  stats_reset: string | null;
}

export interface StatementsOptions {
  /** Tables with at least this many live rows are considered for sequential-scan reads. */
  seqScanRows: number;
  /** How many entries to return, by total and by mean time. */
  top: number;
  /** Cut statement text to this many characters. */
  queryChars?: number;
}

/** What the probe found: the facts so far, and how to read the view when it is usable. */
export interface StatementsProbe {
  facts: StatementsFacts;
  /** The top statements' query, or null when pg_stat_statements is not usable here. */
  topSql: string | null;
}

/**
 * The probe (the thresholds written in as integer literals) and its parser; it can share a round
 * trip with other reads (src/db/sql/read.ts), the top statements cannot (the view may fail).
 */
export function statementsProbeRead(opts: StatementsOptions): Read<StatementsProbe> {
  return {
    statements: [probeSql(intLiteral(Math.trunc(opts.seqScanRows), 'seq_scan_rows'), intLiteral(Math.trunc(opts.top), 'top_statements'))],
    parse([rows = []]) {
      const probe = rows[0] as ProbeRow | undefined;
      if (!probe) throw new Error('the statements probe returned no row');
      const facts: StatementsFacts = {
        pg_stat_statements: probe.schema === null ? 'not_installed' : !probe.loaded ? 'not_loaded' : !probe.readable || probe.columns.length === 0 ? 'not_readable' : 'available',
        extension_schema: probe.schema,
        extension_version: probe.version,
        stats_reset: null,
        total_exec_ms: null,
        entries: null,
        by_total: [],
        by_mean: [],
        seq_scan_tables: probe.seq_tables,
      };
      const usable = facts.pg_stat_statements === 'available' ? probe.schema : null;
      return { facts, topSql: usable === null ? null : topSql(usable, probe.columns, probe.has_info) };
    },
  };
}

/** The probe's facts completed with the top statements, when the view is usable (one round trip). */
export async function readTopStatements(s: Session, probe: StatementsProbe, opts: StatementsOptions): Promise<StatementsFacts> {
  if (probe.topSql === null) return probe.facts;
  const rows = await s.query<TopRow>(probe.topSql, [opts.queryChars ?? 500, opts.top]);
  const strip = ({ rank_by: _r, all_ms: _a, entries: _e, stats_reset: _s, ...t }: TopRow): TopStatement => t;
  return {
    ...probe.facts,
    stats_reset: rows[0]?.stats_reset ?? null,
    total_exec_ms: rows[0]?.all_ms ?? 0,
    entries: rows[0]?.entries ?? 0,
    by_total: rows.filter((r) => r.rank_by === 'total').map(strip),
    by_mean: rows.filter((r) => r.rank_by === 'mean').map(strip),
  };
}
