/**
 * "Who holds the connections?" Pure decisions over an ActivitySnapshot: filters (app glob, user,
 * database, state, client address or CIDR, minimum age in state), grouping by any of
 * app/state/user/db/client with per-group ages and wait events, the capacity line, and the
 * partial-view accounting. `diagnose` and `terminate` reuse these functions.
 *
 * Rows the role may not see (no pg_read_all_stats) keep their pid, user, database and
 * application_name but lose state, ages, client and query: they are counted as state "hidden" and
 * never silently dropped.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import {
  type ActivitySnapshot,
  clientSessions,
  isClientBackend,
  isParallelWorker,
  isVisible,
  otherProcesses,
  type SessionRow,
  stateOf,
} from './activity.js';
import { type Capacity, type CapacityThresholds, capacityOf, capacitySeverity, DEFAULT_CAPACITY_THRESHOLDS, worst } from './capacity.js';
import { redactStatement } from './conninfo.js';
import { UsageError } from './errors.js';
import type { Severity } from './exit-codes.js';
import { role, statement } from './printed.js';
import { largest, roundOrNull } from './stats.js';

// ---------------------------------------------------------------------------------------------
// Session view: the JSON shape of one session, shared by connections --list, locks and queries.

/**
 * The JSON view of one session, shared by connections --list, locks and queries: the row's
 * identity, names, client and waits as read (SessionRow), with the state named ("hidden" when the
 * role may not see it), ages rounded to whole milliseconds, the statement with its secrets masked,
 * and the parallel workers working for it. What only the deciding needs (superuser, blocked_by,
 * wait_lock, is_self, leader_pid, backend_type) is left out.
 */
export interface SessionInfo
  extends Pick<
    SessionRow,
    | 'pid'
    | 'backend_start'
    | 'application_name'
    | 'usename'
    | 'datname'
    | 'client_addr'
    | 'client_hostname'
    | 'client_port'
    | 'wait_event_type'
    | 'wait_event'
    | 'backend_age_ms'
    | 'xact_age_ms'
    | 'query_age_ms'
    | 'state_age_ms'
    | 'query_id'
  > {
  /** PostgreSQL's state name, or "hidden". */
  state: string;
  /** The current (active) or last statement, secrets masked; null when hidden. */
  query: string | null;
  /** Parallel workers currently working for this session. */
  parallel_workers: number;
}

const round = (v: number | null): number | null => (v === null || v === undefined ? null : Math.round(v));

/** The JSON view of one session row (ages rounded to whole milliseconds). */
export function sessionInfo(r: SessionRow, parallelWorkers = 0): SessionInfo {
  const visible = isVisible(r);
  return {
    pid: r.pid,
    backend_start: r.backend_start,
    application_name: r.application_name,
    usename: r.usename,
    datname: r.datname,
    client_addr: r.client_addr,
    client_hostname: r.client_hostname,
    client_port: r.client_port,
    state: stateOf(r),
    wait_event_type: r.wait_event_type,
    wait_event: r.wait_event,
    backend_age_ms: round(r.backend_age_ms),
    xact_age_ms: round(r.xact_age_ms),
    query_age_ms: round(r.query_age_ms),
    state_age_ms: round(r.state_age_ms),
    query_id: r.query_id,
    // secrets a statement carries (PASSWORD '...', URLs, conninfo) are masked in every view
    query: visible && r.query !== null ? redactStatement(r.query) : null,
    parallel_workers: parallelWorkers,
  };
}

/** leader pid -> number of parallel workers working for it. */
export function parallelWorkersByLeader(snapshot: ActivitySnapshot): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of snapshot.rows) {
    if (isParallelWorker(r) && r.leader_pid !== null) out.set(r.leader_pid, (out.get(r.leader_pid) ?? 0) + 1);
  }
  return out;
}

/** Where a session connects from: its address, "local" for a Unix socket, null when hidden. */
export function clientOf(r: SessionRow): string | null {
  if (r.client_addr) return r.client_addr;
  if (!isVisible(r)) return null;
  return 'local';
}

// ---------------------------------------------------------------------------------------------
// Filters

