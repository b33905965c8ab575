/**
 * schema/locks.schema.json against the locks reports of the pure tests' snapshots (every shape a
 * report takes: a chain, pid 0, a vanished root, a cycle, a partial view, diagnose's read without
 * lock detail), and the documents it must refuse, so the validation the e2e and db suites run on
 * every `locks --json` document demonstrably can fail.
 */
import { describe, expect, test } from '@jest/globals';
import type { SessionRow } from '../../src/core/activity.js';
import { locksReport } from '../../src/core/locks.js';
import { envelope } from '../../src/render/json.js';
import { expectValidLocksDoc, LOCKS_SCHEMA, locksDocErrors } from '../support/schemas.js';
import { hiddenRow, row, snapshot, waiter } from './inspect-fixtures.js';

const priv = { can_read_all_stats: true, role: 'monitor' };
const doc = (rows: SessionRow[], prepared = [] as Parameters<typeof snapshot>[1], p: { can_read_all_stats: boolean; role?: string | null } = priv) =>
  JSON.parse(JSON.stringify(envelope('locks', locksReport(snapshot(rows, prepared), p), '0.0.0-test'))) as {
    schema_version: number;
    report: Record<string, unknown> & { roots: Array<Record<string, unknown>>; nodes: Array<Record<string, unknown>> };
  };

const chain = () =>
  doc([
    row({ pid: 10, application_name: 'billing', state: 'idle in transaction', xact_age_ms: 60_000.4, state_age_ms: 59_000.6, query_id: '-4211' }),
    waiter(11, [10], { wait_lock: { locktype: 'transactionid', mode: 'ShareLock', relation: null, wait_ms: 50_000.5 } }),
    waiter(12, [11], { wait_event: 'tuple', wait_lock: { locktype: 'tuple', mode: 'ExclusiveLock', relation: 'accounts', wait_ms: 40_000 } }),
    waiter(13, [11, 12], { wait_event: 'tuple', wait_lock: { locktype: 'tuple', mode: 'ExclusiveLock', relation: 'accounts', wait_ms: 30_000 } }),
  ]);

describe('schema/locks.schema.json', () => {
  test('is the envelope at schema_version 2, as envelope() writes it', () => {
    expect(LOCKS_SCHEMA).toMatchObject({ $id: 'urn:dbdoctor:schema:locks:2', properties: { schema: { const: 'dbdoctor.locks' }, schema_version: { const: 2 } } });
    expect(chain().schema_version).toBe(2);
  });

  test('accepts every shape of report: a chain, pid 0, a vanished root, a cycle, parallel workers, a partial view, no lock detail, nobody waiting', () => {
    expectValidLocksDoc(chain());
    // pid 0: a prepared transaction root (its candidates' ages as read, not rounded), a node with pid 0, a waiter whose blockers hold 0
    const prepared = doc(
      [waiter(7, [0])],
      [
        { gid: "it's", owner: 'app', database: 'app', transaction: '900', age_ms: 120_000.25 },
        { gid: 'other', owner: 'app', database: 'app', transaction: '901', age_ms: 60_000 },
      ],
    );
    expect(prepared.report.nodes.map((n) => [n.pid, n.blockers])).toEqual([
      [0, []],
      [7, [0]],
    ]);
    expectValidLocksDoc(prepared);
    expectValidLocksDoc(doc([waiter(8, [4242])]));
    const cycle = doc([waiter(1, [2]), waiter(2, [1]), waiter(3, [2]), row({ pid: 9, state: 'idle in transaction' }), waiter(10, [9])]);
    expect(cycle.report.nodes.filter((n) => n.cycle === 0)).toHaveLength(3);
    expectValidLocksDoc(cycle);
    expectValidLocksDoc(
      doc([
        row({ pid: 20, state: 'active', wait_event_type: null, wait_event: null }),
        row({ pid: 21, backend_type: 'parallel worker', leader_pid: 20, state: 'active' }),
        waiter(30, [21, 20]),
      ]),
    );
    const partial = doc([row({ pid: 10, state: 'idle in transaction' }), waiter(11, [10]), hiddenRow({ pid: 12, client_hostname: null })], [], { can_read_all_stats: false, role: 'app_user' });
    expect(partial.report).toMatchObject({ status: 'unknown', visibility: { partial: true, warning: expect.any(String), fix: expect.any(String) } });
    expectValidLocksDoc(partial);
    // diagnose's read (pg_blocking_pids() and wait_event, no pg_locks): modes unknown, waits_for null
    const noDetail = doc([row({ pid: 10, state: 'idle in transaction' }), waiter(11, [10], { wait_lock: null })]);
    expect(noDetail.report.roots[0]!.waited_locks).toEqual([{ locktype: 'transactionid', mode: null, relation: null }]);
    expectValidLocksDoc(noDetail);
    expectValidLocksDoc(doc([row({ pid: 1 })]));
  });

  test('refuses pid 0 where only a waiting session can be (blocks_all, queue_heads, a cycle), which blockers may hold', () => {
    const d = chain();
    d.report.roots[0]!.blocks_all = [0, 11, 12, 13];
    expect(locksDocErrors(d)).toMatch(/\/report\/roots\/0\/blocks_all\/0 must be >= 1/);
    const q = chain();
    expect(q.report.roots[0]!.queue_heads).toEqual([11]);
    q.report.roots[0]!.queue_heads = [0];
    expect(locksDocErrors(q)).toMatch(/\/report\/roots\/0\/queue_heads\/0 must be >= 1/);
    const c = doc([waiter(1, [2]), waiter(2, [1])]);
    (c.report.cycles as Array<{ members: number[] }>)[0]!.members = [0, 2];
    expect(locksDocErrors(c)).toMatch(/\/report\/cycles\/0\/members\/0 must be >= 1/);
  });

  test('refuses unknown fields, a missing one, a wrong type and another schema_version', () => {
    const extra = chain();
    extra.report.nodes[1]!.tree = [];
    expect(locksDocErrors(extra)).toMatch(/\/report\/nodes\/1 must NOT have additional properties/);
    const missing = chain();
    delete missing.report.roots[0]!.queue_heads;
    expect(locksDocErrors(missing)).toMatch(/\/report\/roots\/0 must have required property 'queue_heads'/);
    const wrong = chain();
    (wrong.report.nodes[0]!.session as Record<string, unknown>).client_port = '50000';
    expect(locksDocErrors(wrong)).toMatch(/\/report\/nodes\/0\/session/);
    const fraction = chain();
    (fraction.report.prepared_transactions as unknown[]).push({ gid: 'g', owner: 'app', database: 'app', transaction: '900', age_ms: 1.5 });
    expect(locksDocErrors(fraction)).toMatch(/\/report\/prepared_transactions\/0\/age_ms must be integer/);
    const v1 = chain();
    v1.schema_version = 1;
    expect(locksDocErrors(v1)).toMatch(/\/schema_version must be equal to constant/);
    expect(() => expectValidLocksDoc(v1)).toThrow(/does not match schema\/locks.schema.json/);
  });
});
