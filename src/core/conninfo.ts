import { editDistance } from './edit-distance.js';
import { UsageError } from './errors.js';

/** The libpq keywords dbdoctor takes, from URLs, conninfo strings, service files and PG* variables. */
export interface ConnParams {
  host?: string;
  hostaddr?: string;
  port?: string;
  user?: string;
  password?: string;
  dbname?: string;
  sslmode?: string;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  sslpassword?: string;
  sslcrl?: string;
  ssl_min_protocol_version?: string;
  ssl_max_protocol_version?: string;
  connect_timeout?: string;
  keepalives?: string;
  keepalives_idle?: string;
  service?: string;
  options?: string;
}

/**
 * What dbdoctor does with each of libpq's connection keywords (PostgreSQL 18's list). `use`: it
 * is honoured. `ignore`: libpq's meaning needs nothing from dbdoctor (or says so in the README).
 * Otherwise the text says why it is refused; `allowed` lists values that mean no more than
 * dbdoctor does anyway, which are taken. A keyword not in this table is an error, as in libpq.
 */
type KeywordUse = { use: keyof ConnParams } | { ignore: string } | { refuse: string; allowed?: readonly string[] };

const ONE_SERVER = 'dbdoctor examines one server: give the one you mean';
const NO_GSS = 'GSSAPI and Kerberos are not supported; dbdoctor authenticates with passwords (SCRAM, md5), trust, peer and client certificates';

const KEYWORDS: Readonly<Record<string, KeywordUse>> = {
  host: { use: 'host' },
  hostaddr: { use: 'hostaddr' },
  port: { use: 'port' },
  user: { use: 'user' },
  username: { use: 'user' },
  password: { use: 'password' },
  dbname: { use: 'dbname' },
  database: { use: 'dbname' },
  sslmode: { use: 'sslmode' },
  sslrootcert: { use: 'sslrootcert' },
  sslcert: { use: 'sslcert' },
  sslkey: { use: 'sslkey' },
  sslpassword: { use: 'sslpassword' },
  sslcrl: { use: 'sslcrl' },
  ssl_min_protocol_version: { use: 'ssl_min_protocol_version' },
  ssl_max_protocol_version: { use: 'ssl_max_protocol_version' },
  connect_timeout: { use: 'connect_timeout' },
  keepalives: { use: 'keepalives' },
  keepalives_idle: { use: 'keepalives_idle' },
  service: { use: 'service' },
  options: { use: 'options' },
  // dbdoctor's own sessions are always called dbdoctor (that is how it tells them apart)
  application_name: { ignore: 'dbdoctor names its own session "dbdoctor"' },
  fallback_application_name: { ignore: 'dbdoctor names its own session "dbdoctor"' },
  // Node sets a keepalive's idle time only; the interval and the count stay the system's
  keepalives_interval: { ignore: "Node sets a keepalive's idle time only; the interval is the system's" },
  keepalives_count: { ignore: "Node sets a keepalive's idle time only; the count is the system's" },
  sslcompression: { ignore: 'PostgreSQL 14+ and current OpenSSL never compress' },
  target_session_attrs: { refuse: ONE_SERVER, allowed: ['any'] },
  load_balance_hosts: { refuse: ONE_SERVER, allowed: ['disable'] },
  gssencmode: { refuse: NO_GSS, allowed: ['disable', 'prefer'] },
  krbsrvname: { refuse: NO_GSS },
  gsslib: { refuse: NO_GSS },
  gssdelegation: { refuse: NO_GSS, allowed: ['0'] },
  channel_binding: { refuse: 'channel binding cannot be required: dbdoctor cannot promise it', allowed: ['disable', 'prefer'] },
  sslcertmode: { refuse: 'a client certificate cannot be required by the client here; give sslcert and sslkey', allowed: ['disable', 'allow'] },
  sslnegotiation: { refuse: "direct TLS negotiation is not supported; drop sslnegotiation", allowed: ['postgres'] },
  sslsni: { refuse: 'TLS server name indication is always sent for a host name', allowed: ['1'] },
  sslcrldir: { refuse: 'give the revocation list as one file in sslcrl' },
  passfile: { refuse: 'name the password file in the PGPASSFILE variable instead' },
  require_auth: { refuse: 'dbdoctor cannot restrict the authentication methods the server may ask for' },
  requirepeer: { refuse: 'dbdoctor cannot check the server process\'s user over a Unix socket' },
  replication: { refuse: 'dbdoctor opens ordinary sessions only', allowed: ['0', 'false', 'off', 'no'] },
  tcp_user_timeout: { refuse: 'Node cannot set TCP_USER_TIMEOUT; use connect_timeout' },
  min_protocol_version: { refuse: 'dbdoctor speaks protocol 3.0', allowed: ['3.0'] },
  max_protocol_version: { refuse: 'dbdoctor speaks protocol 3.0', allowed: ['3.0', 'latest'] },
  scram_client_key: { refuse: 'SCRAM keys are for proxies; give the password' },
  scram_server_key: { refuse: 'SCRAM keys are for proxies; give the password' },
  oauth_issuer: { refuse: 'OAuth is not supported' },
  oauth_client_id: { refuse: 'OAuth is not supported' },
  oauth_client_secret: { refuse: 'OAuth is not supported' },
  oauth_scope: { refuse: 'OAuth is not supported' },
};