/** The states PostgreSQL reports (18 adds "starting"), plus "hidden". */
export const KNOWN_STATES = [
  'active',
  'idle',
  'idle in transaction',
  'idle in transaction (aborted)',
  'fastpath function call',
  'disabled',
  'starting',
  'hidden',
] as const;

export interface SessionFilter {
  /** application_name globs (`*`, `?`); a session matches any of them. */
  app?: string[];
  /** Role names (exact); any of them. */
  user?: string[];
  /** Database names (exact); any of them. */
  db?: string[];
  /** States (see KNOWN_STATES; "hidden" for rows the role may not see); any of them. */
  state?: string[];
  /** Client addresses or CIDR ranges (IPv4 or IPv6), or "local" for Unix sockets; any of them. */
  client?: string[];
  /** Only sessions in their current state for at least this long (now - state_change). */
  minAgeMs?: number;
}

/** A glob (`*` any run, `?` one character, everything else literal) as an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '[\\s\\S]*';
    else if (ch === '?') re += '[\\s\\S]';
    else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'u');
}

/** "idle-in-transaction", "IDLE_IN_TRANSACTION", "idle in transaction" -> "idle in transaction". */
export function normalizeState(text: string): string {
  const s = text.trim().toLowerCase().replace(/[-_]+/g, ' ').replace(/\s+/g, ' ');
  if (s === 'idle in transaction aborted') return 'idle in transaction (aborted)';
  return s;
}

/** What to do instead, where leaving the flag out is not the whole answer. */
const EMPTY_VALUE_HINTS: Record<string, string> = {
  '--app': 'an unset shell variable? give a value, or leave --app out (select sessions without an application_name by --pid)',
};

/**
 * An empty or blank value (an unset shell variable, a stray comma) given to a flag: a usage error,
 * never "no filter", "matches nothing" or "matches the empty name" (`--app ""` selected every
 * session without an application_name).
 */
export function emptyValue(flag: string): UsageError {
  return new UsageError(`${flag} has an empty value`, EMPTY_VALUE_HINTS[flag] ?? `an unset shell variable? give a value, or leave ${flag} out`);
}

/** Refuses an empty or blank value among a flag's values (see emptyValue). */
export function requireValues(flag: string, values: readonly string[] | undefined): void {
  if (values?.some((v) => v.trim() === '')) throw emptyValue(flag);
}

// ---------------------------------------------------------------------------------------------
// Client addresses and CIDR ranges (matched with node:net's BlockList)

type Family = 'ipv4' | 'ipv6';

/** An address as its family, its bytes (4 or 16) and the text BlockList takes. */
export interface IpAddress {
  family: Family;
  bytes: number[];
  text: string;
  /** Written as an IPv4-mapped IPv6 address (::ffff:a.b.c.d): family and bytes are the IPv4 address. */
  mapped: boolean;
}

/**
 * An IPv4 or IPv6 address (no prefix, no zone id), or null. An IPv4-mapped IPv6 address
 * (::ffff:10.1.2.3, how a dual-stack socket shows an IPv4 client) is its IPv4 address, so either
 * notation of a client matches either notation of a range.
 */
export function parseAddress(text: string): IpAddress | null {
  if (isIPv4(text)) return { family: 'ipv4', bytes: text.split('.').map(Number), text, mapped: false };
  // isIPv6 accepts a zone id (fe80::1%eth0); PostgreSQL's inet never holds one.
  if (!isIPv6(text) || text.includes('%')) return null;
  // The WHATWG URL parser writes an IPv6 address in its one canonical form: lowercase hex groups,
  // the longest run of zero groups as "::", no dotted tail.
  const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const [head, tail] = canonical.split('::');
  const groups = (part: string | undefined) => (part ? part.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const left = groups(head);
  const right = groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = all.flatMap((g) => [g >> 8, g & 0xff]);
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    const v4 = bytes.slice(12);
    return { family: 'ipv4', bytes: v4, text: v4.join('.'), mapped: true };
  }
  return { family: 'ipv6', bytes, text: canonical, mapped: false };
}

/** The network bits of each byte kept, the rest cleared. */
function networkOf(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => b & (0xff00 >> Math.max(0, Math.min(8, prefix - 8 * i))) & 0xff);
}

