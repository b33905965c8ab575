/**
 * runLocks against real blocking on a real server: a prepared transaction as the root (pid 0),
 * an advisory lock holder, an active root, a queue of conflicting waiters, and a lock cycle kept
 * alive by a long deadlock_timeout.
 */
import { describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { runLocks } from '../../src/commands/locks.js';
import { blockingEdges, lockQueues } from '../../src/core/blocking.js';
import { type LocksReport, locksReport } from '../../src/core/locks.js';
import { withSession } from '../../src/db/session.js';
import { readActivity } from '../../src/db/sql/activity.js';
import type { Target } from '../../src/core/target.js';
import { envelope } from '../../src/render/json.js';
import { renderLocks } from '../../src/render/locks.js';
import { dbdoctorSessionsLeft, sorted, waitForState } from '../support/incidents.js';
import { expectValidLocksDoc } from '../support/schemas.js';
import { ROLE_PASSWORD, type TestServer, useServer } from '../support/server.js';
import { Chalk } from 'chalk';

const server = useServer({ settings: { max_prepared_transactions: 4, deadlock_timeout: '10min' } });
const plain = new Chalk({ level: 0 });

function target(s: TestServer, user = 'postgres'): Target {
  return { host: s.host, port: s.port, user, dbname: 'postgres', password: user === 'postgres' ? s.password : ROLE_PASSWORD, sslmode: 'disable', sslrootcert: undefined, connectTimeoutMs: 5000, service: undefined };
}

/** runLocks, its report checked against schema/locks.schema.json in the envelope `locks --json` prints. */
async function locks(t: Target, detail = false): Promise<LocksReport> {
  const r = await runLocks(t, {}, { detail });
  expectValidLocksDoc(envelope('locks', r, '0.0.0-test'));
  return r;
}

const pidOf = (c: pg.Client) => (c as unknown as { processID: number }).processID;

async function withClients(s: TestServer, n: number, app: string, fn: (cs: pg.Client[]) => Promise<void>): Promise<void> {
  const cs = await Promise.all(Array.from({ length: n }, () => s.client({ application_name: app })));
  try {
    await fn(cs);
  } finally {
    await s.sql('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [cs.map(pidOf)]).catch(() => undefined);
    await Promise.all(cs.map((c) => c.end().catch(() => undefined)));
  }
}

async function table(s: TestServer, rows = 2): Promise<string> {
  const t = `locks_${Math.random().toString(36).slice(2, 8)}`;
  await s.sql(`CREATE TABLE ${t} (id int PRIMARY KEY, v int); INSERT INTO ${t} SELECT g, 0 FROM generate_series(1, ${rows}) g`);
  return t;
}

describe('runLocks', () => {
  test("a role that sees only its own sessions, the lock table read for another wait: its session holding a table is a root, though its waiter (another role's) is hidden", async () => {
    const s = server();
    const [t1, t2] = [await table(s), await table(s)];
    await s.sql(`GRANT ALL ON ${t1}, ${t2} TO app_user`);
    const own = () => s.client({ user: 'app_user', password: ROLE_PASSWORD, application_name: 'own' });
    const [holder, holder2, waiter2] = [await own(), await own(), await own()];
    try {
      await holder.query(`BEGIN; LOCK TABLE ${t1} IN ACCESS EXCLUSIVE MODE`);
      await holder2.query(`BEGIN; LOCK TABLE ${t2} IN ACCESS EXCLUSIVE MODE`);
      await withClients(s, 1, 'hidden-waiter', async ([hidden]) => {
        hidden!.query(`SELECT * FROM ${t1}`).catch(() => undefined);
        // a visible relation wait: the lock table is read
        waiter2.query(`SELECT * FROM ${t2}`).catch(() => undefined);
        await waitForState(s, [pidOf(hidden!), pidOf(waiter2)], 'active', 'Lock');
        const r = await locks(target(s, 'app_user'));
        // the hidden waiter's wait comes from the lock table; its holder, in a transaction, comes
        // with the statement's rows though pg_blocking_pids() puts it in no chain
        const roots = r.roots.map((x) => ({ pid: x.pid, vanished: x.vanished, blocks: x.blocks_all }));
        expect(roots.sort((a, b) => a.pid - b.pid)).toEqual(
          [
            { pid: pidOf(holder), vanished: false, blocks: [pidOf(hidden!)] },
            { pid: pidOf(holder2), vanished: false, blocks: [pidOf(waiter2)] },
          ].sort((a, b) => a.pid - b.pid),
        );
      });
    } finally {
      await Promise.all([holder, holder2, waiter2].map((c) => c.end().catch(() => undefined)));
    }
  });

  test('a prepared transaction holding a row lock: root pid 0, with COMMIT/ROLLBACK PREPARED and its gid', async () => {
    const s = server();
    const t = await table(s);
    const gid = `dbdoctor 'test' ${t}`;
    await withClients(s, 2, 'prepared', async ([owner, waiter]) => {
      await owner!.query('BEGIN');
      await owner!.query(`UPDATE ${t} SET v = 1 WHERE id = 1`);
      await owner!.query(`PREPARE TRANSACTION '${gid.replace(/'/g, "''")}'`);
      waiter!.query(`UPDATE ${t} SET v = 2 WHERE id = 1`).catch(() => undefined);
      await waitForState(s, [pidOf(waiter!)], 'active', 'Lock');
      try {
        const r = await locks(target(s));
        expect(await dbdoctorSessionsLeft(s)).toBe(0);
        expect(r.roots).toHaveLength(1);
        const root = r.roots[0]!;
        expect(root).toMatchObject({ pid: 0, prepared_transaction: true, vanished: false, session: null, action: 'resolve_prepared', blocks_direct: [pidOf(waiter!)], blocks_total: 1 });
        expect(root.prepared.map((p) => p.gid)).toEqual([gid]);
        const quoted = `'${gid.replace(/'/g, "''")}'`;
        expect(root.advice).toContain(`COMMIT PREPARED ${quoted}`);
        expect(root.advice).toContain(`ROLLBACK PREPARED ${quoted}`);
        expect(r.prepared_transactions.map((p) => p.gid)).toEqual([gid]);
        const text = renderLocks(r, plain, 80);
        expect(text).toContain('root: a prepared transaction (pid 0)');
        expect(text).toContain(`ROLLBACK PREPARED ${quoted}`);
        expect(text).toMatch(/prepared gid dbdoctor 'test'/);
      } finally {
        await s.sql(`ROLLBACK PREPARED '${gid.replace(/'/g, "''")}'`).catch(() => undefined);
      }
    });
  });

  test('an idle session holding an advisory lock is flagged as an advisory holder', async () => {
    const s = server();
    await withClients(s, 2, 'advisory', async ([holder, waiter]) => {
      await holder!.query('SELECT pg_advisory_lock(4242)');
      waiter!.query('SELECT pg_advisory_lock(4242)').catch(() => undefined);
      await waitForState(s, [pidOf(waiter!)], 'active', 'Lock');
      const r = await locks(target(s));
      const root = r.roots.find((x) => x.pid === pidOf(holder!))!;
      expect(root).toMatchObject({ holds_advisory: true, action: 'terminate', blocks_direct: [pidOf(waiter!)] });
      expect(root.session).toMatchObject({ state: 'idle', application_name: 'advisory' });
      expect(root.waited_locks).toEqual([{ locktype: 'advisory', mode: 'ExclusiveLock', relation: null }]);
      expect(root.advice).toMatch(/advisory/);
      expect(renderLocks(r, plain, 80)).toMatch(/advisory +holds advisory locks/);
    });
  });

  test('without --detail, advisory (shared or not) and row waits are told from wait_event and the statement; --detail reads the exact lock and its wait start', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 5, 'derived', async ([holder, excl, shared, rowHolder, rowWaiter]) => {
      await holder!.query('SELECT pg_advisory_lock(4343)');
      excl!.query('SELECT pg_advisory_lock(4343)').catch(() => undefined);
      shared!.query('SELECT pg_advisory_lock_shared(4343)').catch(() => undefined);
      await rowHolder!.query('BEGIN');
      await rowHolder!.query(`UPDATE ${t} SET v = 1 WHERE id = 1`);
      rowWaiter!.query(`UPDATE ${t} SET v = 2 WHERE id = 1`).catch(() => undefined);
      await waitForState(s, [pidOf(excl!), pidOf(shared!), pidOf(rowWaiter!)], 'active', 'Lock');
      const node = (r: LocksReport, c: pg.Client) => r.nodes.find((n) => n.pid === pidOf(c))!.waits_for;
      const cheap = await locks(target(s));
      expect(node(cheap, excl!)).toEqual({ locktype: 'advisory', mode: 'ExclusiveLock', relation: null, wait_ms: null });
      expect(node(cheap, shared!)).toEqual({ locktype: 'advisory', mode: 'ShareLock', relation: null, wait_ms: null });
      expect(node(cheap, rowWaiter!)).toEqual({ locktype: 'transactionid', mode: 'ShareLock', relation: null, wait_ms: null });
      const exact = await locks(target(s), true);
      for (const c of [excl!, shared!, rowWaiter!]) {
        const { wait_ms, ...lock } = node(exact, c)!;
        expect(lock).toEqual({ ...node(cheap, c), wait_ms: undefined });
        expect(wait_ms).toBeGreaterThanOrEqual(0);
      }
      await rowHolder!.query('ROLLBACK');
    });
  });

  test('an active root: cancel first; the relation and mode waited on', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 2, 'active-root', async ([holder, waiter]) => {
      await holder!.query('BEGIN');
      await holder!.query(`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
      holder!.query('SELECT pg_sleep(3600)').catch(() => undefined);
      await waitForState(s, [pidOf(holder!)], 'active');
      waiter!.query(`SELECT count(*) FROM ${t}`).catch(() => undefined);
      await waitForState(s, [pidOf(waiter!)], 'active', 'Lock');
      const r = await locks(target(s));
      const root = r.roots.find((x) => x.pid === pidOf(holder!))!;
      expect(root).toMatchObject({ action: 'cancel_then_terminate', holds_advisory: false });
      expect(root.advice).toContain(`dbdoctor terminate --pid ${pidOf(holder!)} --cancel-first`);
      expect(root.waited_locks).toEqual([{ locktype: 'relation', mode: 'AccessShareLock', relation: t }]);
      expect(r.nodes.find((n) => n.pid === pidOf(waiter!))!.waits_for).toMatchObject({ locktype: 'relation', mode: 'AccessShareLock', relation: t });
    });
  });

  test('a queue of conflicting waiters: every one sits directly under the holder, not in a chain', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 6, 'queue', async ([holder, ...waiters]) => {
      await holder!.query('BEGIN');
      await holder!.query(`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
      for (const w of waiters) {
        w.query(`BEGIN; LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`).catch(() => undefined);
        await waitForState(s, [pidOf(w)], 'active', 'Lock');
      }
      const r = await locks(target(s));
      expect(r.roots).toHaveLength(1);
      const root = r.roots[0]!;
      const pids = waiters.map(pidOf).sort((a, b) => a - b);
      expect(root.pid).toBe(pidOf(holder!));
      expect(root.blocks_all).toEqual(pids);
      const under = r.nodes.filter((n) => n.root === root.pid && n.blocked_by === root.pid);
      expect(under.map((n) => n.pid).sort((a, b) => a - b)).toEqual(pids);
      expect(under.every((n) => n.depth === 1 && n.behind === 0)).toBe(true);
      expect(r.waiting).toBe(5);
    });
  });

  test('a lock queue is modelled as holder plus one edge per waiter (the waiter just ahead), each with its position; a chain keeps its hard edges', async () => {
    const s = server();
    const t = await table(s);
    const u = await table(s);
    await withClients(s, 12, 'queue-model', async ([holder, chainRoot, chainMid, chainEnd, ...queue]) => {
      await holder!.query('BEGIN');
      await holder!.query(`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
      for (const w of queue) {
        w.query(`BEGIN; LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`).catch(() => undefined);
        await waitForState(s, [pidOf(w)], 'active', 'Lock');
      }
      // A chain: chainMid holds u and waits behind chainRoot's advisory lock; chainEnd waits for u.
      await chainRoot!.query('SELECT pg_advisory_lock(4545)');
      await chainMid!.query('BEGIN');
      await chainMid!.query(`LOCK TABLE ${u} IN ACCESS EXCLUSIVE MODE`);
      chainMid!.query('SELECT pg_advisory_lock(4545)').catch(() => undefined);
      await waitForState(s, [pidOf(chainMid!)], 'active', 'Lock');
      chainEnd!.query(`SELECT count(*) FROM ${u}`).catch(() => undefined);
      await waitForState(s, [pidOf(chainEnd!)], 'active', 'Lock');

      const full = await s.sql<{ pid: number; n: number }>('SELECT pid, cardinality(pg_blocking_pids(pid))::int AS n FROM pg_stat_activity WHERE pid = ANY($1)', [queue.map(pidOf)]);
      // pg_blocking_pids() lists every waiter ahead: 1 + 2 + ... + 8 holders-and-waiters.
      expect(full.reduce((a, r) => a + r.n, 0)).toBe((queue.length * (queue.length + 1)) / 2);

      const snap = await withSession(target(s), {}, (session) => readActivity(session, { scope: 'blocking', queryChars: 100 }));
      const queues = lockQueues(snap.rows);
      const place = (c: pg.Client) => queues.get(pidOf(c))!;
      queue.forEach((w, i) => {
        const ahead = i === 0 ? null : pidOf(queue[i - 1]!);
        expect(place(w)).toEqual({ blockers: [pidOf(holder!), ...(ahead === null ? [] : [ahead])], ahead, position: i });
      });
      // chainEnd waits for a lock chainMid holds: a hard edge, though chainMid waits too.
      expect(place(chainEnd!)).toEqual({ blockers: [pidOf(chainMid!)], ahead: null, position: 0 });
      expect(place(chainMid!)).toEqual({ blockers: [pidOf(chainRoot!)], ahead: null, position: 0 });
      // The edges are the queues': one per waiter behind the first, plus the holder.
      const edges = blockingEdges(snap);
      expect(queue.reduce((a, w) => a + edges.get(pidOf(w))!.length, 0)).toBe(2 * queue.length - 1);

      // The report is the same as from the full lists: one root, everyone under it, nothing behind.
      const r = await locks(target(s));
      const root = r.roots.find((x) => x.pid === pidOf(holder!))!;
      expect(root.blocks_all).toEqual(sorted(queue.map(pidOf)));
      const under = r.nodes.filter((n) => n.root === root.pid && n.blocked_by === root.pid);
      expect(sorted(under.map((n) => n.pid))).toEqual(sorted(queue.map(pidOf)));
      const chain = r.roots.find((x) => x.pid === pidOf(chainRoot!))!;
      expect(chain.blocks_all).toEqual(sorted([pidOf(chainMid!), pidOf(chainEnd!)]));
      expect(r.nodes.find((n) => n.pid === pidOf(chainEnd!))).toMatchObject({ blocked_by: pidOf(chainMid!), depth: 2 });
      await chainRoot!.query('SELECT pg_advisory_unlock_all()');
    });
  });

  test('a lock cycle (deadlock_timeout not yet reached): no root, one cycle of two members, with the session queued behind it apart', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 3, 'cycle', async ([a, b, c]) => {
      await a!.query('BEGIN');
      await a!.query(`UPDATE ${t} SET v = 1 WHERE id = 1`);
      await b!.query('BEGIN');
      await b!.query(`UPDATE ${t} SET v = 1 WHERE id = 2`);
      a!.query(`UPDATE ${t} SET v = 2 WHERE id = 2`).catch(() => undefined);
      await waitForState(s, [pidOf(a!)], 'active', 'Lock');
      b!.query(`UPDATE ${t} SET v = 2 WHERE id = 1`).catch(() => undefined);
      await waitForState(s, [pidOf(b!)], 'active', 'Lock');
      c!.query(`UPDATE ${t} SET v = 3 WHERE id = 1`).catch(() => undefined);
      await waitForState(s, [pidOf(c!)], 'active', 'Lock');
      const r = await locks(target(s));
      expect(r.roots).toEqual([]);
      expect(r.waiting).toBe(3);
      expect(r.status).toBe('warning');
      expect(r.cycles).toHaveLength(1);
      expect(r.cycles[0]!.members).toEqual([a, b].map((x) => pidOf(x!)).sort((x, y) => x - y));
      expect(r.cycles[0]!.stuck).toEqual([pidOf(c!)]);
      expect(r.nodes.filter((n) => n.cycle === 0).map((n) => n.pid).sort((x, y) => x - y)).toEqual([a, b, c].map((x) => pidOf(x!)).sort((x, y) => x - y));
      expect(r.cycles[0]!.next[0]!.argv).toEqual(['terminate', '--pid', expect.stringMatching(new RegExp(`^(${pidOf(a!)}|${pidOf(b!)})$`)), '--cancel-first', '--include-superusers']);
      const text = renderLocks(r, plain, 80);
      expect(text).toMatch(/^WARNING {2}3 sessions waiting on locks: 0 root blockers, 1 lock cycle/);
      expect(text).toContain('lock cycle: pids');
    });
  });

  test('nobody waiting: OK; a role without pg_monitor: partial, UNKNOWN', async () => {
    const s = server();
    const r = await locks(target(s));
    expect(r).toMatchObject({ status: 'ok', waiting: 0, roots: [], cycles: [] });
    expect(renderLocks(r, plain, 80)).toMatch(/^OK {2}no session waits on a lock held by another$/m);
    const p = await locks(target(s, 'app_user'));
    expect(p.status).toBe('unknown');
    expect(p.visibility).toMatchObject({ partial: true, can_read_all_stats: false });
    expect(renderLocks(p, plain, 80)).toMatch(/among the sessions this\s+role can see/);
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test("scope 'blocking' reads only the chains, hidden rows and its own session, and the report is the one every row gives", async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 4, 'bystander', async (bystanders) => {
      await bystanders[0]!.query('BEGIN; SELECT 1');
      await withClients(s, 3, 'chain', async ([holder, direct, behind]) => {
        await holder!.query('BEGIN');
        await holder!.query(`UPDATE ${t} SET v = 1 WHERE id = 1`);
        direct!.query(`UPDATE ${t} SET v = 2 WHERE id = 1`).catch(() => undefined);
        await waitForState(s, [pidOf(direct!)], 'active', 'Lock');
        behind!.query(`UPDATE ${t} SET v = 3 WHERE id = 1`).catch(() => undefined);
        await waitForState(s, [pidOf(behind!)], 'active', 'Lock');
        const chain = [holder!, direct!, behind!].map(pidOf).sort((a, b) => a - b);
        const shape = (r: LocksReport) => ({
          waiting: r.waiting,
          visibility: r.visibility,
          roots: r.roots.map((x) => ({ pid: x.pid, blocks_direct: x.blocks_direct, blocks_all: x.blocks_all, action: x.action, holds_advisory: x.holds_advisory })),
          cycles: r.cycles.map((c) => [c.members, c.stuck]),
        });
        for (const user of ['postgres', 'app_user']) {
          const { role, all, edges, blocking } = await withSession(target(s, user), {}, async (session) => ({
            role: session.role,
            all: await readActivity(session, { lockDetail: true }),
            // diagnose's read: pg_blocking_pids() and wait_event, no pg_locks
            edges: await readActivity(session, { withPrepared: true }),
            blocking: await readActivity(session, { scope: 'blocking' }),
          }));
          const priv = { can_read_all_stats: role.can_read_all_stats, role: role.current_user };
          for (const snap of [all, edges, blocking]) expectValidLocksDoc(envelope('locks', locksReport(snap, priv), '0.0.0-test'));
          if (user === 'postgres') {
            expect(blocking.rows.filter((r) => !r.is_self).map((r) => r.pid)).toEqual(chain);
            expect(all.rows.length).toBeGreaterThanOrEqual(chain.length + bystanders.length);
            expect(shape(locksReport(blocking, priv)).roots).toEqual([{ pid: chain.find((p) => p === pidOf(holder!)), blocks_direct: [pidOf(direct!)], blocks_all: [pidOf(direct!), pidOf(behind!)].sort((a, b) => a - b), action: 'terminate', holds_advisory: false }]);
          } else {
            // every session of postgres is hidden from app_user: all of them come back, and are counted
            expect(locksReport(blocking, priv).visibility.hidden).toBeGreaterThanOrEqual(chain.length + bystanders.length);
          }
          expect(blocking.rows.filter((r) => r.is_self)).toHaveLength(1);
          expect(shape(locksReport(blocking, priv))).toEqual(shape(locksReport(all, priv)));
          expect(shape(locksReport(edges, priv))).toEqual(shape(locksReport(all, priv)));
          expect(edges.rows.filter((r) => r.wait_lock !== null)).toEqual([]);
        }
      });
    });
  });
});

