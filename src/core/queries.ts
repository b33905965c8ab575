/**
 * "What has been running or open too long?" Pure decisions over an ActivitySnapshot: long active
 * queries, long transactions, sessions idle in transaction, and active sessions stuck on
 * ClientRead/ClientWrite (a result set the client began and never finished: seeds/000's unclosed
 * rows); and grouping by normalized statement ("25 sessions run the same slow statement",
 * seeds/004). `diagnose` reuses these functions.
 */
import { type ActivitySnapshot, clientSessions, isVisible, type SessionRow } from './activity.js';
import { filterSessions, parallelWorkersByLeader, type SessionFilter, type SessionInfo, sessionInfo, type Visibility, visibilityOf } from './connections.js';
import type { Severity } from './exit-codes.js';
import { normalizeStatement } from './normalize.js';
import { redactStatement } from './conninfo.js';
import { largest, roundOrNull } from './stats.js';

export interface QueryThresholds {
  /** Active queries running at least this long (now - query_start). */
  activeMs: number;
  /** Transactions open at least this long (now - xact_start), any state. */
  transactionMs: number;
  /** Sessions idle in transaction at least this long (now - state_change). */
  idleInTransactionMs: number;
  /** Active sessions waiting on ClientRead/ClientWrite at least this long (now - state_change). */
  clientWaitMs: number;
}

/**
 * Defaults. 30s for active queries is the statement_timeout seeds/002 recommends; 5m for an open
 * transaction is where seeds/002 starts cleaning up; idle in transaction and stuck client reads
 * are flagged after a few seconds (reference/postgres_facts.md: a healthy app never sits there).
 */
export const DEFAULT_QUERY_THRESHOLDS: QueryThresholds = {
  activeMs: 30_000,
  transactionMs: 300_000,
  idleInTransactionMs: 10_000,
  clientWaitMs: 10_000,
};

export type LongKind = 'long_query' | 'long_transaction' | 'idle_in_transaction' | 'client_wait';

export const CLIENT_WAIT_EVENTS = ['ClientRead', 'ClientWrite'] as const;

/** An active session waiting on its client: the client began a result set and stopped reading. */
export function isClientWait(r: SessionRow): boolean {
  return r.state === 'active' && r.wait_event_type === 'Client' && (CLIENT_WAIT_EVENTS as readonly string[]).includes(r.wait_event ?? '');
}

export function isIdleInTransaction(r: SessionRow): boolean {
  return r.state === 'idle in transaction' || r.state === 'idle in transaction (aborted)';
}

/** Active queries running at least `ms` (client waits excluded: they are listed as such). */
export function longActiveQueries(rows: SessionRow[], ms: number): SessionRow[] {
  return byAge(rows.filter((r) => r.state === 'active' && !isClientWait(r) && (r.query_age_ms ?? -1) >= ms), 'query_age_ms');
}

/** Transactions open at least `ms`, whatever the session is doing now. */
export function longTransactions(rows: SessionRow[], ms: number): SessionRow[] {
  return byAge(rows.filter((r) => isVisible(r) && r.xact_age_ms !== null && r.xact_age_ms >= ms), 'xact_age_ms');
}

/** Sessions idle in transaction (or aborted) at least `ms` in that state. */
export function idleInTransaction(rows: SessionRow[], ms: number): SessionRow[] {
  return byAge(rows.filter((r) => isIdleInTransaction(r) && (r.state_age_ms ?? -1) >= ms), 'state_age_ms');
}

/** Active sessions on ClientRead/ClientWrite at least `ms` in that state. */
export function clientWaits(rows: SessionRow[], ms: number): SessionRow[] {
  return byAge(rows.filter((r) => isClientWait(r) && (r.state_age_ms ?? -1) >= ms), 'state_age_ms');
}

function byAge(rows: SessionRow[], key: 'query_age_ms' | 'xact_age_ms' | 'state_age_ms'): SessionRow[] {
  return [...rows].sort((a, b) => (b[key] ?? 0) - (a[key] ?? 0) || a.pid - b.pid);
}

export interface LongRunning {
  long_queries: SessionRow[];
  long_transactions: SessionRow[];
  idle_in_transaction: SessionRow[];
  client_waits: SessionRow[];
}

/** All four lists at once; a session may appear in more than one (say, idle in a long transaction). */
export function longRunning(rows: SessionRow[], t: QueryThresholds = DEFAULT_QUERY_THRESHOLDS): LongRunning {
  return {
    long_queries: longActiveQueries(rows, t.activeMs),
    long_transactions: longTransactions(rows, t.transactionMs),
    idle_in_transaction: idleInTransaction(rows, t.idleInTransactionMs),
    client_waits: clientWaits(rows, t.clientWaitMs),
  };
}

