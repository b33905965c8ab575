/**
 * The blocking tree, from the snapshot's blocked_by lists (lock waiters only: pg_blocking_pids(), or
 * the lock table's reading, src/core/lock-queue.ts). Pure.
 * Handles cycles (a deadlock about to be broken), pid 0 (a prepared transaction), parallel
 * workers (folded into their leader) and blockers that vanished between reads.
 */
import { type ActivitySnapshot, byPid, isParallelWorker, type PreparedXact, type SessionRow, snapshotByPid } from './activity.js';
import { fixedStep, type NextStep, preparedGid, sqlStep, statementStep } from './printed.js';
import { largest } from './stats.js';

export type RootAction = 'terminate' | 'cancel_then_terminate' | 'resolve_prepared' | 'investigate';

export interface BlockNode {
  pid: number;
  /** The session row, or null for pid 0 (prepared transaction) or a vanished process. */
  session: SessionRow | null;
  /** Sessions this node blocks directly (each appears once in the tree, under its first blocker). */
  children: BlockNode[];
  /** How many sessions wait behind it in the tree (its children, theirs, ...). */
  behind: number;
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

/**
 * Sessions waiting for each other in a circle: a deadlock the server breaks only after
 * deadlock_timeout (which a role or database may have raised), with everything queued behind it
 * waiting too.
 */
export interface LockCycle {
  /** The sessions that wait for each other (a strongly connected component of the waits-for graph), ascending. */
  members: number[];
  /**
   * Sessions waiting behind the cycle (through the graph), in no cycle themselves, ascending; one
   * behind several cycles is listed under the nearest (on a tie, the one with the lowest pid).
   */
  stuck: number[];
  /** The longest wait among members and stuck (as RootBlocker's). */
  longest_wait_ms: number | null;
}

export interface BlockingReport {
  roots: RootBlocker[];
  /** Lock cycles: no root reaches them; members apart from the sessions stuck behind them. */
  cycles: LockCycle[];
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

function key(pid: number, rows: ReadonlyMap<number, SessionRow>): number {
  const r = rows.get(pid);
  return r && isParallelWorker(r) && r.leader_pid !== null ? r.leader_pid : pid;
}

/** A waiter's place in a lock queue (see lockQueues). */
export interface QueuePlace {
  /** What it waits for: the hard edges (the holders), then `ahead` when there is one. */
  blockers: number[];
  /** The waiter just ahead of it in the same queue (a soft edge: it waits behind that request), or null. */
  ahead: number | null;
  /** How many waiters of the same queue are ahead of it (0: none). */
  position: number;
}

/**
 * Lock queues, derived once, linearly in what they read. A waiter's list comes in one of two
 * shapes. pg_blocking_pids() lists the holders it conflicts with (hard blockers, first) and then
 * every conflicting waiter ahead of it in the lock's wait queue, in queue order (soft blockers): a
 * queue of N waiters is N^2/2 pids. The lock table's reading (core/lock-queue.ts) lists the same
 * holders and then only the nearest waiter ahead of each conflicting mode. Either way, a waiter
 * whose list is the one ahead's extended by that one (its whole list, or its hard blockers, then
 * that pid) waits just behind it in the same queue (`ahead`); it keeps the hard blockers plus the
 * one ahead, and the rest of the queue is reached through it. Anything else (the first in a queue,
 * a chain where the holder itself waits, modes that do not all conflict, lists read at different
 * instants) keeps its whole list; where pg_locks was read, the waiters at the end of such a list
 * that wait on the same relation are still told apart as queued ahead of it (the readers behind a
 * migration's ACCESS EXCLUSIVE request wait for that request, not for a lock it holds: the soft
 * edge the DDL-queue finding is about). Who waits behind whom, transitively, is unchanged, and so
 * are the roots, the trees (each waiter still hangs under the holder) and the cycles; a queue
 * becomes holders plus one edge per waiter. The one ahead is placed first (without recursion: a
 * queue can be thousands long), and a list that leads back to itself (a cycle) is taken whole.
 */
export function lockQueues(rows: readonly SessionRow[], rowOf: ReadonlyMap<number, SessionRow> = byPid(rows)): Map<number, QueuePlace> {
  const lists = new Map<number, number[]>();
  // indexed loops over every session: see bucketSessions (src/core/connections.ts)
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.blocked_by && r.blocked_by.length > 0) lists.set(r.pid, r.blocked_by);
  }
  const out = new Map<number, QueuePlace>();
  const place = (w: number, list: number[]) => {
    const p = list[list.length - 1]!;
    const prev = p === w ? undefined : out.get(p);
    if (prev && extendsPlace(list, lists.get(p)!, prev)) {
      out.set(w, { blockers: [...hardOf(prev), p], ahead: p, position: prev.position + 1 });
      return;
    }
    // Its list does not extend the last one's (its mode may not conflict with the holders', as a
    // reader queued behind a migration's ACCESS EXCLUSIVE). When pg_locks was read, the waiters at
    // the end of its list waiting on the same relation are queued ahead of it all the same.
    let soft = 0;
    while (soft < list.length && sameRelationWait(rowOf.get(w), rowOf.get(list[list.length - 1 - soft]!))) soft++;
    out.set(w, { blockers: list, ahead: soft > 0 ? p : null, position: soft });
  };
  const onPath = new Set<number>();
  for (const start of [...lists.keys()].sort((a, b) => a - b)) {
    const path = [start];
    while (path.length > 0) {
      const w = path[path.length - 1]!;
      if (out.has(w)) {
        path.pop();
        continue;
      }
      const list = lists.get(w)!;
      const p = list[list.length - 1]!;
      if (!onPath.has(w) && lists.has(p) && !out.has(p) && !onPath.has(p) && p !== w) {
        onPath.add(w);
        path.push(p);
        continue;
      }
      place(w, list);
      onPath.delete(w);
      path.pop();
    }
  }
  return out;
}

