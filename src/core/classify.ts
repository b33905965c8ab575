import { ExitCode, type ExitCodeValue } from './exit-codes.js';
import { redactSecrets } from './conninfo.js';
import { connectNode } from './runbooks.js';

/** The steps of getting a working session, in the order `check` walks them. */
export type ConnectStep = 'target' | 'dns' | 'tcp' | 'tls' | 'auth' | 'database' | 'slots' | 'startup' | 'protocol' | 'query';

export interface ConnectFailure {
  step: ConnectStep;
  /** Stable id of the cause, e.g. "dns_not_found", "refused", "timeout", "auth_failed". */
  cause: string;
  message: string;
  hint: string;
  exit_code: ExitCodeValue;
  /** SQLSTATE or Node error code, when there was one. */
  code: string | undefined;
  /** The runbook node (an anchor in runbooks/) that explains this branch. */
  runbook: string;
}

export interface FailureContext {
  host: string;
  port: number;
  user: string;
  dbname: string;
  connectTimeoutMs: number;
  sslmode: string;
  /** Server major version when known (for the reserved-connections hint). */
  serverMajor?: number;
}

/** The shape of what node-postgres and Node's net/tls/dns modules throw; read defensively. */
export interface RawError {
  code?: unknown;
  message?: unknown;
  errors?: unknown;
  detail?: unknown;
  /** Set on an error the server sent (an ErrorResponse): ERROR, FATAL, PANIC. */
  severity?: unknown;
  /** The server function that raised it (the ErrorResponse's R field): structure, never a name. */
  routine?: unknown;
  /** The source file that raised it (F): PostgreSQL always sends it, PgBouncer never does. */
  file?: unknown;
}

/**
 * PgBouncer's own refusals: an ErrorResponse with SQLSTATE 08P01 and no source location (every
 * PostgreSQL error names its file and routine; PgBouncer's never do), whose text is one of
 * PgBouncer's fixed messages (none of them holds a name a client chose). The setting each points at.
 */
const PGBOUNCER_ERRORS: ReadonlyArray<[RegExp, string, string, string]> = [
  [/^no more connections allowed \(max_client_conn\)$/, 'pgbouncer_max_client_conn', "PgBouncer refused the connection: its max_client_conn is reached", 'see who holds its client connections (dbdoctor pools, SHOW CLIENTS on its console); raise max_client_conn only with the file-descriptor limit'],
  [/^pgbouncer cannot connect to server$/, 'pgbouncer_server_down', 'PgBouncer cannot connect to its PostgreSQL server', "check the server PgBouncer points at ([databases] in pgbouncer.ini) and PgBouncer's log; run dbdoctor check against the server directly"],
  [/^query_wait_timeout$/, 'pgbouncer_query_wait_timeout', 'PgBouncer gave up waiting for a server connection (query_wait_timeout)', "the pool is full: every server connection is busy; run dbdoctor pools, then dbdoctor diagnose on the server"],
  [/^server login has been failing, try again later \(server_login_retry\)$/, 'pgbouncer_server_login_failing', 'PgBouncer cannot log in to its PostgreSQL server (server_login_retry)', "check the credentials PgBouncer uses for the server (auth_file, auth_query) and PgBouncer's log"],
  [/^client_login_timeout/, 'pgbouncer_client_login_timeout', 'PgBouncer timed out the login (client_login_timeout)', 'PgBouncer may be overloaded or its server unreachable; check its log'],
];

function pgbouncerError(err: RawError, message: string): [string, string, string] | null {
  if (err.routine !== undefined || err.file !== undefined) return null;
  for (const [re, cause, text, hint] of PGBOUNCER_ERRORS) if (re.test(message)) return [cause, text, hint];
  return null;
}

/**
 * Whether the server sent this error (an ErrorResponse with a severity and a SQLSTATE). Its message
 * then holds names any client chose (roles, databases) and may be translated (lc_messages): it is
 * shown, and classified by its SQLSTATE and routine only, never by its words.
 */
export function isServerError(e: RawError): boolean {
  return typeof e.severity === 'string' && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code);
}

function codeOf(e: RawError): string | undefined {
  if (typeof e.code === 'string' && e.code) return e.code;
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const c = (inner as RawError | undefined)?.code;
      if (typeof c === 'string') return c;
    }
  }
  return undefined;
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);


/** A TLS failure by its code: OpenSSL's certificate codes, Node's ERR_TLS_* and ERR_SSL_*. */
function isTlsCode(code: string): boolean {
  return TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /CERT/.test(code);
}

/**
 * Where a 53300 (too many connections) comes from, by the server function that raised it: a
 * role's or a database's CONNECTION LIMIT, or the server's slots. The message names the role or
 * database, which anyone who may create one chose; it is not read.
 */
function connectionLimitOf(routine: unknown): 'role' | 'database' | null {
  if (routine === 'InitializeSessionUserId') return 'role';
  if (routine === 'CheckMyDatabase') return 'database';
  return null;
}