function formatAddress(family: Family, bytes: number[]): string {
  if (family === 'ipv4') return bytes.join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** One --client range: a family, the network address and its prefix length in that family's bits. */
export interface ClientRange {
  family: Family;
  network: string;
  prefix: number;
}

const CLIENT_HINT = 'use an address (10.0.0.5, ::1), a CIDR range (10.0.0.0/8, fd00::/8) or "local" for Unix sockets';

/**
 * Parses one --client address or CIDR range, exactly as PostgreSQL's `cidr` type reads it: a range
 * with bits set past its prefix (10.1.2.3/24) is refused, not silently widened. An IPv4-mapped
 * range (::ffff:10.1.2.0/120) is the IPv4 range (10.1.2.0/24); one shorter than /96 would reach
 * past IPv4 into IPv6 space, and is refused. Throws UsageError.
 */
export function parseClientRange(spec: string): ClientRange {
  const text = spec.trim();
  const bad = (why = '', hint = CLIENT_HINT) => new UsageError(`invalid --client ${JSON.stringify(spec)}${why ? `: ${why}` : ''}`, hint);
  const m = /^(?:\[([^\]]*)\]|([^/[\]]+))(?:\/(\d{1,3}))?$/.exec(text);
  if (!m) throw bad();
  const written = m[1] ?? m[2]!;
  if (written.includes('%')) throw bad('PostgreSQL shows client addresses without a zone id', `write it without the zone: ${text.replace(/%[^/\]]*/, '')}`);
  const addr = parseAddress(written);
  if (!addr) throw bad();
  const maxBits = addr.mapped || addr.family === 'ipv6' ? 128 : 32;
  const bits = m[3] === undefined ? maxBits : Number(m[3]);
  if (bits > maxBits) throw bad(`a prefix of /${bits} is longer than the ${maxBits} bits of the address`);
  if (addr.mapped && bits < 96) {
    const example = bits <= 32 ? `${formatAddress('ipv4', networkOf(addr.bytes, bits))}/${bits}` : `${addr.text}/32`;
    throw bad(
      `an IPv4-mapped prefix shorter than /96 reaches past IPv4 into IPv6 space`,
      `write the IPv4 range instead (${example}): an IPv4 range matches clients shown as a.b.c.d and as ::ffff:a.b.c.d alike`,
    );
  }
  // In the address's own family: the bits of an IPv4-mapped prefix past the ::ffff: part.
  const prefix = addr.mapped ? bits - 96 : bits;
  const network = networkOf(addr.bytes, prefix);
  if (network.some((b, i) => b !== addr.bytes[i])) {
    const net = formatAddress(addr.family, network);
    throw bad(`bits are set past the /${bits} prefix`, `write the network ${addr.mapped ? '::ffff:' : ''}${net}/${bits}, or the single address ${written}`);
  }
  return { family: addr.family, network: addr.text, prefix };
}

/** A matcher for one --client value: an address, a CIDR range, or "local". Throws UsageError. */
export function clientMatcher(spec: string): (r: SessionRow) => boolean {
  if (spec.trim() === '') throw emptyValue('--client');
  if (spec.trim().toLowerCase() === 'local') return (r) => clientOf(r) === 'local';
  const range = parseClientRange(spec);
  const list = new BlockList();
  list.addSubnet(range.network, range.prefix, range.family);
  return (r) => {
    // Hidden rows and Unix sockets have no address; an address PostgreSQL would not show never matches.
    const addr = r.client_addr ? parseAddress(r.client_addr) : null;
    if (addr === null) return false;
    if (addr.family === range.family) return list.check(addr.text, addr.family);
    // An IPv4 client is also ::ffff:a.b.c.d, which an IPv6 range as wide as ::/80 holds.
    return addr.family === 'ipv4' && list.check(`::ffff:${addr.text}`, 'ipv6');
  };
}