/** A place's hard blockers: its blockers without the one ahead. */
function hardOf(place: QueuePlace): number[] {
  return place.ahead === null ? place.blockers : place.blockers.slice(0, -1);
}

/** `list` (which ends with the pid ahead) is that pid's own list, or its hard blockers, followed by it. */
function extendsPlace(list: readonly number[], before: readonly number[], prev: QueuePlace): boolean {
  return startsWith(list, before, list.length - 1) || startsWith(list, hardOf(prev), list.length - 1);
}

/** The first n pids of `list` are exactly `prefix`. */
function startsWith(list: readonly number[], prefix: readonly number[], n: number): boolean {
  if (prefix.length !== n) return false;
  for (let i = 0; i < n; i++) if (list[i] !== prefix[i]) return false;
  return true;
}

/** Both wait for a lock on the same relation (known only when pg_locks was read). */
function sameRelationWait(a: SessionRow | undefined, b: SessionRow | undefined): boolean {
  const x = a?.wait_lock;
  const y = b?.wait_lock;
  return !!x && !!y && x.relation !== null && x.locktype === 'relation' && y.locktype === 'relation' && x.relation === y.relation;
}

/**
 * Edges waiter -> blockers (the lock queues' edges), each list ascending and without repeats,
 * parallel workers folded into their leaders, self-edges dropped.
 */
export function blockingEdges(snapshot: ActivitySnapshot): Map<number, number[]> {
  const rows = snapshotByPid(snapshot);
  const queues = lockQueues(snapshot.rows, rows);
  const edges = new Map<number, number[]>();
  for (let n = 0; n < snapshot.rows.length; n++) {
    const r = snapshot.rows[n]!;
    const blockedBy = queues.get(r.pid)?.blockers;
    if (!blockedBy) continue;
    const waiter = key(r.pid, rows);
    // a leader and its worker may both wait: one list
    const list = edges.get(waiter) ?? [];
    for (let i = 0; i < blockedBy.length; i++) {
      const blocker = key(blockedBy[i]!, rows);
      if (blocker !== waiter) list.push(blocker);
    }
    if (list.length > 0) edges.set(waiter, list);
  }
  for (const list of edges.values()) ascendingUnique(list);
  return edges;
}

