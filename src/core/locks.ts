/**
 * The `locks` report: the blocking tree of src/core/blocking.ts in a JSON-able shape, with the
 * visibility accounting and a status. Pure.
 *
 * Every session appears once, in a flat list of nodes (`nodes`): each names the root it waits
 * behind, the session it is shown under (`blocked_by`) and everyone it waits for, so the document
 * grows linearly with the sessions however deep a chain is (a nested tree repeated every subtree
 * inside its parent: a 2,000-deep chain was hundreds of megabytes). The roots carry their summary.
 */
import { type ActivitySnapshot, byPid, type PreparedXact, type SessionRow } from './activity.js';
import { type BlockNode, blockingEdges, buildBlockingReport, cycleStep, type RootBlocker, type WaitedLock } from './blocking.js';
import type { NextStep } from './printed.js';
import { parallelWorkersByLeader, type SessionInfo, sessionInfo, type Visibility, visibilityOf } from './connections.js';
import type { Severity } from './exit-codes.js';
import { roundOrNull } from './stats.js';

/** `locks` reads lock detail, so a waited lock's mode is always known here. */
export type { WaitedLock };

/** One session of the blocking graph, once. */
export interface LockNode {
  pid: number;
  /** The session, or null for a prepared transaction (pid 0) or a process gone since the read. */
  session: SessionInfo | null;
  /**
   * The root blocker it waits behind (itself for a root): of several, the first in `roots` (a
   * session is listed once); null in or behind a lock cycle.
   */
  root: number | null;
  /** The session it is shown under: the blocker nearest the root (null for a root or a cycle member). */
  blocked_by: number | null;
  /**
   * The sessions it waits for (parallel workers folded into their leaders), as
   * the lock queues give them (lockQueues, src/core/blocking.ts), the holders and of the waiters queued
   * ahead of it for the same lock only the one just ahead.
   */
  blockers: number[];
  /** Steps from its root (0 for the root itself; null in or behind a lock cycle). */
  depth: number | null;
  /** The lock this session waits for (null for a root, or when not known). */
  waits_for: (WaitedLock & { wait_ms: number | null }) | null;
  /** It waits, and others wait behind it: the head of a lock queue (a DDL statement behind a long transaction, say). */
  queue_head: boolean;
  /** How many sessions wait behind it (in its root's tree, or for a cycle member, behind the cycle). */
  behind: number;
  /** The lock cycle it is in or behind (an index into `cycles`), or null. */
  cycle: number | null;
}

/**
 * A root blocker as `locks` shows it: RootBlocker (src/core/blocking.ts) in its JSON shape, with a
 * session view instead of a row and the pids it blocks under their JSON names. The sessions
 * behind it are the nodes whose `root` is its pid, and those behind an earlier root too (listed
 * there: `blocks_all` names them all).
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
  /** Waiters in its tree that others queue behind. */
  queue_heads: number[];
}

export interface LocksReport {
  /** ok: nobody waits on a lock; warning: someone does; unknown: the view is partial. */
  status: Severity;
  server_version_num: number;
  taken_at: string;
  visibility: Visibility;
  /** Sessions waiting on a lock held by another. */
  waiting: number;
  /** Root blockers, the one blocking most first. */
  roots: LockRoot[];
  /** Every session of the blocking graph, once: each root followed by its tree, breadth first; then the lock cycles. */
  nodes: LockNode[];
  /** Sessions waiting for each other (a deadlock the server breaks after deadlock_timeout), and those stuck behind them. */
  cycles: Array<{ members: number[]; stuck: number[]; longest_wait_ms: number | null; next: NextStep[] }>;
  /** Every prepared transaction on the server (they hold locks until COMMIT/ROLLBACK PREPARED). */
  prepared_transactions: PreparedXact[];
}

export function locksReport(snapshot: ActivitySnapshot, priv: { can_read_all_stats: boolean; role?: string | null }): LocksReport {
  const edges = blockingEdges(snapshot);
  const b = buildBlockingReport(snapshot, edges);
  const workers = parallelWorkersByLeader(snapshot);
  const rows = byPid(snapshot.rows);
  const view = (r: SessionRow | null | undefined) => (r ? sessionInfo(r, workers.get(r.pid) ?? 0) : null);
  const waitsFor = (r: SessionRow | null | undefined) => {
    const l = r?.wait_lock;
    return l ? { locktype: l.locktype, mode: l.mode, relation: l.relation, wait_ms: roundOrNull(l.wait_ms) } : null;
  };
  const nodes: LockNode[] = [];
  const listed = new Set<number>();
  const roots: LockRoot[] = b.roots.map((r) => {
    // Breadth first, without recursion: a chain thousands deep is a loop, not a call stack. The
    // walk's nodes, the session each is shown under and their depths, side by side.
    const heads: number[] = [];
    const queue: BlockNode[] = [r.tree];
    const parents: Array<number | null> = [null];
    const depths: number[] = [0];
    for (let i = 0; i < queue.length; i++) {
      const n = queue[i]!;
      const depth = depths[i]!;
      const head = depth > 0 && n.behind > 0;
      if (head) heads.push(n.pid);
      // A session behind more than one root (a DDL statement waiting for several readers, and the
      // queue behind it) is listed once, under the first root that reaches it, and so is everything
      // behind it: listed under each, R roots and W waiters were R x W nodes. The walk goes on for
      // this root's queue heads.
      if (!listed.has(n.pid)) {
        listed.add(n.pid);
        nodes.push({
          pid: n.pid,
          session: view(n.session),
          root: r.pid,
          blocked_by: parents[i]!,
          blockers: edges.get(n.pid) ?? [],
          depth,
          waits_for: depth > 0 ? waitsFor(n.session) : null,
          queue_head: head,
          behind: n.behind,
          cycle: null,
        });
      }
      for (let j = 0; j < n.children.length; j++) {
        queue.push(n.children[j]!);
        parents.push(n.pid);
        depths.push(depth + 1);
      }
    }
    return {
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
      queue_heads: heads,
    };
  });
  b.cycles.forEach((c, i) => {
    const members = new Set(c.members);
    for (const pid of [...c.members, ...c.stuck]) {
      if (listed.has(pid)) continue;
      listed.add(pid);
      const member = members.has(pid);
      nodes.push({
        pid,
        session: view(rows.get(pid)),
        root: null,
        blocked_by: null,
        blockers: edges.get(pid) ?? [],
        depth: null,
        waits_for: waitsFor(rows.get(pid)),
        queue_head: false,
        behind: member ? c.stuck.length : 0,
        cycle: i,
      });
    }
  });
  const visibility = visibilityOf(snapshot, priv);
  return {
    status: visibility.partial ? 'unknown' : b.waiting > 0 ? 'warning' : 'ok',
    server_version_num: snapshot.server_version_num,
    taken_at: snapshot.taken_at,
    visibility,
    waiting: b.waiting,
    roots,
    nodes,
    cycles: b.cycles.map((c) => ({ members: c.members, stuck: c.stuck, longest_wait_ms: roundOrNull(c.longest_wait_ms), next: [cycleStep(c, rows)] })),
    prepared_transactions: snapshot.prepared.map((p) => ({ ...p, age_ms: Math.round(p.age_ms) })),
  };
}
