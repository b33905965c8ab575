/**
 * The snapshot every inspection reads: one row per server process, as pg_stat_activity shows it
 * to the current role, with ages computed on the server against one clock reading. Gathered once
 * (src/db/sql/activity.ts), then decided on by pure functions.
 */

export const INSUFFICIENT_PRIVILEGE = '<insufficient privilege>';

export interface SessionRow {
  pid: number;
  leader_pid: number | null;
  backend_type: string | null;
  /** The database's and the role's oids (absent in snapshots recorded before they were read). */
  datid?: number | null;
  datname: string | null;
  usesysid?: number | null;
  usename: string | null;
  /** rolsuper of the session's role (null when the role is gone). */
  superuser: boolean | null;
  application_name: string;
  client_addr: string | null;
  client_hostname: string | null;
  client_port: number | null;
  /** backend_start as text, microseconds intact: with pid, the session's identity. */
  backend_start: string | null;
  /** Null when hidden by privileges. */
  state: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
  /** Milliseconds since backend_start / xact_start / query_start / state_change. */
  backend_age_ms: number | null;
  xact_age_ms: number | null;
  query_age_ms: number | null;
  state_age_ms: number | null;
  query_id: string | null;
  /** Query text, cut to the snapshot's limit; `<insufficient privilege>` when hidden. */
  query: string | null;
  /**
   * Whom it waits for, only for sessions waiting on a lock (0 = a prepared transaction):
   * pg_blocking_pids(pid), or, where pg_locks was read, the holders it conflicts with and the
   * nearest conflicting waiters ahead (src/core/lock-queue.ts).
   */
  blocked_by: number[] | null;
  /** For lock waiters: the lock waited for. */
  wait_lock: { locktype: string; mode: string; relation: string | null; wait_ms: number | null } | null;
  /** This is dbdoctor's own session. */
  is_self: boolean;
}

export interface PreparedXact {
  gid: string;
  owner: string;
  database: string;
  transaction: string;
  age_ms: number;
}

export interface ActivitySnapshot {
  /** server_version_num of the server the snapshot came from. */
  server_version_num: number;
  /** When the snapshot was read (server clock, ISO). */
  taken_at: string;
  /** The database dbdoctor is connected to. */
  database: string;
  rows: SessionRow[];
  prepared: PreparedXact[];
}

/** The rows by pid (the last of a pid listed twice). */
export function byPid<R extends { pid: number }>(rows: readonly R[]): Map<number, R> {
  const out = new Map<number, R>();
  for (let i = 0; i < rows.length; i++) out.set(rows[i]!.pid, rows[i]!);
  return out;
}

const ROWS_BY_PID = new WeakMap<readonly SessionRow[], ReadonlyMap<number, SessionRow>>();

/**
 * A snapshot's rows by pid, made once per snapshot: the blocking tree, its report and the
 * diagnosis' nodes all look sessions up by pid, and at incident scale each map is 1,500 entries. A
 * snapshot's rows are never changed once read (nothing in src/core writes to them).
 */
export function snapshotByPid(s: ActivitySnapshot): ReadonlyMap<number, SessionRow> {
  let index = ROWS_BY_PID.get(s.rows);
  if (!index) {
    index = byPid(s.rows);
    ROWS_BY_PID.set(s.rows, index);
  }
  return index;
}

export function isClientBackend(r: SessionRow): boolean {
  // Rows hidden by privileges show NULL backend_type, for background processes too; those are
  // told apart by their database: a client backend is always connected to one, while the
  // checkpointer, walwriter, launchers and physical walsenders are not.
  return r.backend_type === 'client backend' || (r.backend_type === null && r.datname !== null);
}

export function isParallelWorker(r: SessionRow): boolean {
  return r.leader_pid !== null && r.leader_pid !== r.pid;
}

/** Whether the current role may see this session's state and query. */
export function isVisible(r: SessionRow): boolean {
  return r.query !== INSUFFICIENT_PRIVILEGE && !(r.state === null && r.query === null && isClientBackend(r));
}

/** States as PostgreSQL names them, plus "hidden" for rows the role may not see. */
export function stateOf(r: SessionRow): string {
  if (!isVisible(r)) return 'hidden';
  return r.state ?? 'unknown';
}

/** Client sessions other than dbdoctor itself: what the inspections count. */
export function clientSessions(s: ActivitySnapshot): SessionRow[] {
  return s.rows.filter((r) => !r.is_self && isClientBackend(r) && !isParallelWorker(r));
}

/** Background processes and parallel workers: reported apart, never mixed into client counts. */
export function otherProcesses(s: ActivitySnapshot): SessionRow[] {
  return s.rows.filter((r) => !r.is_self && (!isClientBackend(r) || isParallelWorker(r)));
}

/** A LISTEN session is long-lived by design (seeds/001's outbox listeners): never a leak. */
export function isListener(r: SessionRow): boolean {
  return r.state === 'idle' && /^\s*(LISTEN|UNLISTEN)\b/i.test(r.query ?? '');
}

/**
 * Lock types whose mode a lock waiter's wait_event fixes without reading pg_locks: a transaction
 * ID, a virtual transaction ID and a speculative insertion token are always waited for in
 * ShareLock (XactLockTableWait, VirtualXactLock, SpeculativeInsertionWait), and none of them names
 * a relation. An advisory lock names no relation either; its mode is the function's (see
 * derivedWaitLock). Every other type (relation, tuple, page, extend, object, ...) needs pg_locks
 * for its relation or mode.
 */
export const DERIVABLE_LOCK_TYPES = ['transactionid', 'virtualxid', 'spectoken', 'advisory'] as const;

const SHARED_ADVISORY = /\bpg_(?:try_)?advisory(?:_xact)?_lock_shared\s*\(/i;

/**
 * The lock a Lock waiter waits for, told from its wait_event (and for an advisory lock its
 * statement: the `_shared` functions wait in ShareLock, the others in ExclusiveLock), without
 * pg_locks; null for types that need pg_locks, and the wait's start is not known (null).
 */
export function derivedWaitLock(waitEvent: string | null, query: string | null): SessionRow['wait_lock'] {
  switch (waitEvent) {
    case 'transactionid':
    case 'virtualxid':
    case 'spectoken':
      return { locktype: waitEvent, mode: 'ShareLock', relation: null, wait_ms: null };
    case 'advisory':
      return { locktype: 'advisory', mode: query !== null && SHARED_ADVISORY.test(query) ? 'ShareLock' : 'ExclusiveLock', relation: null, wait_ms: null };
    default:
      return null;
  }
}