/** Sorts a list of pids ascending and drops repeats, in place. */
function ascendingUnique(list: number[]): void {
  let sorted = true;
  for (let i = 1; i < list.length && sorted; i++) sorted = list[i - 1]! < list[i]!;
  if (sorted) return;
  list.sort((a, b) => a - b);
  let n = 1;
  for (let i = 1; i < list.length; i++) if (list[i] !== list[n - 1]) list[n++] = list[i]!;
  list.length = n;
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

/** The report; `edges` are the snapshot's blockingEdges, for a caller that has them already. */
export function buildBlockingReport(snapshot: ActivitySnapshot, edges = blockingEdges(snapshot)): BlockingReport {
  const rows = snapshotByPid(snapshot);
  // How long a session has waited: pg_locks.waitstart with lock detail, else its time in state (an upper bound).
  const waitOf = (p: number) => rows.get(p)?.wait_lock?.wait_ms ?? rows.get(p)?.state_age_ms ?? null;
  // blocker -> waiters, ascending
  const blocks = new Map<number, number[]>();
  for (const [waiter, blockers] of edges) {
    for (let i = 0; i < blockers.length; i++) {
      const list = blocks.get(blockers[i]!);
      if (list) list.push(waiter);
      else blocks.set(blockers[i]!, [waiter]);
    }
  }
  for (const list of blocks.values()) list.sort((a, b) => a - b);

  // Roots: blockers that wait on nobody.
  const rootPids = [...blocks.keys()].filter((b) => !edges.has(b)).sort((a, b) => a - b);
  const roots: RootBlocker[] = rootPids.map((pid) => {
    // Breadth first, iteratively: each waiter sits under the blocker nearest the root (a queue of
    // N waiters on one lock is N children of the holder, not a chain N deep), and no recursion.
    const seen = new Set<number>([pid]);
    const tree: BlockNode = { pid, session: pid === 0 ? null : (rows.get(pid) ?? null), children: [], behind: 0 };
    const order: number[] = [];
    const queue: BlockNode[] = [tree];
    for (let i = 0; i < queue.length; i++) {
      const node = queue[i]!;
      const waiters = blocks.get(node.pid);
      if (!waiters) continue;
      for (let j = 0; j < waiters.length; j++) {
        const w = waiters[j]!;
        if (seen.has(w)) continue;
        seen.add(w);
        order.push(w);
        const child: BlockNode = { pid: w, session: rows.get(w) ?? null, children: [], behind: 0 };
        node.children.push(child);
        queue.push(child);
      }
    }
    // Leaves first: each node counts the sessions behind it.
    for (let i = queue.length - 1; i >= 0; i--) {
      const children = queue[i]!.children;
      for (let j = 0; j < children.length; j++) queue[i]!.behind += children[j]!.behind + 1;
    }
    const all = order.slice().sort((a, b) => a - b);
    const direct = blocks.get(pid) ?? [];
    const session = pid === 0 ? null : (rows.get(pid) ?? null);
    const prepared = pid === 0 ? snapshot.prepared : [];
    return {
      pid,
      session,
      direct,
      all,
      longest_wait_ms: largest(all.map(waitOf)),
      // The locks waited on, the direct waiters' first: a row lock shows as a wait on the holder's
      // transactionid (no relation); the waiters queued behind show the tuple and its relation.
      waited_locks: distinctLocks([direct, order], rows),
      ...actionFor(pid, session, prepared),
      holds_advisory: session !== null && direct.some((w) => waitedLock(rows.get(w))?.locktype === 'advisory'),
      prepared,
      tree,
    };
  });
  roots.sort((a, b) => b.all.length - a.all.length || a.pid - b.pid);

  // Cycles: sessions that wait for each other (a root may also hold up some of them: the cycle
  // stays until deadlock_timeout all the same), and the waiters stuck behind them: whoever waits
  // for a member, or for someone behind one, in no cycle itself. Breadth first from every cycle at
  // once, so a waiter behind several is credited to the nearest (on a tie, to the one with the
  // lowest pid, as the cycles come), whatever order the server listed its blockers in.
  const components = lockCycles(edges, blocks);
  const cycleOf = new Map<number, number>();
  const stuckOf: number[][] = components.map(() => []);
  const queue: number[] = [];
  components.forEach((members, i) => {
    for (const m of members) {
      cycleOf.set(m, i);
      queue.push(m);
    }
  });
  for (let i = 0; i < queue.length; i++) {
    const c = cycleOf.get(queue[i]!)!;
    const waiters = blocks.get(queue[i]!);
    if (!waiters) continue;
    for (let j = 0; j < waiters.length; j++) {
      const w = waiters[j]!;
      if (cycleOf.has(w)) continue;
      cycleOf.set(w, c);
      stuckOf[c]!.push(w);
      queue.push(w);
    }
  }
  const cycles: LockCycle[] = components.map((members, i) => {
    const stuck = stuckOf[i]!.sort((a, b) => a - b);
    return { members, stuck, longest_wait_ms: largest([...members, ...stuck].map(waitOf)) };
  });
  cycles.sort((a, b) => b.stuck.length - a.stuck.length || a.members[0]! - b.members[0]!);
  return { roots, cycles, waiting: edges.size };
}

/**
 * The distinct locks the given sessions wait for, in the order they first come, lists in turn
 * (waitedLock's, each once: looked up by type, then mode, then relation, with no key string built
 * per waiter).
 */
function distinctLocks(lists: ReadonlyArray<readonly number[]>, rows: ReadonlyMap<number, SessionRow>): WaitedLock[] {
  const out: WaitedLock[] = [];
  const found = new Map<string, Map<string | null, Set<string | null>>>();
  for (const pids of lists) {
    for (let i = 0; i < pids.length; i++) {
      const l = waitedLock(rows.get(pids[i]!));
      if (!l) continue;
      let modes = found.get(l.locktype);
      if (!modes) {
        modes = new Map();
        found.set(l.locktype, modes);
      }
      let relations = modes.get(l.mode);
      if (!relations) {
        relations = new Set();
        modes.set(l.mode, relations);
      }
      if (relations.has(l.relation)) continue;
      relations.add(l.relation);
      out.push(l);
    }
  }
  return out;
}

/**
 * The lock cycles of the waits-for graph: its strongly connected components of more than one
 * session, each ascending, the one with the lowest pid first. A waiter each of whose blockers
 * waits on nobody or has been set aside already is in no cycle, and is set aside in turn (from the
 * roots outward, through `blocks`, each edge once); what is left waits in or behind a cycle, and
 * only that goes through Tarjan's algorithm (without recursion). Most incidents have no cycle,
 * and then nothing is left.
 */
function lockCycles(edges: ReadonlyMap<number, readonly number[]>, blocks: ReadonlyMap<number, readonly number[]>): number[][] {
  // waiter -> how many of its blockers wait themselves and are not set aside yet
  const left = new Map<number, number>();
  const aside: number[] = [];
  for (const [w, blockers] of edges) {
    let n = 0;
    for (let i = 0; i < blockers.length; i++) if (edges.has(blockers[i]!)) n++;
    if (n === 0) aside.push(w);
    else left.set(w, n);
  }
  for (let i = 0; i < aside.length; i++) {
    const waiters = blocks.get(aside[i]!);
    if (!waiters) continue;
    for (let j = 0; j < waiters.length; j++) {
      const n = left.get(waiters[j]!);
      if (n === undefined) continue;
      if (n > 1) left.set(waiters[j]!, n - 1);
      else {
        left.delete(waiters[j]!);
        aside.push(waiters[j]!);
      }
    }
  }
  if (left.size === 0) return [];
  return stronglyConnected(edges, [...left.keys()])
    .filter((c) => c.length > 1)
    .map((c) => c.sort((a, b) => a - b))
    .sort((a, b) => a[0]! - b[0]!);
}

/** The strongly connected components among `nodes` (Tarjan's algorithm, without recursion); edges leaving `nodes` are not followed. */
function stronglyConnected(edges: ReadonlyMap<number, readonly number[]>, nodes: readonly number[]): number[][] {
  const within = new Set(nodes);
  const index = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const out: number[][] = [];
  let next = 0;
  for (const start of nodes) {
    if (index.has(start)) continue;
    // each frame: a node and how many of its blockers it has gone through
    const work: Array<{ v: number; at: number }> = [];
    const open = (v: number) => {
      index.set(v, next);
      low.set(v, next);
      next++;
      stack.push(v);
      onStack.add(v);
      work.push({ v, at: 0 });
    };
    open(start);
    while (work.length) {
      const top = work[work.length - 1]!;
      const blockers = edges.get(top.v) ?? [];
      if (top.at < blockers.length) {
        const w = blockers[top.at++]!;
        if (!within.has(w)) continue;
        if (!index.has(w)) open(w);
        else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(top.v)!));
      if (low.get(top.v) === index.get(top.v)) {
        const component: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== top.v);
        out.push(component);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The DDL lock queue

/** Lock modes a migration takes on a table, which queue every reader or writer behind them. */
const STRONG_MODES = new Set(['AccessExclusiveLock', 'ExclusiveLock', 'ShareRowExclusiveLock', 'ShareLock']);
/** Statements that take such a lock (the CONCURRENTLY forms do not). */
const DDL =
  /^(?:ALTER\s+(?:TABLE|INDEX|MATERIALIZED\s+VIEW|SEQUENCE|VIEW|TYPE|DOMAIN)|DROP\s+(?:TABLE|INDEX(?!\s+CONCURRENTLY)|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|TYPE)|TRUNCATE|CREATE\s+(?:UNIQUE\s+)?INDEX(?!\s+CONCURRENTLY)|VACUUM\s*(?:\([^)]*\bFULL\b|FULL\b)|REINDEX(?!\s*\([^)]*\bCONCURRENTLY\b)(?!\s+\w+\s+CONCURRENTLY)|LOCK\b|CLUSTER\b|REFRESH\s+MATERIALIZED\s+VIEW(?!\s+CONCURRENTLY))/i;

/** The statement's text without the comments and spaces before its first word. */
function firstWords(query: string): string {
  return query.replace(/^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/, '');
}

/**
 * Waits for a table lock that queues ordinary readers and writers behind it: with lock detail
 * (`locks`), a strong mode on a relation; without it (`diagnose`), a wait on a relation by a
 * statement that takes such a lock (ALTER TABLE, DROP, TRUNCATE, CREATE INDEX without
 * CONCURRENTLY, VACUUM FULL, REINDEX, LOCK TABLE, CLUSTER, REFRESH MATERIALIZED VIEW).
 */
export function waitsAsDdl(r: SessionRow | null): boolean {
  if (r?.wait_event_type !== 'Lock') return false;
  if (r.wait_lock) return r.wait_lock.locktype === 'relation' && STRONG_MODES.has(r.wait_lock.mode);
  return r.wait_event === 'relation' && r.query !== null && DDL.test(firstWords(r.query));
}

/** A waiter with sessions queued behind it, found in a root's tree. */
export interface QueueHead {
  node: BlockNode;
  /** The first root (in the report's order) whose tree holds it. */
  root: RootBlocker;
  /** Every root whose tree holds it, `root` first (a DDL statement waiting for several readers). */
  roots: RootBlocker[];
  /** Its depth in `root`'s tree (1: it waits for the root itself). */
  depth: number;
}

/**
 * The nodes of every tree that wait and have others waiting behind them, each once (in the tree of
 * the first root that holds it, with every root that does), most queued behind first.
 */
export function queueHeads(report: BlockingReport): QueueHead[] {
  const heads = new Map<number, QueueHead>();
  for (const root of report.roots) {
    const stack: Array<{ node: BlockNode; depth: number }> = root.tree.children.map((node) => ({ node, depth: 1 }));
    while (stack.length) {
      const { node, depth } = stack.pop()!;
      if (node.behind > 0) {
        const seen = heads.get(node.pid);
        if (seen) seen.roots.push(root);
        else heads.set(node.pid, { node, root, roots: [root], depth });
      }
      for (const c of node.children) stack.push({ node: c, depth: depth + 1 });
    }
  }
  return [...heads.values()].sort((a, b) => b.node.behind - a.node.behind || a.node.pid - b.node.pid);
}

/**
 * The member of a lock cycle to end: the one with the youngest transaction (the least work lost),
 * the lowest pid on a tie; a member the role cannot see only when none can be seen.
 */
export function cycleVictim(cycle: LockCycle, rows: ReadonlyMap<number, SessionRow>): { pid: number; why: string } {
  const age = (p: number) => rows.get(p)?.xact_age_ms ?? null;
  const known = cycle.members.filter((p) => age(p) !== null);
  if (known.length === 0) return { pid: cycle.members[0]!, why: 'the lowest pid (the transactions of the members are hidden)' };
  const pid = known.reduce((a, b) => (age(b)! < age(a)! ? b : a));
  return { pid, why: 'its transaction is the youngest of the cycle, so ending it loses the least work' };
}

/** The exact terminate that ends a lock cycle, naming the member and why. */
export function cycleStep(cycle: LockCycle, rows: ReadonlyMap<number, SessionRow>): NextStep {
  const v = cycleVictim(cycle, rows);
  const s = rows.get(v.pid);
  const args: Array<string | [string, string]> = [['--pid', String(v.pid)]];
  if (s?.state === 'active' || s?.state === 'fastpath function call') args.push('--cancel-first');
  if (s?.superuser) args.push('--include-superusers');
  return fixedStep(`end the cycle now: terminate pid ${v.pid} (${v.why}); the others and the ${cycle.stuck.length} behind them go on`, 'terminate', args);
}
