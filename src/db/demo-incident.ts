/**
 * The demo's incident, recreated with real client connections on a throwaway server: seeds/000's
 * "connection pool exhausted" at CloudVault. Needs PostgreSQL 14 or newer.
 *
 * - `files-api` (role files_api) leaks connections: result sets it began and never finished
 *   (sessions `active` on `ClientRead`: an unread cursor, i.e. an extended-protocol Execute with a
 *   row limit and no Sync, as `rows.Next()` left half-way does) and transactions it never ended
 *   (`idle in transaction` after RestoreVersion's `SELECT COALESCE(MAX(version), 0) ...`); the
 *   rest of its pool sits idle.
 * - `billing-sync` (role billing) updated a row of `files` and never committed: the root of a
 *   blocking chain, with three `files-api` renames of that row waiting behind it.
 * - `reports` (role reports) runs a long query.
 * Together they hold 20 of the 22 slots ordinary roles may use (max_connections 25, 3 reserved for
 * superusers): the pool is close to exhaustion.
 *
 * The unread cursors use pg-cursor (node-postgres' own cursor, from the same repository as pg): it
 * sends Parse/Bind/Describe/Execute(row limit)/Flush and no Sync, which is exactly the protocol
 * state of an unfinished result set. pg's own Query API cannot leave a portal suspended (with
 * `rows` set it keeps fetching until the end), so pg-cursor is a runtime dependency.
 *
 * Every wait is bounded; every client is tagged with its application_name and the role it uses.
 * No PG* variable of the user's reaches these clients (ownServerClientConfig).
 */
import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { InterruptedError } from '../core/errors.js';
import { ownServerClientConfig } from './embedded.js';

export const DEMO_DATABASE = 'cloudvault';
export const DEMO_MAX_CONNECTIONS = 25;
export const LEAKING_APP = 'files-api';
export const BLOCKER_APP = 'billing-sync';
export const REPORT_APP = 'reports';

/** What the demo builds; the counts are fixed so the story (and the tests) can name them. */
export const DEMO_SHAPE = {
  /** files-api sessions at rest in its pool. */
  idle: 5,
  /** files-api result sets begun and never finished: GetByUserID. */
  unreadFiles: 4,
  /** ... and GetVersions. */
  unreadVersions: 2,
  /** files-api transactions never ended (RestoreVersion). */
  idleInTransaction: 4,
  /** files-api renames queued behind billing-sync's row lock. */
  waiters: 3,
} as const;

export interface DemoServerAddress {
  host: string;
  port: number;
  /** The superuser's password; only ever handed to pg. */
  password: string;
}

export interface DemoIncident {
  database: string;
  pids: {
    idle: number[];
    clientRead: number[];
    idleInTransaction: number[];
    blocker: number;
    waiters: number[];
    longQuery: number;
  };
  /** Every pid the incident holds. */
  all: number[];
  /** Ends every client connection (bounded); the server may already be gone. */
  release(): Promise<void>;
}

export interface IncidentOptions {
  signal?: AbortSignal;
  /** Called with each step, for a progress line. */
  onStep?: (text: string) => void;
  /** Bound on each wait for the server to show a state (default 15 s). */
  waitMs?: number;
}

const GET_BY_USER = 'SELECT id, user_id, name, size_bytes, created_at FROM files WHERE user_id = $1 ORDER BY created_at';
const GET_VERSIONS = 'SELECT file_id, version, size_bytes, created_at FROM file_versions WHERE file_id = $1 ORDER BY version';
const RESTORE_VERSION = 'SELECT COALESCE(MAX(version), 0) FROM file_versions WHERE file_id = $1';
const RENAME = 'UPDATE files SET name = $1 WHERE id = $2';
const BILLING = 'UPDATE files SET billed_at = now() WHERE id = $1';
const STORAGE_REPORT =
  'SELECT f.user_id, count(*) AS files, sum(f.size_bytes) AS bytes FROM files f CROSS JOIN pg_sleep(3600) GROUP BY f.user_id /* monthly storage report */';
const POOL_PING = 'SELECT id, name FROM files WHERE id = $1';
const LOCKED_FILE_ID = 42;

