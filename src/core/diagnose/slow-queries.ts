/**
 * runbooks/slow-queries.md: work that holds connections too long. Statements running too long
 * (`long-queries`; lock and client waits are judged by their own rooms), one statement running in
 * many sessions at once (`same-statement`, seeds/004), what pg_stat_statements says costs the most
 * (`top-statements`), and big tables read mostly by sequential scans (`seq-scans`).
 */
import type { SessionRow } from '../activity.js';
import { worstOf } from '../capacity.js';
import { clientOf } from '../connections.js';
import type { Severity } from '../exit-codes.js';
import { normalizeStatement } from '../normalize.js';
import { fixedStep, type NextStep, textStep } from '../printed.js';
import { isClientWait, longActiveQueries, type StatementGroup, statementGroups } from '../queries.js';
import { durationArg } from '../thresholds.js';
import { appLabel, type Context, cut, distinct, dur, emptyEvidence, evidenceOf, finding, lockWaiter, type NodeResult, nonNull, pathStep, plural, runbookStep, sharePct, terminateFor, topApps, uniq } from './shared.js';
import type { EvidenceGroup, Finding, PgssStatus, SeqScanTable, StatementsFacts, TopStatement } from './types.js';

export const NODES = ['long-queries', 'same-statement', 'top-statements', 'seq-scans'] as const;

/** pg_stat_statements when it can be read, and the advice to install it when it cannot. */
function statementsOf(c: Context): { pgss: StatementsFacts | null; hint: NextStep[] } {
  const pgss = c.facts.statements?.pg_stat_statements === 'available' ? c.facts.statements : null;
  return {
    pgss,
    hint: pgss ? [] : [textStep('install pg_stat_statements (shared_preload_libraries, then CREATE EXTENSION pg_stat_statements) to see which statements cost the most over time')],
  };
}

export interface LongQueriesResult extends NodeResult {
  rows: SessionRow[];
  finding: Finding | null;
}

/** long-queries: active statements running too long (lock and client waits are judged apart). */
export function longQueries(c: Context): LongQueriesResult {
  const { t, sessions, scope } = c;
  const longQ = longActiveQueries(sessions, t.long_query_ms).filter((r) => !lockWaiter(r));
  const { hint } = statementsOf(c);
  const question = `are queries running for ${dur(t.long_query_ms)} or more?`;
  if (longQ.length === 0) return { rows: longQ, finding: null, findings: [], path: [pathStep('long-queries', question, 'none', 'none (lock waiters and client waits are judged apart)')] };
  const sev: Severity = (longQ[0]!.query_age_ms ?? 0) >= t.long_query_crit_ms ? 'critical' : 'warning';
  const eg: EvidenceGroup[] = longQ.slice(0, 10).map((r) => ({
    label: `pid ${r.pid} (${appLabel(r.application_name)})`,
    application: r.application_name,
    client: clientOf(r),
    database: r.datname,
    users: nonNull([r.usename]),
    state: r.state,
    wait_event: r.wait_event ? `${r.wait_event_type}:${r.wait_event}` : null,
    count: 1,
    pids: [r.pid],
    oldest_ms: r.query_age_ms === null ? null : Math.round(r.query_age_ms),
    statement: cut(r.query),
    severity: (r.query_age_ms ?? 0) >= t.long_query_crit_ms ? 'critical' : 'warning',
  }));
  const r0 = longQ[0]!;
  const cancelLongest = terminateFor(scope, [r0], { states: ['active'], olderThanMs: 0, cancelFirst: true, pidsOnly: true });
  const ev = evidenceOf(longQ, (r) => r.query_age_ms, eg, [`${plural(longQ.length, 'active query', 'active queries')} over ${dur(t.long_query_ms)}, ${longQ.filter((r) => (r.query_age_ms ?? 0) >= t.long_query_crit_ms).length} over ${dur(t.long_query_crit_ms)}`]);
  const n = ev.sessions ?? 0;
  const f = finding(
    'slow-queries',
    'long-queries',
    sev,
    `${plural(longQ.length, 'query', 'queries')} running for ${dur(t.long_query_ms)} or more; longest pid ${r0.pid} (${appLabel(r0.application_name)}) for ${dur(r0.query_age_ms)}: ${cut(r0.query, 60)}`,
    ev,
    'a statement that reads far more than it returns (a missing index, a sequential scan of a big table, a plan that changed), a batch job, or a query stuck on I/O. Each holds its connection for as long as it runs.',
    [
      fixedStep('see them with their durations and statements', 'queries', [['--min-duration', durationArg(t.long_query_ms)]]),
      { ...cancelLongest, text: `cancel the longest (pid ${r0.pid}), terminating it only if the cancel does not end it` },
      textStep('run EXPLAIN (ANALYZE, BUFFERS) on the statement to find the sequential scan or bad join'),
      ...hint,
    ],
    `${n} long ${n === 1 ? 'query' : 'queries'}, longest ${dur(ev.oldest_ms)}`,
  );
  return { rows: longQ, finding: f, findings: [f], path: [pathStep('long-queries', question, sev, `${longQ.length}; longest pid ${r0.pid} for ${dur(r0.query_age_ms)}`)] };
}

