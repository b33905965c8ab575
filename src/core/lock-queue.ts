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
/** A mode's slot: its index, or one past the eight for a mode this table does not know. */
const INDEX = new Map<string, number>(MODES.map((m, i) => [m, i]));
const slotOf = (mode: string) => INDEX.get(mode) ?? MODES.length;
const SLOTS = MODES.length + 1;
/** Each slot's bit; the unknown mode's is every mode's (it is never left out). */
const SLOT_BITS = [...MODES.map((_, i) => 1 << i), ALL];
const bitOf = (mode: string) => SLOT_BITS[slotOf(mode)]!;
const CONFLICT_MASK = new Map<string, number>(MODES.map((m) => [m, CONFLICTS[m].reduce((mask, c) => mask | bitOf(c), 0)]));

/** The modes a request in this mode conflicts with (an unknown mode: all of them). */
const conflictsOf = (mode: string) => CONFLICT_MASK.get(mode) ?? ALL;

/** A process waiting for a lock: pg_locks' ungranted row. */
export interface LockWait {
  pid: number;
  /** The locked object, all of pg_locks' tag columns in one string: equal tags, same lock. */
  tag: string;
  mode: string;
  /**
   * Its place among the waiters for the same object by wait start (1: the earliest), as the server
   * numbers them (pg_locks.waitstart, a wait not yet stamped last, then pid): the statement sorts,
   * in C, so the client does not (a sort with a comparator, run once, cost more than the rest).
   */
  queued: number;
}

/** A granted lock on an object someone waits for: pid 0 is a prepared transaction. */
export interface LockHold {
  pid: number;
  tag: string;
  mode: string;
}

/**
 * One lock's wait queue in the server's order: by wait start, except that a waiter that already
 * holds a mode of this lock goes before the first waiter whose request conflicts with it (proc.c).
 */
function queueOrder(waits: LockWait[], heldBy: Map<number, number>): LockWait[] {
  // By wait start: each waiter at its number (numbers missing for waiters not read leave holes).
  const byStart: LockWait[] = [];
  for (const w of waits) byStart[w.queued] = w;
  const queue: LockWait[] = [];
  for (const w of byStart) {
    if (w === undefined) continue;
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
    // The latest waiter so far of each mode (its pid and place in the queue; -1: none yet). One
    // list is allocated per waiter and nothing else: at thousands of waiters, a run's garbage
    // collection had grown faster than the queue.
    const lastPid = new Array<number>(SLOTS).fill(-1);
    const lastAt = new Array<number>(SLOTS).fill(-1);
    const softAt: number[] = [];
    const queue = queueOrder(tagWaits, heldBy);
    for (let at = 0; at < queue.length; at++) {
      const w = queue[at]!;
      const mask = conflictsOf(w.mode);
      const list: number[] = [];
      for (const p of hardFor(w.mode)) if (p !== w.pid) list.push(p);
      const hard = list.length;
      softAt.length = 0;
      for (let slot = 0; slot < SLOTS; slot++) {
        const pid = lastPid[slot]!;
        const ahead = lastAt[slot]!;
        if (ahead < 0 || (mask & SLOT_BITS[slot]!) === 0) continue;
        // A waiter ahead that also holds a mode of this lock may already be a hard blocker.
        if (heldBy.has(pid) && inFirst(list, pid, hard)) continue;
        // The soft ones in queue order (at most nine: a few steps of insertion).
        let i = softAt.length;
        softAt.push(ahead);
        list.push(pid);
        for (; i > 0 && softAt[i - 1]! > ahead; i--) {
          softAt[i] = softAt[i - 1]!;
          list[hard + i] = list[hard + i - 1]!;
        }
        softAt[i] = ahead;
        list[hard + i] = pid;
      }
      out.set(w.pid, list);
      const slot = slotOf(w.mode);
      lastPid[slot] = w.pid;
      lastAt[slot] = at;
    }
  }
  return out;
}

/** `pid` is among the first `n` of `list`. */
function inFirst(list: readonly number[], pid: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (list[i] === pid) return true;
  return false;
}
