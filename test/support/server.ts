/**
 * Real PostgreSQL for the tests. A file that asks for settings of its own (or a major) starts its
 * own throwaway server; a file that asks for none shares its jest worker's server, started once
 * for the run by test/support/server-pool.mjs (files of one worker run one after another, each
 * cleaning up what it starts). DBDOCTOR_TEST_URL points the suite at an existing server instead
 * (a superuser URL); DBDOCTOR_PG_MAJOR picks the major (default 18).
 */
import { afterAll, beforeAll } from '@jest/globals';
import pg from 'pg';
import { type RunningServer, type ServerOptions, startServer } from '../../src/db/embedded.js';
import { scaled } from './timing.js';

export const ROLE_PASSWORD = 'Role-pw-7f3a';

export interface TestServer {
  host: string;
  port: number;
  password: string;
  major: number;
  url(opts?: { user?: string; password?: string; dbname?: string }): string;
  /** A superuser client; the caller ends it. */
  client(opts?: { user?: string; password?: string; dbname?: string; application_name?: string }): Promise<pg.Client>;
  /** Runs one statement as the superuser. */
  sql<T extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** The embedded server, when the suite started it (undefined with DBDOCTOR_TEST_URL). */
  embedded: RunningServer | undefined;
  stop(): Promise<void>;
}

function fromUrl(url: string): Omit<TestServer, 'client' | 'sql' | 'stop' | 'embedded'> {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    password,
    major: 0,
    url: ({ user = decodeURIComponent(u.username), password: pw = password, dbname = u.pathname.slice(1) || 'postgres' } = {}) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@${u.hostname}:${u.port || 5432}/${encodeURIComponent(dbname)}`,
  };
}

/** Roles every test may use: a plain role, a monitoring role and a role that may signal backends. */
async function createRoles(s: TestServer): Promise<void> {
  await s.sql(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_user') THEN CREATE ROLE app_user LOGIN PASSWORD '${ROLE_PASSWORD}'; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'monitor_user') THEN CREATE ROLE monitor_user LOGIN PASSWORD '${ROLE_PASSWORD}' IN ROLE pg_monitor; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'signal_user') THEN CREATE ROLE signal_user LOGIN PASSWORD '${ROLE_PASSWORD}' IN ROLE pg_signal_backend; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'other_user') THEN CREATE ROLE other_user LOGIN PASSWORD '${ROLE_PASSWORD}'; END IF;
  END $$`);
}

/** The server this worker shares (see test/support/server-pool.mjs), for a file that asks for no settings. */
function sharedServerUrl(opts: ServerOptions & { forceEmbedded?: boolean }): string | undefined {
  if (opts.forceEmbedded || opts.settings || opts.major !== undefined) return undefined;
  return process.env.DBDOCTOR_TEST_URL || process.env[`DBDOCTOR_POOL_URL_${process.env.JEST_WORKER_ID ?? '1'}`] || undefined;
}

export async function startTestServer(opts: ServerOptions & { forceEmbedded?: boolean } = {}): Promise<TestServer> {
  const external = sharedServerUrl(opts);
  const embedded = external ? undefined : await startServer(opts);
  const base = embedded
    ? { host: embedded.host, port: embedded.port, password: embedded.password, major: embedded.major, url: embedded.url }
    : fromUrl(external!);
  const s: TestServer = {
    ...base,
    embedded,
    async client({ user, password, dbname, application_name = 'dbdoctor-test' } = {}) {
      const c = new pg.Client({ connectionString: base.url({ user, password: password ?? (user && user !== 'postgres' ? ROLE_PASSWORD : undefined), dbname }), application_name });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    },
    async sql(text, params) {
      const c = await s.client();
      try {
        return (await c.query(text, params)).rows;
      } finally {
        await c.end();
      }
    },
    async stop() {
      if (embedded) await embedded.stop();
    },
  };
  const [v] = await s.sql<{ v: number }>(`SELECT current_setting('server_version_num')::int / 10000 AS v`);
  s.major = v!.v;
  await createRoles(s);
  return s;
}

/** Starts a server for this test file before its tests and stops it after, also when they fail. */
export function useServer(opts: ServerOptions = {}): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startTestServer(opts);
  }, scaled(60_000));
  afterAll(async () => {
    await server?.stop();
  }, scaled(60_000));
  return () => {
    if (!server) throw new Error('server not started');
    return server;
  };
}

/** Settings that make the server log each connection (with its application_name). */
export const LOG_CONNECTIONS = { log_connections: 'on' } as const;

/**
 * How many connections dbdoctor opened while `fn` ran, read from the server log (needs a server
 * started with LOG_CONNECTIONS).
 */
export async function connectionsOpenedBy(s: TestServer, fn: () => Promise<unknown>): Promise<number> {
  const { readFileSync } = await import('node:fs');
  if (!s.embedded) throw new Error('connectionsOpenedBy needs an embedded server');
  const before = readFileSync(s.embedded.logFile, 'utf8').length;
  await fn();
  await new Promise((r) => setTimeout(r, 200));
  const added = readFileSync(s.embedded.logFile, 'utf8').slice(before);
  return added.split('\n').filter((l) => /connection authorized: .*application_name=dbdoctor\b/.test(l)).length;
}