export interface SameStatementResult extends NodeResult {
  /** The sessions of the groups found. */
  rows: SessionRow[];
  groups: StatementGroup[];
  finding: Finding | null;
}

/** same-statement: one statement running in many sessions at once: seeds/004. */
export function sameStatement(c: Context): SameStatementResult {
  const { t, sessions, scope, ordinary } = c;
  const { pgss, hint } = statementsOf(c);
  const candidates = sessions.filter((r) => r.state === 'active' && !isClientWait(r) && !lockWaiter(r) && (r.query_age_ms ?? -1) >= t.same_statement_age_ms);
  const groups = statementGroups(candidates).filter((g) => g.count >= t.same_statement_sessions);
  const question = `are ${t.same_statement_sessions} or more sessions running the same statement for ${dur(t.same_statement_age_ms)} or more?`;
  if (groups.length === 0) return { rows: [], groups, finding: null, findings: [], path: [pathStep('same-statement', question, 'none', 'none')] };
  const rowsOf = (g: { pids: number[] }) => {
    const want = new Set(g.pids);
    return candidates.filter((r) => want.has(r.pid));
  };
  const eg: EvidenceGroup[] = groups.slice(0, 5).map((g) => ({
    label: `${plural(g.count, 'session')} of ${g.applications.slice(0, 3).map(appLabel).join(', ')}`,
    application: g.applications[0] ?? null,
    client: null,
    database: null,
    users: distinct(rowsOf(g), (r) => r.usename),
    state: 'active',
    wait_event: null,
    count: g.count,
    pids: g.pids,
    oldest_ms: g.oldest_ms,
    statement: cut(g.example),
    severity: sharePct(g.count, ordinary) >= t.group_share_crit_pct ? 'critical' : 'warning',
  }));
  const g0 = groups[0]!;
  const sev = worstOf(eg.map((g) => g.severity));
  const grouped = new Set(groups.flatMap((g) => g.pids));
  const rows = candidates.filter((r) => grouped.has(r.pid));
  const factsList = groups
    .slice(0, 5)
    .map((g) => `${g.count} sessions (${g.applications.slice(0, 3).map(appLabel).join(', ')}), oldest ${dur(g.oldest_ms)}, ${dur(g.total_ms)} of connection time in all, holding ${sharePct(g.count, ordinary)}% of the ordinary slots: ${cut(g.statement, 120)}`);
  if (pgss) {
    for (const g of groups.slice(0, 3)) {
      const hit = [...pgss.by_total, ...pgss.by_mean].find((s) => s.query && normalizeStatement(s.query) === g.statement);
      if (hit) factsList.push(`pg_stat_statements: ${Math.round(hit.calls)} calls, mean ${dur(hit.mean_ms)}, max ${dur(hit.max_ms)}, ${dur(hit.total_ms)} in all`);
    }
  }
  const rowsG0 = rowsOf(g0);
  const relieve = terminateFor(scope, rowsG0, { states: ['active'], olderThanMs: 0, cancelFirst: true, pidsOnly: true });
  const ev = evidenceOf(rows, (r) => r.query_age_ms, eg, factsList);
  const f = finding(
    'slow-queries',
    'same-statement',
    sev,
    `${g0.count} sessions run the same statement at once (${g0.applications.slice(0, 2).map(appLabel).join(', ')}, oldest ${dur(g0.oldest_ms)}): ${cut(g0.statement, 70)}`,
    ev,
    'one slow statement run by many requests at once holds a connection each, so a burst of traffic exhausts the pool (seeds/004: a dedup query scanning 150,000 rows took 10-15s in 50+ sessions). Usually a missing or unselective index; the fix is the index or the query, not more connections.',
    [
      fixedStep('see them grouped by statement', 'queries', ['--group']),
      { ...relieve, text: `relieve the pool now: cancel the ${g0.count} sessions, terminating only those that do not stop (a plan is shown first)` },
      textStep('EXPLAIN (ANALYZE, BUFFERS) the statement; an index matching its WHERE clause (seeds/004: a partial index) is the lasting fix; a statement_timeout bounds the damage'),
      ...hint,
    ],
    `${eg[0]!.count} sessions run the same statement${topApps(ev)}`,
  );
  return { rows, groups, finding: f, findings: [f], path: [pathStep('same-statement', question, sev, `${plural(groups.length, 'statement')}; largest ${g0.count} sessions`)] };
}

