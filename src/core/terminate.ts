/**
 * `terminate`, the decisions: which sessions the filters select, which are excluded and why, the
 * --max check, how each attempt's raw result becomes an outcome, the report's status and its exit
 * code, and the audit records. Pure: the SQL is in src/db/sql/terminate.ts, the file IO in
 * src/ui/audit.ts and src/ui/lockfile.ts, the wiring in src/commands/terminate.ts.
 */
import { plural } from './count.js';
import {
  type ActivitySnapshot,
  isClientBackend,
  isListener,
  isParallelWorker,
  isVisible,
  type SessionRow,
  snapshotByPid,
  stateOf,
} from './activity.js';
import { buildBlockingReport } from './blocking.js';
import { clientMatcher, clientOf as clientOrNull, globToRegExp, normalizeState as normalizeStateName, requireValues } from './connections.js';
import { redactStatement } from './conninfo.js';
import { UsageError } from './errors.js';
import { ExitCode, type ExitCodeValue } from './exit-codes.js';

/** Refuse plans larger than this unless --max says otherwise. */
export const DEFAULT_MAX = 10;
/** --cancel-first: how long to wait after cancelling before terminating what still runs. */
export const DEFAULT_GRACE_MS = 5_000;
/** pg_terminate_backend's timeout argument: how long to wait for the session's exit. */
export const DEFAULT_TERMINATE_TIMEOUT_MS = 5_000;

