/**
 * Every threshold `diagnose` decides with: its documented default, its flag, and its key in the
 * config file. Pure: the command reads the file and the flags; this module validates and merges
 * them (defaults < file `thresholds` < file `environments.<name>.thresholds` < flags).
 *
 * The config file is JSON (`--config <file>`, else `./dbdoctor.json`, else
 * `$XDG_CONFIG_HOME/dbdoctor/config.json`):
 *
 *   { "thresholds": { "capacity_warn": 75, "idle_in_transaction": "1m" },
 *     "environments": { "batch": { "thresholds": { "long_query": "30m" } } } }
 *
 * Durations are strings such as "500ms", "30s", "5m", "1h30m", or numbers of seconds, as on the
 * command line. Unknown keys are an error (a typo must not silently keep a default).
 */
import { formatDuration, parseDuration } from './duration.js';
import { UsageError } from './errors.js';

export type ThresholdKind = 'pct' | 'duration' | 'count';

export interface ThresholdDef {
  /** Key in the config file (snake_case). */
  key: ThresholdKey;
  /** Command-line flag, without the value placeholder. */
  flag: string;
  kind: ThresholdKind;
  /** Default: percent, milliseconds or a count. */
  default: number;
  /** What it decides, for --help and the README. */
  help: string;
}

export const THRESHOLD_KEYS = [
  'capacity_warn',
  'capacity_crit',
  'idle_in_transaction',
  'idle_in_transaction_crit',
  'client_wait',
  'client_wait_crit',
  'idle',
  'idle_pool',
  'group_share_crit',
  'lock_wait',
  'lock_wait_crit',
  'blocked_crit',
  'long_query',
  'long_query_crit',
  'same_statement',
  'same_statement_age',
  'seq_scan_rows',
  'top_statements',
] as const;

export type ThresholdKey = (typeof THRESHOLD_KEYS)[number];

/**
 * The defaults and why:
 * - capacity 80/90%: the seeds' alerts (seeds/001 warns above 80%, seeds/002 pages at 90%).
 * - idle in transaction and client waits 30s / 5m: a healthy application never sits there for
 *   long; seeds/002 cleans up at 5 minutes; seeds/000's unclosed rows were 5+ minutes old.
 * - idle 10m and 20 sessions per application: seeds/002's leak query flags idle over 10 minutes.
 * - lock waits 1s / 30s: 1s is deadlock_timeout's default, after which log_lock_waits logs a wait.
 * - long queries 30s / 5m: seeds/002's statement_timeout is 30s; seeds/003 hunts queries over 5m.
 * - same statement 5 sessions, each running 1s or more: seeds/004's dedup query ran 10-15s in 50+
 *   sessions; the 1s floor keeps a busy OLTP workload of identical short statements out.
 * - a leak or same-statement group holding 25% of the ordinary slots is critical.
 */
export const THRESHOLD_DEFS: readonly ThresholdDef[] = [
  { key: 'capacity_warn', flag: '--capacity-warn', kind: 'pct', default: 80, help: 'percent of ordinary connection slots in use that is a warning' },
  { key: 'capacity_crit', flag: '--capacity-crit', kind: 'pct', default: 90, help: 'percent of ordinary connection slots in use that is critical' },
  { key: 'idle_in_transaction', flag: '--idle-in-transaction', kind: 'duration', default: 30_000, help: 'sessions idle in transaction this long are a leak signature (warning)' },
  { key: 'idle_in_transaction_crit', flag: '--idle-in-transaction-crit', kind: 'duration', default: 300_000, help: '... and this long, critical' },
  { key: 'client_wait', flag: '--client-wait', kind: 'duration', default: 30_000, help: 'active sessions waiting on ClientRead/ClientWrite this long: unread results (warning)' },
  { key: 'client_wait_crit', flag: '--client-wait-crit', kind: 'duration', default: 300_000, help: '... and this long, critical' },
  { key: 'idle', flag: '--idle', kind: 'duration', default: 600_000, help: 'idle sessions this old count toward an idle pool' },
  { key: 'idle_pool', flag: '--idle-pool', kind: 'count', default: 20, help: 'that many such sessions from one application are an idle-pool finding' },
  { key: 'group_share_crit', flag: '--group-share-crit', kind: 'pct', default: 25, help: 'a leak or same-statement group holding this percent of the ordinary slots is critical' },
  { key: 'lock_wait', flag: '--lock-wait', kind: 'duration', default: 1_000, help: 'lock waits this long are a blocking finding (warning)' },
  { key: 'lock_wait_crit', flag: '--lock-wait-crit', kind: 'duration', default: 30_000, help: '... and this long, critical' },
  { key: 'blocked_crit', flag: '--blocked-crit', kind: 'count', default: 5, help: 'a root blocker blocking this many sessions is critical' },
  { key: 'long_query', flag: '--long-query', kind: 'duration', default: 30_000, help: 'active queries running this long (warning)' },
  { key: 'long_query_crit', flag: '--long-query-crit', kind: 'duration', default: 300_000, help: '... and this long, critical' },
  { key: 'same_statement', flag: '--same-statement', kind: 'count', default: 5, help: 'this many sessions running the same statement at once is a finding' },
  { key: 'same_statement_age', flag: '--same-statement-age', kind: 'duration', default: 1_000, help: '... counting only sessions whose statement has run this long' },
  { key: 'seq_scan_rows', flag: '--seq-scan-rows', kind: 'count', default: 10_000, help: 'tables with at least this many rows read mostly by sequential scans are listed' },
  { key: 'top_statements', flag: '--top-statements', kind: 'count', default: 5, help: 'how many pg_stat_statements entries to show (by total and by mean time)' },
];

