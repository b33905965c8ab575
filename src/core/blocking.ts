/**
 * The blocking tree, from the snapshot's pg_blocking_pids() edges (lock waiters only). Pure.
 * Handles cycles (a deadlock about to be broken), pid 0 (a prepared transaction), parallel
 * workers (folded into their leader) and blockers that vanished between reads.
 */
import { type ActivitySnapshot, isParallelWorker, type PreparedXact, type SessionRow } from './activity.js';
import { fixedStep, type NextStep, preparedGid, sqlStep, statementStep } from './printed.js';

export type RootAction = 'terminate' | 'cancel_then_terminate' | 'resolve_prepared' | 'investigate';

export interface BlockNode {
  pid: number;
  /** The session row, or null for pid 0 (prepared transaction) or a vanished process. */
  session: SessionRow | null;
  /** Sessions this node blocks directly (each appears once in the tree, under its first blocker). */
  children: BlockNode[];
}

export interface RootBlocker {
  pid: number;
  session: SessionRow | null;
  /** Pids blocked directly by this root. */
  direct: number[];
  /** Every pid blocked by this root, directly or behind others. */
  all: number[];
  /**
   * Longest wait among the blocked sessions, ms: from pg_locks.waitstart when the snapshot has
   * lock detail (`locks`), otherwise the time in state, which the wait can only be shorter than.
   */
  longest_wait_ms: number | null;
  /**
   * The locks the waiters wait for, the direct waiters' first: type, mode and relation with lock
   * detail (`locks`); without it (`diagnose`), the type only, from wait_event, mode and relation
   * null.
   */
  waited_locks: WaitedLock[];
  action: RootAction;
  /** What to do next, in words (with the exact dbdoctor command when there is one). */
  advice: string;
  /** The same as steps: each with its exact command or statement, printed as it is. */
  next: NextStep[];
  /**
   * Blocks someone through an advisory lock (pg_advisory_lock and friends): a session it blocks
   * directly waits on an advisory lock (its wait_event is `advisory`). A root waits on nothing, so
   * it holds that lock; the application took it on purpose, and a session-level one outlives any
   * cancel or rollback.
   */
  holds_advisory: boolean;
  /** For pid 0: the prepared transactions that may hold the lock. */
  prepared: PreparedXact[];
  tree: BlockNode;
}

export interface WaitedLock {
  locktype: string;
  mode: string | null;
  relation: string | null;
}

export interface BlockingReport {
  roots: RootBlocker[];
  /** Waiters in a cycle with no root: a deadlock the server will break after deadlock_timeout. */
  cycles: number[][];
  /** Total sessions waiting on a lock held by another. */
  waiting: number;
}

/**
 * The lock a waiter waits for: from lock detail when read, else its type from wait_event. For a
 * Lock wait, wait_event is the type of lock waited for, named as pg_locks.locktype names it (both
 * come from the server's LockTagTypeNames), so no pg_locks read is needed to know it.
 */
function waitedLock(r: SessionRow | undefined): WaitedLock | null {
  if (r?.wait_lock) return { locktype: r.wait_lock.locktype, mode: r.wait_lock.mode, relation: r.wait_lock.relation };
  if (r?.wait_event_type === 'Lock' && r.wait_event) return { locktype: r.wait_event, mode: null, relation: null };
  return null;
}

function key(pid: number, rows: Map<number, SessionRow>): number {
  const r = rows.get(pid);
  return r && isParallelWorker(r) && r.leader_pid !== null ? r.leader_pid : pid;
}

/** Edges waiter -> blockers, parallel workers folded into their leaders, self-edges dropped. */
export function blockingEdges(snapshot: ActivitySnapshot): Map<number, Set<number>> {
  const rows = new Map(snapshot.rows.map((r) => [r.pid, r]));
  const edges = new Map<number, Set<number>>();
  for (const r of snapshot.rows) {
    if (!r.blocked_by || r.blocked_by.length === 0) continue;
    const waiter = key(r.pid, rows);
    for (const b of r.blocked_by) {
      const blocker = key(b, rows);
      if (blocker === waiter) continue;
      let set = edges.get(waiter);
      if (!set) {
        set = new Set();
        edges.set(waiter, set);
      }
      set.add(blocker);
    }
  }
  return edges;
}

/** COMMIT PREPARED and ROLLBACK PREPARED for the first candidate, or how to list them. */
function preparedSteps(prepared: PreparedXact[]): NextStep[] {
  const p = prepared[0];
  if (!p) return [sqlStep('see the prepared transactions, then COMMIT PREPARED or ROLLBACK PREPARED the one that holds the lock', 'SELECT gid, owner, database, prepared FROM pg_prepared_xacts ORDER BY prepared;')];
  const more = prepared.length > 1 ? ` (the oldest of ${prepared.length} prepared transactions: see them all with dbdoctor locks --json)` : '';
  return [
    statementStep(`decide, then commit it${more}`, ['COMMIT PREPARED ', preparedGid(p.gid, p.transaction), ';'], 'commit it from pg_prepared_xacts'),
    statementStep('or roll it back', ['ROLLBACK PREPARED ', preparedGid(p.gid, p.transaction), ';'], 'roll it back from pg_prepared_xacts'),
  ];
}