/** libpq's connection keywords: names that can be shown, never a secret. */
const LIBPQ_KEYWORDS = new Set(Object.keys(KEYWORDS));

/** The libpq keyword a mistyped one was probably meant to be. */
export function nearestKeyword(key: string): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(1, Math.min(2, Math.floor(key.length / 3)));
  for (const k of LIBPQ_KEYWORDS) {
    const d = editDistance(key.toLowerCase(), k);
    if (d <= bestD && (best === undefined || d < bestD)) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

/** Where a keyword came from, for the message: `-d`, a URL parameter, the service file. */
export type KeywordSource = 'conninfo' | 'url' | 'service';

const SOURCE_NAME: Record<KeywordSource, string> = {
  conninfo: 'invalid connection option',
  url: 'invalid URI query parameter',
  service: 'invalid connection option in the service file',
};

/**
 * Sets one keyword as libpq would take it, or says why not. An unknown keyword is an error, as in
 * libpq; a word that is not one of libpq's may be a piece of a password, so it is echoed only
 * when it is short and plain, and a suggestion is made only from libpq's own list.
 */
export function assignKeyword(out: ConnParams, key: string, value: string, source: KeywordSource): void {
  const use = Object.hasOwn(KEYWORDS, key) ? KEYWORDS[key]! : undefined;
  if (use === undefined) {
    const near = /^[a-z_]{1,40}$/i.test(key) ? nearestKeyword(key) : undefined;
    if (near !== undefined) throw new UsageError(`${SOURCE_NAME[source]} "${key}": did you mean "${near}"?`, `write ${near}=...`);
    throw new UsageError(`${SOURCE_NAME[source]}: a key libpq does not know`, "the keys are libpq's (host, port, dbname, user, sslmode, ...): see the README's connection table");
  }
  if ('use' in use) {
    if (use.use === 'host' && value.includes(',')) throw refused(key, ONE_SERVER, 'several hosts');
    if (use.use === 'port' && value.includes(',')) throw refused(key, ONE_SERVER, 'several ports');
    if (use.use === 'hostaddr' && value.includes(',')) throw refused(key, ONE_SERVER, 'several addresses');
    out[use.use] = value;
    return;
  }
  if ('ignore' in use) return;
  if (use.allowed?.includes(value)) return;
  throw refused(key, use.refuse, use.allowed ? `${key}=${/^[\w.-]{1,20}$/.test(value) ? value : '...'}` : undefined);
}

function refused(key: string, why: string, what?: string): UsageError {
  return new UsageError(`dbdoctor does not support ${what ?? `the connection option "${key}"`}`, why);
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
    assignKeyword(out, key, value, 'conninfo');
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
  if (url.hostname) assignKeyword(out, 'host', dec(url.hostname).replace(/^\[(.+)\]$/, '$1'), 'url');
  if (url.port) out.port = url.port;
  if (url.username) out.user = dec(url.username);
  if (url.password) out.password = dec(url.password);
  const path = url.pathname.replace(/^\//, '');
  if (path) out.dbname = dec(path);
  for (const [k, v] of url.searchParams) {
    // libpq takes ssl=true in a URL, for JDBC's sake, as sslmode=require
    if (k === 'ssl' && v === 'true') out.sslmode = 'require';
    else assignKeyword(out, k, v, 'url');
  }
  return out;
}

/** `key=value` for a conninfo string, the value single-quoted (with \\ and \\' escapes) when libpq needs it. */
export function conninfoPair(key: string, value: string): string {
  return /^[^\s'\\]+$/.test(value) ? `${key}=${value}` : `${key}='${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
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

/**
 * One service's settings from a pg_service.conf text, read as libpq reads it (fe-connect.c,
 * parseServiceFile): whitespace around a line is dropped; a line starting with `#` is a comment
 * (a `#` anywhere else is part of the value); `[name]` starts a section whose name is taken
 * verbatim (`[prod.eu]` is one service); a value is everything after the first `=`, kept literal
 * (no quotes, no escapes); the first setting of a keyword in the section wins; a line without `=`
 * or with a keyword libpq does not know is an error. Undefined when the service is not in it.
 */
export function parseServiceFile(text: string, name: string, file: string): ConnParams | undefined {
  let found = false;
  const out: ConnParams = {};
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      if (found) break;
      found = line.slice(1, 1 + name.length) === name && line[1 + name.length] === ']';
      continue;
    }
    if (!found) continue;
    const where = `the service file ${file}, line ${n + 1}`;
    const eq = line.indexOf('=');
    if (eq < 0) throw new UsageError(`syntax error in ${where}: expected keyword=value`, 'each line of a service is keyword=value, as libpq reads it');
    const key = line.slice(0, eq);
    if (key === 'service') throw new UsageError(`nested service specifications are not supported (${where})`, 'a service cannot name another service');
    const one: ConnParams = {};
    try {
      assignKeyword(one, key, line.slice(eq + 1), 'service');
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${err.message} (${where})`, err.hint);
      throw err;
    }
    for (const [k, v] of Object.entries(one) as Array<[keyof ConnParams, string]>) out[k] ??= v;
  }
  return found ? out : undefined;
}

const PG_TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The settings libpq's `options` give the session (`-c name=value`, `-cname=value`,
 * `--name=value`), by name as PostgreSQL folds it (lower case, `-` read as `_`); the last one
 * given wins, as on the server.
 */
export function settingsInOptions(options: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (options === undefined) return out;
  // libpq splits options at unescaped whitespace; a backslash escapes the next character
  const words = (options.match(/(?:\\.|\S)+/g) ?? []).map((w) => w.replace(/\\(.)/g, '$1'));
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const setting = w === '-c' ? words[++i] : w.startsWith('-c') ? w.slice(2) : w.startsWith('--') ? w.slice(2) : undefined;
    const eq = setting?.indexOf('=') ?? -1;
    if (setting === undefined || eq <= 0) continue;
    out.set(setting.slice(0, eq).toLowerCase().replace(/-/g, '_'), setting.slice(eq + 1));
  }
  return out;
}

/**
 * The statement_timeout that libpq's `options` (`-c statement_timeout=5s`, `--statement_timeout=5s`)
 * gives the session, in ms, as PostgreSQL reads the value (a bare number is ms): dbdoctor keeps
 * it for its own statements rather than setting its default over it. Undefined when there is
 * none, when it is 0 (no timeout: dbdoctor never waits forever) or when the server will refuse it.
 */
export function statementTimeoutInOptions(options: string | undefined): number | undefined {
  const value = settingsInOptions(options).get('statement_timeout');
  const m = value === undefined ? null : /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$/.exec(value);
  if (!m) return undefined;
  const ms = Number(m[1]) * PG_TIME_UNITS[m[2] ?? 'ms']!;
  return ms >= 1 && ms <= 2_147_483_647 ? Math.round(ms) : undefined;
}
