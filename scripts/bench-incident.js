// Benchmark helper: builds a connection incident at scale on a throwaway server, with real
// client sessions opened with bounded concurrency:
//   - lock holders: idle in transaction, holding `locks` advisory locks between them;
//   - waiters: `waiters` sessions waiting on those locks, half directly on a holder (10 root
//     blockers), half chained behind a direct waiter (trees of depth 2);
//   - long queries (active, pg_sleep), idle in transaction sessions (half with an xid), and a
//     pool of idle sessions making up the rest of `sessions`.
// Every load session carries statement_timeout, idle_in_transaction_session_timeout and
// idle_session_timeout set to `lifetimeMs`, so even if the benchmark is killed hard its sessions
// end by themselves. Every loop here is bounded by a count, every wait by a deadline.
import pg from 'pg';

const ROOTS = 10;
const OWN_KEY_BASE = 10_000_000;

/** How many sessions of each kind, for a scale. */
export function planIncident({ sessions, locks, waiters }) {
  const holders = Math.max(2, Math.round(sessions / 15));
  const long = Math.max(2, Math.round(sessions / 30));
  const idleInTx = Math.max(2, Math.round(sessions / 6));
  const idle = sessions - holders - waiters - long - idleInTx;
  if (idle < 0) throw new Error(`scale too small: ${sessions} sessions cannot hold ${waiters} waiters plus holders, long queries and idle in transaction`);
  if (locks < holders) throw new Error(`scale too small: ${locks} locks for ${holders} holders`);
  const roots = Math.min(holders, ROOTS);
  const chained = Math.floor(waiters / 2);
  return { sessions, locks, waiters, holders, roots, direct: waiters - chained, chained, long, idleInTx, idle };
}

/** The key range holder h owns: locks spread evenly, the remainder to the first holders. */
function holderRange(plan, h) {
  const base = Math.floor(plan.locks / plan.holders);
  const extra = plan.locks % plan.holders;
  return { start: h * base + Math.min(h, extra), count: base + (h < extra ? 1 : 0) };
}

/** Runs fn(0..count-1) with at most `concurrency` at a time. */
export async function inParallel(count, concurrency, fn, signal) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      if (signal?.aborted) throw new Error('interrupted');
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Builds the incident. `conn` is { host, port, user, password, database }. Every client is pushed
 * onto `clients` as soon as it exists (so the caller can tear down after a failure half-way).
 * Returns the clients, the pending statements and a ground-truth summary read from the server.
 */
