/**
 * lockQueues (src/core/blocking.ts) on pg_blocking_pids() lists as the server builds them: the
 * holders first, then every conflicting waiter ahead in queue order. A queue becomes holders plus
 * one edge per waiter; lists that do not line up keep every pid; the report is the one the full
 * lists give.
 */
import { describe, expect, test } from '@jest/globals';
import type { ActivitySnapshot, SessionRow } from '../../src/core/activity.js';
import { blockingEdges, buildBlockingReport, lockQueues } from '../../src/core/blocking.js';
import { sessionRow } from '../support/session-row.js';

const waiter = (pid: number, blocked_by: number[]): SessionRow =>
  sessionRow({ pid, state: 'active', wait_event_type: 'Lock', wait_event: 'relation', blocked_by });

/** Holder 1 (and 2 when two hold it) and n waiters 100.. queued in pid order. */
function queue(n: number, holders = [1]): SessionRow[] {
  const rows: SessionRow[] = holders.map((pid) => sessionRow({ pid, state: 'idle in transaction' }));
  for (let i = 0; i < n; i++) rows.push(waiter(100 + i, [...holders, ...Array.from({ length: i }, (_, j) => 100 + j)]));
  return rows;
}

const snapshot = (rows: SessionRow[]): ActivitySnapshot => ({ server_version_num: 180000, taken_at: 'now', database: 'app', prepared: [], rows });

describe('lockQueues', () => {
  test('a queue of 2,000 waiters: the holders plus the waiter just ahead, with positions; the tree as from the full lists', () => {
    const rows = queue(2000, [1, 2]);
    const q = lockQueues(rows);
    expect(q.get(100)).toEqual({ blockers: [1, 2], ahead: null, position: 0 });
    expect(q.get(101)).toEqual({ blockers: [1, 2, 100], ahead: 100, position: 1 });
    expect(q.get(2099)).toEqual({ blockers: [1, 2, 2098], ahead: 2098, position: 1999 });
    const edges = blockingEdges(snapshot(rows));
    expect([...edges.values()].reduce((a, s) => a + s.length, 0)).toBe(2 + 1999 * 3);
    const report = buildBlockingReport(snapshot(rows));
    expect(report.roots.map((r) => [r.pid, r.all.length, r.direct.length])).toEqual([
      [1, 2000, 2000],
      [2, 2000, 2000],
    ]);
    // every waiter under the first holder, at depth 1, as with the full lists
    expect(report.roots.find((r) => r.pid === 1)!.tree.children).toHaveLength(2000);
  });

  test('lists that do not line up keep every pid: a chain whose holder waits, and lists read at different instants', () => {
    // 10 holds the lock 11 waits for and itself waits behind 1: a hard edge, not a queue.
    const chain = [sessionRow({ pid: 1, state: 'idle in transaction' }), waiter(10, [1]), waiter(11, [10])];
    expect(lockQueues(chain).get(11)).toEqual({ blockers: [10], ahead: null, position: 0 });
    // 102's list names 100 and 101, but 101's list (read a moment apart) names someone else too.
    const apart = [sessionRow({ pid: 1 }), sessionRow({ pid: 5 }), waiter(100, [1]), waiter(101, [1, 5, 100]), waiter(102, [1, 100, 101])];
    expect(lockQueues(apart).get(102)).toEqual({ blockers: [1, 100, 101], ahead: null, position: 0 });
    expect(buildBlockingReport(snapshot(apart)).roots.map((r) => r.pid)).toEqual([1, 5]);
  });

  test('readers queued behind a migration: a soft edge when the lock detail says they wait on the same relation, a hard one otherwise', () => {
    const lock = (mode: string) => ({ locktype: 'relation', mode, relation: 'orders', wait_ms: null });
    const rows = [
      sessionRow({ pid: 1, state: 'idle in transaction' }),
      { ...waiter(10, [1]), wait_lock: lock('AccessExclusiveLock') },
      { ...waiter(20, [10]), wait_lock: lock('AccessShareLock') },
      { ...waiter(21, [10]), wait_lock: lock('AccessShareLock') },
    ];
    const q = lockQueues(rows);
    expect(q.get(10)).toEqual({ blockers: [1], ahead: null, position: 0 });
    expect(q.get(20)).toEqual({ blockers: [10], ahead: 10, position: 1 });
    // without lock detail the same lists say nothing more: kept as they are, hard
    const bare = rows.map((r) => ({ ...r, wait_lock: null }));
    expect(lockQueues(bare).get(21)).toEqual({ blockers: [10], ahead: null, position: 0 });
    expect(buildBlockingReport(snapshot(rows)).roots[0]!.tree.children[0]!.children.map((c) => c.pid)).toEqual([20, 21]);
  });
});
