/**
 * The connection layer: exactly one pg.Client per command, never a pool. It sets
 * application_name=dbdoctor, a connect timeout, and (after connecting, so it also works through
 * PgBouncer) statement_timeout, lock_timeout and idle_in_transaction_session_timeout on its own
 * session. Ctrl-C sends a protocol CancelRequest, which needs no connection slot.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { isIP, connect as netConnect } from 'node:net';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Client, ClientConfig } from 'pg';
import { classifyConnectError, type ConnectFailure, isServerError, type RawError } from '../core/classify.js';
import { MAX_TIMEOUT_MS } from '../core/duration.js';
import { DbdoctorError, InterruptedError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { statementTimeoutInOptions } from '../core/conninfo.js';
import type { Target } from '../core/target.js';
import { negotiateSsl } from './ssl-request.js';
import { pgpassPassword } from './target.js';
import { nowMs } from './clock.js';
import { FileProblem, readRegularText } from '../ui/files.js';

export const APPLICATION_NAME = 'dbdoctor';

/**
 * SQL: whether the current user is a superuser (`superuser`, a SQL boolean) or has the privileges
 * of the predefined role `role` (a constant name).
 */
export function superuserOrMember(superuser: string, role: string): string {
  return `(${superuser} OR pg_has_role(current_user, '${role}', 'USAGE'))`;
}

/**
 * Whether the current user may read every session's details: a superuser (`superuser`, a SQL
 * boolean), or a member of pg_read_all_stats (pg_monitor includes it). The one definition, for the
 * session's setup and the server facts.
 */
export function canReadAllStats(superuser: string): string {
  return superuserOrMember(superuser, 'pg_read_all_stats');
}

/**
 * The session's set-up reads superuser from the is_superuser setting, the current role's (SET ROLE
 * and SET SESSION AUTHORIZATION set it), rather than a pg_roles row: it plans no view over
 * pg_authid, ~2.5 ms of a fresh backend's time (4.9 -> 2.3 ms, PostgreSQL 18, 1,500 backends). The
 * setting is written when the role is set, so an ALTER ROLE ... SUPERUSER since then is not in it:
 * a direct session has just logged in; through a pooler, the server connection may be older. The
 * server facts, which read the role's pg_roles row anyway, take rolsuper from it.
 */
const SETUP_CAN_READ_ALL_STATS = canReadAllStats("current_setting('is_superuser')::boolean");

export interface SessionOptions {
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  /** Aborting cancels the running statement on the server and closes the session. */
  signal?: AbortSignal;
  /**
   * Asks for the password on the terminal, as psql does: when the server wants one that nothing
   * gave (PGPASSWORD, ~/.pgpass, -d), or before connecting with `askPasswordFirst` (psql's -W).
   * Absent without a terminal: then the missing password is reported.
   */
  askPassword?: (user: string) => Promise<string>;
  askPasswordFirst?: boolean;
  /** Told when the session turns out to go through a connection pooler (see Session.throughPooler). */
  onThroughPooler?: () => void;
}

/** The server wants a password that nothing gave, and one can be asked for: ask, then connect again. */
class PasswordWanted extends Error {}

export const DEFAULT_STATEMENT_TIMEOUT_MS = 15_000;
export const DEFAULT_LOCK_TIMEOUT_MS = 1_000;

/** A connection failure, classified: carries the step and cause for `check` and `diagnose`. */
export class ConnectError extends DbdoctorError {
  readonly failure: ConnectFailure;
  constructor(failure: ConnectFailure) {
    super(failure.message, { exitCode: failure.exit_code, hint: failure.hint, cause: failure.cause });
    this.name = 'ConnectError';
    this.failure = failure;
  }
}

export interface Session {
  readonly pid: number;
  readonly serverVersionNum: number;
  /** The role connected, and whether it may read every session's details (pg_read_all_stats). */
  readonly role: { current_user: string; can_read_all_stats: boolean };
  readonly target: Target;
  /** Milliseconds the connect (TCP, TLS, start-up, auth) took. */
  readonly connectMs: number;
  /**
   * The connection goes through a pooler (PgBouncer, pgcat, a managed proxy): the pid the protocol
   * gave (BackendKeyData) is not the server backend's. Then this session may share its server
   * connection with other clients, and a pid names a pooled server connection, not one client.
   */
  readonly throughPooler: boolean;
  query<T extends object>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Several statements in one round trip (simple protocol, no parameters). */
  multi<T extends object>(sql: string): Promise<T[][]>;
  close(): Promise<void>;
}

