/**
 * Who waits for whom read from the lock table (src/core/lock-queue.ts), on real lock queues, with
 * the server's own pg_blocking_pids() as the ground truth: every edge dbdoctor draws is one the
 * server reports, and the report (roots, who is behind each, cycles) is the one pg_blocking_pids()'s
 * full lists give, while a queue of N waiters costs N edges instead of N^2/2 pids. Queues of mixed
 * modes (readers behind a migration), a waiter that already holds a mode of the lock (it queues
 * ahead: no false cycle), row locks, a prepared transaction as the holder, a real cycle, and an
 * advisory pile-up long enough (LONG_QUEUE_PIDS) for pg_locks to be read although every wait's type
 * is told by its wait_event.
 */
import { describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import type { ActivitySnapshot } from '../../src/core/activity.js';
import { blockingEdges, buildBlockingReport } from '../../src/core/blocking.js';
import type { Target } from '../../src/core/target.js';
import { resolveThresholds } from '../../src/core/thresholds.js';
import { gatherFacts } from '../../src/db/diagnose.js';
import { readFullFacts, readSample } from '../../src/db/watch.js';
import { type Session, withSession } from '../../src/db/session.js';
import { LONG_QUEUE_PIDS, readActivity } from '../../src/db/sql/activity.js';
import { readTerminateSnapshot } from '../../src/db/sql/terminate.js';
import { waitForState } from '../support/incidents.js';
import { ROLE_PASSWORD, type TestServer, useServer } from '../support/server.js';

// Room for one advisory pile-up long enough for pg_locks to be read (LONG_QUEUE: N^2/2 pids well over LONG_QUEUE_PIDS).
const LONG_QUEUE = 600;
const server = useServer({ settings: { max_prepared_transactions: 4, deadlock_timeout: '10min', max_connections: LONG_QUEUE + 80 } });

const pidOf = (c: pg.Client) => (c as unknown as { processID: number }).processID;

function target(s: TestServer): Target {
  return { host: s.host, port: s.port, user: 'postgres', dbname: 'postgres', password: s.password, sslmode: 'disable', sslrootcert: undefined, connectTimeoutMs: 5000, service: undefined };
}

async function withClients(s: TestServer, n: number, fn: (cs: pg.Client[]) => Promise<void>): Promise<void> {
  const cs = await Promise.all(Array.from({ length: n }, () => s.client({ application_name: 'lock-queue' })));
  try {
    await fn(cs);
  } finally {
    await s.sql('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [cs.map(pidOf)]).catch(() => undefined);
    await Promise.all(cs.map((c) => c.end().catch(() => undefined)));
  }
}

async function table(s: TestServer): Promise<string> {
  const t = `lq_${Math.random().toString(36).slice(2, 8)}`;
  await s.sql(`CREATE TABLE ${t} (id int PRIMARY KEY, v int); INSERT INTO ${t} VALUES (1, 0), (2, 0)`);
  return t;
}

/** Start a statement that will wait for a lock, and wait until the server shows it waiting. */
async function waits(s: TestServer, c: pg.Client, sql: string): Promise<void> {
  c.query(sql).catch(() => undefined);
  await waitForState(s, [pidOf(c)], 'active', 'Lock');
}

interface Read {
  ours: ActivitySnapshot;
  /** The same snapshot with every waiter's list as pg_blocking_pids() gives it. */
  server: ActivitySnapshot;
  pbp: Map<number, number[]>;
}

/** dbdoctor's read (`locks`' scope), then the server's pg_blocking_pids() for the same sessions (the locks stand still meanwhile). */
async function read(s: TestServer): Promise<Read> {
  const ours = await withSession(target(s), {}, (session) => readActivity(session, { scope: 'blocking', queryChars: 200 }));
  const rows = await s.sql<{ pid: number; b: number[] }>("SELECT pid, pg_blocking_pids(pid) AS b FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
  const pbp = new Map(rows.map((r) => [r.pid, r.b]));
  const server = { ...ours, rows: ours.rows.map((r) => ({ ...r, blocked_by: pbp.get(r.pid) ?? null })) };
  return { ours, server, pbp };
}

/** Every edge is one the server reports, and the report is the one its full lists give. */
function expectSameAsServer({ ours, server, pbp }: Read): void {
  for (const [waiter, blockers] of blockingEdges(ours)) {
    for (const b of blockers) expect({ waiter, blocker: b, server: pbp.get(waiter)?.includes(b) }).toEqual({ waiter, blocker: b, server: true });
  }
  const shape = (snap: ActivitySnapshot) => {
    const r = buildBlockingReport(snap);
    return { waiting: r.waiting, roots: r.roots.map((x) => ({ pid: x.pid, all: x.all })), cycles: r.cycles.map((c) => ({ members: c.members, stuck: c.stuck })) };
  };
  expect(shape(ours)).toEqual(shape(server));
}

const blockersOf = (snap: ActivitySnapshot, c: pg.Client) => snap.rows.find((r) => r.pid === pidOf(c))?.blocked_by;
/** The session as it is, counting the round trips made through it. */
function countingRoundTrips(session: Session): { counted: Session; roundTrips: () => number } {
  let n = 0;
  const counted: Session = {
    ...session,
    multi: <T extends object>(sql: string) => {
      n++;
      return session.multi<T>(sql);
    },
  };
  return { counted, roundTrips: () => n };
}

const pidsRead = (snap: ActivitySnapshot) => snap.rows.reduce((n, r) => n + (r.blocked_by?.length ?? 0), 0);

describe('lock queues from the lock table', () => {
  test('with every session, the lock table is read in a second round trip only when a wait needs it: none for advisory waits, one for a relation wait', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 4, async ([holder, advisory, locker, reader]) => {
      await holder!.query('BEGIN; SELECT pg_advisory_xact_lock(4242)');
      await waits(s, advisory!, 'SELECT pg_advisory_lock(4242)');
      const readCounted = async () =>
        withSession(target(s), {}, async (session) => {
          const { counted, roundTrips } = countingRoundTrips(session);
          const snap = await readActivity(counted, { lockDetail: 'targeted', queryChars: 200 });
          return { snap, trips: roundTrips() };
        });
      // wait_event 'advisory' fixes the lock: pg_blocking_pids() in the first round trip
      const first = await readCounted();
      expect(first.trips).toBe(1);
      expect(blockersOf(first.snap, advisory!)).toEqual([pidOf(holder!)]);
      expect(first.snap.rows.find((r) => r.pid === pidOf(advisory!))?.wait_lock).toMatchObject({ locktype: 'advisory' });
      // a relation wait: its relation and mode come from the lock table, read in a second
      await locker!.query(`BEGIN; LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
      await waits(s, reader!, `SELECT * FROM ${t}`);
      const second = await readCounted();
      expect(second.trips).toBe(2);
      expect(second.snap.rows.find((r) => r.pid === pidOf(reader!))).toMatchObject({ blocked_by: [pidOf(locker!)], wait_lock: { locktype: 'relation', mode: 'AccessShareLock', relation: t } });
      expect(blockersOf(second.snap, advisory!)).toEqual([pidOf(holder!)]);
      // the lock table's wait ages are on the snapshot's clock: a wait begun before it was taken is not negative
      expect(second.snap.rows.find((r) => r.pid === pidOf(reader!))?.wait_lock?.wait_ms).toBeGreaterThanOrEqual(0);
      // whatever DateStyle and TimeZone the session has (a zone abbreviation the server reads
      // otherwise: before 18, IST is Israel's in the default set): the clock reading goes over as a number
      const odd = await withSession({ ...target(s), options: '-c DateStyle=SQL,DMY -c TimeZone=Asia/Kolkata' }, {}, (session) => readActivity(session, { lockDetail: 'targeted', queryChars: 200 }));
      const wait = odd.rows.find((r) => r.pid === pidOf(reader!))?.wait_lock?.wait_ms ?? -1;
      expect(wait).toBeGreaterThanOrEqual(0);
      expect(wait).toBeLessThan(120_000);
    });
  });

  test('30 sessions queued for one ACCESS EXCLUSIVE: the holder and the one just ahead each, 59 pids where the server lists 465', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 31, async ([holder, ...queue]) => {
      await holder!.query(`BEGIN; LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
      for (const c of queue) await waits(s, c, `BEGIN; LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
      const r = await read(s);
      for (const [i, c] of queue.entries()) expect(blockersOf(r.ours, c)).toEqual([pidOf(holder!), ...(i === 0 ? [] : [pidOf(queue[i - 1]!)])]);
      expect(pidsRead(r.ours)).toBe(1 + 2 * 29);
      expect(pidsRead(r.server)).toBe((30 * 31) / 2);
      expectSameAsServer(r);
      // diagnose reads the queue the same way (every session, no lock detail shown).
      const facts = await gatherFacts(target(s), {}, { thresholds: resolveThresholds() });
      expect(pidsRead(facts.activity!)).toBe(1 + 2 * 29);
      expect(buildBlockingReport(facts.activity!).roots.map((x) => [x.pid, x.all.length])).toEqual([[pidOf(holder!), 30]]);
    });
  });

  test('readers queued behind a migration wait for the migration, not for the reader holding the table; a writer behind them waits for the migration too', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 6, async ([reader, migration, r1, r2, writer, share]) => {
      await reader!.query(`BEGIN; SELECT count(*) FROM ${t}`);
      await waits(s, migration!, `ALTER TABLE ${t} ADD COLUMN x int`);
      await waits(s, r1!, `SELECT count(*) FROM ${t}`);
      await waits(s, r2!, `SELECT count(*) FROM ${t}`);
      await waits(s, writer!, `UPDATE ${t} SET v = 1 WHERE id = 1`);
      await waits(s, share!, `BEGIN; LOCK TABLE ${t} IN SHARE MODE`);
      const r = await read(s);
      expect(blockersOf(r.ours, migration!)).toEqual([pidOf(reader!)]);
      expect(blockersOf(r.ours, r1!)).toEqual([pidOf(migration!)]);
      expect(blockersOf(r.ours, r2!)).toEqual([pidOf(migration!)]);
      expect(blockersOf(r.ours, writer!)).toEqual([pidOf(migration!)]);
      // SHARE conflicts with the migration and with the writer's ROW EXCLUSIVE, not with the readers.
      expect(blockersOf(r.ours, share!)).toEqual([pidOf(migration!), pidOf(writer!)]);
      expectSameAsServer(r);
    });
  });

  test('a waiter that already holds the table queues ahead of the request that conflicts with it: no false cycle', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 3, async ([holder, upgrader, migration]) => {
      await holder!.query(`BEGIN; SELECT count(*) FROM ${t}`);
      await upgrader!.query(`BEGIN; SELECT count(*) FROM ${t}`);
      await waits(s, migration!, `BEGIN; LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
      // Asked later, queued first: its ACCESS SHARE is what the migration waits for.
      await waits(s, upgrader!, `LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
      const r = await read(s);
      expect(r.pbp.get(pidOf(upgrader!))).toEqual([pidOf(holder!)]);
      expect(blockersOf(r.ours, upgrader!)).toEqual([pidOf(holder!)]);
      expect(new Set(blockersOf(r.ours, migration!))).toEqual(new Set([pidOf(holder!), pidOf(upgrader!)]));
      expect(buildBlockingReport(r.ours).cycles).toEqual([]);
      expectSameAsServer(r);
    });
  });

  test('five updates of one row behind an open transaction: the first waits on its transaction id, the rest queue on the tuple', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 6, async ([owner, ...updates]) => {
      await owner!.query(`BEGIN; UPDATE ${t} SET v = 1 WHERE id = 1`);
      for (const c of updates) await waits(s, c, `UPDATE ${t} SET v = 2 WHERE id = 1`);
      const r = await read(s);
      expect(blockersOf(r.ours, updates[0]!)).toEqual([pidOf(owner!)]);
      for (const [i, c] of updates.slice(1).entries()) expect(blockersOf(r.ours, c)).toEqual([pidOf(updates[0]!), ...(i === 0 ? [] : [pidOf(updates[i]!)])]);
      expectSameAsServer(r);
    });
  });

  test('a prepared transaction holding the table: pid 0, as the server names it; an advisory queue read the same way beside it', async () => {
    const s = server();
    const t = await table(s);
    const gid = `lq ${t}`;
    await withClients(s, 5, async ([owner, waiter, adv, advWaiter1, advWaiter2]) => {
      await owner!.query(`BEGIN; LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION '${gid}'`);
      try {
        await waits(s, waiter!, `SELECT count(*) FROM ${t}`);
        await adv!.query('SELECT pg_advisory_lock(77)');
        await waits(s, advWaiter1!, 'SELECT pg_advisory_lock(77)');
        await waits(s, advWaiter2!, 'SELECT pg_advisory_lock(77)');
        const r = await read(s);
        expect(blockersOf(r.ours, waiter!)).toEqual([0]);
        expect(blockersOf(r.ours, advWaiter2!)).toEqual([pidOf(adv!), pidOf(advWaiter1!)]);
        expect(buildBlockingReport(r.ours).roots.map((x) => x.pid).sort((a, b) => a - b)).toEqual([0, pidOf(adv!)].sort((a, b) => a - b));
        expectSameAsServer(r);
      } finally {
        await s.sql(`ROLLBACK PREPARED '${gid}'`).catch(() => undefined);
      }
    });
  });

  test('two sessions each waiting for the table the other holds, one queued behind: one cycle, as the server sees it', async () => {
    const s = server();
    const t1 = await table(s);
    const t2 = await table(s);
    await withClients(s, 3, async ([a, b, behind]) => {
      await a!.query(`BEGIN; LOCK TABLE ${t1} IN ACCESS EXCLUSIVE MODE`);
      await b!.query(`BEGIN; LOCK TABLE ${t2} IN ACCESS EXCLUSIVE MODE`);
      await waits(s, a!, `LOCK TABLE ${t2} IN ACCESS EXCLUSIVE MODE`);
      await waits(s, b!, `LOCK TABLE ${t1} IN ACCESS EXCLUSIVE MODE`);
      await waits(s, behind!, `SELECT count(*) FROM ${t1}`);
      const r = await read(s);
      const report = buildBlockingReport(r.ours);
      expect(report.cycles.map((c) => c.members)).toEqual([[pidOf(a!), pidOf(b!)].sort((x, y) => x - y)]);
      expect(report.cycles[0]!.stuck).toEqual([pidOf(behind!)]);
      expectSameAsServer(r);
    });
  });

  test.each([
    ['30 alone: pg_blocking_pids() lists them whole (the cheaper read for short queues)', 30, (n: number) => (n * (n + 1)) / 2],
    [`${LONG_QUEUE}: read from the lock table, the holder and the one just ahead each`, LONG_QUEUE, (n: number) => 1 + 2 * (n - 1)],
  ])('an advisory pile-up (job runners all waiting for one key) of %s', async (_, n, expectedPids) => {
    const s = server();
    await withClients(s, n + 2, async ([watcher, holder, ...queue]) => {
      await holder!.query('SELECT pg_advisory_lock(4242)');
      // One after the other, each once the server has its wait start: the queue's order is then the
      // order of the wait starts (core/lock-queue.ts; sessions that join a queue in the same instant
      // may be told in either order).
      for (const c of queue) {
        c.query('SELECT pg_advisory_lock(4242)').catch(() => undefined);
        for (let i = 0; i < 2000; i++) {
          const { rows } = await watcher!.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_locks WHERE pid = $1 AND NOT granted AND waitstart IS NOT NULL', [pidOf(c)]);
          if (rows[0]?.n === 1) break;
        }
      }
      await waitForState(s, queue.map(pidOf), 'active', 'Lock');
      const r = await read(s);
      expect(pidsRead(r.ours)).toBe(expectedPids(n));
      expect(pidsRead(r.server)).toBe((n * (n + 1)) / 2);
      expect(pidsRead(r.server) > LONG_QUEUE_PIDS).toBe(n === LONG_QUEUE);
      expectSameAsServer(r);
      const waitsFor = r.ours.rows.find((x) => x.pid === pidOf(queue[n - 1]!))?.wait_lock;
      expect(waitsFor).toMatchObject({ locktype: 'advisory', mode: 'ExclusiveLock' });
      // diagnose reads the same way
      const facts = await gatherFacts(target(s), {}, { thresholds: resolveThresholds() });
      expect(pidsRead(facts.activity!)).toBe(expectedPids(n));
      expect(buildBlockingReport(facts.activity!).roots.map((x) => [x.pid, x.all.length])).toEqual([[pidOf(holder!), n]]);
      // and so does each sample of a watch
      const sample = await withSession(target(s), {}, (session) => readSample(session));
      expect(pidsRead(sample.facts.activity!)).toBe(expectedPids(n));
      expect(buildBlockingReport(sample.facts.activity!).roots.map((x) => [x.pid, x.all.length])).toEqual([[pidOf(holder!), n]]);
      // and so does the plan read of terminate --blockers
      const plan = await withSession(target(s), {}, (session) => readTerminateSnapshot(session, true));
      expect(pidsRead(plan.activity)).toBe(expectedPids(n));
      expect(buildBlockingReport(plan.activity).roots.map((x) => [x.pid, x.all.length])).toEqual([[pidOf(holder!), n]]);
    });
  }, 120_000);

  test('a watch on a server that revokes pg_locks: every sample keeps to pg_blocking_pids() in one round trip (the guard asks for the privilege)', async () => {
    const s = server();
    const t = await table(s);
    await s.sql('REVOKE SELECT ON pg_locks FROM PUBLIC');
    try {
      await withClients(s, 3, async ([holder, reader, writer]) => {
        // a wait on a relation, for which the lock table would be read if the role could
        await holder!.query(`BEGIN; LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
        await waits(s, reader!, `SELECT * FROM ${t}`);
        await waits(s, writer!, `UPDATE ${t} SET v = 1`);
        // a monitoring role (pg_monitor), not a superuser: the revoke applies to it
        await withSession({ ...target(s), user: 'monitor_user', password: ROLE_PASSWORD }, {}, async (session) => {
          const { counted, roundTrips } = countingRoundTrips(session);
          const first = await readSample(counted);
          expect(roundTrips()).toBe(1);
          const second = await readSample(counted);
          expect(roundTrips()).toBe(2);
          // the watch's `d` reads the same way, in one round trip
          const full = await readFullFacts(counted);
          expect(roundTrips()).toBe(3);
          for (const activity of [first.facts.activity!, second.facts.activity!, full.activity!]) {
            const blockers = new Map(activity.rows.filter((r) => r.blocked_by).map((r) => [r.pid, r.blocked_by]));
            // from pg_blocking_pids(): both wait for the holder (a reader's and a writer's modes do not conflict)
            expect(blockers).toEqual(new Map([[pidOf(reader!), [pidOf(holder!)]], [pidOf(writer!), [pidOf(holder!)]]]));
            expect(activity.rows.every((r) => !r.wait_lock)).toBe(true);
          }
        });
        // and so does terminate --blockers' plan read (a fresh session)
        await withSession({ ...target(s), user: 'monitor_user', password: ROLE_PASSWORD }, {}, async (session) => {
          const { counted, roundTrips } = countingRoundTrips(session);
          const plan = await readTerminateSnapshot(counted, true);
          expect(roundTrips()).toBe(1);
          expect(buildBlockingReport(plan.activity).roots.map((x) => [x.pid, x.all.length])).toEqual([[pidOf(holder!), 2]]);
          expect(plan.fingerprints.length).toBeGreaterThan(0);
        });
      });
    } finally {
      await s.sql('GRANT SELECT ON pg_locks TO PUBLIC');
    }
  }, 60_000);

  test('a watch whose sample fails without the lock table too: the error is the sample\'s, and the next sample reads the lock table again', async () => {
    const s = server();
    const t = await table(s);
    await withClients(s, 2, async ([holder, reader]) => {
      await holder!.query(`BEGIN; LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
      await waits(s, reader!, `SELECT * FROM ${t}`);
      await withSession({ ...target(s), user: 'monitor_user', password: ROLE_PASSWORD }, {}, async (session) => {
        const { counted, roundTrips } = countingRoundTrips(session);
        // another read of the round trip refused (the session counters): not the lock table's fault
        await s.sql('REVOKE SELECT ON pg_stat_database FROM PUBLIC');
        try {
          await expect(readSample(counted)).rejects.toMatchObject({ cause_id: 'permission_denied' });
          expect(roundTrips()).toBe(2);
        } finally {
          await s.sql('GRANT SELECT ON pg_stat_database TO PUBLIC');
        }
        const next = await readSample(counted);
        // the relation wait asks for the lock table: a second round trip
        expect(roundTrips()).toBe(4);
        // read from the lock table: the relation waited for, and who holds it
        expect(next.facts.activity!.rows.find((r) => r.pid === pidOf(reader!))).toMatchObject({ blocked_by: [pidOf(holder!)], wait_lock: { locktype: 'relation', mode: 'AccessShareLock' } });
      });
    });
  }, 60_000);
});