const TOP_QUESTION = 'which statements cost the most over time (pg_stat_statements)?';

/** top-statements: what pg_stat_statements says costs the most, when it is available. */
export function topStatements(c: Context): NodeResult {
  const { facts, server, snap } = c;
  const st = facts.statements;
  if (!st) {
    const why = facts.unavailable.find((u) => u.what === 'statements')?.reason ?? 'not read';
    return { findings: [], path: [pathStep('top-statements', TOP_QUESTION, 'unavailable', why)] };
  }
  if (st.pg_stat_statements !== 'available') {
    const why: Record<PgssStatus, string> = {
      available: '',
      not_installed: `pg_stat_statements is not installed in database ${snap.database} (CREATE EXTENSION pg_stat_statements; the library must be in shared_preload_libraries)`,
      not_loaded: 'the extension exists but its library is not in shared_preload_libraries (needs a restart)',
      not_readable: `role ${server.current_user} may not read pg_stat_statements`,
    };
    return { findings: [], path: [pathStep('top-statements', TOP_QUESTION, 'unavailable', why[st.pg_stat_statements])] };
  }
  if (st.by_total.length === 0) return { findings: [], path: [pathStep('top-statements', TOP_QUESTION, 'none', 'pg_stat_statements holds no entries yet')] };
  const fmt = (s: TopStatement, pct: boolean) =>
    `${dur(s.total_ms)} in all${pct && st.total_exec_ms ? ` (${Math.round((s.total_ms / st.total_exec_ms) * 1000) / 10}%)` : ''}, ${Math.round(s.calls)} calls, mean ${dur(s.mean_ms)}, max ${dur(s.max_ms)}${s.role ? `, role ${s.role}` : ''}: ${cut(s.query, 100)}`;
  const ev = emptyEvidence();
  ev.statements = uniq(st.by_total.map((s) => cut(s.query))).slice(0, 5);
  ev.facts = [
    `${st.entries ?? 0} entries, ${dur(st.total_exec_ms)} of execution time${st.stats_reset ? ` since ${st.stats_reset}` : ''}`,
    ...st.by_total.map((s) => `by total: ${fmt(s, true)}`),
    ...st.by_mean.map((s) => `by mean: ${fmt(s, false)}`),
  ];
  if (!server.can_read_all_stats) ev.facts.push("other roles' statement texts show as <insufficient privilege> without pg_read_all_stats");
  ev.users = distinct(st.by_total, (s) => s.role);
  ev.databases = distinct(st.by_total, (s) => s.database);
  const s0 = st.by_total[0]!;
  const f = finding(
    'slow-queries',
    'top-statements',
    'info',
    `pg_stat_statements: the costliest statement took ${dur(s0.total_ms)} in ${Math.round(s0.calls)} calls (mean ${dur(s0.mean_ms)}): ${cut(s0.query, 60)}`,
    ev,
    'statements with a high total time are where the server spends its time; a high mean time is what holds a connection per call. Either is where an index or a rewrite pays most.',
    [fixedStep('see what runs now, grouped by statement', 'queries', ['--group']), textStep('EXPLAIN (ANALYZE, BUFFERS) the top statements'), runbookStep('top-statements')],
  );
  return { findings: [f], path: [pathStep('top-statements', TOP_QUESTION, 'found', `${st.by_total.length} by total, ${st.by_mean.length} by mean`)] };
}