/** The root certificate: sslrootcert, else ~/.postgresql/root.crt when it is there. */
function readCa(path: string | undefined): string | undefined {
  return readPem(path ?? join(homedir(), '.postgresql', 'root.crt'), 'root certificate', 'sslrootcert / PGSSLROOTCERT', path !== undefined, 'tls_rootcert') ?? undefined;
}

/** Certificate bundles are a few hundred kB at most. */
const CERT_MAX_BYTES = 4 * 1024 * 1024;


/** libpq's sslmode meanings, mapped onto Node's TLS options (node-postgres' own differ); false for disable. */
export function tlsFor(t: Target): false | TlsOptions {
  const check = ((): TlsOptions | false => {
    switch (t.sslmode) {
      case 'disable':
        return false;
      case 'allow':
      case 'prefer':
        return { rejectUnauthorized: false };
      case 'require': {
        if (!t.sslrootcert) return { rejectUnauthorized: false };
        const ca = readCa(t.sslrootcert);
        return { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
      }
      case 'verify-ca': {
        const ca = readCa(t.sslrootcert);
        return { ...(ca ? { ca } : {}), rejectUnauthorized: true, checkServerIdentity: () => undefined };
      }
      case 'verify-full': {
        const ca = readCa(t.sslrootcert);
        return { ...(ca ? { ca } : {}), rejectUnauthorized: true };
      }
    }
  })();
  if (check === false) return false;
  return { ...check, ...clientCertificate(t), ...tlsExtras(t) };
}

/**
 * With hostaddr, the connection goes to the address but the certificate is checked against the
 * host's name (and SNI names it), as in libpq; the revocation list and protocol bounds, when given.
 */
function tlsExtras(t: Target): TlsOptions {
  const out: TlsOptions = {};
  if (t.hostaddr !== undefined && t.host !== t.hostaddr && !t.host.startsWith('/')) {
    out.host = t.host;
    if (isIP(t.host) === 0) out.servername = t.host;
  }
  if (t.sslcrl !== undefined) out.crl = readPem(t.sslcrl, 'certificate revocation list', 'sslcrl / PGSSLCRL', true) ?? undefined;
  if (t.sslMinProtocolVersion) out.minVersion = t.sslMinProtocolVersion;
  if (t.sslMaxProtocolVersion) out.maxVersion = t.sslMaxProtocolVersion;
  return out;
}

/**
 * The client certificate, as libpq finds it: sslcert and sslkey, else ~/.postgresql/postgresql.crt
 * and postgresql.key when they exist. A key others may read is refused, as libpq refuses it.
 */
function clientCertificate(t: Target): TlsOptions {
  const certPath = t.sslcert ?? join(homedir(), '.postgresql', 'postgresql.crt');
  let cert: string | null;
  try {
    cert = readPem(certPath, 'client certificate', 'sslcert / PGSSLCERT', t.sslcert !== undefined);
  } catch (err) {
    // libpq skips a default certificate it cannot stat (no such file, or a home it may not enter)
    if (t.sslcert === undefined) return {};
    throw err;
  }
  if (cert === null) return {};
  const keyPath = t.sslkey ?? join(homedir(), '.postgresql', 'postgresql.key');
  const key = readPem(keyPath, 'private key', 'sslkey / PGSSLKEY', true);
  try {
    const st = statSync(keyPath);
    if (st.uid === process.geteuid?.() && (st.mode & 0o077) !== 0) {
      throw tlsFileError(`the private key file ${keyPath} has group or world access`, 'chmod 600 it (libpq refuses it too)', 'tls_client_key');
    }
  } catch (err) {
    if (err instanceof DbdoctorError) throw err;
  }
  return { cert, key: key ?? undefined, ...(t.sslpassword !== undefined ? { passphrase: t.sslpassword } : {}) };
}

/** A PEM file, a regular file only (a FIFO or a device would hang, or fill the memory); null when absent and not required. */
function readPem(path: string, what: string, setting: string, required: boolean, cause = 'tls_file'): string | null {
  let text: string | null;
  try {
    // A regular file only: a FIFO or a device such as /dev/zero would hang, or fill the memory.
    text = readRegularText(path, CERT_MAX_BYTES);
  } catch (err) {
    throw tlsFileError(`cannot read the ${what} file ${path}${err instanceof FileProblem ? `: it is ${err.what}` : ''}`, `check ${setting}`, cause);
  }
  if (text === null && required) throw tlsFileError(`cannot read the ${what} file ${path}: no such file`, `check ${setting}`, cause);
  return text;
}

function tlsFileError(message: string, hint: string, cause: string): DbdoctorError {
  return new DbdoctorError(message, { exitCode: ExitCode.UNKNOWN, hint, cause });
}

/**
 * The attempts libpq makes for each sslmode. Under prefer over TCP it sends the SSLRequest and goes
 * on over the same connection whatever the answer: so does dbdoctor ('negotiate',
 * db/ssl-request.ts; node-postgres, asked for TLS, would end the socket on 'N'). Over a Unix socket
 * the server always says 'N', and libpq never asks: neither does dbdoctor. Under allow a plain
 * attempt the server rejects is tried again with TLS.
 */
type Attempt = 'ssl' | 'plain' | 'negotiate';

function attemptsFor(t: Target): Attempt[] {
  switch (t.sslmode) {
    case 'disable':
      return ['plain'];
    case 'allow':
      return ['plain', 'ssl'];
    case 'prefer':
      return t.host.startsWith('/') ? ['plain'] : ['negotiate'];
    default:
      return ['ssl'];
  }
}

function shouldFallBack(t: Target, err: RawError): boolean {
  return t.sslmode === 'allow' && err.code === '28000';
}

/** Sends a protocol CancelRequest for the backend; it needs no connection slot. */
export function sendCancelRequest(t: Target, pid: number, secretKey: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = t.host.startsWith('/')
      ? netConnect(join(t.host, `.s.PGSQL.${t.port}`))
      : netConnect(t.port, t.hostaddr ?? t.host);
    const done = () => {
      socket.destroy();
      resolve();
    };
    socket.setTimeout(2000, done);
    socket.on('error', done);
    socket.on('connect', () => {
      const buf = Buffer.alloc(16);
      buf.writeInt32BE(16, 0);
      buf.writeInt32BE(80877102, 4);
      buf.writeInt32BE(pid, 8);
      buf.writeInt32BE(secretKey, 12);
      socket.end(buf);
    });
    socket.on('close', done);
  });
}

