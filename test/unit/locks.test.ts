import { describe, expect, test } from '@jest/globals';
import { Chalk } from 'chalk';
import type { SessionRow } from '../../src/core/activity.js';
import { buildBlockingReport, cycleVictim, waitsAsDdl } from '../../src/core/blocking.js';
import { locksReport } from '../../src/core/locks.js';
import { renderLocks, treeLines } from '../../src/render/locks.js';
import { row, snapshot, waiter } from './inspect-fixtures.js';

const plain = new Chalk({ level: 0 });
const priv = { can_read_all_stats: true, role: 'monitor' };

describe('the blocking tree', () => {
  test("a row-lock chain: the holder, its direct waiter, and those queued behind sit under the holder's waiter", () => {
    const snap = snapshot([
      row({ pid: 10, application_name: 'billing', state: 'idle in transaction', xact_age_ms: 60_000, state_age_ms: 59_000 }),
      waiter(11, [10], { wait_lock: { locktype: 'transactionid', mode: 'ShareLock', relation: null, wait_ms: 50_000 } }),
      waiter(12, [11], { wait_event: 'tuple', wait_lock: { locktype: 'tuple', mode: 'ExclusiveLock', relation: 'accounts', wait_ms: 40_000 } }),
      waiter(13, [11, 12], { wait_event: 'tuple', wait_lock: { locktype: 'tuple', mode: 'ExclusiveLock', relation: 'accounts', wait_ms: 30_000 } }),
    ]);
    const r = buildBlockingReport(snap);
    expect(r.waiting).toBe(3);
    expect(r.cycles).toEqual([]);
    expect(r.roots).toHaveLength(1);
    const root = r.roots[0]!;
    expect(root).toMatchObject({ pid: 10, direct: [11], all: [11, 12, 13], longest_wait_ms: 50_000, action: 'terminate' });
    expect(root.waited_locks).toEqual([
      { locktype: 'transactionid', mode: 'ShareLock', relation: null },
      { locktype: 'tuple', mode: 'ExclusiveLock', relation: 'accounts' },
    ]);
    // Breadth first: 13 is blocked by 11 and by 12; it sits under 11, the nearer to the root.
    expect(root.tree.children.map((c) => c.pid)).toEqual([11]);
    expect(root.tree.children[0]!.children.map((c) => c.pid)).toEqual([12, 13]);
  });

  test('a queue of 400 conflicting waiters is 400 children, not a chain 400 deep', () => {
    const rows = [row({ pid: 1, state: 'idle in transaction' })];
    for (let i = 0; i < 400; i++) rows.push(waiter(100 + i, [1, ...Array.from({ length: i }, (_, j) => 100 + j)]));
    const root = buildBlockingReport(snapshot(rows)).roots[0]!;
    expect(root.tree.children).toHaveLength(400);
    expect(root.all).toHaveLength(400);
    expect(root.direct).toHaveLength(400);
    const report = locksReport(snapshot(rows), priv);
    const lines = treeLines(report.roots[0]!.pid, report.nodes, 80);
    expect(lines).toHaveLength(41);
    expect(lines.at(-1)).toBe('… and 361 more (all of them in --json)');
  });

  test('actions: idle in transaction terminate; active cancel first; idle with advisory locks flagged', () => {
    const snap = snapshot([
      row({ pid: 1, state: 'active', wait_event_type: null, wait_event: null }),
      waiter(2, [1]),
      row({ pid: 3, state: 'idle' }),
      waiter(4, [3], { wait_event: 'advisory', wait_lock: { locktype: 'advisory', mode: 'ExclusiveLock', relation: null, wait_ms: 1_000 } }),
      row({ pid: 5, state: 'idle in transaction (aborted)' }),
      waiter(6, [5]),
    ]);
    const roots = Object.fromEntries(buildBlockingReport(snap).roots.map((x) => [x.pid, x]));
    expect(roots[1]).toMatchObject({ action: 'cancel_then_terminate', holds_advisory: false });
    expect(roots[1]!.advice).toContain('dbdoctor terminate --pid 1 --cancel-first');
    expect(roots[3]).toMatchObject({ action: 'terminate', holds_advisory: true });
    expect(roots[3]!.advice).toMatch(/advisory/);
    expect(roots[5]).toMatchObject({ action: 'terminate' });
  });

  test('the advisory flag follows the lock that blocks: an advisory waiter behind it, not a prepared transaction', () => {
    const advisory = { locktype: 'advisory', mode: 'ExclusiveLock', relation: null, wait_ms: 1_000 };
    const snap = snapshot(
      [
        // 1 blocks 2 through a row lock; whatever advisory locks it also holds block nobody.
        row({ pid: 1, state: 'idle in transaction' }),
        waiter(2, [1], { wait_lock: { locktype: 'transactionid', mode: 'ShareLock', relation: null, wait_ms: 1_000 } }),
        // 3 blocks 4 through a row lock and 5 through an advisory lock.
        row({ pid: 3, state: 'idle' }),
        waiter(4, [3], { wait_lock: { locktype: 'transactionid', mode: 'ShareLock', relation: null, wait_ms: 1_000 } }),
        waiter(5, [3], { wait_event: 'advisory', wait_lock: advisory }),
        // A prepared transaction holds an advisory lock: its action is COMMIT/ROLLBACK PREPARED.
        waiter(6, [0], { wait_event: 'advisory', wait_lock: advisory }),
      ],
      [{ gid: 'g1', owner: 'app', database: 'app', transaction: '900', age_ms: 1 }],
    );
    const roots = Object.fromEntries(buildBlockingReport(snap).roots.map((x) => [x.pid, x]));
    expect(roots[1]).toMatchObject({ holds_advisory: false });
    expect(roots[3]).toMatchObject({ holds_advisory: true });
    expect(roots[0]).toMatchObject({ action: 'resolve_prepared', holds_advisory: false });
  });

  test('pid 0: a prepared transaction, with COMMIT/ROLLBACK PREPARED and every candidate gid', () => {
    const prepared = [
      { gid: "it's", owner: 'app', database: 'app', transaction: '900', age_ms: 120_000 },
      { gid: 'other', owner: 'app', database: 'app', transaction: '901', age_ms: 60_000 },
    ];
    const r = locksReport(snapshot([waiter(7, [0])], prepared), priv);
    expect(r.roots).toHaveLength(1);
    expect(r.roots[0]).toMatchObject({ pid: 0, prepared_transaction: true, vanished: false, session: null, action: 'resolve_prepared', blocks_direct: [7] });
    expect(r.roots[0]!.advice).toContain("COMMIT PREPARED 'it''s'; or ROLLBACK PREPARED 'it''s';");
    expect(r.roots[0]!.next.map((n) => n.sql)).toEqual(["COMMIT PREPARED 'it''s';", "ROLLBACK PREPARED 'it''s';"]);
    expect(r.roots[0]!.next[0]!.text).toMatch(/the oldest of 2 prepared transactions/);
    const text = renderLocks(r, plain, 80);
    expect(text).toContain('root: a prepared transaction (pid 0)');
    expect(text).toContain("COMMIT PREPARED 'it''s';");
  });

  test('a blocker that vanished between reads: a root with no session, investigate, no error', () => {
    const r = locksReport(snapshot([waiter(8, [4242])]), priv);
    expect(r.roots[0]).toMatchObject({ pid: 4242, vanished: true, session: null, action: 'investigate', blocks_all: [8] });
    const text = renderLocks(r, plain, 80);
    expect(text).toContain('root 4242  gone (or hidden) since the read');
    expect(text).toContain('4242 (gone since the read)');
  });

  test('parallel workers are folded into their leader, as waiters and as blockers', () => {
    const snap = snapshot([
      row({ pid: 20, state: 'active', wait_event_type: null, wait_event: null }),
      row({ pid: 21, backend_type: 'parallel worker', leader_pid: 20, state: 'active' }),
      waiter(30, [21, 20]),
      row({ pid: 40, state: 'active', wait_event_type: 'IPC', wait_event: 'ParallelFinish' }),
      waiter(41, [20], { backend_type: 'parallel worker', leader_pid: 40 }),
    ]);
    const r = buildBlockingReport(snap);
    expect(r.roots.map((x) => [x.pid, x.all])).toEqual([[20, [30, 40]]]);
    expect(r.waiting).toBe(2);
  });

  test('a cycle, with a session queued behind it: no root, one component, reported without error', () => {
    const snap = snapshot([waiter(1, [2]), waiter(2, [1]), waiter(3, [2]), row({ pid: 9, state: 'idle in transaction' }), waiter(10, [9])]);
    const r = locksReport(snap, priv);
    expect(r.roots.map((x) => x.pid)).toEqual([9]);
    expect(r.cycles.map((c) => [c.members, c.stuck])).toEqual([[[1, 2], [3]]]);
    expect(r.waiting).toBe(4);
    const text = renderLocks(r, plain, 80);
    expect(text).toMatch(/^WARNING {2}4 sessions waiting on locks: 1 root blocker, 1 lock cycle/);
    expect(text).toContain('lock cycle: pids 1, 2 wait for each other; 1 more stuck behind them');
  });

  test('two cycles, one waiting on the other, and sessions behind both: each credited to the nearest cycle, whatever the order of the rows and lists', () => {
    // 10 and 11 wait for each other, and 11 also for 20; 20 and 21 wait for each other. 30 waits
    // for both cycles directly, 41 for the first directly and for the second through 40.
    const rows = (ahead: number[]) => [
      waiter(10, [11]),
      waiter(11, [10, 20]),
      waiter(20, [21]),
      waiter(21, [20]),
      waiter(30, ahead),
      waiter(31, [30]),
      waiter(40, [21]),
      waiter(41, [40, 11]),
    ];
    const expected = [
      { members: [10, 11], stuck: [30, 31, 41] },
      { members: [20, 21], stuck: [40] },
    ];
    for (const list of [rows([20, 10]), rows([10, 20]), rows([20, 10]).reverse()]) {
      const r = buildBlockingReport(snapshot(list));
      expect(r.roots).toEqual([]);
      expect(r.cycles.map((c) => ({ members: c.members, stuck: c.stuck }))).toEqual(expected);
    }
  });

  test('self-edges are dropped; nothing waiting is OK', () => {
    const r = locksReport(snapshot([waiter(1, [1]), row({ pid: 2 })]), priv);
    expect(r).toMatchObject({ status: 'ok', waiting: 0, roots: [], cycles: [] });
  });

  test('a DDL statement behind 3 readers, 50 sessions behind it: each session listed once, under the first root', () => {
    const rows = [1, 2, 3].map((pid) => row({ pid, state: 'active', query: 'SELECT * FROM accounts' }));
    rows.push(waiter(10, [1, 2, 3], { query: 'ALTER TABLE accounts ADD COLUMN note text', wait_event: 'relation', wait_lock: { locktype: 'relation', mode: 'AccessExclusiveLock', relation: 'accounts', wait_ms: 9_000 } }));
    for (let i = 0; i < 50; i++) rows.push(waiter(100 + i, [10], { wait_event: 'relation', wait_lock: { locktype: 'relation', mode: 'AccessShareLock', relation: 'accounts', wait_ms: 5_000 } }));
    const report = locksReport(snapshot(rows), priv);
    expect(report.roots.map((r) => [r.pid, r.blocks_total, r.queue_heads])).toEqual([
      [1, 51, [10]],
      [2, 51, [10]],
      [3, 51, [10]],
    ]);
    const pids = report.nodes.map((n) => n.pid);
    expect(pids).toHaveLength(54);
    expect(new Set(pids).size).toBe(54);
    expect(report.nodes.find((n) => n.pid === 10)).toMatchObject({ root: 1, blocked_by: 1, queue_head: true, behind: 50 });
    expect(report.nodes.filter((n) => n.root === 2).map((n) => n.pid)).toEqual([2]);
    const text = renderLocks(report, plain, 100);
    expect(treeLines(1, report.nodes, 80).at(-1)).toBe('… and 12 more (all of them in --json)');
    expect(text.split('\n').filter((l) => l.trim() === '… and 51 more (all of them in --json, where 51 are listed under root 1)')).toHaveLength(2);
  });

  test('roots blocking most come first', () => {
    const snap = snapshot([row({ pid: 1, state: 'idle in transaction' }), waiter(2, [1]), row({ pid: 5, state: 'idle in transaction' }), waiter(6, [5]), waiter(7, [5])]);
    expect(locksReport(snap, priv).roots.map((x) => x.pid)).toEqual([5, 1]);
  });
});