/** Resolved thresholds as the report carries them: percents, milliseconds and counts. */
export interface Thresholds {
  capacity_warn_pct: number;
  capacity_crit_pct: number;
  idle_in_transaction_ms: number;
  idle_in_transaction_crit_ms: number;
  client_wait_ms: number;
  client_wait_crit_ms: number;
  idle_ms: number;
  idle_pool_sessions: number;
  group_share_crit_pct: number;
  lock_wait_ms: number;
  lock_wait_crit_ms: number;
  blocked_crit_sessions: number;
  long_query_ms: number;
  long_query_crit_ms: number;
  same_statement_sessions: number;
  same_statement_age_ms: number;
  seq_scan_rows: number;
  top_statements: number;
}

const FIELD: Record<ThresholdKey, keyof Thresholds> = {
  capacity_warn: 'capacity_warn_pct',
  capacity_crit: 'capacity_crit_pct',
  idle_in_transaction: 'idle_in_transaction_ms',
  idle_in_transaction_crit: 'idle_in_transaction_crit_ms',
  client_wait: 'client_wait_ms',
  client_wait_crit: 'client_wait_crit_ms',
  idle: 'idle_ms',
  idle_pool: 'idle_pool_sessions',
  group_share_crit: 'group_share_crit_pct',
  lock_wait: 'lock_wait_ms',
  lock_wait_crit: 'lock_wait_crit_ms',
  blocked_crit: 'blocked_crit_sessions',
  long_query: 'long_query_ms',
  long_query_crit: 'long_query_crit_ms',
  same_statement: 'same_statement_sessions',
  same_statement_age: 'same_statement_age_ms',
  seq_scan_rows: 'seq_scan_rows',
  top_statements: 'top_statements',
};

export function defaultThresholds(): Thresholds {
  const t = {} as Thresholds;
  for (const d of THRESHOLD_DEFS) t[FIELD[d.key]] = d.default;
  return t;
}

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze(defaultThresholds());

/** A default as a person writes it: "80%", "30s", "20". */
export function formatDefault(d: ThresholdDef): string {
  if (d.kind === 'pct') return `${d.default}%`;
  if (d.kind === 'duration') return durationArg(d.default);
  return String(d.default);
}

/**
 * Milliseconds as a value `parseDuration` (and so every dbdoctor flag) reads back: "500ms",
 * "30s", "5m", "2h". Never with spaces, unlike formatDuration.
 */
export function durationArg(ms: number): string {
  const v = Math.max(0, Math.round(ms));
  if (v === 0) return '0s';
  if (v % 3_600_000 === 0) return `${v / 3_600_000}h`;
  if (v % 60_000 === 0) return `${v / 60_000}m`;
  if (v % 1000 === 0) return `${v / 1000}s`;
  return `${v}ms`;
}

function parseValue(def: ThresholdDef, raw: unknown, where: string): number {
  const bad = (why: string) =>
    new UsageError(`invalid ${where}: ${JSON.stringify(raw)} (${why})`, `${def.flag} takes ${def.kind === 'pct' ? 'a percent from 1 to 100' : def.kind === 'duration' ? 'a duration like 30s or 5m' : 'a whole number'}; default ${formatDefault(def)}`);
  if (def.kind === 'duration') {
    if (typeof raw === 'number') {
      if (!Number.isFinite(raw) || raw < 0) throw bad('not a duration');
      return parseDuration(String(raw), where);
    }
    if (typeof raw !== 'string') throw bad('not a duration');
    return parseDuration(raw, where);
  }
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+(\.\d+)?\s*%?\s*$/.test(raw) ? Number(raw.replace('%', '')) : Number.NaN;
  if (!Number.isFinite(n)) throw bad('not a number');
  if (def.kind === 'pct') {
    if (n <= 0 || n > 100) throw bad('out of range');
    return n;
  }
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw bad('out of range');
  return n;
}