export async function buildIncident({ conn, control, plan, lifetimeMs, concurrency, signal, onProgress = () => undefined, clients = [] }) {
  const pending = [];
  const life = Math.round(lifetimeMs);
  const open = async (app) => {
    const c = new pg.Client({
      ...conn,
      application_name: app,
      connectionTimeoutMillis: 30_000,
      options: `-c statement_timeout=${life} -c idle_in_transaction_session_timeout=${life} -c idle_session_timeout=${life}`,
    });
    // The server ends these sessions at teardown: that must not crash the benchmark.
    c.on('error', () => undefined);
    clients.push(c);
    await c.connect();
    return c;
  };
  /** A statement that blocks (a lock wait, a long sleep): fired, not awaited. */
  const fire = (c, sql, params) => {
    pending.push(c.query(sql, params).catch(() => undefined));
  };
  const step = async (label, count, fn) => {
    const t0 = performance.now();
    await inParallel(count, concurrency, fn, signal);
    onProgress(`${label}: ${count} sessions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  };

  await step(`lock holders (${plan.locks} advisory locks)`, plan.holders, async (h) => {
    const c = await open('bench-batch');
    const { start, count } = holderRange(plan, h);
    await c.query('BEGIN');
    await c.query('SELECT count(pg_advisory_xact_lock(k))::int FROM generate_series($1::bigint, $2::bigint) AS k', [start, start + count - 1]);
  });

  const ownKeys = [];
  await step('waiters on holders', plan.direct, async (i) => {
    const c = await open('bench-waiter');
    const root = holderRange(plan, i % plan.roots);
    const key = root.start + (Math.floor(i / plan.roots) % root.count);
    ownKeys[i] = OWN_KEY_BASE + i;
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [ownKeys[i]]);
    fire(c, 'SELECT pg_advisory_xact_lock($1::bigint)', [key]);
  });
  await step('waiters on waiters', plan.chained, async (j) => {
    const c = await open('bench-waiter');
    await c.query('BEGIN');
    fire(c, 'SELECT pg_advisory_xact_lock($1::bigint)', [ownKeys[j % plan.direct]]);
  });
  await step('long queries', plan.long, async () => {
    const c = await open('bench-report');
    fire(c, 'SELECT pg_sleep($1::float8)', [life / 1000]);
  });
  await step('idle in transaction', plan.idleInTx, async (i) => {
    const c = await open('bench-worker');
    await c.query('BEGIN');
    await c.query(i % 2 === 0 ? 'SELECT txid_current()' : 'SELECT 1');
  });
  await step('idle pool', plan.idle, async () => {
    const c = await open('bench-api');
    await c.query('SELECT 1');
  });

  // Bounded wait until every waiter is seen waiting on a lock and every sleeper is active.
  const deadline = Date.now() + 60_000;
  let seen = { waiting: -1, active_sleep: -1 };
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new Error('interrupted');
    const { rows } = await control.query(
      `SELECT count(*) FILTER (WHERE application_name = 'bench-waiter' AND wait_event_type = 'Lock')::int AS waiting,
              count(*) FILTER (WHERE application_name = 'bench-report' AND state = 'active')::int AS active_sleep
         FROM pg_stat_activity`,
    );
    seen = rows[0];
    if (seen.waiting === plan.waiters && seen.active_sleep === plan.long) break;
    await sleep(100);
  }
  if (seen.waiting !== plan.waiters) throw new Error(`only ${seen.waiting} of ${plan.waiters} waiters are waiting on a lock after 60 s`);

  const { rows: states } = await control.query(
    `SELECT coalesce(state, 'null') AS state, count(*)::int AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND application_name LIKE 'bench-%' AND application_name <> 'bench-control'
      GROUP BY 1 ORDER BY 1`,
  );
  const { rows: lockRows } = await control.query(
    `SELECT count(*) FILTER (WHERE granted)::int AS granted, count(*) FILTER (WHERE NOT granted)::int AS waiting,
            count(*)::int AS total FROM pg_locks`,
  );
  return {
    clients,
    pending,
    summary: {
      plan,
      sessions_by_state: Object.fromEntries(states.map((r) => [r.state, r.n])),
      client_sessions: states.reduce((a, r) => a + r.n, 0),
      pg_locks: lockRows[0],
    },
  };
}

/** Closes the load clients (after the server has ended their sessions), bounded in time. */
export async function releaseClients(clients) {
  await Promise.all(clients.map((c) => Promise.race([c.end().catch(() => undefined), sleep(3000)])));
}

// The seed runbook's blocking query (seeds/002, "Identify Blocking Queries"), verbatim.
export const SEED_SELF_JOIN = `SELECT 
    blocked_locks.pid AS blocked_pid,
    blocked_activity.usename AS blocked_user,
    blocking_locks.pid AS blocking_pid,
    blocking_activity.usename AS blocking_user,
    blocked_activity.query AS blocked_statement,
    blocking_activity.query AS blocking_statement
FROM pg_catalog.pg_locks blocked_locks
JOIN pg_catalog.pg_stat_activity blocked_activity ON blocked_activity.pid = blocked_locks.pid
JOIN pg_catalog.pg_locks blocking_locks ON blocking_locks.locktype = blocked_locks.locktype
    AND blocking_locks.relation IS NOT DISTINCT FROM blocked_locks.relation
    AND blocking_locks.page IS NOT DISTINCT FROM blocked_locks.page
    AND blocking_locks.tuple IS NOT DISTINCT FROM blocked_locks.tuple
    AND blocking_locks.virtualxid IS NOT DISTINCT FROM blocked_locks.virtualxid
    AND blocking_locks.transactionid IS NOT DISTINCT FROM blocked_locks.transactionid
    AND blocking_locks.classid IS NOT DISTINCT FROM blocked_locks.classid
    AND blocking_locks.objid IS NOT DISTINCT FROM blocked_locks.objid
    AND blocking_locks.objsubid IS NOT DISTINCT FROM blocked_locks.objsubid
    AND blocking_locks.pid != blocked_locks.pid
JOIN pg_catalog.pg_stat_activity blocking_activity ON blocking_activity.pid = blocking_locks.pid
WHERE NOT blocked_locks.granted;`;