/** Validates a filter and compiles it into a predicate. Throws UsageError on bad values. */
export function compileFilter(f: SessionFilter): (r: SessionRow) => boolean {
  requireValues('--app', f.app);
  requireValues('--user', f.user);
  requireValues('--db', f.db);
  requireValues('--state', f.state);
  requireValues('--client', f.client);
  const apps = (f.app ?? []).map(globToRegExp);
  const states = (f.state ?? []).map((s) => {
    const n = normalizeState(s);
    if (!(KNOWN_STATES as readonly string[]).includes(n)) {
      throw new UsageError(`unknown --state ${JSON.stringify(s)}`, `use one of: ${KNOWN_STATES.join(', ')}`);
    }
    return n;
  });
  const clients = (f.client ?? []).map(clientMatcher);
  const users = f.user ?? [];
  const dbs = f.db ?? [];
  const minAge = f.minAgeMs;
  return (r) => {
    if (apps.length && !apps.some((re) => re.test(r.application_name))) return false;
    if (users.length && !users.includes(r.usename ?? '')) return false;
    if (dbs.length && !dbs.includes(r.datname ?? '')) return false;
    if (states.length && !states.includes(stateOf(r))) return false;
    if (clients.length && !clients.some((m) => m(r))) return false;
    if (minAge !== undefined && minAge > 0 && (r.state_age_ms === null || r.state_age_ms < minAge)) return false;
    return true;
  };
}

/** The rows that pass the filter (hidden rows only pass filters on what they still show). */
export function filterSessions(rows: SessionRow[], f: SessionFilter): SessionRow[] {
  const ok = compileFilter(f);
  return rows.filter(ok);
}

export function hasFilter(f: SessionFilter): boolean {
  return Boolean(f.app?.length || f.user?.length || f.db?.length || f.state?.length || f.client?.length || (f.minAgeMs ?? 0) > 0);
}

// ---------------------------------------------------------------------------------------------
// Grouping

export const GROUP_KEYS = ['app', 'state', 'user', 'db', 'client'] as const;
export type GroupKey = (typeof GROUP_KEYS)[number];
export const DEFAULT_GROUP_BY: GroupKey[] = ['state', 'app'];

/** Parses `--by app,client` (also accepts application/database/role aliases). Throws UsageError. */
export function parseGroupBy(text: string): GroupKey[] {
  const aliases: Record<string, GroupKey> = {
    app: 'app',
    application: 'app',
    application_name: 'app',
    state: 'state',
    user: 'user',
    role: 'user',
    usename: 'user',
    db: 'db',
    database: 'db',
    datname: 'db',
    client: 'client',
    client_addr: 'client',
    host: 'client',
  };
  const keys: GroupKey[] = [];
  const parts = text.split(',').map((p) => p.trim().toLowerCase());
  requireValues('--by', parts);
  for (const part of parts) {
    const k = aliases[part];
    if (!k) throw new UsageError(`unknown --by key ${JSON.stringify(part)}`, `use any of ${GROUP_KEYS.join(', ')}, comma-separated, e.g. --by app,client`);
    if (!keys.includes(k)) keys.push(k);
  }
  if (keys.length === 0) throw new UsageError('--by needs at least one key', `use any of ${GROUP_KEYS.join(', ')}`);
  return keys;
}

const IDLE_STATES = new Set(['idle', 'idle in transaction', 'idle in transaction (aborted)']);

export interface WaitEventCount {
  wait_event_type: string;
  wait_event: string;
  count: number;
}