function failureContext(t: Target) {
  return {
    host: t.host,
    port: t.port,
    user: t.user,
    dbname: t.dbname,
    connectTimeoutMs: t.connectTimeoutMs,
    sslmode: t.sslmode,
  };
}

function noAnswerError(t: Target, ms: number): DbdoctorError {
  return new DbdoctorError(`no answer from ${t.host}:${t.port} for ${ms} ms after sending a query: the server or the network path stopped responding`, {
    exitCode: ExitCode.CRITICAL,
    hint: 'the server may be frozen (I/O stall, overload) or the network dropped the connection silently; run: dbdoctor check',
    cause: 'no_answer',
  });
}

/** Errors met on an open session, in one clear line with the exit code they deserve. */
export function queryError(err: unknown, t: Target, statementTimeoutMs: number, lockTimeoutMs: number): DbdoctorError {
  if (err instanceof DbdoctorError) return err;
  const e = (err ?? {}) as RawError;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(err);
  switch (code) {
    case '57014':
      return new DbdoctorError(`a dbdoctor query ran into its statement_timeout (${statementTimeoutMs} ms)`, {
        exitCode: ExitCode.UNKNOWN,
        hint: 'the server is very slow or the statistics views are huge; raise --statement-timeout',
        cause: 'statement_timeout',
      });
    case '55P03':
      return new DbdoctorError(`a dbdoctor query waited longer than its lock_timeout (${lockTimeoutMs} ms) for a lock`, {
        exitCode: ExitCode.UNKNOWN,
        hint: 'something holds a strong lock on a catalog dbdoctor reads; run: dbdoctor locks',
        cause: 'lock_timeout',
      });
    case '42501':
      return new DbdoctorError(`permission denied: ${message}`, {
        exitCode: ExitCode.UNKNOWN,
        hint: 'grant the role pg_monitor (or pg_read_all_stats) to see more',
        cause: 'permission_denied',
      });
    case '57P01':
    case '57P02':
    case '57P03':
    case '08006':
    case '08003':
      return new DbdoctorError(`the server ended the session: ${message}`, {
        exitCode: ExitCode.CRITICAL,
        hint: `the server at ${t.host}:${t.port} is shutting down or restarting; run: dbdoctor check`,
        cause: 'server_gone',
      });
    default:
      break;
  }
  // A lost connection: Node's codes, or node-postgres' own words (never the words of an error the
  // server sent: they hold names any client chose, and a table called "closed" is no lost server).
  const clientSide = !isServerError(e);
  if (code === 'ECONNRESET' || code === 'EPIPE' || (clientSide && code === undefined && /terminated|not queryable|ended unexpectedly|closed/i.test(message))) {
    return new DbdoctorError(`lost the connection to ${t.host}:${t.port}: ${message}`, {
      exitCode: ExitCode.CRITICAL,
      hint: 'the server went away (shutdown, crash or network); run: dbdoctor check',
      cause: 'server_gone',
    });
  }
  return new DbdoctorError(`query failed: ${message}${code ? ` (SQLSTATE ${code})` : ''}`, {
    exitCode: ExitCode.UNKNOWN,
    hint: 'run with --debug for details',
    cause: 'query_failed',
  });
}

