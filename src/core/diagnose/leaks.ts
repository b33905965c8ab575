/**
 * runbooks/leaks.md: connections a client took and never gave back. Sessions idle in transaction
 * (`idle-in-transaction`), active sessions waiting on their client with a result set never read to
 * the end (`unread-results`, seeds/000), and applications keeping many sessions idle (`idle-pool`;
 * LISTEN sessions are idle by design). Each names the groups (application, client, database) with
 * the exact `terminate` that selects each one.
 */
import { isListener, type SessionRow } from '../activity.js';
import { worstOf } from '../capacity.js';
import { clientOf, groupSessions, type SessionGroup } from '../connections.js';
import type { Severity } from '../exit-codes.js';
import type { NextStep } from '../printed.js';
import { textStep } from '../printed.js';
import { clientWaits, idleInTransaction as idleInTransactionRows } from '../queries.js';
import { largest } from '../stats.js';
import {
  appLabel,
  type Context,
  cut,
  distinct,
  dur,
  evidenceOf,
  finding,
  groupSeverity,
  listStep,
  type NodeResult,
  pathStep,
  plural,
  sharePct,
  terminateFor,
  topApps,
  typicalStatement,
  uniq,
} from './shared.js';
import type { EvidenceGroup, Finding } from './types.js';

export const NODES = ['idle-in-transaction', 'unread-results', 'idle-pool'] as const;

/** What a leak node found: its sessions, its finding (null when none), and the clean-ups it offers the capacity finding. */
export interface LeakResult extends NodeResult {
  rows: SessionRow[];
  finding: Finding | null;
  cleanups: NextStep[];
}

function result(rows: SessionRow[], f: Finding | null, path: string[], cleanups: NextStep[], node: (typeof NODES)[number], question: string, branch: string): LeakResult {
  return { rows, finding: f, findings: f ? [f] : [], path: [pathStep(node, question, branch, path.join(''))], cleanups };
}

/** Each group's rows, in the order of `rows`: one pass, whatever the number of groups. */
function rowsOfGroups(rows: SessionRow[], groups: SessionGroup[]): SessionRow[][] {
  const groupOf = new Map<number, SessionRow[]>();
  const out = groups.map((g) => {
    const own: SessionRow[] = [];
    for (const pid of g.pids) groupOf.set(pid, own);
    return own;
  });
  for (const r of rows) groupOf.get(r.pid)?.push(r);
  return out;
}

/** idle-in-transaction: transactions begun and never ended, by application, client and database. */
export function idleInTransaction(c: Context): LeakResult {
  const { t, snap, sessions, scope, ordinary } = c;
  const iit = idleInTransactionRows(sessions, t.idle_in_transaction_ms);
  const question = `are sessions idle in transaction for ${dur(t.idle_in_transaction_ms)} or more?`;
  if (iit.length === 0) return result(iit, null, ['none'], [], 'idle-in-transaction', question, 'none');
  const groups = groupSessions(iit, ['app', 'client', 'db']);
  const eg: EvidenceGroup[] = [];
  const next: NextStep[] = [];
  const rowsOf = rowsOfGroups(iit, groups);
  for (const [i, g] of groups.entries()) {
    const rows = rowsOf[i]!;
    const sev = groupSeverity(g.count, g.oldest_state_age_ms, ordinary, t.idle_in_transaction_crit_ms, t);
    const aborted = rows.filter((r) => r.state === 'idle in transaction (aborted)').length;
    eg.push({
      label: `${appLabel(g.app)} at ${g.client ?? 'hidden'}${g.db && g.db !== snap.database ? ` in ${g.db}` : ''}`,
      application: g.app ?? '',
      client: g.client ?? null,
      database: g.db ?? null,
      users: distinct(rows, (r) => r.usename),
      state: aborted === rows.length ? 'idle in transaction (aborted)' : 'idle in transaction',
      wait_event: null,
      count: g.count,
      pids: g.pids,
      oldest_ms: g.oldest_state_age_ms,
      statement: typicalStatement(rows),
      severity: sev,
    });
    const states = uniq(rows.map((r) => r.state!)).sort();
    if (next.length < 6) next.push(terminateFor(scope, rows, { states, olderThanMs: t.idle_in_transaction_ms }));
  }
  const g0 = eg[0]!;
  const sev = worstOf(eg.map((g) => g.severity));
  const title = `${g0.label} holds ${plural(g0.count, 'session')} idle in transaction, oldest ${dur(g0.oldest_ms)}${g0.statement ? `, last statement: ${cut(g0.statement, 60)}` : ''}${eg.length > 1 ? `; ${plural(eg.length - 1, 'more group')}, ${iit.length} in all` : ''}`;
  const ev = evidenceOf(iit, (r) => r.state_age_ms, eg, [
    `${plural(iit.length, 'session')} idle in transaction for ${dur(t.idle_in_transaction_ms)} or more (${sharePct(iit.length, ordinary)}% of the ordinary slots)`,
    ...eg.slice(0, 5).map((g) => `${g.label}: ${g.count}, oldest ${dur(g.oldest_ms)}, pids ${g.pids.slice(0, 10).join(', ')}${g.pids.length > 10 ? ', ...' : ''}`),
  ]);
  const f = finding(
    'leaks',
    'idle-in-transaction',
    sev,
    title,
    ev,
    'a transaction begun and never ended: a missing COMMIT/ROLLBACK, an error path that skips the rollback, or a pool client checked out and never released (no finally). Each holds a slot, its locks, and a snapshot that stops vacuum. Cancelling does nothing to these sessions; only terminating frees them.',
    [...next, listStep('list them with their last statements', [['--state', 'idle in transaction']], g0.application)],
    `${iit.length} idle in transaction${topApps(ev)}`,
  );
  return result(iit, f, [`${iit.length} in ${plural(eg.length, 'group')}; largest ${g0.label} (${g0.count})`], next.slice(0, 2), 'idle-in-transaction', question, sev);
}

