import { assignKeyword, type ConnParams, looksLikeUrl, parseDbnameArg, parseUrl } from './conninfo.js';
import { MAX_TIMEOUT_MS, parseDuration } from './duration.js';
import { UsageError } from './errors.js';
import { isIP } from 'node:net';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

/** Where a connection goes, resolved from flags, service file, environment and defaults. */
export interface Target {
  /** A host name, an IP address, or a Unix socket directory (starts with '/'). */
  host: string;
  /** libpq's hostaddr: the IP address to connect to, with `host` kept for TLS and ~/.pgpass. */
  hostaddr?: string;
  port: number;
  user: string;
  dbname: string;
  password: string | undefined;
  sslmode: SslMode;
  sslrootcert: string | undefined;
  /** The client certificate, its key and the key's passphrase (libpq's sslcert, sslkey, sslpassword). */
  sslcert?: string;
  sslkey?: string;
  sslpassword?: string;
  /** A certificate revocation list (PEM) the server's certificate is checked against. */
  sslcrl?: string;
  sslMinProtocolVersion?: TlsVersion;
  sslMaxProtocolVersion?: TlsVersion;
  /** false when libpq's keepalives=0 turns TCP keepalives off (they are on by default), and their idle time. */
  keepalives?: false;
  keepalivesIdleMs?: number;
  connectTimeoutMs: number;
  /** The service name used, if any. */
  service: string | undefined;
  /** libpq's `options` (command-line options for the server, e.g. `-c search_path=app`), if any. */
  options?: string;
}

export interface ConnectionFlags {
  host?: string;
  port?: string;
  username?: string;
  dbname?: string;
  service?: string;
  connectTimeout?: string;
}

export interface TargetInputs {
  flags: ConnectionFlags;
  env: Readonly<Record<string, string | undefined>>;
  osUser: string;
  /** Looks a service up in pg_service.conf; undefined when there is no such service. */
  lookupService: (name: string) => ConnParams | undefined;
  /**
   * The directory holding a server's Unix socket for this port, tried where libpq's builds put it
   * (undefined when there is none): used when no host is given, before localhost.
   */
  findSocketDir?: (port: number) => string | undefined;
}

/** The PG* variables libpq reads for the keywords dbdoctor takes (PGPASSWORD among them). */
const ENV_KEYWORDS: ReadonlyArray<[string, string]> = [
  ['PGHOST', 'host'],
  ['PGHOSTADDR', 'hostaddr'],
  ['PGPORT', 'port'],
  ['PGUSER', 'user'],
  ['PGPASSWORD', 'password'],
  ['PGDATABASE', 'dbname'],
  ['PGSSLMODE', 'sslmode'],
  ['PGSSLROOTCERT', 'sslrootcert'],
  ['PGSSLCERT', 'sslcert'],
  ['PGSSLKEY', 'sslkey'],
  ['PGSSLCRL', 'sslcrl'],
  ['PGSSLCRLDIR', 'sslcrldir'],
  ['PGSSLMINPROTOCOLVERSION', 'ssl_min_protocol_version'],
  ['PGSSLMAXPROTOCOLVERSION', 'ssl_max_protocol_version'],
  ['PGCONNECT_TIMEOUT', 'connect_timeout'],
  ['PGOPTIONS', 'options'],
  ['PGTARGETSESSIONATTRS', 'target_session_attrs'],
  ['PGLOADBALANCEHOSTS', 'load_balance_hosts'],
  ['PGGSSENCMODE', 'gssencmode'],
  ['PGCHANNELBINDING', 'channel_binding'],
  ['PGREQUIREAUTH', 'require_auth'],
  ['PGSSLNEGOTIATION', 'sslnegotiation'],
];

