/**
 * Incident builders: real client connections, tagged with their application_name, that create
 * the incidents the runbooks talk about. Each returns the ground-truth pids and a release().
 * Every wait is bounded; nothing here loops without a limit.
 */
import pg from 'pg';
import Cursor from 'pg-cursor';
import { ROLE_PASSWORD, type TestServer } from './server.js';
import { scaled } from './timing.js';

export interface Incident {
  pids: number[];
  clients: pg.Client[];
  release(): Promise<void>;
}

export interface ConnectAs {
  app: string;
  user?: string;
  dbname?: string;
}

/** A timer that never keeps the test process alive. */
function timeout(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

async function open(s: TestServer, { app, user, dbname }: ConnectAs): Promise<pg.Client> {
  // Connection fields, not a URL: pg reads a URL's database with decodeURI, which leaves %24 ($),
  // %3B (;) and the like encoded, so hostile database names could not be reached through one.
  const base = new URL(s.url());
  const c = new pg.Client({
    host: s.host,
    port: s.port,
    user: user ?? decodeURIComponent(base.username),
    password: user && user !== 'postgres' ? ROLE_PASSWORD : s.password,
    database: dbname ?? (decodeURIComponent(base.pathname.slice(1)) || 'postgres'),
    application_name: app,
  });
  // Errors after release (terminated by a test) must not crash the test process.
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function pidOf(c: pg.Client): Promise<number> {
  return (c as unknown as { processID: number }).processID;
}

function incident(clients: pg.Client[], pids: number[], extra?: () => Promise<void>): Incident {
  return {
    pids,
    clients,
    async release() {
      await extra?.();
      await Promise.all(
        clients.map((c) =>
          Promise.race([c.end().catch(() => undefined), timeout(3000)]),
        ),
      );
    },
  };
}

/** Polls (bounded) until the condition holds on the server. */
/** Pids in ascending order. */
export const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

/** Which of these pids still have a backend on the server, ascending. */
export async function alive(s: TestServer, pids: number[]): Promise<number[]> {
  const rows = await s.sql<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY pid', [pids]);
  return rows.map((r) => r.pid);
}

export async function waitFor(s: TestServer, sql: string, params: unknown[], ok: (rows: Array<Record<string, unknown>>) => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + scaled(ms);
  let rows: Array<Record<string, unknown>> = [];
  while (Date.now() < deadline) {
    rows = await s.sql(sql, params);
    if (ok(rows)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${sql} ${JSON.stringify(params)} -> ${JSON.stringify(rows)}`);
}

/** Waits until every pid shows the given state (and wait event type, when given). */
export async function waitForState(s: TestServer, pids: number[], state: string, waitEventType?: string): Promise<void> {
  await waitFor(
    s,
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND state = $2 AND ($3::text IS NULL OR wait_event_type = $3)`,
    [pids, state, waitEventType ?? null],
    (rows) => rows[0]?.n === pids.length,
  );
}

/** N idle sessions of an application (a pool at rest). */
export async function idleSessions(s: TestServer, n: number, as: ConnectAs): Promise<Incident> {
  const clients = await Promise.all(Array.from({ length: n }, () => open(s, as)));
  await Promise.all(clients.map((c) => c.query('SELECT 1')));
  const pids = await Promise.all(clients.map(pidOf));
  await waitForState(s, pids, 'idle');
  return incident(clients, pids);
}

/** N sessions idle in transaction; each ran `statement` last (a missing COMMIT). */
export async function idleInTransaction(s: TestServer, n: number, as: ConnectAs, statement = 'SELECT 1'): Promise<Incident> {
  const clients = await Promise.all(Array.from({ length: n }, () => open(s, as)));
  for (const c of clients) {
    await c.query('BEGIN');
    await c.query(statement);
  }
  const pids = await Promise.all(clients.map(pidOf));
  await waitForState(s, pids, 'idle in transaction');
  return incident(clients, pids);
}

export interface LockChain extends Incident {
  blocker: number;
  /** Waiters on the blocker's row lock, directly. */
  direct: number[];
  /** A waiter queued behind another waiter. */
  behind: number[];
  table: string;
}

/**
 * A blocker that updated a row and stayed idle in transaction, a waiter on that row, and two more
 * waiters queued behind the first (they wait for the tuple lock the first waiter holds).
 */
export async function lockChain(s: TestServer, as: ConnectAs & { waiterApp?: string }, waiters = 3): Promise<LockChain> {
  const table = `lock_${Math.random().toString(36).slice(2, 8)}`;
  await s.sql(`CREATE TABLE ${table} (id int PRIMARY KEY, v int); INSERT INTO ${table} VALUES (1, 0)`);
  const blockerClient = await open(s, as);
  await blockerClient.query('BEGIN');
  await blockerClient.query(`UPDATE ${table} SET v = v + 1 WHERE id = 1`);
  const blocker = await pidOf(blockerClient);
  const waiterClients: pg.Client[] = [];
  const pending: Array<Promise<unknown>> = [];
  const waiterPids: number[] = [];
  for (let i = 0; i < waiters; i++) {
    const c = await open(s, { ...as, app: as.waiterApp ?? as.app });
    waiterClients.push(c);
    const pid = await pidOf(c);
    waiterPids.push(pid);
    pending.push(c.query(`UPDATE ${table} SET v = v + 1 WHERE id = 1`).catch(() => undefined));
    // Wait until this one is queued before the next, so the order (and so the tree) is known.
    await waitForState(s, [pid], 'active', 'Lock');
  }
  return {
    ...incident([blockerClient, ...waiterClients], [blocker, ...waiterPids], async () => {
      await blockerClient.query('ROLLBACK').catch(() => undefined);
      await Promise.race([Promise.all(pending), timeout(3000)]);
      await s.sql(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    }),
    blocker,
    direct: waiterPids.slice(0, 1),
    behind: waiterPids.slice(1),
    table,
  };
}

/** Long-running queries (pg_sleep), still running when this returns. */
export async function longQueries(s: TestServer, n: number, as: ConnectAs, seconds = 3600, sql?: string): Promise<Incident> {
  const clients = await Promise.all(Array.from({ length: n }, () => open(s, as)));
  const pids = await Promise.all(clients.map(pidOf));
  const pending = clients.map((c) => c.query(sql ?? `SELECT pg_sleep(${seconds}) /* long ${as.app} */`).catch(() => undefined));
  await waitForState(s, pids, 'active');
  return incident(clients, pids, async () => {
    await s.sql('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
    await Promise.race([Promise.all(pending), timeout(3000)]);
  });
}

/**
 * A result set the client began and never finished: a cursor read once and left open. The
 * backend stays `active`, waiting on ClientRead (the seed incident's unclosed rows).
 */
export async function unreadCursor(s: TestServer, n: number, as: ConnectAs): Promise<Incident> {
  const clients = await Promise.all(Array.from({ length: n }, () => open(s, as)));
  const pids = await Promise.all(clients.map(pidOf));
  for (const c of clients) {
    const cursor = c.query(new Cursor('SELECT g AS id, md5(g::text) AS name FROM generate_series(1, 100000) AS g /* files by user */'));
    await cursor.read(10);
  }
  await waitForState(s, pids, 'active', 'Client');
  return incident(clients, pids, async () => {
    // The cursor holds the connection; terminate from outside so end() returns promptly.
    await s.sql('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
  });
}

/** Fills every slot an ordinary role may use; returns when the next ordinary connect fails 53300. */
export async function fillServer(s: TestServer, as: ConnectAs & { max: number }): Promise<Incident> {
  const clients: pg.Client[] = [];
  for (let i = 0; i < as.max; i++) {
    try {
      clients.push(await open(s, as));
    } catch (err) {
      if ((err as { code?: string }).code === '53300') break;
      throw err;
    }
  }
  const pids = await Promise.all(clients.map(pidOf));
  return incident(clients, pids);
}

/** Counts the sessions dbdoctor left behind (application_name = dbdoctor), waiting briefly for exits. */
export async function dbdoctorSessionsLeft(s: TestServer, ms = 3000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const [row] = await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'dbdoctor'`);
    if (row!.n === 0 || Date.now() > deadline) return row!.n;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * N sessions that ran LISTEN and now wait for notifications: seeds/001's listen pool, at 100% use
 * by design. They are idle, and their last statement is the LISTEN.
 */
export async function listeners(s: TestServer, n: number, as: ConnectAs, channel = 'outbox_events'): Promise<Incident> {
  const clients = await Promise.all(Array.from({ length: n }, () => open(s, as)));
  await Promise.all(clients.map((c) => c.query(`LISTEN ${channel}`)));
  const pids = await Promise.all(clients.map(pidOf));
  await waitForState(s, pids, 'idle');
  return incident(clients, pids);
}

/**
 * N sessions running the same slow statement at once, each with its own literal (seeds/004's
 * dedup query in many sessions): the statement normalizes to one text.
 */
export async function sameStatement(s: TestServer, n: number, as: ConnectAs, seconds = 3600): Promise<Incident> {
  const clients = await Promise.all(Array.from({ length: n }, () => open(s, as)));
  const pids = await Promise.all(clients.map(pidOf));
  const pending = clients.map((c, i) => c.query(`SELECT pg_sleep(${seconds}), 'report-${i}' AS dedup_key /* dedup check */`).catch(() => undefined));
  await waitForState(s, pids, 'active');
  return incident(clients, pids, async () => {
    await s.sql('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
    await Promise.race([Promise.all(pending), timeout(3000)]);
  });
}

/**
 * A healthy, busy server: `clients` sessions each running short transactions (read, update one
 * row, commit) in a loop until stop() or `iterations` each. Bounded in count; stop() waits for
 * the loops and closes the clients, and returns how many transactions committed.
 */
export async function busyWorkload(
  s: TestServer,
  opts: ConnectAs & { clients: number; iterations?: number },
): Promise<{ pids: number[]; stop(): Promise<number>; committed(): number }> {
  const table = `busy_${Math.random().toString(36).slice(2, 8)}`;
  await s.sql(`CREATE TABLE ${table} (id int PRIMARY KEY, balance int NOT NULL); INSERT INTO ${table} SELECT g, 0 FROM generate_series(1, 1000) g; GRANT ALL ON ${table} TO PUBLIC`);
  const clients = await Promise.all(Array.from({ length: opts.clients }, () => open(s, opts)));
  const pids = await Promise.all(clients.map(pidOf));
  let stopping = false;
  let done = 0;
  const iterations = opts.iterations ?? 5000;
  const loops = clients.map(async (c, k) => {
    for (let i = 0; i < iterations && !stopping; i++) {
      const id = ((i * 7919 + k * 104729) % 1000) + 1;
      try {
        await c.query('BEGIN');
        await c.query(`SELECT balance FROM ${table} WHERE id = $1`, [id]);
        await c.query(`UPDATE ${table} SET balance = balance + 1 WHERE id = $1`, [id]);
        await c.query('COMMIT');
        done++;
      } catch {
        await c.query('ROLLBACK').catch(() => undefined);
      }
    }
  });
  return {
    pids,
    committed: () => done,
    async stop() {
      stopping = true;
      await Promise.race([Promise.all(loops), timeout(10_000)]);
      await Promise.all(clients.map((c) => Promise.race([c.end().catch(() => undefined), timeout(3000)])));
      await s.sql(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      return done;
    },
  };
}