/** What to do with a root, in words (with the exact command, for readers of the JSON) and as steps. */
function actionFor(pid: number, s: SessionRow | null, prepared: PreparedXact[]): { action: RootAction; advice: string; next: NextStep[] } {
  if (pid === 0) {
    const next = preparedSteps(prepared);
    const run = next.length === 2 ? ` Decide, then run ${next[0]!.sql ?? next[0]!.text} or ${next[1]!.sql ?? next[1]!.text}` : ` ${next[0]!.text}: ${next[0]!.sql}`;
    return { action: 'resolve_prepared', advice: `a prepared transaction holds the lock; it cannot be terminated, only committed or rolled back.${run}`, next };
  }
  const terminate = (words: string, ...flags: string[]) => {
    const step = fixedStep(words, 'terminate', [['--pid', String(pid)], ...flags]);
    return { advice: `${words}: ${step.command}`, next: [step] };
  };
  if (!s) return { action: 'investigate', advice: `pid ${pid} is gone or hidden; run dbdoctor locks again`, next: [fixedStep('look again', 'locks')] };
  if (s.state === 'idle in transaction' || s.state === 'idle in transaction (aborted)') {
    return { action: 'terminate', ...terminate('idle in transaction: cancelling does nothing; terminate it') };
  }
  if (s.state === 'idle') {
    return { action: 'terminate', ...terminate('idle but holding a lock (a session-level advisory lock?): have the app release it, or terminate it') };
  }
  if (s.state === 'active' || s.state === 'fastpath function call') {
    return { action: 'cancel_then_terminate', ...terminate('running a statement: cancel first, terminate if it persists', '--cancel-first') };
  }
  return { action: 'investigate', advice: `state ${s.state ?? 'hidden'}: grant pg_monitor to see more, then decide`, next: [fixedStep('see what this role can see and do', 'check')] };
}

export function buildBlockingReport(snapshot: ActivitySnapshot): BlockingReport {
  const rows = new Map(snapshot.rows.map((r) => [r.pid, r]));
  const edges = blockingEdges(snapshot);
  // blocker -> waiters
  const blocks = new Map<number, number[]>();
  for (const [waiter, blockers] of edges) {
    for (const b of blockers) {
      const list = blocks.get(b) ?? [];
      list.push(waiter);
      blocks.set(b, list);
    }
  }
  for (const list of blocks.values()) list.sort((a, b) => a - b);

  // Roots: blockers that wait on nobody.
  const rootPids = [...blocks.keys()].filter((b) => !edges.has(b)).sort((a, b) => a - b);
  const reached = new Set<number>();
  const roots: RootBlocker[] = rootPids.map((pid) => {
    // Breadth first, iteratively: each waiter sits under the blocker nearest the root (a queue of
    // N waiters on one lock is N children of the holder, not a chain N deep), and no recursion.
    const seen = new Set<number>([pid]);
    const tree: BlockNode = { pid, session: pid === 0 ? null : (rows.get(pid) ?? null), children: [] };
    const order: number[] = [];
    const queue: BlockNode[] = [tree];
    for (let i = 0; i < queue.length; i++) {
      const node = queue[i]!;
      for (const w of blocks.get(node.pid) ?? []) {
        if (seen.has(w)) continue;
        seen.add(w);
        order.push(w);
        const child: BlockNode = { pid: w, session: rows.get(w) ?? null, children: [] };
        node.children.push(child);
        queue.push(child);
      }
    }
    const all = [...seen].filter((p) => p !== pid).sort((a, b) => a - b);
    for (const p of all) reached.add(p);
    const direct = blocks.get(pid) ?? [];
    const waits = all.map((p) => rows.get(p)?.wait_lock?.wait_ms ?? rows.get(p)?.state_age_ms ?? null).filter((v): v is number => v !== null);
    // The locks waited on, the direct waiters' first: a row lock shows as a wait on the holder's
    // transactionid (no relation); the waiters queued behind show the tuple and its relation.
    const waited = new Map<string, WaitedLock>();
    for (const w of [...direct, ...order]) {
      const l = waitedLock(rows.get(w));
      if (l) waited.set(`${l.locktype}/${l.mode}/${l.relation}`, l);
    }
    const session = pid === 0 ? null : (rows.get(pid) ?? null);
    const prepared = pid === 0 ? snapshot.prepared : [];
    return {
      pid,
      session,
      direct,
      all,
      // a loop, not Math.max(...waits): spreading a huge pile-up overflows the call stack
      longest_wait_ms: waits.length ? waits.reduce((a, b) => Math.max(a, b)) : null,
      waited_locks: [...waited.values()],
      ...actionFor(pid, session, prepared),
      holds_advisory: session !== null && direct.some((w) => waitedLock(rows.get(w))?.locktype === 'advisory'),
      prepared,
      tree,
    };
  });
  roots.sort((a, b) => b.all.length - a.all.length || a.pid - b.pid);

  // Waiters no root reaches are in (or behind) a cycle.
  const cycles: number[][] = [];
  const unreached = [...edges.keys()].filter((w) => !reached.has(w));
  const done = new Set<number>();
  for (const start of unreached) {
    if (done.has(start)) continue;
    const component: number[] = [];
    const stack = [start];
    while (stack.length) {
      const p = stack.pop()!;
      if (done.has(p)) continue;
      done.add(p);
      component.push(p);
      for (const b of edges.get(p) ?? []) if (!reached.has(b) && edges.has(b)) stack.push(b);
      for (const w of blocks.get(p) ?? []) if (!reached.has(w)) stack.push(w);
    }
    cycles.push(component.sort((a, b) => a - b));
  }
  return { roots, cycles, waiting: edges.size };
}