describe('the DDL lock queue and lock cycles, decided', () => {
  test('waitsAsDdl: a strong table lock (with lock detail), or a DDL statement waiting on a relation (without)', () => {
    const ddl = (query: string, wait_lock: SessionRow['wait_lock'] = null) => waitsAsDdl({ ...waiter(5, [1]), wait_event: 'relation', query, wait_lock });
    for (const q of ['ALTER TABLE orders ADD COLUMN x int', '/* migration 42 */ alter table orders drop column y', 'DROP TABLE orders', 'TRUNCATE orders', 'CREATE INDEX i ON orders (x)', 'CREATE UNIQUE INDEX i ON orders (x)', 'VACUUM FULL orders', 'VACUUM (FULL, VERBOSE) orders', 'REINDEX TABLE orders', 'LOCK TABLE orders IN ACCESS EXCLUSIVE MODE', 'CLUSTER orders', 'REFRESH MATERIALIZED VIEW v']) {
      expect([q, ddl(q)]).toEqual([q, true]);
    }
    for (const q of ['SELECT * FROM orders', 'UPDATE orders SET x = 1', 'CREATE INDEX CONCURRENTLY i ON orders (x)', 'REINDEX TABLE CONCURRENTLY orders', 'REFRESH MATERIALIZED VIEW CONCURRENTLY v', 'VACUUM orders']) {
      expect([q, ddl(q)]).toEqual([q, false]);
    }
    expect(ddl('SELECT 1', { locktype: 'relation', mode: 'AccessExclusiveLock', relation: 'orders', wait_ms: 1 })).toBe(true);
    expect(ddl('ALTER TABLE orders ADD x int', { locktype: 'relation', mode: 'RowExclusiveLock', relation: 'orders', wait_ms: 1 })).toBe(false);
  });

  test('cycleVictim: the member with the youngest transaction', () => {
    const rows = new Map([
      [1, { ...waiter(1, [2]), xact_age_ms: 90_000 }],
      [2, { ...waiter(2, [1]), xact_age_ms: 5_000 }],
    ]);
    expect(cycleVictim({ members: [1, 2], stuck: [], longest_wait_ms: null }, rows)).toMatchObject({ pid: 2 });
  });
});