/** unread-results: active sessions waiting on their client (ClientRead/ClientWrite): seeds/000. */
export function unreadResults(c: Context): LeakResult {
  const { t, snap, sessions, scope, ordinary } = c;
  const waits = clientWaits(sessions, t.client_wait_ms);
  const question = `are active sessions waiting on their client (ClientRead/ClientWrite) for ${dur(t.client_wait_ms)} or more?`;
  if (waits.length === 0) return result(waits, null, ['none'], [], 'unread-results', question, 'none');
  const byKey = new Map<string, SessionRow[]>();
  for (const r of waits) {
    const k = JSON.stringify([r.application_name, clientOf(r), r.datname, r.wait_event]);
    const same = byKey.get(k);
    if (same) same.push(r);
    else byKey.set(k, [r]);
  }
  const eg: EvidenceGroup[] = [];
  const next: NextStep[] = [];
  const grouped = [...byKey.values()].sort((a, b) => b.length - a.length);
  for (const rows of grouped) {
    const r0 = rows[0]!;
    const oldest = Math.round(largest(rows.map((r) => r.state_age_ms ?? 0)) ?? 0);
    const client = clientOf(r0);
    eg.push({
      label: `${appLabel(r0.application_name)} at ${client ?? 'hidden'}${r0.datname && r0.datname !== snap.database ? ` in ${r0.datname}` : ''}`,
      application: r0.application_name,
      client,
      database: r0.datname,
      users: distinct(rows, (r) => r.usename),
      state: 'active',
      wait_event: r0.wait_event,
      count: rows.length,
      pids: rows.map((r) => r.pid).sort((a, b) => a - b),
      oldest_ms: oldest,
      statement: typicalStatement(rows),
      severity: groupSeverity(rows.length, oldest, ordinary, t.client_wait_crit_ms, t),
    });
    if (next.length < 6) next.push(terminateFor(scope, rows, { states: ['active'], olderThanMs: t.client_wait_ms }));
  }
  const g0 = eg[0]!;
  const sev = worstOf(eg.map((g) => g.severity));
  const writes = waits.filter((r) => r.wait_event === 'ClientWrite').length;
  const title = `${g0.label} has ${plural(g0.count, 'active session')} waiting on ${g0.wait_event} for up to ${dur(g0.oldest_ms)}: results never read to the end${g0.statement ? ` (${cut(g0.statement, 50)})` : ''}${eg.length > 1 ? `; ${plural(eg.length - 1, 'more group')}, ${waits.length} in all` : ''}`;
  const ev = evidenceOf(waits, (r) => r.state_age_ms, eg, [
    `${plural(waits.length, 'active session')} waiting on the client for ${dur(t.client_wait_ms)} or more (${sharePct(waits.length, ordinary)}% of the ordinary slots)`,
    ...eg.slice(0, 5).map((g) => `${g.label}: ${g.count} on ${g.wait_event}, oldest ${dur(g.oldest_ms)}, pids ${g.pids.slice(0, 10).join(', ')}${g.pids.length > 10 ? ', ...' : ''}`),
  ]);
  const reads = waits.length - writes;
  const cause = [
    reads > 0
      ? 'ClientRead while active: the client began a result set (a cursor, a stream, rows not iterated to the end) and neither finished nor closed it, as in seeds/000, where rows were not closed on error paths. The server waits for the client forever; statement_timeout and idle_in_transaction_session_timeout do not end it.'
      : '',
    writes > 0 ? 'ClientWrite: the server is blocked sending results the client does not read (a slow or frozen consumer, or a dead peer the network has not reported).' : '',
  ]
    .filter(Boolean)
    .join(' ');
  const f = finding(
    'leaks',
    'unread-results',
    sev,
    title,
    ev,
    cause,
    [...next, textStep('in the application: close result sets on every path (defer rows.Close(), finally { cursor.close() }), and read them to the end')],
    `${plural(waits.length, 'unread result set')}${topApps(ev)}`,
  );
  return result(waits, f, [`${waits.length} in ${plural(eg.length, 'group')}; largest ${g0.label} (${g0.count})`], next.slice(0, 2), 'unread-results', question, sev);
}

