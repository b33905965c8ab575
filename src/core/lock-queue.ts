/**
 * Who waits for whom, from the lock table's rows (pg_locks) instead of pg_blocking_pids(). Pure.
 *
 * pg_blocking_pids() lists, for each waiter, every conflicting waiter ahead of it: a queue of N
 * waiters costs the server N^2/2 pids to build (README, "Benchmark"). When pg_locks is read anyway
 * (a waiter waits for a relation, a tuple, ...: src/db/sql/activity.ts), the same edges come from
 * its rows in one pass: each waited lock's holders and its waiters, in the order they queued
 * (pg_locks.waitstart), as the server's lock manager orders them (lock.c's conflict table and
 * proc.c's rule that a waiter already holding a lock on the object queues before the first waiter
 * whose request conflicts with what it holds). Each waiter gets its hard blockers (the holders
 * whose mode conflicts with its request) and, for soft ones, the nearest waiter ahead of it of
 * each conflicting mode (at most eight): linear in the queue, and every waiter ahead that it
 * conflicts with is still reached through them.
 */

/** The eight table-lock modes, weakest first (lock.h's numbering, 1 to 8). */
const MODES = [
  'AccessShareLock',
  'RowShareLock',
  'RowExclusiveLock',
  'ShareUpdateExclusiveLock',
  'ShareLock',
  'ShareRowExclusiveLock',
  'ExclusiveLock',
  'AccessExclusiveLock',
] as const;

/** Which modes each mode conflicts with (lock.c, LockConflicts; symmetric). */
const CONFLICTS: Record<(typeof MODES)[number], ReadonlyArray<(typeof MODES)[number]>> = {
  AccessShareLock: ['AccessExclusiveLock'],
  RowShareLock: ['ExclusiveLock', 'AccessExclusiveLock'],
  RowExclusiveLock: ['ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'],
  ShareUpdateExclusiveLock: ['ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'],
  ShareLock: ['RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'],
  ShareRowExclusiveLock: ['RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'],
  ExclusiveLock: ['RowShareLock', 'RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'],
  AccessExclusiveLock: [...MODES],
};

const ALL = (1 << MODES.length) - 1;
const BIT = new Map<string, number>(MODES.map((m, i) => [m, 1 << i]));
const CONFLICT_MASK = new Map<string, number>(MODES.map((m) => [m, CONFLICTS[m].reduce((mask, c) => mask | BIT.get(c)!, 0)]));

/** A mode's bit; a mode this table does not know counts as every mode (it is never left out). */
const bitOf = (mode: string) => BIT.get(mode) ?? ALL;
/** The modes a request in this mode conflicts with (an unknown mode: all of them). */
const conflictsOf = (mode: string) => CONFLICT_MASK.get(mode) ?? ALL;

/** A process waiting for a lock: pg_locks' ungranted row. */
export interface LockWait {
  pid: number;
  /** The locked object, all of pg_locks' tag columns in one string: equal tags, same lock. */
  tag: string;
  mode: string;
  /** How long it has waited (now - waitstart), ms; null (waitstart not yet set) queues it last. */
  waited_ms: number | null;
}

/** A granted lock on an object someone waits for: pid 0 is a prepared transaction. */
export interface LockHold {
  pid: number;
  tag: string;
  mode: string;
}

/** Oldest wait first; ties (and waits with no start yet) by pid. */
function queuedFirst(a: LockWait, b: LockWait): number {
  const x = a.waited_ms ?? Number.NEGATIVE_INFINITY;
  const y = b.waited_ms ?? Number.NEGATIVE_INFINITY;
  return y - x || a.pid - b.pid;
}

/**
 * One lock's wait queue in the server's order: by wait start, except that a waiter that already
 * holds a mode of this lock goes before the first waiter whose request conflicts with it (proc.c).
 */
function queueOrder(waits: LockWait[], heldBy: Map<number, number>): LockWait[] {
  const queue: LockWait[] = [];
  for (const w of [...waits].sort(queuedFirst)) {
    const held = heldBy.get(w.pid) ?? 0;
    const before = held === 0 ? -1 : queue.findIndex((q) => (conflictsOf(q.mode) & held) !== 0);
    if (before < 0) queue.push(w);
    else queue.splice(before, 0, w);
  }
  return queue;
}

/**
 * Each waiter's blockers: the holders whose mode conflicts with its request (in the order read),
 * then the nearest waiter ahead of it of each mode it conflicts with (in queue order). The shape
 * pg_blocking_pids() has (holders first, then waiters ahead), with only the nearest waiters ahead.
 */
export function queueBlockers(waits: readonly LockWait[], holds: readonly LockHold[]): Map<number, number[]> {
  const waitsByTag = new Map<string, LockWait[]>();
  for (const w of waits) {
    const list = waitsByTag.get(w.tag);
    if (list) list.push(w);
    else waitsByTag.set(w.tag, [w]);
  }
  const holdsByTag = new Map<string, LockHold[]>();
  for (const h of holds) {
    if (!waitsByTag.has(h.tag)) continue;
    const list = holdsByTag.get(h.tag);
    if (list) list.push(h);
    else holdsByTag.set(h.tag, [h]);
  }
  const out = new Map<number, number[]>();
  for (const [tag, tagWaits] of waitsByTag) {
    const tagHolds = holdsByTag.get(tag) ?? [];
    const heldBy = new Map<number, number>();
    for (const h of tagHolds) heldBy.set(h.pid, (heldBy.get(h.pid) ?? 0) | bitOf(h.mode));
    // The holders a request in each mode waits for, worked out once per mode asked for.
    const hardByMode = new Map<string, number[]>();
    const hardFor = (mode: string) => {
      let pids = hardByMode.get(mode);
      if (!pids) {
        const mask = conflictsOf(mode);
        pids = [...new Set(tagHolds.filter((h) => (mask & bitOf(h.mode)) !== 0).map((h) => h.pid))];
        hardByMode.set(mode, pids);
      }
      return pids;
    };
    // The latest waiter so far of each mode, with its place in the queue.
    const lastOfMode = new Map<string, { pid: number; at: number; bit: number }>();
    const queue = queueOrder(tagWaits, heldBy);
    for (let at = 0; at < queue.length; at++) {
      const w = queue[at]!;
      const mask = conflictsOf(w.mode);
      const hard = hardFor(w.mode).filter((p) => p !== w.pid);
      // A waiter ahead that also holds a mode of this lock may already be a hard blocker.
      const soft = [...lastOfMode.values()].filter((l) => (mask & l.bit) !== 0 && !(heldBy.has(l.pid) && hard.includes(l.pid))).sort((a, b) => a.at - b.at);
      out.set(w.pid, [...hard, ...soft.map((l) => l.pid)]);
      lastOfMode.set(w.mode, { pid: w.pid, at, bit: bitOf(w.mode) });
    }
  }
  return out;
}

/** A granted lock list as the activity statement sends it, `pid:mode,pid:mode` (pid 0: a prepared transaction). */
export function parseHolds(tag: string, text: string | null): LockHold[] {
  if (!text) return [];
  return text.split(',').map((item) => {
    const colon = item.indexOf(':');
    return { pid: Number(item.slice(0, colon)), tag, mode: item.slice(colon + 1) };
  });
}
