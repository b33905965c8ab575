/**
 * The `locks` report: the blocking tree of src/core/blocking.ts in a JSON-able shape (session
 * views instead of raw rows), with the visibility accounting and a status. Pure.
 */
import type { ActivitySnapshot, PreparedXact, SessionRow } from './activity.js';
import { type BlockNode, buildBlockingReport, type RootBlocker, type WaitedLock } from './blocking.js';
import { parallelWorkersByLeader, type SessionInfo, sessionInfo, type Visibility, visibilityOf } from './connections.js';
import type { Severity } from './exit-codes.js';

/** `locks` reads lock detail, so a waited lock's mode is always known here. */
export type { WaitedLock };

export interface LockTreeNode {
  pid: number;
  /** The session, or null for a prepared transaction (pid 0) or a process gone since the read. */
  session: SessionInfo | null;
  /** The lock this session waits for (null for the root, or when not known). */
  waits_for: (WaitedLock & { wait_ms: number | null }) | null;
  children: LockTreeNode[];
}

/**
 * A root blocker as `locks` shows it: RootBlocker (src/core/blocking.ts) in its JSON shape, with
 * session views instead of rows, the tree of session views, and the pids it blocks under their
 * JSON names.
 */
export interface LockRoot extends Pick<RootBlocker, 'pid' | 'longest_wait_ms' | 'waited_locks' | 'action' | 'advice' | 'next' | 'holds_advisory' | 'prepared'> {
  /** pid 0: a prepared transaction holds the lock (see `prepared`). */
  prepared_transaction: boolean;
  /** The blocker's process was gone (or hidden) when its details were read. */
  vanished: boolean;
  session: SessionInfo | null;
  /** RootBlocker's `direct` and `all`: the pids it blocks directly, and directly or behind others. */
  blocks_direct: number[];
  blocks_all: number[];
  blocks_total: number;
  tree: LockTreeNode;
}

export interface LocksReport {
  /** ok: nobody waits on a lock; warning: someone does; unknown: the view is partial. */
  status: Severity;
  server_version_num: number;
  taken_at: string;
  visibility: Visibility;
  /** Sessions waiting on a lock held by another session. */
  waiting: number;
  /** Root blockers, the one blocking most first. */
  roots: LockRoot[];
  /** Sessions waiting in (or behind) a lock cycle: a deadlock the server breaks after deadlock_timeout. */
  cycles: Array<{ pids: number[]; sessions: SessionInfo[] }>;
  /** Every prepared transaction on the server (they hold locks until COMMIT/ROLLBACK PREPARED). */
  prepared_transactions: PreparedXact[];
}

const roundOrNull = (v: number | null | undefined) => (v === null || v === undefined ? null : Math.round(v));

export function locksReport(snapshot: ActivitySnapshot, priv: { can_read_all_stats: boolean; role?: string | null }): LocksReport {
  const b = buildBlockingReport(snapshot);
  const workers = parallelWorkersByLeader(snapshot);
  const rows = new Map(snapshot.rows.map((r) => [r.pid, r]));
  const view = (r: SessionRow | null | undefined) => (r ? sessionInfo(r, workers.get(r.pid) ?? 0) : null);
  const node = (n: BlockNode, isRoot: boolean): LockTreeNode => {
    const l = n.session?.wait_lock;
    return {
      pid: n.pid,
      session: view(n.session),
      waits_for: !isRoot && l ? { locktype: l.locktype, mode: l.mode, relation: l.relation, wait_ms: roundOrNull(l.wait_ms) } : null,
      children: n.children.map((c) => node(c, false)),
    };
  };
  const roots: LockRoot[] = b.roots.map((r) => ({
    pid: r.pid,
    prepared_transaction: r.pid === 0,
    vanished: r.pid !== 0 && r.session === null,
    session: view(r.session),
    blocks_direct: r.direct,
    blocks_all: r.all,
    blocks_total: r.all.length,
    longest_wait_ms: roundOrNull(r.longest_wait_ms),
    waited_locks: r.waited_locks,
    action: r.action,
    advice: r.advice,
    next: r.next,
    holds_advisory: r.holds_advisory,
    prepared: r.prepared,
    tree: node(r.tree, true),
  }));
  const visibility = visibilityOf(snapshot, priv);
  return {
    status: visibility.partial ? 'unknown' : b.waiting > 0 ? 'warning' : 'ok',
    server_version_num: snapshot.server_version_num,
    taken_at: snapshot.taken_at,
    visibility,
    waiting: b.waiting,
    roots,
    cycles: b.cycles.map((pids) => ({ pids, sessions: pids.map((p) => view(rows.get(p))).filter((s): s is SessionInfo => s !== null) })),
    prepared_transactions: snapshot.prepared.map((p) => ({ ...p, age_ms: Math.round(p.age_ms) })),
  };
}