/** The `thresholds` object of a config file (or of one environment in it), validated. */
function applyObject(t: Thresholds, obj: unknown, where: string): void {
  if (obj === undefined) return;
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new UsageError(`invalid ${where}: expected an object`, `for example { "thresholds": { "idle_in_transaction": "1m" } }`);
  }
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const def = THRESHOLD_DEFS.find((d) => d.key === k);
    if (!def) throw new UsageError(`unknown threshold "${k}" in ${where}`, `known thresholds: ${THRESHOLD_KEYS.join(', ')}`);
    t[FIELD[def.key]] = parseValue(def, v, `${where}.${k}`);
  }
}

export interface ConfigFile {
  /** Where it was read from (for messages and the report). */
  path: string;
  /** The parsed JSON document. */
  doc: unknown;
}

export interface ThresholdSources {
  config?: ConfigFile | null;
  /** Environment in the config file (`--environment`). */
  environment?: string | null;
  /** Flag values as given on the command line, by config key (strings, as commander gives them). */
  flags?: Partial<Record<ThresholdKey, string>>;
}

/** Merges defaults, the config file (and its environment) and the flags; validates everything. */
export function resolveThresholds(src: ThresholdSources = {}): Thresholds {
  const t = defaultThresholds();
  const cfg = src.config;
  if (cfg) {
    const doc = cfg.doc;
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw new UsageError(`${cfg.path}: the config file must hold a JSON object`, 'for example { "thresholds": { "idle_in_transaction": "1m" } }');
    }
    for (const k of Object.keys(doc)) {
      if (k !== 'thresholds' && k !== 'environments' && k !== '$schema' && k !== 'comment') {
        throw new UsageError(`${cfg.path}: unknown key "${k}"`, 'the config file holds "thresholds" and "environments"');
      }
    }
    const d = doc as { thresholds?: unknown; environments?: unknown };
    applyObject(t, d.thresholds, `${cfg.path}: thresholds`);
    if (src.environment) {
      const envs = d.environments;
      // Own keys only: "__proto__", "constructor" or "toString" name no environment unless the file defines one.
      const env = envs && typeof envs === 'object' && !Array.isArray(envs) && Object.hasOwn(envs, src.environment) ? (envs as Record<string, unknown>)[src.environment] : undefined;
      if (env === undefined) {
        const known = envs && typeof envs === 'object' ? Object.keys(envs as object) : [];
        throw new UsageError(`${cfg.path}: no environment "${src.environment}"`, known.length ? `environments in the file: ${known.join(', ')}` : 'the file has no "environments"');
      }
      if (env === null || typeof env !== 'object' || Array.isArray(env)) throw new UsageError(`${cfg.path}: environments.${src.environment} must be an object`);
      for (const k of Object.keys(env)) {
        if (k !== 'thresholds') throw new UsageError(`${cfg.path}: unknown key "${k}" in environments.${src.environment}`, 'an environment holds "thresholds"');
      }
      applyObject(t, (env as { thresholds?: unknown }).thresholds, `${cfg.path}: environments.${src.environment}.thresholds`);
    }
  } else if (src.environment) {
    throw new UsageError(`--environment ${src.environment} needs a config file`, 'name one with --config, or create ./dbdoctor.json');
  }
  for (const [k, v] of Object.entries(src.flags ?? {})) {
    if (v === undefined) continue;
    const def = THRESHOLD_DEFS.find((d) => d.key === k);
    if (!def) continue;
    t[FIELD[def.key]] = parseValue(def, v, def.flag);
  }
  const pairs: Array<[keyof Thresholds, keyof Thresholds, string]> = [
    ['capacity_warn_pct', 'capacity_crit_pct', 'capacity'],
    ['idle_in_transaction_ms', 'idle_in_transaction_crit_ms', 'idle in transaction'],
    ['client_wait_ms', 'client_wait_crit_ms', 'client wait'],
    ['lock_wait_ms', 'lock_wait_crit_ms', 'lock wait'],
    ['long_query_ms', 'long_query_crit_ms', 'long query'],
  ];
  for (const [w, c, what] of pairs) {
    if (t[w] > t[c]) {
      throw new UsageError(`the ${what} warning threshold (${show(w, t[w])}) is above its critical threshold (${show(c, t[c])})`, 'make the warning threshold lower than or equal to the critical one');
    }
  }
  return t;
}

function show(field: keyof Thresholds, v: number): string {
  return field.endsWith('_pct') ? `${v}%` : field.endsWith('_ms') ? formatDuration(v) : String(v);
}