/**
 * Turns a connection-time error into the cause an on-call engineer needs: which step failed, why,
 * what to do next, and the exit code (unreachable: CRITICAL; dbdoctor's own set-up: UNKNOWN).
 *
 * An error the server sent is classified by its SQLSTATE (and, for 53300, the routine that raised
 * it); an error with a Node code by that code; only node-postgres' own errors, which have neither
 * and whose fixed texts hold no name, by their words.
 */
export function classifyConnectError(err: RawError, ctx: FailureContext): ConnectFailure {
  const code = codeOf(err);
  const rawMessage = redactSecrets(typeof err.message === 'string' ? err.message : '');
  const where = `${ctx.host}:${ctx.port}`;
  const who = `user "${ctx.user}", database "${ctx.dbname}"`;
  const f = (
    step: ConnectStep,
    cause: string,
    message: string,
    hint: string,
    exitCode: ExitCodeValue,
  ): ConnectFailure => ({ step, cause, message, hint, exit_code: exitCode, code, runbook: connectNode(step, cause) });

  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return f('dns', 'dns_not_found', `the host name "${ctx.host}" does not resolve`, 'check the host name (-h, PGHOST, the URL) and your DNS or VPN', ExitCode.CRITICAL);
    case 'EAI_AGAIN':
      return f('dns', 'dns_unavailable', `the DNS lookup of "${ctx.host}" failed for now (resolver unavailable)`, 'check the resolver or VPN, then try again', ExitCode.CRITICAL);
    case 'ECONNREFUSED':
      return f('tcp', 'refused', `nothing listens on ${where}: the server is down, or the host or port is wrong`, 'check the server is running (pg_isready, systemctl status postgresql) and the port; check listen_addresses', ExitCode.CRITICAL);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return f('tcp', 'unreachable', `no route to ${where}`, 'check the network path, VPN and security groups', ExitCode.CRITICAL);
    case 'ECONNRESET':
    case 'EPIPE':
      return f('tcp', 'reset', `the connection to ${where} was reset`, 'a firewall, proxy or the server dropped it; check the server log', ExitCode.CRITICAL);
    case 'ETIMEDOUT':
      return timeout();
    case '28P01':
      return f('auth', 'auth_failed', `password authentication failed for ${who} at ${where}`, 'check the password (PGPASSWORD, ~/.pgpass, or wherever it was given) and that the role exists', ExitCode.UNKNOWN);
    case '28000':
      return f('auth', 'auth_rejected', `the server rejected ${who} from this host at ${where}: ${rawMessage}`, 'check pg_hba.conf for this client address, user and database, and whether it requires SSL (--dbname "sslmode=require ...")', ExitCode.UNKNOWN);
    case '3D000':
      return f('database', 'database_missing', `the database "${ctx.dbname}" does not exist on ${where}`, 'check -d/--dbname or PGDATABASE; list databases with: psql -l', ExitCode.UNKNOWN);
    case '42501':
      return f('database', 'connect_denied', `${who} may not connect: ${rawMessage}`, 'GRANT CONNECT ON DATABASE to this role, or use another role', ExitCode.UNKNOWN);
    case '55000':
      return f('database', 'database_closed', `the database "${ctx.dbname}" does not accept connections now`, 'ALTER DATABASE ... ALLOW_CONNECTIONS true, or connect to another database', ExitCode.UNKNOWN);
    case '53300': {
      const reserved =
        ctx.serverMajor === undefined || ctx.serverMajor >= 16
          ? 'superusers can still use superuser_reserved_connections, and (PostgreSQL 16+) roles granted pg_use_reserved_connections can use reserved_connections'
          : 'superusers can still use superuser_reserved_connections';
      const limit = isServerError(err) ? connectionLimitOf(err.routine) : null;
      if (limit === 'role') {
        return f('slots', 'connection_limit', `the role CONNECTION LIMIT of "${ctx.user}" is reached: ${rawMessage}`, `raise it with ALTER ROLE ... CONNECTION LIMIT, or free sessions of role "${ctx.user}"`, ExitCode.CRITICAL);
      }
      if (limit === 'database') {
        return f('slots', 'connection_limit', `the database CONNECTION LIMIT of "${ctx.dbname}" is reached: ${rawMessage}`, `raise it with ALTER DATABASE ... CONNECTION LIMIT, or free sessions of database "${ctx.dbname}"`, ExitCode.CRITICAL);
      }
      return f(
        'slots',
        'out_of_slots',
        `the server is out of connection slots for ordinary roles (${rawMessage})`,
        `${reserved}; connect as such a role (dbdoctor -U postgres ...) and run: dbdoctor connections`,
        ExitCode.CRITICAL,
      );
    }
    case '57P03':
      return f('startup', 'not_accepting', `the server is not accepting connections: ${rawMessage}`, 'it is starting up, shutting down or in recovery; wait and retry, and check the server log', ExitCode.CRITICAL);
    case '57P01':
    case '57P02':
      return f('startup', 'shutting_down', `the server ended the session: ${rawMessage}`, 'the server is shutting down or the session was terminated; retry in a moment', ExitCode.CRITICAL);
    case '08P01': {
      const bouncer = pgbouncerError(err, typeof err.message === 'string' ? err.message : '');
      if (bouncer) return f(bouncer[0] === 'pgbouncer_max_client_conn' ? 'slots' : 'startup', bouncer[0], bouncer[1], bouncer[2], ExitCode.CRITICAL);
      return f('protocol', 'protocol_violation', `the server broke the protocol: ${rawMessage}`, 'is this PostgreSQL (or PgBouncer) on that port?', ExitCode.CRITICAL);
    }
    case 'ENOENT':
      // a Unix socket directory without the server's socket in it
      return f('tcp', 'refused', `no server socket for port ${ctx.port} in ${ctx.host}: the server is down, or the socket directory or port is wrong`, 'check the server is running (pg_isready, systemctl status postgresql), the port, and unix_socket_directories', ExitCode.CRITICAL);
    default:
      break;
  }
  if (isServerError(err)) {
    // another refusal from the server itself: its SQLSTATE class says which kind
    if (code!.startsWith('28')) {
      return f('auth', 'auth_rejected', `the server rejected ${who} at ${where}: ${rawMessage} (SQLSTATE ${code})`, 'check the role, its password and pg_hba.conf', ExitCode.UNKNOWN);
    }
    return f('startup', 'server_refused', `the server at ${where} refused the connection: ${rawMessage} (SQLSTATE ${code})`, 'check the server log for why', ExitCode.CRITICAL);
  }
  if (code) {
    // a Node error: its message holds host names and paths (-h "/tmp/timed out"): only the code counts
    // OpenSSL's own errors (ERR_OSSL_*) before any byte of TLS: a client key that does not decrypt
    // or match its certificate, a certificate or CRL that does not parse. dbdoctor's set-up.
    if (code.startsWith('ERR_OSSL_')) {
      return f('tls', 'tls_failed', `TLS could not start for ${where}: ${rawMessage || code}`, 'check sslcert, sslkey, sslpassword and sslcrl (without sslcert and sslkey: ~/.postgresql/postgresql.crt and .key)', ExitCode.UNKNOWN);
    }
    if (isTlsCode(code)) {
      return f('tls', 'tls_certificate', `TLS failed at ${where}: ${rawMessage || code}`, `check the server certificate and sslrootcert; sslmode is ${ctx.sslmode} (verify-ca/verify-full check the certificate)`, ExitCode.UNKNOWN);
    }
    return f('protocol', 'unexpected_reply', `could not talk PostgreSQL with ${where}: ${rawMessage || code}`, 'is this PostgreSQL (or PgBouncer) on that port?', ExitCode.CRITICAL);
  }
  // From here on, node-postgres' own errors: no SQLSTATE, no code, fixed words without names.
  // Its words for an answer to the SSLRequest that is neither 'S' nor 'N': whatever listens there
  // does not speak PostgreSQL's protocol (or a server failed before it could).
  if (/There was an error establishing an SSL connection/i.test(rawMessage)) {
    return f('protocol', 'unexpected_reply', `${where} did not answer like PostgreSQL (its reply to the SSL request was neither yes nor no)`, 'is this PostgreSQL (or PgBouncer) on that port? check the host and port; if it is, check the server log', ExitCode.CRITICAL);
  }
  if (/does not support SSL/i.test(rawMessage)) {
    return f('tls', 'tls_unsupported', `the server at ${where} does not support SSL, and sslmode=${ctx.sslmode} requires it`, 'use sslmode=prefer or disable, or enable ssl on the server', ExitCode.UNKNOWN);
  }
  if (/SSL connection|TLS|certificate/i.test(rawMessage)) {
    return f('tls', 'tls_failed', `TLS failed at ${where}: ${rawMessage}`, 'check sslmode and the server SSL set-up', ExitCode.UNKNOWN);
  }
  if (/timeout expired|timed out|Connection terminated due to connection timeout/i.test(rawMessage)) return timeout();
  if (/client password must be a (?:non-empty )?string|Password must be a string|password authentication/i.test(rawMessage)) {
    return f('auth', 'no_password', `the server asks for a password for ${who} and none was given`, 'run it on a terminal to be asked for it (or with -W), or set PGPASSWORD or a ~/.pgpass entry', ExitCode.UNKNOWN);
  }
  if (/terminated unexpectedly|ended unexpectedly|Connection terminated/i.test(rawMessage)) {
    return f('protocol', 'closed', `${where} closed the connection during start-up`, 'is this PostgreSQL on that port? check the server log (out of memory, crash, proxy)', ExitCode.CRITICAL);
  }
  return f('protocol', 'unexpected_reply', `could not talk PostgreSQL with ${where}: ${rawMessage || code || 'unknown error'}`, 'is this PostgreSQL (or PgBouncer) on that port?', ExitCode.CRITICAL);

  function timeout(): ConnectFailure {
    return f('tcp', 'timeout', `no answer from ${where} within ${ctx.connectTimeoutMs} ms (connect and start-up)`, 'a firewall, the network, or an overloaded server; raise --connect-timeout if the server is just slow', ExitCode.CRITICAL);
  }
}