export interface StatementGroup {
  /** The statement with literals and $n parameters replaced, whitespace collapsed. */
  statement: string;
  count: number;
  pids: number[];
  /** Sessions per state. */
  states: Record<string, number>;
  /** Applications running it, most sessions first. */
  applications: string[];
  /** Longest and summed time since the statement started (now - query_start), ms. */
  oldest_ms: number | null;
  total_ms: number;
  /** One original text, as an example (the oldest). */
  example: string;
}

/**
 * Groups visible sessions by normalized statement, most sessions first (then most total time).
 * Hidden sessions and sessions with no statement are left out.
 */
export function statementGroups(rows: SessionRow[]): StatementGroup[] {
  const groups = new Map<string, SessionRow[]>();
  for (const r of rows) {
    const q = r.query;
    if (!isVisible(r) || !q?.trim()) continue;
    const key = normalizeStatement(q);
    const g = groups.get(key) ?? [];
    g.push(r);
    groups.set(key, g);
  }
  const out: StatementGroup[] = [];
  for (const [statement, g] of groups) {
    const ages = g.map((r) => r.query_age_ms).filter((v): v is number => v !== null);
    const states: Record<string, number> = {};
    const apps = new Map<string, number>();
    for (const r of g) {
      const s = r.state ?? 'unknown';
      states[s] = (states[s] ?? 0) + 1;
      apps.set(r.application_name, (apps.get(r.application_name) ?? 0) + 1);
    }
    const oldest = [...g].sort((a, b) => (b.query_age_ms ?? 0) - (a.query_age_ms ?? 0))[0]!;
    out.push({
      statement,
      count: g.length,
      pids: g.map((r) => r.pid).sort((a, b) => a - b),
      states,
      applications: [...apps].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([a]) => a),
      oldest_ms: roundOrNull(largest(ages)),
      total_ms: Math.round(ages.reduce((a, b) => a + b, 0)),
      example: redactStatement(oldest.query ?? ''),
    });
  }
  return out.sort((a, b) => b.count - a.count || b.total_ms - a.total_ms || a.statement.localeCompare(b.statement));
}

export interface QueriesOptions {
  thresholds?: QueryThresholds;
  filter?: SessionFilter;
  /** Group the listed sessions by normalized statement. */
  group?: boolean;
}

export interface QueriesReport {
  /** ok when nothing is over a threshold; warning when something is; unknown when the view is partial. */
  status: Severity;
  server_version_num: number;
  taken_at: string;
  thresholds: { active_ms: number; transaction_ms: number; idle_in_transaction_ms: number; client_wait_ms: number };
  visibility: Visibility;
  /** Client sessions considered (after filters; dbdoctor itself left out). */
  sessions_considered: number;
  long_queries: SessionInfo[];
  long_transactions: SessionInfo[];
  idle_in_transaction: SessionInfo[];
  client_waits: SessionInfo[];
  /** With `--group`: every session listed above, grouped by normalized statement; else null. */
  statement_groups: StatementGroup[] | null;
}

/** The whole `queries` report from one snapshot. Pure. */
export function queriesReport(snapshot: ActivitySnapshot, priv: { can_read_all_stats: boolean; role?: string | null }, opts: QueriesOptions = {}): QueriesReport {
  const t = opts.thresholds ?? DEFAULT_QUERY_THRESHOLDS;
  const rows = filterSessions(clientSessions(snapshot), opts.filter ?? {});
  const lr = longRunning(rows, t);
  const workers = parallelWorkersByLeader(snapshot);
  const view = (list: SessionRow[]) => list.map((r) => sessionInfo(r, workers.get(r.pid) ?? 0));
  const visibility = visibilityOf(snapshot, priv);
  const found = lr.long_queries.length + lr.long_transactions.length + lr.idle_in_transaction.length + lr.client_waits.length;
  let groups: StatementGroup[] | null = null;
  if (opts.group) {
    const listed = new Map<number, SessionRow>();
    for (const r of [...lr.long_queries, ...lr.client_waits, ...lr.idle_in_transaction, ...lr.long_transactions]) listed.set(r.pid, r);
    groups = statementGroups([...listed.values()]);
  }
  return {
    status: visibility.partial ? 'unknown' : found > 0 ? 'warning' : 'ok',
    server_version_num: snapshot.server_version_num,
    taken_at: snapshot.taken_at,
    thresholds: { active_ms: t.activeMs, transaction_ms: t.transactionMs, idle_in_transaction_ms: t.idleInTransactionMs, client_wait_ms: t.clientWaitMs },
    visibility,
    sessions_considered: rows.length,
    long_queries: view(lr.long_queries),
    long_transactions: view(lr.long_transactions),
    idle_in_transaction: view(lr.idle_in_transaction),
    client_waits: view(lr.client_waits),
    statement_groups: groups,
  };
}