/** The client's socket: its connection's stream (a net.Socket, or a tls.TLSSocket over one). */
function socketOf(client: Client): { destroy(): void; unref?(): void } | undefined {
  return client.connection?.stream;
}

/** Drops the client's socket at once (no goodbye): nothing of dbdoctor's may keep the process alive. */
function destroySocket(client: Client): void {
  socketOf(client)?.destroy();
}

/**
 * How long dbdoctor waits for any answer to a statement before it gives up on the server: its own
 * statement_timeout plus a margin. A healthy server cancels the statement itself well before; this
 * catches a server (or network path) that stops answering altogether, which no server-side
 * timeout and no TCP keepalive notices.
 */
export function answerDeadlineMs(statementTimeoutMs: number): number {
  // never past what a Node timer can hold (a longer one fires at once)
  return Math.min(MAX_TIMEOUT_MS, statementTimeoutMs + Math.max(2000, Math.round(statementTimeoutMs / 2)));
}

type Pg = typeof import('pg').default;

/** pg: loaded (and on Node 20 probed for a Cloudflare runtime, ~35 ms) on the first connect; the module cache holds it after. */
const loadPg = async (): Promise<Pg> => (await import('pg')).default;

async function connectOnce(
  t: Target,
  password: () => Promise<string>,
  attempt: Attempt,
  signal: AbortSignal | undefined,
  /** What loading pg took, added to (dbdoctor's own time, not connecting's: connect_ms, connect_timeout). */
  spent: { loadMs: number },
): Promise<Client> {
  const host = t.hostaddr ?? t.host;
  const started = nowMs();
  const tls = attempt === 'plain' ? false : tlsFor(t);
  // The SSLRequest on a socket of dbdoctor's own, handed to pg with TLS done (or refused): one
  // connection, as libpq. It takes its share of connect_timeout; pg has what is left.
  const negotiating = attempt === 'negotiate' ? negotiateSsl({ host, port: t.port, tls: tls || {}, timeoutMs: t.connectTimeoutMs, signal }) : undefined;
  // Its failure is awaited below, after pg has loaded.
  negotiating?.catch(() => undefined);
  // pg loads while the server accepts the TCP connect just started, forks the backend and answers
  // the SSLRequest (~4 ms with 1,500 backends). node:net connects to an address in a nextTick,
  // which runs only after the promise callbacks queued before it, so the load waits one turn of
  // the event loop: in it the connect reaches the kernel and, on a loopback already connected, the
  // SSLRequest goes (strace: connect, SSLRequest, then pg's load, then the server's answer read).
  if (negotiating) await new Promise((r) => setImmediate(r));
  // Neither a failed load nor a Ctrl-C during it may leave the negotiated socket open.
  const drop = () => void negotiating?.then((socket) => socket.destroy(), () => undefined);
  const loading = nowMs();
  let pg: Pg;
  try {
    pg = await loadPg();
  } catch (err) {
    drop();
    throw err;
  }
  const loadMs = nowMs() - loading;
  spent.loadMs += loadMs;
  if (signal?.aborted) {
    drop();
    throw new InterruptedError();
  }
  const stream = await negotiating;
  const ssl = attempt === 'ssl' ? tls : false;
  const config: ClientConfig = {
    host,
    port: t.port,
    user: t.user,
    database: t.dbname,
    ssl,
    connectionTimeoutMillis: Math.max(1, t.connectTimeoutMs - (nowMs() - started - loadMs)),
    ...(stream ? { stream: () => stream } : {}),
    application_name: APPLICATION_NAME,
    keepAlive: t.keepalives !== false,
    ...(t.keepalivesIdleMs !== undefined ? { keepAliveInitialDelayMillis: t.keepalivesIdleMs } : {}),
    // pg reads PGOPTIONS itself when `options` is empty; the target says what to send (resolved
    // from -d, the service or PGOPTIONS, as libpq does). Without TLS there is no negotiation to
    // choose, whatever PGSSLNEGOTIATION says (pg would refuse 'direct' without TLS).
    ...(t.options !== undefined ? { options: t.options } : {}),
    ...(ssl === false ? { sslnegotiation: 'postgres' as const } : {}),
  };
  // The password is only ever handed to pg; it never reaches a message or log.
  config.password = password;
  const client = new pg.Client(config);
  // An error event on an idle client would otherwise crash the process.
  client.on('error', () => undefined);
  // Ctrl-C while connecting: drop the half-open socket at once instead of waiting for the timeout.
  const onAbort = () => destroySocket(client);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
  } catch (err) {
    // A client-side failure (e.g. no password for SCRAM) leaves the socket open: close it. A peer
    // that is not PostgreSQL may never close its side of a half-closed socket, so destroy it too.
    await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 500).unref())]);
    destroySocket(client);
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return client;
}