export interface IdlePoolResult extends LeakResult {
  groups: SessionGroup[];
}

/** idle-pool: many old idle sessions from one application; LISTEN sessions are idle by design. */
export function idlePool(c: Context, capacitySeverity: Severity): IdlePoolResult {
  const { t, snap, sessions, scope, ordinary } = c;
  const idleOld = sessions.filter((r) => r.state === 'idle' && (r.state_age_ms ?? -1) >= t.idle_ms);
  const listenersOld = idleOld.filter(isListener);
  const candidates = idleOld.filter((r) => !isListener(r));
  const groups = groupSessions(candidates, ['app', 'db']).filter((g) => g.count >= t.idle_pool_sessions);
  const listenNote = listenersOld.length ? `; ${plural(listenersOld.length, 'LISTEN session')} left out (idle by design)` : '';
  const question = `does one application keep ${t.idle_pool_sessions} or more sessions idle for ${dur(t.idle_ms)} or more?`;
  if (groups.length === 0) return { groups, ...result(candidates, null, [`${candidates.length} idle that long in all${listenNote}`], [], 'idle-pool', question, 'none') };
  const sev: Severity = capacitySeverity === 'warning' || capacitySeverity === 'critical' ? 'warning' : 'info';
  const eg: EvidenceGroup[] = [];
  const next: NextStep[] = [];
  const rowsAll: SessionRow[] = [];
  const rowsOf = rowsOfGroups(candidates, groups);
  for (const [i, g] of groups.entries()) {
    const rows = rowsOf[i]!;
    for (const r of rows) rowsAll.push(r);
    eg.push({
      label: `${appLabel(g.app)}${g.db && g.db !== snap.database ? ` in ${g.db}` : ''}`,
      application: g.app ?? '',
      client: null,
      database: g.db ?? null,
      users: distinct(rows, (r) => r.usename),
      state: 'idle',
      wait_event: null,
      count: g.count,
      pids: g.pids,
      oldest_ms: g.oldest_state_age_ms,
      statement: null,
      severity: sev,
    });
    if (next.length < 4) next.push(terminateFor(scope, rows, { states: ['idle'], olderThanMs: t.idle_ms }));
  }
  const g0 = eg[0]!;
  const ev = evidenceOf(rowsAll, (r) => r.state_age_ms, eg, [
    ...eg.map((g) => `${g.label}: ${g.count} idle for ${dur(t.idle_ms)} or more, oldest ${dur(g.oldest_ms)} (${sharePct(g.count, ordinary)}% of the ordinary slots)`),
    ...(listenersOld.length ? [`${plural(listenersOld.length, 'LISTEN session')} are idle by design and left out (seeds/001: a listen pool at 100% is normal)`] : []),
  ]);
  const f = finding(
    'leaks',
    'idle-pool',
    sev,
    `${g0.label} keeps ${plural(g0.count, 'session')} idle for ${dur(t.idle_ms)} or more (oldest ${dur(g0.oldest_ms)})${eg.length > 1 ? `; ${plural(eg.length - 1, 'more application')}` : ''}`,
    ev,
    `a pool larger than its load needs (or one per process times many processes), or clients leaked without being closed. ${sev === 'warning' ? 'With the slots nearly used up, these idle sessions are what other clients are missing.' : 'Not urgent while there is headroom.'}`,
    [...next, textStep("in the application: lower the pool's maximum size and set its idle timeout (e.g. idleTimeoutMillis), or put PgBouncer in front")],
    `${ev.sessions ?? 0} long-idle sessions${topApps(ev)}`,
  );
  return { groups, ...result(candidates, f, [`${g0.label}: ${g0.count}${listenNote}`], sev === 'warning' ? [next[0]!] : [], 'idle-pool', question, sev) };
}