function later(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError();
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * Builds the incident on a server the demo started. Throws InterruptedError when the signal
 * aborts; on any failure the connections opened so far are closed before it throws.
 */
export async function createDemoIncident(server: DemoServerAddress, opts: IncidentOptions = {}): Promise<DemoIncident> {
  const { default: pg } = await import('pg');
  const { default: Cursor } = await import('pg-cursor');
  const { signal } = opts;
  const waitMs = opts.waitMs ?? 15_000;
  const clients: Client[] = [];
  const pending: Array<Promise<unknown>> = [];
  const rolePasswords = { files_api: randomBytes(12).toString('base64url'), billing: randomBytes(12).toString('base64url'), reports: randomBytes(12).toString('base64url') };

  const connect = async (config: { user: string; password: string; database: string; app: string }): Promise<Client> => {
    checkAbort(signal);
    const c = new pg.Client(
      ownServerClientConfig({
        host: server.host,
        port: server.port,
        user: config.user,
        password: config.password,
        database: config.database,
        application_name: config.app,
        connectionTimeoutMillis: 5000,
      }),
    );
    // The demo terminates these sessions, and the server goes away at the end: never crash on it.
    c.on('error', () => undefined);
    clients.push(c);
    await c.connect();
    return c;
  };
  const pidOf = (c: Client) => (c as unknown as { processID: number }).processID;
  const release = async () => {
    await Promise.all(clients.map((c) => Promise.race([c.end().catch(() => undefined), later(2000)])));
    await Promise.race([Promise.allSettled(pending), later(2000)]);
  };

  try {
    // Set-up as the superuser: the database, the application roles, the tables and some rows.
    opts.onStep?.('creating the cloudvault database');
    const admin = await connect({ user: 'postgres', password: server.password, database: 'postgres', app: 'dbdoctor-demo-setup' });
    await admin.query(`CREATE DATABASE ${DEMO_DATABASE}`);
    for (const [role, pw] of Object.entries(rolePasswords)) {
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD ${quoteLiteral(pw)}`);
    }
    await admin.end();
    clients.splice(clients.indexOf(admin), 1);

    checkAbort(signal);
    const setup = await connect({ user: 'postgres', password: server.password, database: DEMO_DATABASE, app: 'dbdoctor-demo-setup' });
    await setup.query(`
      CREATE TABLE files (id bigint PRIMARY KEY, user_id int NOT NULL, name text NOT NULL, size_bytes bigint NOT NULL,
                          created_at timestamptz NOT NULL DEFAULT now(), billed_at timestamptz);
      CREATE TABLE file_versions (file_id bigint NOT NULL REFERENCES files, version int NOT NULL, size_bytes bigint NOT NULL,
                                  created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (file_id, version));
      INSERT INTO files (id, user_id, name, size_bytes)
        SELECT g, g % 50, 'file-' || g || '.pdf', (g * 7919) % 10000000 FROM generate_series(1, 20000) AS g;
      INSERT INTO file_versions (file_id, version, size_bytes)
        SELECT f, v, (f * v * 31) % 1000000 FROM generate_series(1, 2000) AS f, generate_series(1, 30) AS v;
      CREATE INDEX ON files (user_id);
      ANALYZE files;
      ANALYZE file_versions;
      GRANT SELECT, UPDATE ON files, file_versions TO files_api, billing, reports;
    `);
    await setup.end();
    clients.splice(clients.indexOf(setup), 1);

    // A separate superuser connection only watches states, and is closed before this returns.
    const watch = await connect({ user: 'postgres', password: server.password, database: DEMO_DATABASE, app: 'dbdoctor-demo-setup' });
    const waitForState = async (pids: number[], state: string, waitEventType?: string) => {
      const deadline = Date.now() + waitMs;
      for (;;) {
        checkAbort(signal);
        const { rows } = await watch.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND state = $2 AND ($3::text IS NULL OR wait_event_type = $3)',
          [pids, state, waitEventType ?? null],
        );
        if (rows[0]?.n === pids.length) return;
        if (Date.now() > deadline) throw new Error(`the demo's sessions did not reach state "${state}" in time`);
        await later(50);
      }
    };

    const asApp = (user: keyof typeof rolePasswords, app: string) => connect({ user, password: rolePasswords[user], database: DEMO_DATABASE, app });

    // files-api's pool at rest.
    opts.onStep?.(`${LEAKING_APP}: opening its connection pool`);
    const idleClients: Client[] = [];
    for (let i = 0; i < DEMO_SHAPE.idle; i++) {
      const c = await asApp('files_api', LEAKING_APP);
      await c.query(POOL_PING, [i + 1]);
      idleClients.push(c);
    }

    // Result sets begun and never finished: read a few rows of each, then stop reading.
    opts.onStep?.(`${LEAKING_APP}: leaving result sets unread (rows.Next() abandoned)`);
    const cursorClients: Client[] = [];
    for (let i = 0; i < DEMO_SHAPE.unreadFiles + DEMO_SHAPE.unreadVersions; i++) {
      const c = await asApp('files_api', LEAKING_APP);
      const versions = i >= DEMO_SHAPE.unreadFiles;
      const cursor = c.query(new Cursor(versions ? GET_VERSIONS : GET_BY_USER, [versions ? 100 + i : 7 + i]));
      await cursor.read(10);
      cursorClients.push(c);
    }

    // Transactions never ended.
    opts.onStep?.(`${LEAKING_APP}: leaving transactions open (no COMMIT, no ROLLBACK)`);
    const txClients: Client[] = [];
    for (let i = 0; i < DEMO_SHAPE.idleInTransaction; i++) {
      const c = await asApp('files_api', LEAKING_APP);
      await c.query('BEGIN');
      await c.query(RESTORE_VERSION, [200 + i]);
      txClients.push(c);
    }

    // A blocking chain: billing-sync holds a row lock, files-api's renames queue behind it.
    opts.onStep?.(`${BLOCKER_APP}: taking a row lock and never committing`);
    const blockerClient = await asApp('billing', BLOCKER_APP);
    await blockerClient.query('BEGIN');
    await blockerClient.query(BILLING, [LOCKED_FILE_ID]);
    const waiterClients: Client[] = [];
    for (let i = 0; i < DEMO_SHAPE.waiters; i++) {
      const c = await asApp('files_api', LEAKING_APP);
      waiterClients.push(c);
      pending.push(c.query(RENAME, [`renamed-${i}.pdf`, LOCKED_FILE_ID]).catch(() => undefined));
      // One at a time, so the chain's order is known.
      await waitForState([pidOf(c)], 'active', 'Lock');
    }

    // A long query.
    opts.onStep?.(`${REPORT_APP}: starting a long query`);
    const reportClient = await asApp('reports', REPORT_APP);
    pending.push(reportClient.query(STORAGE_REPORT).catch(() => undefined));

    const pids = {
      idle: idleClients.map(pidOf),
      clientRead: cursorClients.map(pidOf),
      idleInTransaction: txClients.map(pidOf),
      blocker: pidOf(blockerClient),
      waiters: waiterClients.map(pidOf),
      longQuery: pidOf(reportClient),
    };
    opts.onStep?.('waiting for the server to show the incident');
    await waitForState(pids.idle, 'idle');
    await waitForState(pids.clientRead, 'active', 'Client');
    await waitForState([...pids.idleInTransaction, pids.blocker], 'idle in transaction');
    await waitForState([pids.longQuery], 'active');
    await watch.end();
    clients.splice(clients.indexOf(watch), 1);

    return {
      database: DEMO_DATABASE,
      pids,
      all: [...pids.idle, ...pids.clientRead, ...pids.idleInTransaction, pids.blocker, ...pids.waiters, pids.longQuery],
      release,
    };
  } catch (err) {
    await release();
    throw err;
  }
}

/**
 * After the clean-up: waits (bounded) until none of the incident's sessions still waits for a
 * lock, so the renames queued behind the terminated blocker have finished before diagnosing again.
 */
export async function waitForCalm(server: DemoServerAddress, incident: DemoIncident, opts: { signal?: AbortSignal; waitMs?: number } = {}): Promise<void> {
  const { default: pg } = await import('pg');
  const c = new pg.Client(
    ownServerClientConfig({
      host: server.host,
      port: server.port,
      user: 'postgres',
      password: server.password,
      database: incident.database,
      application_name: 'dbdoctor-demo-setup',
      connectionTimeoutMillis: 5000,
    }),
  );
  c.on('error', () => undefined);
  try {
    await c.connect();
    const deadline = Date.now() + (opts.waitMs ?? 5000);
    while (Date.now() < deadline) {
      checkAbort(opts.signal);
      const { rows } = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND state = 'active' AND wait_event_type = 'Lock'",
        [incident.all],
      );
      if (rows[0]?.n === 0) return;
      await later(50);
    }
  } finally {
    await Promise.race([c.end().catch(() => undefined), later(2000)]);
  }
}