export interface SessionGroup {
  /** Present when grouped by app. */
  app?: string;
  /** Present when grouped by state (PostgreSQL's name, or "hidden"). */
  state?: string;
  /** Present when grouped by user (null when the role is gone). */
  user?: string | null;
  /** Present when grouped by db. */
  db?: string | null;
  /** Present when grouped by client: the address, "local" for a Unix socket, null when hidden. */
  client?: string | null;
  /** Present when grouped by client: the host name, when log_hostname resolved it. */
  client_hostname?: string | null;
  count: number;
  /** Oldest and median age in the current state (now - state_change), ms; null when none known. */
  oldest_state_age_ms: number | null;
  median_state_age_ms: number | null;
  /** Oldest open transaction in the group (now - xact_start), ms; null when none is open. */
  oldest_xact_age_ms: number | null;
  /** The wait events of its sessions that are doing something (idle ones wait on ClientRead by definition), most frequent first. */
  wait_events: WaitEventCount[];
  /** Parallel workers working for sessions of this group (not counted in `count`). */
  parallel_workers: number;
  pids: number[];
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

type GroupKeys = Omit<SessionGroup, 'count' | 'oldest_state_age_ms' | 'median_state_age_ms' | 'oldest_xact_age_ms' | 'wait_events' | 'parallel_workers' | 'pids'>;

/** Each grouping key: the group fields it sets and how each is read off a row. */
const KEY_FIELDS: Record<GroupKey, ReadonlyArray<readonly [keyof GroupKeys, (r: SessionRow) => string | null]>> = {
  app: [['app', (r) => r.application_name]],
  state: [['state', stateOf]],
  user: [['user', (r) => r.usename]],
  db: [['db', (r) => r.datname]],
  client: [
    ['client', clientOf],
    ['client_hostname', (r) => r.client_hostname],
  ],
};

function keyValues(r: SessionRow, by: GroupKey[]): GroupKeys {
  const k: Record<string, string | null> = {};
  for (const key of by) for (const [field, read] of KEY_FIELDS[key]) k[field] = read(r);
  return k as GroupKeys;
}

/** Nested maps, one level per key field, buckets at the last: a Map tells null from every string. */
type BucketTrie = Map<string | null, BucketTrie | SessionBucket>;

/** Sessions that share the values of the grouping keys. */
export interface SessionBucket {
  keys: GroupKeys;
  rows: SessionRow[];
}

/** Sessions bucketed by the given keys, largest bucket first, then by key; no statistics. */
export function bucketSessions(rows: SessionRow[], by: GroupKey[]): SessionBucket[] {
  // Rows find their bucket by their key values, one map level per field, without building a string
  // per row (a JSON text per row, then a joined string, cost milliseconds at 1,500 rows); the JSON of
  // the keys, made once per bucket, orders buckets of equal size. An indexed loop, as in every loop
  // over all the sessions that runs once per command: V8 runs it cold, and there `for...of` makes an
  // iterator result per row (at 1,500 rows ten times slower, and pages of garbage).
  const readers = by.flatMap((key) => KEY_FIELDS[key].map(([, read]) => read));
  const root: BucketTrie = new Map();
  const buckets: SessionBucket[] = [];
  for (let n = 0; n < rows.length; n++) {
    const r = rows[n]!;
    let level = root;
    for (let i = 0; i < readers.length - 1; i++) {
      const v = readers[i]!(r);
      let next = level.get(v) as BucketTrie | undefined;
      if (!next) {
        next = new Map();
        level.set(v, next);
      }
      level = next;
    }
    // No keys at all: every row in one bucket.
    const v = readers.length > 0 ? readers[readers.length - 1]!(r) : null;
    let b = level.get(v) as SessionBucket | undefined;
    if (!b) {
      b = { keys: keyValues(r, by), rows: [] };
      level.set(v, b);
      buckets.push(b);
    }
    b.rows.push(r);
  }
  const ordered = buckets.map((b) => ({ b, id: JSON.stringify(b.keys) }));
  ordered.sort((x, y) => y.b.rows.length - x.b.rows.length || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  return ordered.map((x) => x.b);
}

/**
 * Groups sessions by the given keys. Per group: count, oldest and median age in state, oldest open
 * transaction, wait events and pids. Largest groups first, then by key.
 */
export function groupSessions(rows: SessionRow[], by: GroupKey[] = DEFAULT_GROUP_BY, parallelWorkers: Map<number, number> = new Map()): SessionGroup[] {
  return bucketSessions(rows, by).map((g) => {
    const stateAges = g.rows.map((r) => r.state_age_ms).filter((v): v is number => v !== null);
    const xactAges = g.rows.map((r) => r.xact_age_ms).filter((v): v is number => v !== null);
    const waits = new Map<string, WaitEventCount>();
    for (const r of g.rows) {
      // Idle sessions always wait on ClientRead (for the next command): that is no news.
      if (!r.wait_event_type || !r.wait_event || IDLE_STATES.has(r.state ?? '')) continue;
      const k = `${r.wait_event_type}\u0000${r.wait_event}`;
      const w = waits.get(k) ?? { wait_event_type: r.wait_event_type, wait_event: r.wait_event, count: 0 };
      w.count++;
      waits.set(k, w);
    }
    const med = median(stateAges);
    return {
      ...g.keys,
      count: g.rows.length,
      oldest_state_age_ms: roundOrNull(largest(stateAges)),
      median_state_age_ms: med === null ? null : Math.round(med),
      oldest_xact_age_ms: roundOrNull(largest(xactAges)),
      wait_events: [...waits.values()].sort((a, b) => b.count - a.count || `${a.wait_event_type}${a.wait_event}`.localeCompare(`${b.wait_event_type}${b.wait_event}`)),
      parallel_workers: g.rows.reduce((n, r) => n + (parallelWorkers.get(r.pid) ?? 0), 0),
      pids: g.rows.map((r) => r.pid).sort((a, b) => a - b),
    };
  });
}

/** Sessions per state (PostgreSQL's names plus "hidden"), most first. */
export function countByState(rows: SessionRow[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const r of rows) {
    const state = stateOf(r);
    counts.set(state, (counts.get(state) ?? 0) + 1);
  }
  return countsByName(counts);
}

/** Counts as an object, the largest first, then by name. */
export function countsByName(counts: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

export interface OtherProcessGroup {
  /** backend_type (autovacuum worker, walsender, a background worker's type, parallel worker, ...). */
  backend_type: string;
  count: number;
  pids: number[];
  /** For parallel workers: the leaders they work for. */
  leader_pids: number[];
}

/** Non-client backends and parallel workers, by backend_type: reported apart from client counts. */
export function summarizeOtherProcesses(snapshot: ActivitySnapshot): OtherProcessGroup[] {
  const groups = new Map<string, OtherProcessGroup>();
  for (const r of otherProcesses(snapshot)) {
    // A NULL backend_type is a row hidden by privileges (a background process: it has no database).
    const type = r.backend_type ?? 'hidden';
    const g = groups.get(type) ?? { backend_type: type, count: 0, pids: [], leader_pids: [] };
    g.count++;
    g.pids.push(r.pid);
    if (isParallelWorker(r) && r.leader_pid !== null && !g.leader_pids.includes(r.leader_pid)) g.leader_pids.push(r.leader_pid);
    groups.set(type, g);
  }
  return [...groups.values()]
    .map((g) => ({ ...g, pids: g.pids.sort((a, b) => a - b), leader_pids: g.leader_pids.sort((a, b) => a - b) }))
    .sort((a, b) => b.count - a.count || a.backend_type.localeCompare(b.backend_type));
}

// ---------------------------------------------------------------------------------------------
// Visibility

export interface Visibility {
  /** True when some sessions are hidden, or the role lacks pg_read_all_stats. */
  partial: boolean;
  /** Client sessions whose state, ages, client and query the role may not see. */
  hidden: number;
  /** The role may read every session's details (pg_read_all_stats, pg_monitor or superuser). */
  can_read_all_stats: boolean;
  role: string | null;
  /** One line for the user, or null when the view is complete. */
  warning: string | null;
  /** The statement that would give the full view (GRANT pg_monitor TO the role), or null. */
  fix: string | null;
}

/** How much of the server the role sees; partial views are said, never silent. */
export function visibilityOf(snapshot: ActivitySnapshot, priv: { can_read_all_stats: boolean; role?: string | null }): Visibility {
  const hidden = clientSessions(snapshot).filter((r) => !isVisible(r)).length;
  const partial = hidden > 0 || !priv.can_read_all_stats;
  const name = priv.role ?? null;
  const who = name ? `role "${name}"` : 'this role';
  let warning: string | null = null;
  if (hidden > 0) {
    warning = `partial view: ${hidden} session${hidden === 1 ? '' : 's'} of other roles ${hidden === 1 ? 'is' : 'are'} hidden from ${who} (counted as "hidden"); grant it pg_monitor to see them`;
  } else if (!priv.can_read_all_stats) {
    warning = `partial view: ${who} lacks pg_read_all_stats, so sessions of other roles would be hidden; grant it pg_monitor to see everything`;
  }
  const self = snapshot.rows.find((r) => r.is_self);
  const fix = warning && name ? statement(['GRANT pg_monitor TO ', role(name, self?.usename === name ? (self.usesysid ?? null) : null), ';']) : null;
  return { partial, hidden, can_read_all_stats: priv.can_read_all_stats, role: name, warning, fix };
}

// ---------------------------------------------------------------------------------------------
// The report

export interface ServerSettings {
  max_connections: number;
  superuser_reserved: number;
  reserved: number;
  current_user: string;
  can_read_all_stats: boolean;
}

export interface ConnectionsOptions {
  filter?: SessionFilter;
  by?: GroupKey[];
  /** Include one entry per session (`--list`). */
  list?: boolean;
  thresholds?: CapacityThresholds;
}

export interface ConnectionsReport {
  /** ok, or the capacity severity; unknown when the view is partial and nothing is worse. */
  status: Severity;
  server_version_num: number;
  taken_at: string;
  /** Client backends (dbdoctor's own included: it holds a slot too) against the limits. */
  capacity: Capacity & { severity: Severity };
  visibility: Visibility;
  /** The filters applied (null members were not given). */
  filters: {
    app: string[] | null;
    user: string[] | null;
    db: string[] | null;
    state: string[] | null;
    client: string[] | null;
    min_age_ms: number | null;
  };
  by: GroupKey[];
  /** Client sessions shown (after filters; dbdoctor itself left out). */
  total: number;
  /** Client sessions before filters (dbdoctor itself left out). */
  total_unfiltered: number;
  /** Sessions shown, per state ("hidden" included). */
  states: Record<string, number>;
  groups: SessionGroup[];
  /** Background processes and parallel workers, never mixed into the client counts. */
  other_processes: OtherProcessGroup[];
  /** One entry per session shown, with `--list` only (null otherwise). */
  sessions: SessionInfo[] | null;
}

/** Client backends in the snapshot, dbdoctor's own included: the slots in use. */
export function clientBackendCount(snapshot: ActivitySnapshot): number {
  return snapshot.rows.filter((r) => isClientBackend(r) && !isParallelWorker(r)).length;
}

/** The whole `connections` report from one snapshot and the server's settings. Pure. */
export function connectionsReport(snapshot: ActivitySnapshot, settings: ServerSettings, opts: ConnectionsOptions = {}): ConnectionsReport {
  const filter = opts.filter ?? {};
  const by = opts.by ?? DEFAULT_GROUP_BY;
  const all = clientSessions(snapshot);
  const shown = filterSessions(all, filter);
  const workers = parallelWorkersByLeader(snapshot);
  const cap = capacityOf({
    max_connections: settings.max_connections,
    superuser_reserved: settings.superuser_reserved,
    reserved: settings.reserved,
    client_backends: clientBackendCount(snapshot),
  });
  const capSeverity = capacitySeverity(cap, opts.thresholds ?? DEFAULT_CAPACITY_THRESHOLDS);
  const visibility = visibilityOf(snapshot, { can_read_all_stats: settings.can_read_all_stats, role: settings.current_user });
  const orNull = <T>(v: T[] | undefined) => (v?.length ? v : null);
  return {
    status: worst(capSeverity, visibility.partial ? 'unknown' : 'ok'),
    server_version_num: snapshot.server_version_num,
    taken_at: snapshot.taken_at,
    capacity: { ...cap, severity: capSeverity },
    visibility,
    filters: {
      app: orNull(filter.app),
      user: orNull(filter.user),
      db: orNull(filter.db),
      state: filter.state?.length ? filter.state.map(normalizeState) : null,
      client: orNull(filter.client),
      min_age_ms: filter.minAgeMs ?? null,
    },
    by,
    total: shown.length,
    total_unfiltered: all.length,
    states: countByState(shown),
    groups: groupSessions(shown, by, workers),
    other_processes: summarizeOtherProcesses(snapshot),
    sessions: opts.list ? shown.map((r) => sessionInfo(r, workers.get(r.pid) ?? 0)) : null,
  };
}