/**
 * Connects as libpq would (TLS attempts, the password from wherever it comes, asked for on a
 * terminal), for a session or for a pooler's admin console, which takes no SET and no SELECT.
 * Throws ConnectError (classified) when it cannot. The target returned holds a password typed.
 */
export async function connectClient(given: Target, opts: SessionOptions = {}): Promise<{ client: Client; target: Target; connectMs: number }> {
  let t = given;
  if (opts.signal?.aborted) throw new InterruptedError();

  const ask = opts.askPassword;
  if (ask && opts.askPasswordFirst) t = { ...t, password: await ask(t.user) };
  const started = nowMs();
  let client: Client | undefined;
  const spent = { loadMs: 0 };
  const attempts = attemptsFor(t);
  // Asked for only when the server wants a password; ~/.pgpass is read at most once.
  let cached: Promise<string> | undefined;
  const password = () => {
    cached ??=
      t.password !== undefined
        ? Promise.resolve(t.password)
        : pgpassPassword(t).then((pw) => {
            if (pw !== undefined) return pw;
            if (ask) throw new PasswordWanted();
            return '';
          });
    return cached;
  };
  let asked = false;
  for (let i = 0; i < attempts.length; i++) {
    const attempt = attempts[i]!;
    try {
      client = await connectOnce(t, password, attempt, opts.signal, spent);
      break;
    } catch (err) {
      if (opts.signal?.aborted) throw new InterruptedError();
      if (err instanceof PasswordWanted && ask && !asked) {
        // as psql: the first attempt learnt that a password is wanted; ask, and connect again
        asked = true;
        t = { ...t, password: await ask(t.user) };
        cached = undefined;
        i--;
        continue;
      }
      const raw = (err ?? {}) as RawError;
      if (i + 1 < attempts.length && shouldFallBack(t, raw)) continue;
      if (err instanceof DbdoctorError) throw err;
      throw new ConnectError(classifyConnectError(raw, failureContext(t)));
    }
  }
  if (!client) throw new ConnectError(classifyConnectError({ message: 'no connection attempt' }, failureContext(t)));
  return { client, target: t, connectMs: nowMs() - started - spent.loadMs };
}

/**
 * Opens the one session a command uses. Throws ConnectError (classified) when it cannot.
 */