/**
 * A table is "read mostly by sequential scans" only when it was scanned sequentially at least this
 * many times, those scans read at least --seq-scan-rows rows in all, and they outnumber its index
 * scans (the read also asks that they read more rows than its index scans fetched): one scan that
 * read nothing is no finding.
 */
export const SEQ_SCAN_MIN_SCANS = 5;

export function readMostlyBySeqScans(x: SeqScanTable, minRows: number): boolean {
  return x.seq_scan >= SEQ_SCAN_MIN_SCANS && x.seq_tup_read >= minRows && x.live_rows >= minRows && x.seq_scan >= x.idx_scan;
}

/** seq-scans: big tables read mostly by sequential scans. */
export function seqScans(c: Context): NodeResult {
  const { facts, t } = c;
  const read = facts.statements;
  const question = 'are big tables read mostly by sequential scans?';
  const st = read ? { ...read, seq_scan_tables: read.seq_scan_tables.filter((x) => readMostlyBySeqScans(x, t.seq_scan_rows)) } : read;
  if (!st?.seq_scan_tables.length) {
    return { findings: [], path: [pathStep('seq-scans', question, st ? 'none' : 'unavailable', st ? `no table of ${t.seq_scan_rows}+ rows is read mostly by sequential scans` : 'not read')] };
  }
  const ev = emptyEvidence();
  ev.facts = st.seq_scan_tables.map((x) => `${x.table}: ${plural(Math.round(x.seq_scan), 'sequential scan')} read ${plural(Math.round(x.seq_tup_read), 'row')} (${plural(Math.round(x.live_rows), 'live row')}; ${plural(Math.round(x.idx_scan), 'index scan')})`);
  const x0 = st.seq_scan_tables[0]!;
  const f = finding(
    'slow-queries',
    'seq-scans',
    'info',
    `${plural(st.seq_scan_tables.length, 'table')} of ${t.seq_scan_rows}+ rows read mostly by sequential scans; the most read: ${x0.table} (${plural(Math.round(x0.seq_tup_read), 'row')} in ${plural(Math.round(x0.seq_scan), 'scan')})`,
    ev,
    'queries that filter these tables without a matching index read every row; as the table grows, each call holds its connection longer (seeds/003, seeds/004)',
    [
      fixedStep('see which statements run now', 'queries', ['--group']),
      textStep(`find the statements on ${x0.table} (pg_stat_statements) and EXPLAIN them; add the index their WHERE clause needs (CREATE INDEX CONCURRENTLY)`),
      runbookStep('seq-scans'),
    ],
    `${plural(st.seq_scan_tables.length, 'table')} read mostly by sequential scans (${x0.table})`,
  );
  return { findings: [f], path: [pathStep('seq-scans', question, 'found', plural(st.seq_scan_tables.length, 'table'))] };
}
