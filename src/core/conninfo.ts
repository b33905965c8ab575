import { UsageError } from './errors.js';

/** The libpq keywords dbdoctor understands, from URLs, conninfo strings and service files. */
export interface ConnParams {
  host?: string;
  port?: string;
  user?: string;
  password?: string;
  dbname?: string;
  sslmode?: string;
  sslrootcert?: string;
  connect_timeout?: string;
  service?: string;
  application_name?: string;
  options?: string;
}

const KNOWN = new Set([
  'host',
  'port',
  'user',
  'password',
  'dbname',
  'sslmode',
  'sslrootcert',
  'connect_timeout',
  'service',
  'application_name',
  'options',
]);

/** libpq's connection keywords (PostgreSQL 18): names that can be shown, never a secret. */
const LIBPQ_KEYWORDS = new Set([
  ...KNOWN,
  'username',
  'database',
  'hostaddr',
  'passfile',
  'require_auth',
  'channel_binding',
  'fallback_application_name',
  'keepalives',
  'keepalives_idle',
  'keepalives_interval',
  'keepalives_count',
  'tcp_user_timeout',
  'replication',
  'gssencmode',
  'sslnegotiation',
  'sslcompression',
  'sslcert',
  'sslkey',
  'sslpassword',
  'sslcertmode',
  'sslcrl',
  'sslcrldir',
  'sslsni',
  'requirepeer',
  'ssl_min_protocol_version',
  'ssl_max_protocol_version',
  'krbsrvname',
  'gsslib',
  'gssdelegation',
  'target_session_attrs',
  'load_balance_hosts',
  'min_protocol_version',
  'max_protocol_version',
  'scram_client_key',
  'scram_server_key',
  'oauth_issuer',
  'oauth_client_id',
  'oauth_client_secret',
  'oauth_scope',
]);

/** libpq ignores keywords it does not use for the connection itself; so do we, except typos we can name. */
function assign(out: ConnParams, key: string, value: string): void {
  const k = key === 'username' ? 'user' : key === 'database' ? 'dbname' : key;
  if (KNOWN.has(k)) (out as Record<string, string>)[k] = value;
}

export function looksLikeUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

export function looksLikeConninfo(s: string): boolean {
  return /^\s*[a-z_]+\s*=/i.test(s);
}

/**
 * Parses a libpq key/value connection string (`host=db1 dbname=app sslmode=require`). Values may be
 * single-quoted with `\'` and `\\` escapes, as libpq allows. There is no npm library for this
 * grammar in node-postgres' family, and it is a dozen lines.
 */
export function parseConninfo(s: string): ConnParams {
  const out: ConnParams = {};
  let i = 0;
  const n = s.length;
  const fail = (why: string) =>
    new UsageError(`invalid connection string: ${why}`, "write it as key=value pairs, e.g. \"host=db1 dbname=app\"; put a value with spaces in single quotes");
  // A message names a key only when it is one of libpq's keywords: any other word may be a piece of
  // a password (an unquoted one with a space in it), and is never echoed.
  const named = (key: string) => (LIBPQ_KEYWORDS.has(key) ? `"${key}"` : 'a key');
  let previous: string | undefined;
  while (i < n) {
    while (i < n && /\s/.test(s[i]!)) i++;
    if (i >= n) break;
    const keyStart = i;
    while (i < n && /[A-Za-z0-9_]/.test(s[i]!)) i++;
    const key = s.slice(keyStart, i);
    while (i < n && /\s/.test(s[i]!)) i++;
    if (!key || s[i] !== '=') {
      if (key && LIBPQ_KEYWORDS.has(key)) throw fail(`expected "=" after "${key}"`);
      throw fail(`expected key=value ${previous === undefined ? 'at the start' : `after the value of ${named(previous)}`}`);
    }
    i++;
    while (i < n && /\s/.test(s[i]!)) i++;
    let value = '';
    if (s[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const c = s[i]!;
        if (c === '\\' && i + 1 < n) {
          value += s[i + 1];
          i += 2;
        } else if (c === "'") {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) throw fail(`unterminated quoted value for ${named(key)}`);
    } else {
      while (i < n && !/\s/.test(s[i]!)) {
        if (s[i] === '\\' && i + 1 < n) i++;
        value += s[i];
        i++;
      }
    }
    assign(out, key, value);
    previous = key;
  }
  return out;
}

/** Parses a postgres:// URL with the WHATWG URL parser (no hand-written URL grammar). */
export function parseUrl(s: string): ConnParams {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new UsageError('invalid connection URL', 'write it as postgres://user@host:5432/dbname');
  }
  const out: ConnParams = {};
  const dec = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      throw new UsageError('invalid connection URL: bad percent-encoding', 'encode special characters as %XX');
    }
  };
  if (url.hostname) out.host = dec(url.hostname).replace(/^\[(.+)\]$/, '$1');
  if (url.port) out.port = url.port;
  if (url.username) out.user = dec(url.username);
  if (url.password) out.password = dec(url.password);
  const path = url.pathname.replace(/^\//, '');
  if (path) out.dbname = dec(path);
  for (const [k, v] of url.searchParams) assign(out, k, v);
  return out;
}

/** A database name, a URL or a conninfo string, as psql's -d takes it. */
export function parseDbnameArg(s: string): ConnParams {
  if (looksLikeUrl(s)) return parseUrl(s);
  if (looksLikeConninfo(s)) return parseConninfo(s);
  return { dbname: s };
}

// Masking lives in its own module (a tokenizer after PostgreSQL's lexer); these names stay here for
// the callers that import them from conninfo.
export { redactSecrets, redactStatement } from './redact.js';