/** The states --state accepts, as pg_stat_activity names them. */
export const TERMINABLE_STATES = ['active', 'idle', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call'] as const;

// ---------------------------------------------------------------------------------------------
// Filters

export interface TerminateFilters {
  /** pg_stat_activity states; a session matches any of them. */
  states: string[];
  /** Age in the current state (for active sessions: the running query's age), in ms. */
  older_than_ms: number | null;
  /** application_name globs (`*`, `?`), case-sensitive; any of them. */
  apps: string[];
  /** Role names, exact; any of them. */
  users: string[];
  /** Database names, exact; any of them. */
  dbs: string[];
  /** Client addresses or CIDR ranges, or `local` (Unix socket); any of them. */
  clients: string[];
  pids: number[];
  /** Only the root blockers of the blocking tree. */
  blockers: boolean;
  /** Case-insensitive pattern for the query text: a substring, `*` and `?` as wildcards. */
  query: string | null;
}

export function emptyFilters(): TerminateFilters {
  return { states: [], older_than_ms: null, apps: [], users: [], dbs: [], clients: [], pids: [], blockers: false, query: null };
}

/** There is no "everything" default: at least one of these must be given. */
export function hasSelectingFilter(f: TerminateFilters): boolean {
  return (
    f.states.length > 0 ||
    f.older_than_ms !== null ||
    f.apps.length > 0 ||
    f.users.length > 0 ||
    f.dbs.length > 0 ||
    f.clients.length > 0 ||
    f.pids.length > 0 ||
    f.blockers ||
    (f.query !== null && f.query !== '')
  );
}

/**
 * Every filter exactly as written: no empty or blank value (an unset shell variable would widen
 * the selection, or select the sessions with an empty name), and at least one selecting filter.
 */
export function validateFilters(f: TerminateFilters): void {
  requireValues('--state', f.states);
  requireValues('--app', f.apps);
  requireValues('--user', f.users);
  requireValues('--db', f.dbs);
  requireValues('--client', f.clients);
  if (f.query !== null && f.query.trim() === '') throw new UsageError('--query needs a pattern', 'e.g. --query "FROM orders"');
  validateClients(f.clients);
  requireSelectingFilter(f);
}

export function requireSelectingFilter(f: TerminateFilters): void {
  if (!hasSelectingFilter(f)) {
    throw new UsageError(
      'terminate needs at least one filter: there is no "everything" default',
      'select with --state, --older-than, --app, --user, --db, --client, --pid, --blockers or --query, e.g. --state "idle in transaction" --older-than 5m',
    );
  }
}

/** `idle-in-transaction`, `IDLE_IN_TRANSACTION` and `idle in transaction` all mean the same state. */
export function normalizeState(input: string): string {
  const s = normalizeStateName(input);
  const aliases: Record<string, string> = {
    'idle in tx': 'idle in transaction',
    'idle in tx (aborted)': 'idle in transaction (aborted)',
    fastpath: 'fastpath function call',
  };
  const state = aliases[s] ?? s;
  if (!(TERMINABLE_STATES as readonly string[]).includes(state)) {
    throw new UsageError(`invalid --state ${JSON.stringify(input)}`, `use one of: ${TERMINABLE_STATES.map((x) => JSON.stringify(x)).join(', ')}`);
  }
  return state;
}

/** `--pid 12,13 14`: pids separated by commas or spaces; an empty one (`12,,13`, `12,`, "") is refused. */
export function parsePidList(input: string): number[] {
  const items = input.split(',').map((p) => p.trim());
  requireValues('--pid', items);
  return items.flatMap((item) => item.split(/\s+/)).map((p) => {
    if (!/^\d{1,10}$/.test(p) || Number(p) < 1 || Number(p) > 2_147_483_647) {
      throw new UsageError(`invalid --pid ${JSON.stringify(p)}`, 'a pid is a positive whole number, e.g. --pid 12345,12346');
    }
    return Number(p);
  });
}

export function parseMax(input: string): number {
  if (!/^\d{1,6}$/.test(input.trim()) || Number(input) < 1) {
    throw new UsageError(`invalid --max ${JSON.stringify(input)}`, `a whole number of sessions, at least 1 (default ${DEFAULT_MAX})`);
  }
  return Number(input);
}

/** --query: case-insensitive, unanchored (a substring), with `*` and `?` as wildcards. */
export function queryPattern(pattern: string): RegExp {
  const anchored = globToRegExp(pattern).source;
  return new RegExp(anchored.slice(1, -1), 'iu');
}

/** Validates every --client value now, so a typo is a usage error before anything connects. */
export function validateClients(specs: string[]): void {
  for (const c of specs) clientMatcher(c);
}

// ---------------------------------------------------------------------------------------------
// The plan

/** The exact identity and condition of a session as planned, re-checked when acting on it. */
export interface Fingerprint {
  pid: number;
  /** Text, microseconds intact. */
  backend_start: string | null;
  state: string | null;
  state_change: string | null;
  xact_start: string | null;
  query_start: string | null;
}

export type TerminateAction = 'terminate' | 'cancel_then_terminate';

export interface PlannedSession {
  pid: number;
  backend_start: string;
  state: string;
  state_change: string | null;
  xact_start: string | null;
  query_start: string | null;
  app: string;
  user: string | null;
  database: string | null;
  client: string;
  superuser: boolean;
  listener: boolean;
  wait_event: string | null;
  /** The age --older-than compares: in the current state, or for active sessions the query's. */
  age_ms: number | null;
  state_age_ms: number | null;
  xact_age_ms: number | null;
  query_age_ms: number | null;
  /** Query text (secrets redacted), as far as the snapshot read it. */
  query: string;
  /** For root blockers: how many sessions wait behind it. */
  blocks: number;
  /**
   * For root blockers: some of the sessions it blocked directly when the plan was made (up to
   * ROOT_WAITERS, by pid). The signalling statement asks them first whether it still blocks
   * someone, and every Lock waiter only when none of them says so (src/db/sql/terminate.ts).
   */
  waiters: number[];
  action: TerminateAction;
}

export type ExclusionReason =
  | 'self'
  | 'parallel_worker'
  | 'not_client_backend'
  | 'other_database'
  | 'hidden'
  | 'superuser'
  | 'listener'
  | 'unknown_state';

export interface ExcludedSession {
  pid: number;
  app: string;
  user: string | null;
  database: string | null;
  state: string;
  backend_type: string | null;
  reason: ExclusionReason;
  detail: string;
}

export interface PlanOptions {
  filters: TerminateFilters;
  allDatabases: boolean;
  includeSuperusers: boolean;
  cancelFirst: boolean;
}

export interface TerminationPlan {
  /** The database connected to: the default scope. */
  database: string;
  planned: PlannedSession[];
  excluded: ExcludedSession[];
  /** --pid values that are not connected at all. */
  not_found_pids: number[];
  /** The role could not see the state and identity of sessions that might match. */
  hidden_sessions: number;
}

/** The client as people read it: the address, `local` for a Unix socket, `-` when unknown. */
export function clientOf(r: SessionRow): string {
  return clientOrNull(r) ?? '-';
}

/** The age --older-than compares: for active sessions the query's age, else the time in the state. */
export function ageOf(r: { state: string | null; state_age_ms: number | null; query_age_ms: number | null }): number | null {
  return r.state === 'active' ? (r.query_age_ms ?? r.state_age_ms) : r.state_age_ms;
}

/** Query text with the secrets a statement can carry (URLs, conninfo, PASSWORD '...') masked. */
export function redactQuery(text: string | null): string {
  if (text === null) return '';
  return redactStatement(text);
}

const EXCLUSION_TEXT: Record<ExclusionReason, string> = {
  self: "dbdoctor's own session",
  parallel_worker: 'a parallel worker: act on its leader',
  not_client_backend: 'not a client session',
  other_database: 'in another database (use --all-databases)',
  hidden: 'your role cannot see its state or identity (grant pg_read_all_stats or pg_monitor)',
  superuser: 'a superuser session (use --include-superusers)',
  listener: 'a LISTEN session, idle by design (select it with --pid)',
  unknown_state: 'in a state dbdoctor does not act on',
};

export function exclusionText(reason: ExclusionReason): string {
  return EXCLUSION_TEXT[reason];
}

/**
 * How many of a root's waiters the plan keeps to ask first whether it still blocks. Each
 * pg_blocking_pids() call copies the whole of the lock's queue, so asking every Lock waiter is
 * quadratic in one queue (1,500 waiters: over half a second of the server's time per batch); a
 * few of the planned ones answer in the usual case, where the root still blocks them.
 */
const ROOT_WAITERS = 8;

/** What a fingerprint must still say of a session for the plan to act on it. */
type Identity = Pick<Fingerprint, 'backend_start' | 'state'>;

/** What the plan's rules say of each session they consider (see planTermination). */
interface PlanVisitor<F extends Identity> {
  planned(r: SessionRow & { state: string; backend_start: string }, fp: F, root: { blocks: number; waiters: number[] } | undefined): void;
  excluded(r: SessionRow, reason: ExclusionReason, detail?: string): void;
}

/**
 * The plan's rules, one session at a time: each session the filters pick is planned or excluded
 * (with the reason), in the snapshot's order; returns how many were hidden. `identityOf` gives the
 * fingerprint a session was planned with (from the snapshot the plan was shown from).
 */
function walkPlan<F extends Identity>(snapshot: ActivitySnapshot, identityOf: (r: SessionRow) => F | undefined, opts: PlanOptions, visit: PlanVisitor<F>): number {
  const f = opts.filters;
  const apps = f.apps.map((g) => globToRegExp(g));
  const clients = f.clients.map(clientMatcher);
  const query = f.query ? queryPattern(f.query) : null;
  const states = new Set(f.states);
  const pids = new Set(f.pids);
  const roots = new Map<number, { blocks: number; waiters: number[] }>();
  if (f.blockers) {
    for (const root of buildBlockingReport(snapshot).roots) if (root.pid !== 0) roots.set(root.pid, { blocks: root.all.length, waiters: root.direct.slice(0, ROOT_WAITERS) });
  }

  // What every role can see of any session: pid, role, database, application.
  const seenMatch = (r: SessionRow) =>
    (pids.size === 0 || pids.has(r.pid)) &&
    (!f.blockers || roots.has(r.pid)) &&
    (f.users.length === 0 || (r.usename !== null && f.users.includes(r.usename))) &&
    (f.dbs.length === 0 || (r.datname !== null && f.dbs.includes(r.datname))) &&
    (apps.length === 0 || apps.some((re) => re.test(r.application_name)));
  // What needs the privilege to see the session's details.
  const detailMatch = (r: SessionRow) => {
    const age = ageOf(r);
    return (
      (states.size === 0 || (r.state !== null && states.has(r.state))) &&
      (f.older_than_ms === null || (age !== null && age >= f.older_than_ms)) &&
      (clients.length === 0 || clients.some((matches) => matches(r))) &&
      (query === null || query.test(r.query ?? ''))
    );
  };

  let hidden = 0;
  // an indexed loop over every session: see bucketSessions (src/core/connections.ts)
  for (let i = 0; i < snapshot.rows.length; i++) {
    const r = snapshot.rows[i]!;
    if (!seenMatch(r)) continue;
    const visible = isVisible(r);
    if (visible && !detailMatch(r)) continue;
    // Hidden rows without a role or a database are background processes (a client backend always
    // has both): not sessions anyone asked about, and not ones dbdoctor could act on.
    if (!visible && r.backend_type === null && (r.usename === null || r.datname === null)) continue;
    if (r.is_self) {
      visit.excluded(r, 'self');
      continue;
    }
    if (isParallelWorker(r)) {
      visit.excluded(r, 'parallel_worker', `a parallel worker of pid ${r.leader_pid}: act on its leader`);
      continue;
    }
    if (!isClientBackend(r)) {
      visit.excluded(r, 'not_client_backend', `not a client session (${r.backend_type ?? 'unknown type'})`);
      continue;
    }
    if (!opts.allDatabases && r.datname !== snapshot.database) {
      visit.excluded(r, 'other_database', `in database ${JSON.stringify(r.datname ?? '')} (use --all-databases)`);
      continue;
    }
    const fp = identityOf(r);
    if (!visible || !fp || fp.backend_start === null || fp.backend_start !== r.backend_start || r.backend_start === null) {
      hidden++;
      visit.excluded(r, 'hidden');
      continue;
    }
    if (r.superuser === true && !opts.includeSuperusers) {
      visit.excluded(r, 'superuser');
      continue;
    }
    if (isListener(r) && !pids.has(r.pid)) {
      visit.excluded(r, 'listener');
      continue;
    }
    if (r.state === null || !(TERMINABLE_STATES as readonly string[]).includes(r.state) || fp.state !== r.state) {
      visit.excluded(r, 'unknown_state', `in state ${JSON.stringify(r.state ?? 'unknown')}, which dbdoctor does not act on`);
      continue;
    }
    visit.planned(r as SessionRow & { state: string; backend_start: string }, fp, roots.get(r.pid));
  }
  return hidden;
}

/**
 * Chooses the sessions to act on. Filters are ANDed; the values of one filter are ORed. Sessions
 * that match but must not be touched are listed as excluded with the reason; sessions the role
 * cannot see are listed as hidden when what can be seen of them matches.
 */
export function planTermination(snapshot: ActivitySnapshot, fingerprints: Fingerprint[], opts: PlanOptions): TerminationPlan {
  const byPid = new Map(fingerprints.map((fp) => [fp.pid, fp]));
  const planned: PlannedSession[] = [];
  const excluded: ExcludedSession[] = [];
  const hidden = walkPlan(snapshot, (r) => byPid.get(r.pid), opts, {
    excluded: (r, reason, detail) =>
      excluded.push({
        pid: r.pid,
        app: r.application_name,
        user: r.usename,
        database: r.datname,
        state: stateOf(r),
        backend_type: r.backend_type,
        reason,
        detail: detail ?? EXCLUSION_TEXT[reason],
      }),
    planned: (r, fp, root) => {
      const active = r.state === 'active' || r.state === 'fastpath function call';
      planned.push({
        pid: r.pid,
        backend_start: r.backend_start,
        state: r.state,
        state_change: fp.state_change,
        xact_start: fp.xact_start,
        query_start: fp.query_start,
        app: r.application_name,
        user: r.usename,
        database: r.datname,
        client: clientOf(r),
        superuser: r.superuser === true,
        listener: isListener(r),
        wait_event: r.wait_event_type ? `${r.wait_event_type}:${r.wait_event ?? ''}` : null,
        age_ms: ageOf(r),
        state_age_ms: r.state_age_ms,
        xact_age_ms: r.xact_age_ms,
        query_age_ms: r.query_age_ms,
        query: redactQuery(r.query),
        blocks: root?.blocks ?? 0,
        waiters: root?.waiters ?? [],
        action: opts.cancelFirst && active ? 'cancel_then_terminate' : 'terminate',
      });
    },
  });
  const present = new Set(snapshot.rows.map((r) => r.pid));
  return {
    database: snapshot.database,
    planned,
    excluded,
    not_found_pids: opts.filters.pids.filter((p) => !present.has(p)),
    hidden_sessions: hidden,
  };
}

/**
 * The pids `planTermination` would plan with fingerprints taken from the snapshot itself (a pid's
 * fingerprint is its row, looked up by pid as planTermination looks its fingerprints up), without
 * building the plan: what `diagnose` asks of every terminate command it offers, to print only one
 * that selects exactly its group.
 */
export function plannedPids(snapshot: ActivitySnapshot, opts: PlanOptions): number[] {
  const own = snapshotByPid(snapshot);
  const pids: number[] = [];
  walkPlan(snapshot, (r) => own.get(r.pid), opts, { planned: (r) => pids.push(r.pid), excluded: () => {} });
  return pids;
}

// ---------------------------------------------------------------------------------------------
// Acting: raw results -> outcomes

/** What the race-safe statement saw and did, as src/db/sql/terminate.ts returns it. */
export interface SignalRaw {
  /** A process with this pid is in pg_stat_activity. */
  present: boolean;
  /** Its backend_start now (text). */
  backend_start_now: string | null;
  state_now: string | null;
  /** null: the re-check failed, nothing was sent; true/false: the function's result. */
  signalled: boolean | null;
  /** Without --include-superusers: whether the session's role is a superuser when the statement ran (pg_roles.rolsuper now); null with it. */
  superuser_now?: boolean | null;
  /**
   * With --blockers: whether the session still blocked another session (a Lock waiter names it in
   * pg_blocking_pids) when the statement ran; null or absent when not checked.
   */
  blocking_now?: boolean | null;
  /**
   * With --blockers: whether the session itself, or a parallel worker of its, waited for a lock
   * when the statement ran (then it is no longer a root blocker and is not signalled); null or
   * absent when not checked.
   */
  waiting_now?: boolean | null;
}

export type SignalKind = 'cancel' | 'terminate';

export type Outcome = 'terminated' | 'cancelled' | 'changed' | 'gone' | 'permission_denied' | 'failed' | 'not_attempted';

/** Outcomes that count as done: the planned session (or its query, with --cancel-first) is no more. */
export const DONE_OUTCOMES: readonly Outcome[] = ['terminated', 'cancelled', 'gone'];

export interface StepResult {
  outcome: Outcome | 'signalled';
  detail: string;
}

/**
 * Whether a statement's failure means dbdoctor's own session is lost: the server went away, or it
 * stopped answering (session.ts drops the socket then). Nothing more can be signalled over it.
 */
export function sessionLost(cause: string): boolean {
  return cause === 'server_gone' || cause === 'no_answer';
}

/**
 * A session planned as an ordinary role's whose role is a superuser now (ALTER ROLE ... SUPERUSER
 * since the plan): without --include-superusers the re-check leaves it alone, as the plan would have.
 */
function becameSuperuser(planned: Pick<PlannedSession, 'superuser'>, raw: SignalRaw): boolean {
  return raw.superuser_now === true && !planned.superuser;
}

/**
 * One attempt's result. `signalled` means a cancel was delivered (the caller then waits and
 * terminates what still runs).
 */
export function classifySignal(planned: Pick<PlannedSession, 'backend_start' | 'state' | 'superuser'>, kind: SignalKind, raw: SignalRaw): StepResult {
  if (!raw.present) return { outcome: 'gone', detail: 'the session had already ended' };
  if (raw.backend_start_now !== planned.backend_start) {
    return { outcome: 'changed', detail: 'the pid now belongs to a new session (pid reused); not touched' };
  }
  if (raw.signalled === null) {
    if (becameSuperuser(planned, raw)) return { outcome: 'changed', detail: "the session's role became a superuser since the plan (--include-superusers to signal one); not touched" };
    if (raw.blocking_now === false) return { outcome: 'changed', detail: 'the session no longer blocks anyone; not touched' };
    if (raw.waiting_now === true && raw.state_now === planned.state) return { outcome: 'changed', detail: 'the session now waits for a lock itself (no longer a root blocker); not touched' };
    const now = raw.state_now ?? 'hidden';
    const what = now === planned.state ? `ran a new statement since the plan (still ${now})` : `is now ${now}, was ${planned.state}`;
    return { outcome: 'changed', detail: `the session ${what}; not touched` };
  }
  if (kind === 'cancel') {
    return raw.signalled
      ? { outcome: 'signalled', detail: 'cancel sent' }
      : { outcome: 'gone', detail: 'the session ended before the cancel reached it' };
  }
  return raw.signalled
    ? { outcome: 'terminated', detail: 'terminated; its exit confirmed' }
    : { outcome: 'failed', detail: 'SIGTERM sent, but the session did not exit within the timeout' };
}

/** The terminate step after a successful cancel: a changed session means the query stopped. */
export function classifyAfterCancel(planned: Pick<PlannedSession, 'backend_start' | 'state' | 'superuser'>, raw: SignalRaw): StepResult {
  const r = classifySignal(planned, 'terminate', raw);
  if (raw.signalled === null && becameSuperuser(planned, raw)) return r;
  if (r.outcome === 'changed' && raw.present && raw.backend_start_now === planned.backend_start && raw.blocking_now === false) {
    return { outcome: 'cancelled', detail: 'after the cancel it no longer blocks anyone; session kept' };
  }
  if (r.outcome === 'changed' && raw.present && raw.backend_start_now === planned.backend_start) {
    return { outcome: 'cancelled', detail: `the query stopped after the cancel (now ${raw.state_now ?? 'hidden'}); session kept` };
  }
  if (r.outcome === 'terminated') return { outcome: 'terminated', detail: 'still running after the cancel and the grace period; terminated, its exit confirmed' };
  return r;
}

/** How many sessions one batch statement re-checks and signals (and one fsync'd write announces). */
export const DEFAULT_BATCH_SIZE = 200;

/**
 * A row of a batch statement (src/db/sql/terminate.ts signalBatch). `sent`: a terminate went out
 * and its exit is awaited with the rest of the batch (then `exitConfirmed` or `exitTimedOut`).
 */
export function classifyBatchRow(
  planned: Pick<PlannedSession, 'backend_start' | 'state' | 'superuser'>,
  kind: SignalKind,
  raw: SignalRaw & { denied: boolean },
  afterCancel: boolean,
): StepResult | 'sent' {
  if (raw.present && raw.backend_start_now === planned.backend_start && raw.denied) {
    return {
      outcome: 'permission_denied',
      detail: `permission denied to ${kind === 'terminate' ? 'terminate' : 'cancel'} it: another role's session needs pg_signal_backend (or that role's privileges), a superuser's session a superuser; not signalled`,
    };
  }
  if (kind === 'terminate' && raw.signalled === true) return 'sent';
  if (kind === 'terminate' && raw.signalled === false) return { outcome: 'gone', detail: 'the session ended before the signal reached it' };
  return afterCancel ? classifyAfterCancel(planned, raw) : classifySignal(planned, kind, raw);
}

/** A terminate that went out, once its session is seen gone (pid + backend_start no longer there). */
export function exitConfirmed(afterCancel: boolean): StepResult {
  return afterCancel
    ? { outcome: 'terminated', detail: 'still running after the cancel and the grace period; terminated, its exit confirmed' }
    : { outcome: 'terminated', detail: 'terminated; its exit confirmed' };
}

/** A terminate that went out, and the session was still there when the timeout ran out. */
export function exitTimedOut(): StepResult {
  return { outcome: 'failed', detail: 'SIGTERM sent, but the session did not exit within the timeout' };
}

// ---------------------------------------------------------------------------------------------
// The report

export type TerminateStatus =
  | 'nothing_to_do'
  | 'dry_run'
  | 'over_max'
  | 'not_confirmed'
  | 'done'
  | 'partly_done'
  | 'not_done';

export type NotConfirmedReason = 'no_tty' | 'answered_no' | 'none_selected';

export interface SessionResult {
  pid: number;
  backend_start: string;
  app: string;
  user: string | null;
  action: TerminateAction;
  outcome: Outcome;
  detail: string;
}

export interface OutcomeCounts {
  planned: number;
  attempted: number;
  done: number;
  terminated: number;
  cancelled: number;
  changed: number;
  gone: number;
  permission_denied: number;
  failed: number;
  not_attempted: number;
}

export function countOutcomes(planned: number, results: SessionResult[]): OutcomeCounts {
  const n = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  return {
    planned,
    attempted: results.filter((r) => r.outcome !== 'not_attempted').length,
    done: results.filter((r) => DONE_OUTCOMES.includes(r.outcome)).length,
    terminated: n('terminated'),
    cancelled: n('cancelled'),
    changed: n('changed'),
    gone: n('gone'),
    permission_denied: n('permission_denied'),
    failed: n('failed'),
    not_attempted: n('not_attempted'),
  };
}

/**
 * The audit log failed during the run (a write failed or was short): dbdoctor stopped there. An
 * intent line that could not be written means its signal was not sent; an outcome line that could
 * not be written means a signal WAS sent that the log does not account for.
 */
export interface AuditFailure {
  /** The failure, one line (the path and the system's code, or the short count). */
  message: string;
  /** Signals sent whose outcome line is missing from the audit log. */
  unrecorded: Array<{ pid: number; backend_start: string; action: SignalKind; outcome: Outcome | 'signalled' }>;
}

/**
 * After acting: all done, some, or none. A run whose audit log failed is never `done`: the record
 * is part of the action, so all sessions dealt with but not all recorded is `partly_done`.
 */
export function statusOfResults(results: SessionResult[], audit: AuditFailure | null = null): 'done' | 'partly_done' | 'not_done' {
  const done = results.filter((r) => DONE_OUTCOMES.includes(r.outcome)).length;
  if (done === 0) return 'not_done';
  return done === results.length && audit === null ? 'done' : 'partly_done';
}

/**
 * The exit code: 0 all done (or nothing to do), 1 some done, 2 none done, 5 not confirmed or over
 * --max (a dry run of such a plan too), 3 when nothing matched but the role cannot see sessions that might.
 */
export function terminateExitCode(status: TerminateStatus, hiddenSessions: number, overMax = false): ExitCodeValue {
  switch (status) {
    case 'dry_run':
      // A dry run exits as the real run would decide before asking: over --max is refused (5).
      return overMax ? ExitCode.NOT_CONFIRMED : ExitCode.OK;
    case 'done':
      return ExitCode.OK;
    case 'nothing_to_do':
      return hiddenSessions > 0 ? ExitCode.UNKNOWN : ExitCode.OK;
    case 'partly_done':
      return ExitCode.WARNING;
    case 'not_done':
      return ExitCode.CRITICAL;
    case 'over_max':
    case 'not_confirmed':
      return ExitCode.NOT_CONFIRMED;
  }
}


/** "; the audit log failed, so it has no outcome for the signal sent to pid 12 (terminate: terminated): <why>", or "". */
function auditFailureText(a: AuditFailure | null): string {
  if (!a) return '';
  const sent = a.unrecorded.map((u) => `pid ${u.pid} (${u.action}: ${u.outcome === 'signalled' ? 'sent' : u.outcome})`);
  return sent.length > 0
    ? `; the audit log failed, so it has no outcome for the signal sent to ${sent.join(', ')}: ${a.message}`
    : `; the audit log failed, so nothing more was signalled: ${a.message}`;
}

export function terminateSummary(status: TerminateStatus, o: { planned: number; max: number; counts: OutcomeCounts | null; reason: NotConfirmedReason | null; hidden: number; audit?: AuditFailure | null }): string {
  switch (status) {
    case 'nothing_to_do':
      return o.hidden > 0
        ? `no visible session matches; your role cannot see ${plural(o.hidden, 'session')} that might`
        : 'no session matches the filters; nothing to do';
    case 'dry_run':
      return `dry run: ${plural(o.planned, 'session')} would be terminated${o.planned > o.max ? ` (more than --max ${o.max}: a real run would refuse)` : ''}`;
    case 'over_max':
      return `the plan has ${plural(o.planned, 'session')}, more than --max ${o.max}; nothing was terminated`;
    case 'not_confirmed':
      return o.reason === 'no_tty'
        ? 'not confirmed: no terminal to ask on and no --yes; nothing was terminated'
        : o.reason === 'none_selected'
          ? 'no session selected; nothing was terminated'
          : 'not confirmed; nothing was terminated';
    default: {
      const c = o.counts!;
      const parts: string[] = [];
      if (c.terminated) parts.push(`${c.terminated} terminated`);
      if (c.cancelled) parts.push(`${plural(c.cancelled, 'query', 'queries')} cancelled`);
      if (c.gone) parts.push(`${c.gone} already gone`);
      if (c.changed) parts.push(`${c.changed} changed (kept)`);
      if (c.permission_denied) parts.push(`${c.permission_denied} permission denied`);
      if (c.failed) parts.push(`${c.failed} failed`);
      if (c.not_attempted) parts.push(`${c.not_attempted} not attempted`);
      const head = status === 'done' ? 'done' : status === 'partly_done' ? 'partly done' : 'nothing done';
      return `${head}: ${c.done} of ${plural(c.planned, 'planned session')} dealt with (${parts.join(', ')})${auditFailureText(o.audit ?? null)}`;
    }
  }
}

export function terminateHint(status: TerminateStatus, o: { reason: NotConfirmedReason | null; hidden: number; counts: OutcomeCounts | null; audit?: AuditFailure | null; planned?: number; max?: number }): string | null {
  switch (status) {
    case 'nothing_to_do':
      return o.hidden > 0 ? 'grant the role pg_read_all_stats (or pg_monitor) so dbdoctor can see and re-check those sessions' : null;
    case 'dry_run':
      // Over --max the real run would refuse: the hint is the over-max one.
      if (o.planned !== undefined && o.max !== undefined && o.planned > o.max) return 'narrow the filters (--app, --older-than, --pid ...), or raise --max if you mean it';
      return 'run the same command without --dry-run to act (with --yes where there is no terminal)';
    case 'over_max':
      return 'narrow the filters (--app, --older-than, --pid ...), or raise --max if you mean it';
    case 'not_confirmed':
      return o.reason === 'no_tty' ? 'check the plan above (or use --dry-run), then run again with --yes' : null;
    default: {
      const c = o.counts!;
      if (o.audit) {
        return o.audit.unrecorded.length > 0
          ? 'free space (or raise the file-size limit) for the audit log, add the missing outcomes to it by hand from this report, then look again before re-running'
          : 'free space (or raise the file-size limit) for the audit log, then look again (dbdoctor connections) and re-run';
      }
      if (c.permission_denied) return "the role needs pg_signal_backend (or membership in the session's role); only a superuser may signal superuser sessions";
      if (c.changed) return 'changed sessions were left alone; look again (dbdoctor connections) and re-run if they still need to go';
      if (c.failed) return 'see the detail per session: a timeout wants a longer --statement-timeout; a lost session or a restarted server means the plan is stale, so look again (dbdoctor connections) before re-running';
      if (c.not_attempted) return 'dbdoctor stopped before the rest (see the detail); look again and re-run';
      return null;
    }
  }
}

/** What `terminate` did, for the renderer and for `--json` (schema dbdoctor.terminate). */
export interface TerminateReport {
  status: TerminateStatus;
  /** One line saying what happened. */
  summary: string;
  hint: string | null;
  exit_code: ExitCodeValue;
  /** Where dbdoctor connected (never a password). */
  target: string;
  /** The database connected to: the default scope. */
  database: string | null;
  all_databases: boolean;
  include_superusers: boolean;
  filters: TerminateFilters;
  max: number;
  dry_run: boolean;
  cancel_first: boolean;
  grace_ms: number | null;
  not_confirmed_reason: NotConfirmedReason | null;
  planned: PlannedSession[];
  excluded: ExcludedSession[];
  not_found_pids: number[];
  hidden_sessions: number;
  /** Pids unchecked at the interactive prompt. */
  deselected: number[];
  results: SessionResult[];
  counts: OutcomeCounts | null;
  audit_log: string | null;
  /** The audit log failed during the run: why, and which signals it has no outcome for. */
  audit_failure: AuditFailure | null;
  lock_file: string | null;
  run_id: string;
}

export type ReportBase = Omit<TerminateReport, 'status' | 'summary' | 'hint' | 'exit_code' | 'counts' | 'not_confirmed_reason' | 'audit_failure'> & {
  audit_failure?: AuditFailure | null;
};

/** Fills in status, summary, hint, counts and exit code. */
export function finishReport(base: ReportBase, status: TerminateStatus, reason: NotConfirmedReason | null = null): TerminateReport {
  const acted = status === 'done' || status === 'partly_done' || status === 'not_done';
  const counts = acted ? countOutcomes(base.results.length, base.results) : null;
  const audit = base.audit_failure ?? null;
  const o = { planned: base.planned.length, max: base.max, counts, reason, hidden: base.hidden_sessions, audit };
  return {
    status,
    summary: terminateSummary(status, o),
    hint: terminateHint(status, o),
    exit_code: terminateExitCode(status, base.hidden_sessions, base.planned.length > base.max),
    not_confirmed_reason: reason,
    counts,
    ...base,
    audit_failure: audit,
  };
}
