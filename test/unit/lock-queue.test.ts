/**
 * queueBlockers (src/core/lock-queue.ts): each waiter's blockers from lock rows, in the server's
 * queue order. The real-server counterpart, against pg_blocking_pids(), is test/db/lock-queue.test.ts.
 */
import { describe, expect, test } from '@jest/globals';
import { type LockHold, type LockWait, queueBlockers } from '../../src/core/lock-queue.js';
import type { Session } from '../../src/db/session.js';
import { activityRead, parseHolds } from '../../src/db/sql/activity.js';

const T = 'relation|5|16384|||||||';
const wait = (pid: number, mode: string, queued: number, tag = T): LockWait => ({ pid, tag, mode, queued });
const hold = (pid: number, mode: string, tag = T): LockHold => ({ pid, tag, mode });

describe('queueBlockers', () => {
  test('the queue is in wait-start order whatever order the rows came in, numbers missing (waiters not read) skipped', () => {
    const got = queueBlockers([wait(13, 'AccessExclusiveLock', 5), wait(12, 'AccessExclusiveLock', 2), wait(11, 'AccessExclusiveLock', 1)], [hold(1, 'AccessExclusiveLock')]);
    expect(Object.fromEntries(got)).toEqual({ 11: [1], 12: [1, 11], 13: [1, 12] });
  });

  test('a mode conflicts with what lock.c says it does, both ways', () => {
    const modes = ['AccessShareLock', 'RowShareLock', 'RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'];
    // The documented table (PostgreSQL manual, "Conflicting Lock Modes"), row by row: 1 conflicts.
    const table = ['00000001', '00000011', '00001111', '00011111', '00110111', '00111111', '01111111', '11111111'];
    for (const [i, held] of modes.entries()) {
      for (const [j, asked] of modes.entries()) {
        const got = queueBlockers([wait(10, asked, 1)], [hold(1, held)]).get(10);
        expect({ held, asked, blocks: got!.length === 1 }).toEqual({ held, asked, blocks: table[i]![j] === '1' });
      }
    }
  });

  test('soft edges: the nearest waiter ahead of each conflicting mode, never more than eight, whatever the queue length', () => {
    const waits = [wait(10, 'AccessExclusiveLock', 1)];
    for (let i = 0; i < 500; i++) waits.push(wait(100 + i, i % 2 ? 'AccessShareLock' : 'RowExclusiveLock', 2 + i));
    waits.push(wait(900, 'ShareLock', 502));
    const got = queueBlockers(waits, [hold(1, 'AccessShareLock')]);
    expect(got.get(10)).toEqual([1]); // the migration waits for the reader holding the table
    expect(got.get(150)).toEqual([10]); // a writer waits for the migration only
    expect(got.get(900)).toEqual([10, 598]); // SHARE: the migration and the last writer (readers do not conflict)
    expect([...got.values()].reduce((n, l) => n + l.length, 0)).toBeLessThan(2 * waits.length);
  });

  test('a waiter holding a mode of the lock goes before the first request that conflicts with it, and is not also a soft edge', () => {
    const got = queueBlockers([wait(20, 'AccessExclusiveLock', 1), wait(21, 'AccessExclusiveLock', 2)], [hold(1, 'AccessShareLock'), hold(21, 'AccessShareLock')]);
    expect(got.get(21)).toEqual([1]);
    expect(got.get(20)).toEqual([1, 21]);
  });

  test('other objects do not mix; a prepared transaction holds as pid 0; an unknown mode is never left out', () => {
    const other = 'advisory|5||||||0|77|1';
    const got = queueBlockers([wait(10, 'ExclusiveLock', 1, other), wait(11, 'RowShareLock', 1), wait(12, 'FutureLock', 2)], [...parseHolds(other, '3:ExclusiveLock'), ...parseHolds(T, '0:AccessExclusiveLock')]);
    expect(Object.fromEntries(got)).toEqual({ 10: [3], 11: [0], 12: [0, 11] });
    expect(parseHolds(T, null)).toEqual([]);
  });
});

describe("the activity read's two round trips", () => {
  // The parsing alone, with result sets as the server sends them (src/db/sql/activity.ts).
  const session = { serverVersionNum: 180000, target: { dbname: 'postgres' } } as unknown as Session;
  const row = (pid: number, extra: Record<string, unknown> = {}) => ({
    pid,
    leader_pid: null,
    backend_type: 'client backend',
    datname: 'postgres',
    usename: 'app',
    superuser: false,
    application_name: 'app',
    client_addr: '10.0.0.1',
    backend_start: '2026-12-06 18:00:00.000001+00',
    state: 'active',
    wait_event_type: null,
    wait_event: null,
    xact_age_ms: 5000,
    query_age_ms: 5000,
    state_age_ms: 5000,
    query: 'UPDATE t SET v = 1',
    blocked_by: null,
    is_self: false,
    taken_at: '2026-12-06 18:00:10+00',
    database: 'postgres',
    lock_table: true,
    taken_epoch: null,
    ...extra,
  });
  const lock = (pid: number, wait_ms: number, held: string | null = null) => ({ pid, locktype: 'relation', mode: 'AccessShareLock', relation: 't', wait_ms, tag: T, queued: 1, held });

  test('a wait begun after the snapshot was taken (a negative age in the lock table, read a round trip later) is not a wait of the snapshot', () => {
    const read = activityRead(session, { lockDetail: 'targeted' });
    const first = [[row(1, { is_self: true, taken_epoch: 1765044010 }), row(10), row(11, { wait_event_type: 'Lock', wait_event: 'relation' }), row(12)], []];
    const second = read.followUp!(first);
    expect(second?.statements[0]).toMatch(/to_timestamp\(1765044010\)/);
    const snap = second!.parse([[lock(11, 800, '12:AccessExclusiveLock'), lock(10, -3)]]);
    const byPid = new Map(snap.rows.map((r) => [r.pid, r]));
    expect(byPid.get(11)).toMatchObject({ blocked_by: [12], wait_lock: { locktype: 'relation', mode: 'AccessShareLock', relation: 't', wait_ms: 800 } });
    expect(byPid.get(10)).toMatchObject({ blocked_by: null, wait_lock: null });
  });

  test("the snapshot's clock reading and database come from dbdoctor's own row, wherever it is; the other rows carry neither", () => {
    const others = { taken_at: null, database: null, lock_table: null };
    const rows = [row(10, others), row(11, others), row(1, { is_self: true, taken_at: '2026-12-07 01:30:00.123456+00', database: 'appdb', lock_table: false })];
    for (const read of [activityRead(session, {}), activityRead(session, { lockDetail: 'targeted' })]) {
      const snap = read.parse([rows, []]);
      expect(snap).toMatchObject({ taken_at: '2026-12-07 01:30:00.123456+00', database: 'appdb' });
      expect(snap.rows.map((r) => r.pid)).toEqual([10, 11, 1]);
    }
  });

  test('no follow-up when the guard does not ask for the lock table, or without lock detail', () => {
    const first = [[row(1, { is_self: true, taken_epoch: 1765044010, lock_table: false })], []];
    expect(activityRead(session, { lockDetail: 'targeted' }).followUp!(first)).toBeNull();
    expect(activityRead(session, {}).followUp).toBeUndefined();
  });
});