function fromEnv(env: TargetInputs['env']): ConnParams {
  const out: ConnParams = {};
  for (const [name, keyword] of ENV_KEYWORDS) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    try {
      assignKeyword(out, keyword, v, 'conninfo');
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${err.message} (from ${name})`, err.hint);
      throw err;
    }
  }
  return out;
}

function defined(p: ConnParams): ConnParams {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined && v !== '')) as ConnParams;
}

export function parsePort(value: string, source: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new UsageError(`invalid port ${JSON.stringify(value)} (from ${source})`, 'a port is a whole number from 1 to 65535');
  }
  return n;
}

function parseTlsVersion(value: string | undefined, keyword: string): TlsVersion | undefined {
  if (value === undefined || value === '') return undefined;
  if ((TLS_VERSIONS as readonly string[]).includes(value)) return value as TlsVersion;
  throw new UsageError(`invalid ${keyword} ${JSON.stringify(value)}`, `use one of: ${TLS_VERSIONS.join(', ')}`);
}

function parseSeconds(value: string, keyword: string): number {
  const secs = Number(value);
  if (value.trim() === '' || !Number.isFinite(secs)) throw new UsageError(`invalid ${keyword} ${JSON.stringify(value)}`, `${keyword} is a number of seconds`);
  return secs;
}

function parseSslMode(value: string): SslMode {
  if ((SSL_MODES as readonly string[]).includes(value)) return value as SslMode;
  throw new UsageError(`invalid sslmode ${JSON.stringify(value)}`, `use one of: ${SSL_MODES.join(', ')}`);
}

/**
 * Resolves the target as libpq does, highest first: explicit flags; what `-d` holds (a URL or a
 * conninfo string); the service (`--service`, `service=` or `PGSERVICE`) from pg_service.conf; the
 * PG* environment; `DATABASE_URL`; then defaults (localhost:5432, the OS user, dbname = user).
 */
export function resolveTarget(inputs: TargetInputs): Target {
  const { flags, env } = inputs;
  const fromD: ConnParams = flags.dbname !== undefined ? parseDbnameArg(flags.dbname) : {};
  const explicit: ConnParams = defined({
    host: flags.host,
    port: flags.port,
    user: flags.username,
  });
  const envParams = fromEnv(env);
  const databaseUrl = env.DATABASE_URL ? parseUrl(env.DATABASE_URL) : {};

  const serviceName = flags.service ?? fromD.service ?? (env.PGSERVICE || undefined);
  let serviceParams: ConnParams = {};
  if (serviceName) {
    const found = inputs.lookupService(serviceName);
    if (!found) {
      throw new UsageError(
        `definition of service "${serviceName}" not found`,
        'define it in ~/.pg_service.conf (or the file PGSERVICEFILE names), or drop --service/PGSERVICE',
      );
    }
    serviceParams = found;
  }

  const merged: ConnParams = { ...databaseUrl, ...envParams, ...defined(serviceParams), ...defined(fromD), ...explicit };
  if (flags.connectTimeout !== undefined) merged.connect_timeout = undefined;

  const user = merged.user ?? inputs.osUser;
  const sslmode = parseSslMode(merged.sslmode ?? 'prefer');
  let connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS;
  if (flags.connectTimeout !== undefined) {
    connectTimeoutMs = parseDuration(flags.connectTimeout, '--connect-timeout');
  } else if (merged.connect_timeout !== undefined) {
    // libpq: seconds, and 0 (or less) means wait forever; dbdoctor never waits forever.
    const secs = parseSeconds(merged.connect_timeout, 'connect_timeout');
    if (secs > 0) connectTimeoutMs = Math.max(2, secs) * 1000;
  }
  if (connectTimeoutMs <= 0) throw new UsageError('--connect-timeout must be more than 0', 'for example --connect-timeout 5s');
  // A longer timer would fire at once (Node's timers are 32-bit): it would report a timeout at once.
  if (connectTimeoutMs > MAX_TIMEOUT_MS) throw new UsageError('the connect timeout must be at most 24d', 'for example --connect-timeout 5s');

  if (merged.keepalives !== undefined && merged.keepalives !== '0' && merged.keepalives !== '1') {
    throw new UsageError(`invalid keepalives ${JSON.stringify(merged.keepalives)}`, 'keepalives is 1 (on, the default) or 0 (off)');
  }
  const keepalivesIdle = merged.keepalives_idle !== undefined ? parseSeconds(merged.keepalives_idle, 'keepalives_idle') : undefined;
  if (merged.hostaddr !== undefined && isIP(merged.hostaddr) === 0) {
    throw new UsageError(`invalid hostaddr ${JSON.stringify(merged.hostaddr)}`, 'hostaddr is an IPv4 or IPv6 address; put a name in host');
  }
  const port = merged.port !== undefined ? parsePort(merged.port, 'port') : 5432;
  // libpq: no host and no hostaddr means the Unix socket; dbdoctor tries localhost when there is none
  const host = merged.host ?? merged.hostaddr ?? inputs.findSocketDir?.(port) ?? 'localhost';
  const optional = {
    hostaddr: merged.hostaddr,
    sslcert: merged.sslcert,
    sslkey: merged.sslkey,
    sslpassword: merged.sslpassword,
    sslcrl: merged.sslcrl,
    sslMinProtocolVersion: parseTlsVersion(merged.ssl_min_protocol_version, 'ssl_min_protocol_version'),
    sslMaxProtocolVersion: parseTlsVersion(merged.ssl_max_protocol_version, 'ssl_max_protocol_version'),
    keepalivesIdleMs: keepalivesIdle !== undefined && keepalivesIdle > 0 ? Math.min(keepalivesIdle * 1000, MAX_TIMEOUT_MS) : undefined,
  };
  return {
    host,
    port,
    user,
    dbname: merged.dbname ?? user,
    password: merged.password,
    sslmode,
    sslrootcert: merged.sslrootcert,
    connectTimeoutMs,
    service: serviceName,
    ...(merged.keepalives === '0' ? { keepalives: false as const } : {}),
    ...(merged.options !== undefined ? { options: merged.options } : {}),
    ...(Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) as Partial<Target>),
  };
}

/**
 * An environment without the variables that say where and how to connect (every PG* variable and
 * DATABASE_URL): for the programs and clients of a server dbdoctor started itself, which the
 * user's settings for their own servers must not reach.
 */
export function withoutConnectionEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !/^PG/i.test(k) && k.toUpperCase() !== 'DATABASE_URL') out[k] = v;
  }
  return out;
}

/** The target as it may be shown anywhere: never a password. */
export function describeTarget(t: Pick<Target, 'host' | 'port' | 'user' | 'dbname'>): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  if (t.host.startsWith('/')) return `${t.user}@${t.dbname} via socket ${t.host} port ${t.port}`;
  return `postgres://${encodeURIComponent(t.user)}@${host}:${t.port}/${encodeURIComponent(t.dbname)}`;
}

/**
 * The one-line warning for a password written on the command line (a URL or conninfo string in
 * -d/--dbname): every user of the machine can read a process's arguments (ps, /proc/<pid>/cmdline).
 * `argv` is the command line as typed: a -d that is not on it (the guide's own, built from a
 * password it asked for) is not warned about. Null when there is nothing to warn about. The
 * password itself is never part of it.
 */
export function commandLinePasswordWarning(dbname: string | undefined, argv: readonly string[]): string | null {
  if (dbname === undefined || !argv.some((a) => a === dbname || a === `--dbname=${dbname}` || a === `-d${dbname}`)) return null;
  let password: string | undefined;
  try {
    password = parseDbnameArg(dbname).password;
  } catch {
    return null; // not parsed: resolving the target reports it (and never echoes the password)
  }
  if (password === undefined || password === '') return null;
  const what = looksLikeUrl(dbname) ? 'URL' : 'connection string';
  return `the password in the -d ${what} is visible to other users of this machine (ps); give it in PGPASSWORD or ~/.pgpass instead`;
}