export async function openSession(given: Target, opts: SessionOptions = {}): Promise<Session> {
  // --statement-timeout, else a statement_timeout the user's `options` give the session (libpq's)
  const statementTimeoutMs = opts.statementTimeoutMs ?? statementTimeoutInOptions(given.options) ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const lockTimeoutMs = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const { client: c, target: t, connectMs } = await connectClient(given, opts);
  const internals = c as unknown as { processID: number | null; secretKey: number | null };
  // What ended the session while it sat idle (a restart's 57P01, say): the next statement only
  // learns "not queryable", so that is the better cause to report.
  let endedWhileIdle: unknown;
  c.on('error', (err) => {
    if (inFlight === 0) endedWhileIdle ??= err;
  });

  let closed = false;
  let inFlight = 0;
  const onAbort = () => {
    if (inFlight > 0 && internals.processID !== null && internals.secretKey !== null) {
      void sendCancelRequest(t, internals.processID, internals.secretKey);
    }
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const deadlineMs = answerDeadlineMs(statementTimeoutMs);
  let noAnswer = false;
  const run = async <R>(fn: () => Promise<R>): Promise<R> => {
    if (opts.signal?.aborted) throw new InterruptedError();
    if (noAnswer) throw noAnswerError(t, deadlineMs);
    inFlight++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const silent = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // The server (or the path to it) stopped answering: cancel what may still run there, and
          // drop the socket so nothing waits on it (the session is unusable from here on).
          noAnswer = true;
          if (internals.processID !== null && internals.secretKey !== null) void sendCancelRequest(t, internals.processID, internals.secretKey);
          destroySocket(c);
          reject(noAnswerError(t, deadlineMs));
        }, deadlineMs);
      });
      return await Promise.race([fn(), silent]);
    } catch (err) {
      if (noAnswer) throw noAnswerError(t, deadlineMs);
      if (opts.signal?.aborted) throw new InterruptedError();
      throw queryError(endedWhileIdle ?? err, t, statementTimeoutMs, lockTimeoutMs);
    } finally {
      clearTimeout(timer);
      inFlight--;
    }
  };

  const multi = <T extends object>(sql: string) =>
    run(async () => {
      const res = (await c.query(sql)) as unknown;
      const list = Array.isArray(res) ? res : [res];
      return list.map((r) => (r as { rows: T[] }).rows);
    });

  // Says goodbye (Terminate, then FIN) without waiting for the server's side of the close: the
  // writes still flush before the process exits, but a command no longer waits the few ms the
  // backend takes to exit (measured by `npm run bench`). The socket is destroyed once the server
  // closes its side, or after 2 s when it never does; neither keeps the process alive.
  const close = async () => {
    if (closed) return;
    closed = true;
    opts.signal?.removeEventListener('abort', onAbort);
    if (noAnswer) {
      destroySocket(c);
      return;
    }
    const stream = socketOf(c);
    const timer = setTimeout(() => destroySocket(c), 2000).unref();
    void c
      .end()
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        destroySocket(c);
      });
    stream?.unref?.();
  };

  type SetupRow = { pid?: number; v?: number; current_user?: string; can_read_all_stats?: boolean };
  let setup: SetupRow[][];
  try {
    // DateStyle ISO (as pg_dump sets it): the times dbdoctor reads as text (a snapshot's taken_at,
    // backend_start, which terminate compares as text) come in one form, whatever the server, the
    // role or the database set (a managed server's 'SQL, DMY', say): the JSON says ISO.
    setup = await multi<SetupRow>(
      'SET DateStyle = ISO;' +
        ` SET statement_timeout = ${Math.round(statementTimeoutMs)};` +
        ` SET lock_timeout = ${Math.round(lockTimeoutMs)};` +
        ` SET idle_in_transaction_session_timeout = ${Math.min(MAX_TIMEOUT_MS, Math.round(Math.max(statementTimeoutMs, 5000) * 2))};` +
        ` SELECT pg_backend_pid() AS pid, current_setting('server_version_num')::int AS v, current_user::text AS current_user,` +
        ` ${SETUP_CAN_READ_ALL_STATS} AS can_read_all_stats`,
    );
  } catch (err) {
    await close();
    throw err;
  }
  const facts = setup[setup.length - 1]?.[0] ?? {};
  const throughPooler = facts.pid !== undefined && internals.processID !== null && internals.processID !== facts.pid;
  if (throughPooler) opts.onThroughPooler?.();

  return {
    pid: facts.pid ?? internals.processID ?? 0,
    serverVersionNum: facts.v ?? 0,
    role: { current_user: facts.current_user ?? t.user ?? '', can_read_all_stats: facts.can_read_all_stats ?? false },
    target: t,
    connectMs,
    throughPooler,
    query: <T extends object>(sql: string, params: unknown[] = []) =>
      run(async () => (await c.query(sql, params)).rows as T[]),
    multi,
    close,
  };
}

/** Opens a session, runs `fn`, and always closes it. */
export async function withSession<R>(t: Target, opts: SessionOptions, fn: (s: Session) => Promise<R>): Promise<R> {
  const s = await openSession(t, opts);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}
