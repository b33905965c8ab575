/**
 * The runbook decision tree as code (seeds/002's "Diagnosis Decision Tree", seeds/003's symptom
 * branches, and the incidents of seeds/000, 001 and 004). PURE: it takes one typed snapshot of
 * facts (DiagnoseFacts, gathered by src/db/diagnose.ts) and the thresholds, and returns the
 * report: findings (stable id, severity, title, evidence, likely cause, next steps with an exact
 * dbdoctor command, runbook link), the path taken through the tree, the verdict (the worst
 * severity; a partial view is never OK), and performance data for monitoring.
 *
 * Nodes, in the order they are visited (each id is an anchor in runbooks/):
 *   connect -> visibility -> capacity -> connection-limit -> who-holds
 *   -> idle-in-transaction -> unread-results -> idle-pool          (leak signatures)
 *   -> blocking                                                     (lock chains)
 *   -> long-queries -> same-statement -> top-statements -> seq-scans (slow work)
 *   -> setting-* -> settings                                       (guards that were off)
 */
import { type ActivitySnapshot, clientSessions, isClientBackend, isListener, isParallelWorker, isVisible, type SessionRow } from './activity.js';
import { type BlockingReport, buildBlockingReport, type RootBlocker } from './blocking.js';
import { type Capacity, capacityOf, capacitySeverity, type ConnLimit, nearLimits, worst } from './capacity.js';
import type { ServerProfile } from './check.js';
import type { ConnectFailure } from './classify.js';
import { bucketSessions, clientOf, countByState, groupSessions, type SessionGroup } from './connections.js';
import { formatDuration } from './duration.js';
import { exitCodeForSeverity, type ExitCodeValue, type Severity } from './exit-codes.js';
import { normalizeStatement } from './normalize.js';
import { type Arg, commandStep, database, fixedStep, literal, type NextStep, role, type SqlPart, sqlStep, statementStep, textStep } from './printed.js';
import { clientWaits, idleInTransaction, isClientWait, longActiveQueries, type StatementGroup, statementGroups } from './queries.js';
import { runbookLink } from './runbooks.js';
import { DEFAULT_MAX, emptyFilters, type Fingerprint, planTermination, redactQuery, type TerminateFilters } from './terminate.js';
import { DEFAULT_THRESHOLDS, durationArg, type Thresholds } from './thresholds.js';

// ---------------------------------------------------------------------------------------------
// Facts

export interface SettingValue {
  name: string;
  /** pg_settings.reset_val: what a new session gets (dbdoctor's own SETs excluded). */
  value: string;
  unit: string | null;
  vartype: string;
  context: string;
  boot_val: string | null;
}

export interface SettingOverride {
  /** null: every role (ALTER DATABASE ... SET). */
  role: string | null;
  /** null: every database (ALTER ROLE ... SET). */
  database: string | null;
  name: string;
  /** As written in the ALTER: "5s", "300000", "off". */
  value: string;
}

export interface SettingsFacts {
  server_version_num: number;
  settings: SettingValue[];
  overrides: SettingOverride[];
  current_user: string;
  current_database: string;
}

export interface TopStatement {
  queryid: string | null;
  role: string | null;
  database: string | null;
  calls: number;
  total_ms: number;
  mean_ms: number;
  max_ms: number;
  rows: number;
  query: string | null;
}

export interface SeqScanTable {
  table: string;
  seq_scan: number;
  seq_tup_read: number;
  idx_scan: number;
  live_rows: number;
}

export type PgssStatus = 'available' | 'not_installed' | 'not_loaded' | 'not_readable';

export interface StatementsFacts {
  pg_stat_statements: PgssStatus;
  extension_schema: string | null;
  extension_version: string | null;
  stats_reset: string | null;
  total_exec_ms: number | null;
  entries: number | null;
  by_total: TopStatement[];
  by_mean: TopStatement[];
  seq_scan_tables: SeqScanTable[];
}

export interface GatherError {
  cause: string;
  message: string;
  hint: string | null;
  exit_code: ExitCodeValue;
}

/** One snapshot of everything the tree decides on. */
export interface DiagnoseFacts {
  /** Where dbdoctor connected (never a password). */
  target: string;
  connect: { ok: true; connect_ms: number } | { ok: false; failure: ConnectFailure; ms: number | null };
  server: ServerProfile | null;
  limits: ConnLimit[];
  activity: ActivitySnapshot | null;
  settings: SettingsFacts | null;
  statements: StatementsFacts | null;
  /** A failure after connecting that stopped the gathering (the server went away, a timeout). */
  gather_error: GatherError | null;
  /** Optional facts that could not be read, with why (the diagnosis goes on without them). */
  unavailable: Array<{ what: string; reason: string }>;
  /** How long gathering took, ms (connect included). */
  gather_ms: number;
}

// ---------------------------------------------------------------------------------------------
// Report

export const SETTING_NODES = [
  'setting-idle-in-transaction-session-timeout',
  'setting-statement-timeout',
  'setting-lock-timeout',
  'setting-idle-session-timeout',
  'setting-transaction-timeout',
  'setting-tcp-keepalives',
  'setting-log-lock-waits',
] as const;

/** Every node of the tree, in visiting order. Each is an anchor in runbooks/ (tested). */
export const DIAGNOSE_NODES = [
  'connect',
  'visibility',
  'capacity',
  'connection-limit',
  'who-holds',
  'idle-in-transaction',
  'unread-results',
  'idle-pool',
  'blocking',
  'long-queries',
  'same-statement',
  'top-statements',
  'seq-scans',
  ...SETTING_NODES,
  'settings',
] as const;

export type NodeId = (typeof DIAGNOSE_NODES)[number];

export type { NextStep } from './printed.js';

/** One group of sessions behind a finding: an application at a client, a root blocker, a statement. */
export interface EvidenceGroup {
  label: string;
  application: string | null;
  client: string | null;
  database: string | null;
  users: string[];
  state: string | null;
  wait_event: string | null;
  count: number;
  pids: number[];
  oldest_ms: number | null;
  /** The stuck, current or last statement (one example), or null. */
  statement: string | null;
  severity: Severity;
}

export interface Evidence {
  /** Sessions involved (null when the finding is not about sessions). */
  sessions: number | null;
  /** Their pids (at most 200; `sessions` has the full count). */
  pids: number[];
  applications: string[];
  clients: string[];
  users: string[];
  databases: string[];
  oldest_ms: number | null;
  /** Example statements (stuck, running or last run), cut to 300 characters. */
  statements: string[];
  /** The numbers, one sentence each. */
  facts: string[];
  groups: EvidenceGroup[];
}

export interface Finding {
  /** Stable id: the node id (also the runbook anchor). */
  id: NodeId;
  severity: Severity;
  title: string;
  /** A few words for the one-line summary (verdict line, nagios status). */
  summary: string;
  evidence: Evidence;
  /** The likely cause, in plain words. */
  cause: string;
  /** At least one step carries an exact dbdoctor command. */
  next: NextStep[];
  /** runbooks/<file>.md#<anchor> */
  runbook: string;
}

export interface PathStep {
  node: NodeId;
  question: string;
  /** The branch taken: "yes", "no", "ok", "warning", "critical", "found", "none", "unavailable", ... */
  branch: string;
  detail: string;
}

export interface Metric {
  name: string;
  value: number;
  uom: '' | '%' | 's';
  warn: number | null;
  crit: number | null;
  min: number | null;
  max: number | null;
}

export interface HolderRow {
  application: string;
  count: number;
  states: Record<string, number>;
  listeners: number;
  clients: string[];
}

export interface DiagnoseReport {
  verdict: Severity;
  exit_code: ExitCodeValue;
  /** One line: what is wrong (or that nothing is), for the verdict line and the nagios status. */
  summary: string;
  target: string;
  connected: boolean;
  server: { version: string; version_num: number; major: number; role: 'primary' | 'standby'; uptime_s: number; user: string; database: string } | null;
  taken_at: string | null;
  thresholds: Thresholds;
  counts: Record<Severity, number>;
  /** Worst first. */
  findings: Finding[];
  path: PathStep[];
  capacity: (Capacity & { severity: Severity }) | null;
  visibility: { partial: boolean; hidden: number; can_read_all_stats: boolean; role: string | null } | null;
  /** The largest holders of connections, by application (a summary table). */
  holders: HolderRow[];
  metrics: Metric[];
  unavailable: Array<{ what: string; reason: string }>;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const RANK: Record<Severity, number> = { ok: 0, info: 1, warning: 2, unknown: 3, critical: 4 };
const MAX_PIDS = 200;
const STATEMENT_CHARS = 300;

/** Statement text for a finding: secrets (PASSWORD '...', URLs with passwords) masked, cut. */
function cut(text: string | null | undefined, max = STATEMENT_CHARS): string {
  const s = redactQuery(text ?? '').replace(/\s+/g, ' ').trim();
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function appLabel(app: string | null | undefined): string {
  return app ? app : '(no application_name)';
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

function uniq<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

function nonNull<T>(xs: Array<T | null | undefined>): T[] {
  return xs.filter((x): x is T => x !== null && x !== undefined);
}

const dur = (ms: number | null | undefined) => formatDuration(ms ?? null);

/** A step with a dbdoctor command made only of dbdoctor's own words (flags, states, numbers). */
const step = fixedStep;

/**
 * `connections ... --list`, narrowed to one application when its name can be given exactly (shown
 * safely, not empty, no glob characters); all of them otherwise.
 */
function listStep(text: string, args: Arg[], app: string | null): NextStep {
  const exact = app && !/[*?]/.test(app) ? commandStep(text, 'connections', [...args, ['--app', app], '--list']) : null;
  return exact ?? fixedStep(text, 'connections', [...args, '--list']);
}

function runbookStep(node: NodeId): NextStep {
  return fixedStep('read the runbook section', 'runbook', [node]);
}

function emptyEvidence(): Evidence {
  return { sessions: null, pids: [], applications: [], clients: [], users: [], databases: [], oldest_ms: null, statements: [], facts: [], groups: [] };
}

function evidenceOf(rows: SessionRow[], ageOf: (r: SessionRow) => number | null, groups: EvidenceGroup[], facts: string[] = []): Evidence {
  const ages = nonNull(rows.map(ageOf));
  return {
    sessions: rows.length,
    pids: rows.map((r) => r.pid).sort((a, b) => a - b).slice(0, MAX_PIDS),
    applications: uniq(rows.map((r) => r.application_name)),
    clients: uniq(nonNull(rows.map(clientOf))),
    users: uniq(nonNull(rows.map((r) => r.usename))),
    databases: uniq(nonNull(rows.map((r) => r.datname))),
    oldest_ms: ages.length ? Math.round(Math.max(...ages)) : null,
    statements: uniq(groups.map((g) => g.statement).filter((s): s is string => Boolean(s))).slice(0, 5),
    facts,
    groups,
  };
}

function finding(id: NodeId, severity: Severity, title: string, evidence: Evidence, cause: string, next: NextStep[], runbookNode: string = id): Finding {
  return { id, severity, title, summary: title, evidence, cause, next, runbook: runbookLink(runbookNode) };
}

/** The most common normalized statement among the rows, as one original example. */
function typicalStatement(rows: SessionRow[]): string | null {
  const g = statementGroups(rows)[0];
  return g ? cut(g.example) : null;
}

/** Hidden rows with no role are background processes (autovacuum, checkpointer, ...), not sessions. */
function isHiddenBackground(r: SessionRow): boolean {
  return !isVisible(r) && r.backend_type === null && r.usename === null;
}

/** Client sessions the tree reasons about: dbdoctor itself and parallel workers left out. */
function sessionsOf(snapshot: ActivitySnapshot): SessionRow[] {
  return clientSessions(snapshot).filter((r) => !isHiddenBackground(r));
}

/** Slots in use: client backends, dbdoctor's own included (it holds one too). */
function slotsInUse(snapshot: ActivitySnapshot): number {
  return snapshot.rows.filter((r) => isClientBackend(r) && !isParallelWorker(r) && !isHiddenBackground(r)).length;
}

// ---------------------------------------------------------------------------------------------
// terminate commands that select exactly a group

interface TerminateScope {
  snapshot: ActivitySnapshot;
  sessions: SessionRow[];
  /**
   * Per application name, the rows `--app <name>` can select (a name without wildcards matches
   * itself exactly) and what terminate's planner needs of them, made once per diagnosis: planning
   * each group against every row of a 1,500-session incident was most of the tree's time.
   */
  byApp?: Map<string, { snapshot: ActivitySnapshot; fingerprints: Fingerprint[] }>;
}

/** The part of the snapshot terminate's planner can select with `--app <app>`. */
function appScope(scope: TerminateScope, app: string): { snapshot: ActivitySnapshot; fingerprints: Fingerprint[] } {
  scope.byApp ??= new Map(
    bucketSessions(scope.snapshot.rows, ['app']).map(({ keys, rows }) => [
      keys.app ?? '',
      {
        snapshot: { ...scope.snapshot, rows },
        fingerprints: rows.map((r) => ({ pid: r.pid, backend_start: r.backend_start, state: r.state, state_change: null, xact_start: null, query_start: null })),
      },
    ]),
  );
  return scope.byApp.get(app) ?? { snapshot: { ...scope.snapshot, rows: [] }, fingerprints: [] };
}

/**
 * The narrowest `dbdoctor terminate` that selects exactly `target`, checked with terminate's own
 * planner (its age rules, exclusions of listeners and superusers, database scope); a --pid list
 * when no filter combination does. Adds --include-superusers, --all-databases and --max as the
 * plan needs them.
 */
function terminateFor(scope: TerminateScope, target: SessionRow[], base: { states: string[]; olderThanMs: number; cancelFirst?: boolean; pidsOnly?: boolean }): NextStep {
  const want = new Set(target.map((r) => r.pid));
  const apps = uniq(target.map((r) => r.application_name));
  const clients = uniq(nonNull(target.map(clientOf)));
  const dbs = uniq(nonNull(target.map((r) => r.datname)));
  const otherDb = dbs.some((d) => d !== scope.snapshot.database);
  const superusers = target.some((r) => r.superuser === true);
  const extra: Arg[] = [];
  if (otherDb) extra.push('--all-databases');
  if (superusers) extra.push('--include-superusers');
  if (base.cancelFirst) extra.push('--cancel-first');
  if (target.length > DEFAULT_MAX) extra.push(['--max', String(target.length)]);
  // Only called with one application and no wildcards: see appScope.
  const selects = (f: TerminateFilters) => {
    const { snapshot, fingerprints } = appScope(scope, f.apps[0]!);
    const plan = planTermination(snapshot, fingerprints, { filters: f, allDatabases: otherDb, includeSuperusers: superusers, cancelFirst: Boolean(base.cancelFirst) });
    return plan.planned.length === want.size && plan.planned.every((p) => want.has(p.pid));
  };
  const args = (f: TerminateFilters): Arg[] => [
    ...f.states.map((x): Arg => ['--state', x]),
    ...f.apps.map((x): Arg => ['--app', x]),
    ...f.clients.map((x): Arg => ['--client', x]),
    ...f.dbs.map((x): Arg => ['--db', x]),
    ...(f.older_than_ms ? [['--older-than', durationArg(f.older_than_ms)] as Arg] : []),
    // Long pid lists as several --pid flags (terminate accepts it repeated), so no word is huge.
    ...chunks(f.pids, 8).map((c): Arg => ['--pid', c.join(',')]),
  ];
  const words = `terminate exactly these ${plural(target.length, 'session')}`;
  const why = ' (a plan is shown first; each session is re-checked as it is signalled)';
  // A name that cannot be shown exactly is never printed: the sessions are then named by pid.
  if (!base.pidsOnly && apps.length === 1 && !/[*?]/.test(apps[0]!)) {
    const f0: TerminateFilters = { ...emptyFilters(), states: base.states, apps, older_than_ms: base.olderThanMs > 0 ? base.olderThanMs : null, dbs: otherDb && dbs.length === 1 ? dbs : [] };
    const candidates: TerminateFilters[] = [f0];
    if (clients.length === 1) candidates.push({ ...f0, clients });
    for (const f of candidates) {
      const made = selects(f) ? commandStep(`${words}${why}`, 'terminate', [...args(f), ...extra]) : null;
      if (made) return made;
    }
  }
  const pids = target.map((r) => r.pid).sort((a, b) => a - b);
  return fixedStep(`${words} by pid${why}`, 'terminate', [...args({ ...emptyFilters(), pids }), ...extra]);
}

// ---------------------------------------------------------------------------------------------
// Settings: values, overrides and fixes

/** A time setting's value in ms (unit from pg_settings for bare numbers), a bool as 1/0, or null. */
export function settingNumber(value: string | null | undefined, unit: string | null, vartype = 'integer'): number | null {
  if (value === null || value === undefined) return null;
  const v = value.trim().toLowerCase().replace(/^'|'$/g, '');
  if (vartype === 'bool') {
    if (/^(on|true|yes|1|t|y)$/.test(v)) return 1;
    if (/^(off|false|no|0|f|n)$/.test(v)) return 0;
    return null;
  }
  const m = /^(-?\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?$/.exec(v);
  if (!m) return null;
  const n = Number(m[1]);
  const u = m[2] ?? unit ?? '';
  const factor: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };
  if (factor[u] === undefined) return n;
  return n * factor[u]!;
}

/** Milliseconds as a PostgreSQL setting literal: '5min', '30s', '500ms'. */
export function pgInterval(ms: number): string {
  const v = Math.round(ms);
  if (v > 0 && v % 3_600_000 === 0) return `${v / 3_600_000}h`;
  if (v > 0 && v % 60_000 === 0) return `${v / 60_000}min`;
  if (v > 0 && v % 1000 === 0) return `${v / 1000}s`;
  return `${v}ms`;
}

type OverrideLevel = 'role in database' | 'role' | 'database' | 'server';

interface Effective {
  value: string | null;
  level: OverrideLevel;
  /** True when the server-level value is not known (masked by an override on dbdoctor's own role/db). */
  unknown: boolean;
}

class SettingsView {
  constructor(readonly facts: SettingsFacts) {}

  get(name: string): SettingValue | undefined {
    return this.facts.settings.find((s) => s.name === name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  private override(name: string, role: string | null, db: string | null): SettingOverride | undefined {
    return this.facts.overrides.find((o) => o.name === name && o.role === role && o.database === db);
  }

  /** The server-level value, or null when dbdoctor's own role/database overrides mask it. */
  serverValue(name: string): string | null {
    const s = this.get(name);
    if (!s) return null;
    const u = this.facts.current_user;
    const d = this.facts.current_database;
    if (this.override(name, u, d) || this.override(name, u, null) || this.override(name, null, d)) return null;
    return s.value;
  }

  /** What a new session of `role` in `db` gets: role-in-database, then role, then database, then server. */
  effective(name: string, role: string | null, db: string | null): Effective {
    if (role !== null && db !== null) {
      const o = this.override(name, role, db);
      if (o) return { value: o.value, level: 'role in database', unknown: false };
    }
    if (role !== null) {
      const o = this.override(name, role, null);
      if (o) return { value: o.value, level: 'role', unknown: false };
    }
    if (db !== null) {
      const o = this.override(name, null, db);
      if (o) return { value: o.value, level: 'database', unknown: false };
    }
    const v = this.serverValue(name);
    return { value: v, level: 'server', unknown: v === null };
  }

  /** 0 / off for `role` in `db`? null when not known. */
  isOff(name: string, role: string | null, db: string | null): boolean | null {
    const s = this.get(name);
    if (!s) return null;
    const e = this.effective(name, role, db);
    if (e.unknown) return null;
    const n = settingNumber(e.value, s.unit, s.vartype);
    return n === null ? null : n === 0;
  }
}

interface GuardSpec {
  node: (typeof SETTING_NODES)[number];
  name: string;
  /** The value to recommend, as a setting literal. */
  value: string;
  /** The sessions of the incident the guard would have stopped. */
  rows: SessionRow[];
  severity: Severity;
  /** What the guard does, and why it would have helped. */
  why: string;
  /** Which finding triggered it (for the evidence). */
  because: string;
  /** ALTER SYSTEM is a sensible server-wide alternative for this setting. */
  systemWide: boolean;
  caution?: string;
}

function guardFinding(view: SettingsView, g: GuardSpec): Finding | null {
  const pairs = new Map<string, { role: string; roleOid: number | null; db: string | null; dbOid: number | null; rows: SessionRow[] }>();
  for (const r of new Map(g.rows.map((x) => [x.pid, x])).values()) {
    if (!r.usename) continue;
    const k = `${r.usename}\u0000${r.datname ?? ''}`;
    const p = pairs.get(k) ?? { role: r.usename, roleOid: r.usesysid ?? null, db: r.datname, dbOid: r.datid ?? null, rows: [] };
    p.rows.push(r);
    pairs.set(k, p);
  }
  const off = [...pairs.values()].filter((p) => view.isOff(g.name, p.role, p.db) === true);
  if (off.length === 0) return null;
  const facts: string[] = [];
  const next: NextStep[] = [];
  const done = new Set<string>();
  const set: SqlPart[] = [` SET ${g.name} = `, literal(g.value), ';'];
  for (const p of off.slice(0, 5)) {
    const e = view.effective(g.name, p.role, p.db);
    facts.push(`${g.name} is ${e.value === null ? 'unknown' : `${e.value}${/^0+$/.test(e.value) || /^off$/i.test(e.value) ? ' (off)' : ''}`} for role ${p.role} in database ${p.db ?? '?'} (set at ${e.level} level): ${plural(p.rows.length, 'session')} of this incident`);
    const target: SqlPart[] = e.level === 'role in database' && p.db !== null ? [role(p.role, p.roleOid), ' IN DATABASE ', database(p.db, p.dbOid)] : [role(p.role, p.roleOid)];
    const fix = statementStep(`set it for role ${p.role} (new sessions of the role get it; existing ones keep their value until they reconnect)`, ['ALTER ROLE ', ...target, ...set], `ALTER ROLE ... SET ${g.name}`);
    const key = fix.sql ?? fix.text;
    if (!done.has(key)) {
      done.add(key);
      next.push(fix);
    }
  }
  const dbs = uniq(nonNull(off.map((p) => p.db)));
  const db0 = off.find((p) => p.db === dbs[0]);
  if (dbs.length === 1 && db0) next.push(statementStep(`or for every role in database ${dbs[0]}`, ['ALTER DATABASE ', database(db0.db!, db0.dbOid), ...set], `ALTER DATABASE ... SET ${g.name}`));
  if (g.systemWide) next.push(statementStep('or server-wide (roles and databases with their own value keep it)', [`ALTER SYSTEM SET ${g.name} = `, literal(g.value), '; SELECT pg_reload_conf();'], ''));
  next.push(runbookStep(g.node));
  const roles = uniq(off.map((p) => p.role));
  const ev: Evidence = { ...emptyEvidence(), sessions: off.reduce((n, p) => n + p.rows.length, 0), users: roles, databases: dbs, facts: [`${g.because}`, ...facts] };
  ev.pids = off.flatMap((p) => p.rows.map((r) => r.pid)).sort((a, b) => a - b).slice(0, MAX_PIDS);
  return finding(
    g.node,
    g.severity,
    `${g.name} is off for ${roles.length === 1 ? `role ${roles[0]}` : `roles ${roles.slice(0, 3).join(', ')}${roles.length > 3 ? ', ...' : ''}`}: it would have ${g.why}`,
    ev,
    `${g.name} = 0 means no limit. ${g.caution ?? ''}`.trim(),
    next,
  );
}

// ---------------------------------------------------------------------------------------------
// The tree

interface Walk {
  findings: Finding[];
  path: PathStep[];
}

function visit(w: Walk, node: NodeId, question: string, branch: string, detail: string): void {
  w.path.push({ node, question, branch, detail });
}

function groupSeverity(count: number, oldest: number | null, ordinary: number, critAge: number, t: Thresholds): Severity {
  const share = ordinary > 0 ? (count / ordinary) * 100 : 100;
  return (oldest ?? 0) >= critAge || share >= t.group_share_crit_pct ? 'critical' : 'warning';
}

function sharePct(count: number, ordinary: number): number {
  return ordinary > 0 ? Math.round((count / ordinary) * 1000) / 10 : 100;
}

function connectFailureReport(facts: DiagnoseFacts & { connect: { ok: false } }, t: Thresholds): DiagnoseReport {
  const f = facts.connect.failure;
  const severity: Severity = f.exit_code === 2 ? 'critical' : 'unknown';
  const unreachable = severity === 'critical';
  const ev = emptyEvidence();
  ev.facts = [`step: ${f.step}`, `cause: ${f.cause}${f.code ? ` (${f.code})` : ''}`, `target: ${facts.target}`];
  const fd = finding(
    'connect',
    severity,
    `cannot connect: ${f.message}`,
    ev,
    unreachable
      ? 'the server is unreachable from here: down, refused, out of connection slots, starting or stopping, or the network drops the connection'
      : "dbdoctor's own set-up is the problem (its credentials, database name, TLS or privileges), so it cannot judge the server",
    [textStep(f.hint), step('walk the connection step by step, with the cause of the first step that fails', 'check'), runbookStep('connect')],
    f.runbook,
  );
  const path: PathStep[] = [{ node: 'connect', question: 'can dbdoctor connect?', branch: unreachable ? 'unreachable' : 'own-setup', detail: `${f.step} failed: ${f.cause}` }];
  return assemble({ facts, t, findings: [fd], path, capacity: null, visibility: null, holders: [], metrics: [timeMetric(facts)], server: null });
}

function gatherErrorReport(facts: DiagnoseFacts, t: Thresholds, e: GatherError): DiagnoseReport {
  const severity: Severity = e.exit_code === 2 ? 'critical' : 'unknown';
  const ev = emptyEvidence();
  ev.facts = [`cause: ${e.cause}`, `target: ${facts.target}`];
  const fd = finding(
    'connect',
    severity,
    `connected, but could not gather the facts: ${e.message}`,
    ev,
    severity === 'critical' ? 'the server went away while dbdoctor was reading it (shutdown, crash or network)' : 'dbdoctor could not read what it needs, so it cannot judge the server',
    [...(e.hint ? [textStep(e.hint)] : []), step('check the connection and what this role can do', 'check'), runbookStep('connect')],
  );
  const path: PathStep[] = [
    { node: 'connect', question: 'can dbdoctor connect?', branch: 'yes', detail: 'connected' },
    { node: 'connect', question: 'could it read the facts?', branch: severity === 'critical' ? 'server-gone' : 'failed', detail: `${e.cause}: ${e.message}` },
  ];
  return assemble({ facts, t, findings: [fd], path, capacity: null, visibility: null, holders: [], metrics: [timeMetric(facts)], server: serverOf(facts) });
}

function serverOf(facts: DiagnoseFacts): DiagnoseReport['server'] {
  const s = facts.server;
  if (!s) return null;
  return {
    version: s.version,
    version_num: s.server_version_num,
    major: Math.floor(s.server_version_num / 10000),
    role: s.in_recovery ? 'standby' : 'primary',
    uptime_s: Math.round(s.uptime_s),
    user: s.current_user,
    database: s.current_database,
  };
}

function timeMetric(facts: DiagnoseFacts): Metric {
  return { name: 'time', value: Math.round(facts.gather_ms) / 1000, uom: 's', warn: null, crit: null, min: 0, max: null };
}

/** Everything the nodes share: the facts, the walk so far, and what earlier nodes found. */
interface Tree {
  facts: DiagnoseFacts;
  t: Thresholds;
  server: ServerProfile;
  snap: ActivitySnapshot;
  w: Walk;
  sessions: SessionRow[];
  scope: TerminateScope;
  hiddenRows: SessionRow[];
  partial: boolean;
  cap: Capacity;
  capSev: Severity;
  ordinary: number;
  holders: HolderRow[];
  /** Clean-ups the leak nodes recommend, offered again by the capacity finding. */
  leakSteps: NextStep[];
  iit: SessionRow[];
  waits: SessionRow[];
  idleCandidates: SessionRow[];
  idleGroups: SessionGroup[];
  blocking: BlockingReport;
  longQ: SessionRow[];
  pgss: StatementsFacts | null;
  pgssHint: NextStep[];
  sameCandidates: SessionRow[];
  sameGroups: StatementGroup[];
  found: { iitFinding: Finding | null; unreadFinding: Finding | null; idleFinding: Finding | null; blockFinding: Finding | null; longFinding: Finding | null; sameFinding: Finding | null };
}

const rootIit = (r: RootBlocker) => r.session?.state === 'idle in transaction' || r.session?.state === 'idle in transaction (aborted)';
const lockWaiters = (r: SessionRow) => r.wait_event_type === 'Lock';

/** visibility: can the role see every session? A partial view is never OK. */
function nodeVisibility(c: Tree): void {
  const { server, w, sessions } = c;
  const hiddenRows = sessions.filter((r) => !isVisible(r));
  const partial = hiddenRows.length > 0 || !server.can_read_all_stats;
  if (partial) {
    const ev = emptyEvidence();
    ev.sessions = hiddenRows.length;
    ev.pids = hiddenRows.map((r) => r.pid).slice(0, MAX_PIDS);
    ev.users = uniq(nonNull(hiddenRows.map((r) => r.usename)));
    ev.applications = uniq(hiddenRows.map((r) => r.application_name));
    ev.facts = [
      `${plural(hiddenRows.length, 'session')} of other roles ${hiddenRows.length === 1 ? 'is' : 'are'} hidden: state, ages, client and query unknown`,
      `role ${server.current_user} ${server.can_read_all_stats ? 'has' : 'lacks'} pg_read_all_stats (pg_monitor)`,
    ];
    w.findings.push(
      finding(
        'visibility',
        'unknown',
        hiddenRows.length > 0
          ? `partial view: ${plural(hiddenRows.length, 'session')} of other roles ${hiddenRows.length === 1 ? 'is' : 'are'} hidden from role ${server.current_user}`
          : `partial view: role ${server.current_user} cannot see other roles' sessions (none are connected now)`,
        ev,
        `role ${server.current_user} is not a superuser and lacks pg_read_all_stats, so other roles' sessions show no state, age, client or query: leaks, blocking and slow work among them cannot be judged, and this diagnosis cannot be OK`,
        [
          statementStep('grant the monitoring role (as a superuser), then diagnose again', ['GRANT pg_monitor TO ', role(server.current_user, server.current_user_oid ?? null), ';'], 'GRANT pg_monitor to this role'),
          step('or diagnose as a role that sees everything', 'diagnose', [['-U', 'postgres']]),
          step('see what this role can see and do', 'check'),
        ],
      ),
    );
    visit(w, 'visibility', 'can the role see every session?', 'no', `${plural(hiddenRows.length, 'session')} of other roles hidden; role ${server.current_user} lacks pg_read_all_stats`);
  } else {
    visit(w, 'visibility', 'can the role see every session?', 'yes', `every session is visible to ${server.current_user}`);
  }
  c.hiddenRows = hiddenRows;
  c.partial = partial;
}

/** capacity: are the slots ordinary roles may use nearly used up? (Its finding comes last.) */
function nodeCapacity(c: Tree): void {
  const { t, server, snap, w } = c;
  const cap = capacityOf({ max_connections: server.max_connections, superuser_reserved: server.superuser_reserved, reserved: server.reserved, client_backends: slotsInUse(snap) });
  const capSev = capacitySeverity(cap, { warnPct: t.capacity_warn_pct, critPct: t.capacity_crit_pct });
  visit(w, 'capacity', 'are the connection slots nearly used up?', capSev, `${cap.client_backends} of ${cap.ordinary_slots} ordinary slots in use (${cap.used_pct}%), headroom ${cap.headroom}`);
  c.cap = cap;
  c.capSev = capSev;
}

/** connection-limit: are roles or databases near their CONNECTION LIMIT? */
function nodeConnectionLimit(c: Tree): void {
  const { facts, t, w } = c;
  const near = nearLimits(facts.limits, { warnPct: t.capacity_warn_pct, critPct: t.capacity_crit_pct });
  if (near.length) {
    const ev = emptyEvidence();
    ev.facts = near.map((l) => `${l.kind} ${l.name}: ${l.connections} of its CONNECTION LIMIT ${l.conn_limit} (${l.used_pct}%)`);
    ev.users = near.filter((l) => l.kind === 'role').map((l) => l.name);
    ev.databases = near.filter((l) => l.kind === 'database').map((l) => l.name);
    const l0 = near[0]!;
    w.findings.push(
      finding(
        'connection-limit',
        worst(...near.map((l) => l.severity)),
        `${l0.kind} ${l0.name} uses ${l0.connections} of its CONNECTION LIMIT ${l0.conn_limit}${near.length > 1 ? `; ${near.length - 1} more near their limit` : ''}`,
        ev,
        'the per-role or per-database limit is lower than the pools configured for it, or that role leaks connections; new connections of that role or database fail with "too many connections for ..."',
        [
          step('see who holds them', 'connections', [['--by', l0.kind === 'role' ? 'user,app' : 'db,app']]),
          statementStep(
            'raise the limit if the pools need it',
            [`ALTER ${l0.kind === 'role' ? 'ROLE' : 'DATABASE'} `, l0.kind === 'role' ? role(l0.name, l0.oid ?? null) : database(l0.name, l0.oid ?? null), ` CONNECTION LIMIT ${Math.max(l0.conn_limit * 2, l0.conn_limit + 10)};`],
            'raise its CONNECTION LIMIT',
          ),
        ],
      ),
    );
    visit(w, 'connection-limit', 'are roles or databases near their CONNECTION LIMIT?', 'yes', ev.facts.join('; '));
  } else {
    visit(w, 'connection-limit', 'are roles or databases near their CONNECTION LIMIT?', 'no', `${facts.limits.length} limit(s) set, none near`);
  }
}

/** who-holds: the largest holders by application, client and user, with their states. */
function nodeWhoHolds(c: Tree): void {
  const { w, sessions } = c;
  const byApp = bucketSessions(sessions, ['app']);
  const rowsOf = new Map(byApp.map((b) => [b.keys.app ?? '', b.rows]));
  const holders: HolderRow[] = byApp.map(({ keys, rows }) => ({
    application: keys.app ?? '',
    count: rows.length,
    states: countByState(rows),
    listeners: rows.filter(isListener).length,
    clients: uniq(nonNull(rows.map(clientOf))).slice(0, 5),
  }));
  {
    const top = holders.slice(0, 5);
    const ev = emptyEvidence();
    ev.sessions = sessions.length;
    ev.applications = top.map((h) => h.application);
    ev.facts = top.map((h) => `${appLabel(h.application)}: ${h.count} (${Object.entries(h.states).map(([s, n]) => `${s} ${n}`).join(', ')})${h.listeners ? `, ${h.listeners} of them LISTEN (idle by design)` : ''}`);
    for (const b of bucketSessions(sessions, ['client']).slice(0, 3)) ev.facts.push(`client ${b.keys.client ?? 'hidden'}: ${b.rows.length}`);
    for (const b of bucketSessions(sessions, ['user']).slice(0, 3)) ev.facts.push(`user ${b.keys.user ?? '?'}: ${b.rows.length}`);
    ev.groups = top.map((h) => ({
      label: appLabel(h.application),
      application: h.application,
      client: h.clients.length === 1 ? h.clients[0]! : null,
      database: null,
      users: uniq(nonNull((rowsOf.get(h.application) ?? []).map((r) => r.usename))),
      state: null,
      wait_event: null,
      count: h.count,
      pids: (rowsOf.get(h.application) ?? []).map((r) => r.pid).slice(0, MAX_PIDS),
      oldest_ms: null,
      statement: null,
      severity: 'info',
    }));
    const h0 = top[0];
    const title = h0
      ? `largest holders: ${top.slice(0, 3).map((h) => `${appLabel(h.application)} ${h.count}`).join(', ')} of ${sessions.length} client sessions`
      : 'no client sessions besides dbdoctor';
    w.findings.push(
      finding('who-holds', 'info', title, ev, 'the shape of who holds the slots points to the branch: idle in transaction (a leak), active on ClientRead (unread results), the same statement everywhere (slow work), Lock waits (blocking), many idle (a pool too large)', [
        step('see the groups by application and state', 'connections', [['--by', 'app,state']]),
        step('and by client address', 'connections', [['--by', 'app,client']]),
      ]),
    );
    visit(w, 'who-holds', 'who holds the connections?', h0 ? 'found' : 'none', title);
  }
  c.holders = holders;
}

/** idle-in-transaction: transactions begun and never ended, by application, client and database. */
function nodeIdleInTransaction(c: Tree): void {
  const { t, snap, w, sessions, scope, ordinary, leakSteps } = c;
  const iit = idleInTransaction(sessions, t.idle_in_transaction_ms);
  const iitFinding = (() => {
    if (iit.length === 0) {
      visit(w, 'idle-in-transaction', `are sessions idle in transaction for ${dur(t.idle_in_transaction_ms)} or more?`, 'none', 'none');
      return null;
    }
    const groups = groupSessions(iit, ['app', 'client', 'db']);
    const eg: EvidenceGroup[] = [];
    const next: NextStep[] = [];
    for (const g of groups) {
      const inGroup = new Set(g.pids);
      const rows = iit.filter((r) => inGroup.has(r.pid));
      const sev = groupSeverity(g.count, g.oldest_state_age_ms, ordinary, t.idle_in_transaction_crit_ms, t);
      const aborted = rows.filter((r) => r.state === 'idle in transaction (aborted)').length;
      eg.push({
        label: `${appLabel(g.app)} at ${g.client ?? 'hidden'}${g.db && g.db !== snap.database ? ` in ${g.db}` : ''}`,
        application: g.app ?? '',
        client: g.client ?? null,
        database: g.db ?? null,
        users: uniq(nonNull(rows.map((r) => r.usename))),
        state: aborted === rows.length ? 'idle in transaction (aborted)' : 'idle in transaction',
        wait_event: null,
        count: g.count,
        pids: g.pids,
        oldest_ms: g.oldest_state_age_ms,
        statement: typicalStatement(rows),
        severity: sev,
      });
      const states = uniq(rows.map((r) => r.state!)).sort();
      if (next.length < 6) next.push(terminateFor(scope, rows, { states, olderThanMs: t.idle_in_transaction_ms }));
    }
    const g0 = eg[0]!;
    const sev = worst(...eg.map((g) => g.severity));
    const title = `${g0.label} holds ${plural(g0.count, 'session')} idle in transaction, oldest ${dur(g0.oldest_ms)}${g0.statement ? `, last statement: ${cut(g0.statement, 60)}` : ''}${eg.length > 1 ? `; ${eg.length - 1} more group(s), ${iit.length} in all` : ''}`;
    const ev = evidenceOf(iit, (r) => r.state_age_ms, eg, [
      `${plural(iit.length, 'session')} idle in transaction for ${dur(t.idle_in_transaction_ms)} or more (${sharePct(iit.length, ordinary)}% of the ordinary slots)`,
      ...eg.slice(0, 5).map((g) => `${g.label}: ${g.count}, oldest ${dur(g.oldest_ms)}, pids ${g.pids.slice(0, 10).join(', ')}${g.pids.length > 10 ? ', ...' : ''}`),
    ]);
    leakSteps.push(...next.slice(0, 2));
    visit(w, 'idle-in-transaction', `are sessions idle in transaction for ${dur(t.idle_in_transaction_ms)} or more?`, sev, `${iit.length} in ${eg.length} group(s); largest ${g0.label} (${g0.count})`);
    return finding(
      'idle-in-transaction',
      sev,
      title,
      ev,
      'a transaction begun and never ended: a missing COMMIT/ROLLBACK, an error path that skips the rollback, or a pool client checked out and never released (no finally). Each holds a slot, its locks, and a snapshot that stops vacuum. Cancelling does nothing to these sessions; only terminating frees them.',
      [...next, listStep('list them with their last statements', [['--state', 'idle in transaction']], g0.application)],
    );
  })();
  if (iitFinding) w.findings.push(iitFinding);
  c.iit = iit;
  c.found.iitFinding = iitFinding;
}

/** unread-results: active sessions waiting on their client (ClientRead/ClientWrite): seeds/000. */
function nodeUnreadResults(c: Tree): void {
  const { t, snap, w, sessions, scope, ordinary, leakSteps } = c;
  const waits = clientWaits(sessions, t.client_wait_ms);
  const unreadFinding = (() => {
    if (waits.length === 0) {
      visit(w, 'unread-results', `are active sessions waiting on their client (ClientRead/ClientWrite) for ${dur(t.client_wait_ms)} or more?`, 'none', 'none');
      return null;
    }
    const byKey = new Map<string, SessionRow[]>();
    for (const r of waits) {
      const k = JSON.stringify([r.application_name, clientOf(r), r.datname, r.wait_event]);
      byKey.set(k, [...(byKey.get(k) ?? []), r]);
    }
    const eg: EvidenceGroup[] = [];
    const next: NextStep[] = [];
    const grouped = [...byKey.values()].sort((a, b) => b.length - a.length);
    for (const rows of grouped) {
      const r0 = rows[0]!;
      const oldest = Math.round(Math.max(...rows.map((r) => r.state_age_ms ?? 0)));
      const client = clientOf(r0);
      eg.push({
        label: `${appLabel(r0.application_name)} at ${client ?? 'hidden'}${r0.datname && r0.datname !== snap.database ? ` in ${r0.datname}` : ''}`,
        application: r0.application_name,
        client,
        database: r0.datname,
        users: uniq(nonNull(rows.map((r) => r.usename))),
        state: 'active',
        wait_event: r0.wait_event,
        count: rows.length,
        pids: rows.map((r) => r.pid).sort((a, b) => a - b),
        oldest_ms: oldest,
        statement: typicalStatement(rows),
        severity: groupSeverity(rows.length, oldest, ordinary, t.client_wait_crit_ms, t),
      });
      if (next.length < 6) next.push(terminateFor(scope, rows, { states: ['active'], olderThanMs: t.client_wait_ms }));
    }
    const g0 = eg[0]!;
    const sev = worst(...eg.map((g) => g.severity));
    const writes = waits.filter((r) => r.wait_event === 'ClientWrite').length;
    const title = `${g0.label} has ${plural(g0.count, 'active session')} waiting on ${g0.wait_event} for up to ${dur(g0.oldest_ms)}: results never read to the end${g0.statement ? ` (${cut(g0.statement, 50)})` : ''}${eg.length > 1 ? `; ${eg.length - 1} more group(s), ${waits.length} in all` : ''}`;
    const ev = evidenceOf(waits, (r) => r.state_age_ms, eg, [
      `${plural(waits.length, 'active session')} waiting on the client for ${dur(t.client_wait_ms)} or more (${sharePct(waits.length, ordinary)}% of the ordinary slots)`,
      ...eg.slice(0, 5).map((g) => `${g.label}: ${g.count} on ${g.wait_event}, oldest ${dur(g.oldest_ms)}, pids ${g.pids.slice(0, 10).join(', ')}${g.pids.length > 10 ? ', ...' : ''}`),
    ]);
    leakSteps.push(...next.slice(0, 2));
    visit(w, 'unread-results', `are active sessions waiting on their client (ClientRead/ClientWrite) for ${dur(t.client_wait_ms)} or more?`, sev, `${waits.length} in ${eg.length} group(s); largest ${g0.label} (${g0.count})`);
    const reads = waits.length - writes;
    const cause = [
      reads > 0
        ? 'ClientRead while active: the client began a result set (a cursor, a stream, rows not iterated to the end) and neither finished nor closed it, as in seeds/000, where rows were not closed on error paths. The server waits for the client forever; statement_timeout and idle_in_transaction_session_timeout do not end it.'
        : '',
      writes > 0 ? 'ClientWrite: the server is blocked sending results the client does not read (a slow or frozen consumer, or a dead peer the network has not reported).' : '',
    ]
      .filter(Boolean)
      .join(' ');
    return finding('unread-results', sev, title, ev, cause, [...next, textStep('in the application: close result sets on every path (defer rows.Close(), finally { cursor.close() }), and read them to the end')]);
  })();
  if (unreadFinding) w.findings.push(unreadFinding);
  c.waits = waits;
  c.found.unreadFinding = unreadFinding;
}

/** idle-pool: many old idle sessions from one application; LISTEN sessions are idle by design. */
function nodeIdlePool(c: Tree): void {
  const { t, snap, w, sessions, scope, capSev, ordinary, leakSteps } = c;
  const idleOld = sessions.filter((r) => r.state === 'idle' && (r.state_age_ms ?? -1) >= t.idle_ms);
  const listenersOld = idleOld.filter(isListener);
  const idleCandidates = idleOld.filter((r) => !isListener(r));
  const idleGroups = groupSessions(idleCandidates, ['app', 'db']).filter((g) => g.count >= t.idle_pool_sessions);
  const idleFinding = (() => {
    const listenNote = listenersOld.length ? `; ${plural(listenersOld.length, 'LISTEN session')} left out (idle by design)` : '';
    if (idleGroups.length === 0) {
      visit(w, 'idle-pool', `does one application keep ${t.idle_pool_sessions} or more sessions idle for ${dur(t.idle_ms)} or more?`, 'none', `${idleCandidates.length} idle that long in all${listenNote}`);
      return null;
    }
    const sev: Severity = capSev === 'warning' || capSev === 'critical' ? 'warning' : 'info';
    const eg: EvidenceGroup[] = [];
    const next: NextStep[] = [];
    const rowsAll: SessionRow[] = [];
    for (const g of idleGroups) {
      const inGroup = new Set(g.pids);
      const rows = idleCandidates.filter((r) => inGroup.has(r.pid));
      rowsAll.push(...rows);
      eg.push({
        label: `${appLabel(g.app)}${g.db && g.db !== snap.database ? ` in ${g.db}` : ''}`,
        application: g.app ?? '',
        client: null,
        database: g.db ?? null,
        users: uniq(nonNull(rows.map((r) => r.usename))),
        state: 'idle',
        wait_event: null,
        count: g.count,
        pids: g.pids,
        oldest_ms: g.oldest_state_age_ms,
        statement: null,
        severity: sev,
      });
      if (next.length < 4) next.push(terminateFor(scope, rows, { states: ['idle'], olderThanMs: t.idle_ms }));
    }
    const g0 = eg[0]!;
    const ev = evidenceOf(rowsAll, (r) => r.state_age_ms, eg, [
      ...eg.map((g) => `${g.label}: ${g.count} idle for ${dur(t.idle_ms)} or more, oldest ${dur(g.oldest_ms)} (${sharePct(g.count, ordinary)}% of the ordinary slots)`),
      ...(listenersOld.length ? [`${plural(listenersOld.length, 'LISTEN session')} are idle by design and left out (seeds/001: a listen pool at 100% is normal)`] : []),
    ]);
    if (sev === 'warning') leakSteps.push(next[0]!);
    visit(w, 'idle-pool', `does one application keep ${t.idle_pool_sessions} or more sessions idle for ${dur(t.idle_ms)} or more?`, sev, `${g0.label}: ${g0.count}${listenNote}`);
    return finding(
      'idle-pool',
      sev,
      `${g0.label} keeps ${plural(g0.count, 'session')} idle for ${dur(t.idle_ms)} or more (oldest ${dur(g0.oldest_ms)})${eg.length > 1 ? `; ${eg.length - 1} more application(s)` : ''}`,
      ev,
      `a pool larger than its load needs (or one per process times many processes), or clients leaked without being closed. ${sev === 'warning' ? 'With the slots nearly used up, these idle sessions are what other clients are missing.' : 'Not urgent while there is headroom.'}`,
      [...next, textStep("in the application: lower the pool's maximum size and set its idle timeout (e.g. idleTimeoutMillis), or put PgBouncer in front")],
    );
  })();
  if (idleFinding) w.findings.push(idleFinding);
  c.idleCandidates = idleCandidates;
  c.idleGroups = idleGroups;
  c.found.idleFinding = idleFinding;
}

/** blocking: root blockers, whom they block and for how long. */
function nodeBlocking(c: Tree): void {
  const { t, snap, w } = c;
  const blocking = buildBlockingReport(snap);
  const blockFinding = (() => {
    if (blocking.roots.length === 0 && blocking.cycles.length === 0) {
      visit(w, 'blocking', 'is anyone blocked behind a lock?', 'none', 'no session waits on a lock held by another');
      return null;
    }
    const eg: EvidenceGroup[] = [];
    const next: NextStep[] = [step('see the blocking tree', 'locks')];
    for (const r of blocking.roots) {
      const wait = r.longest_wait_ms;
      let sev: Severity = 'info';
      if ((wait ?? 0) >= t.lock_wait_ms) {
        sev = rootIit(r) || r.pid === 0 || r.all.length >= t.blocked_crit_sessions || (wait ?? 0) >= t.lock_wait_crit_ms ? 'critical' : 'warning';
      }
      const s = r.session;
      const what = r.pid === 0 ? 'a prepared transaction' : s ? `pid ${r.pid} (${appLabel(s.application_name)}, ${s.state ?? 'hidden'}${s.state_age_ms !== null ? ` for ${dur(s.state_age_ms)}` : ''})` : `pid ${r.pid} (gone or hidden)`;
      const locks = r.waited_locks.map((l) => (l.mode ? `${l.mode} on ${l.relation ?? l.locktype}` : l.locktype)).join(', ');
      eg.push({
        label: what,
        application: s?.application_name ?? null,
        client: s ? clientOf(s) : null,
        database: s?.datname ?? null,
        users: nonNull([s?.usename]),
        state: s?.state ?? null,
        wait_event: null,
        count: r.all.length,
        pids: [r.pid, ...r.all],
        oldest_ms: wait === null ? null : Math.round(wait),
        statement: s && isVisible(s) ? cut(s.query) : null,
        severity: sev,
      });
      if (sev !== 'info' && next.length < 5) {
        if (r.pid === 0) next.push(...r.next);
        else if (s) {
          const args: Arg[] = [['--pid', String(r.pid)]];
          if (r.action === 'cancel_then_terminate') args.push('--cancel-first');
          if (s.superuser) args.push('--include-superusers');
          next.push(step(`${rootIit(r) ? 'the root is idle in transaction: cancelling does nothing; terminate it' : r.action === 'cancel_then_terminate' ? 'the root is running a statement: cancel it first, terminate if it persists' : r.advice}${locks ? ` (waited on: ${locks})` : ''}`, 'terminate', args));
        }
      }
    }
    for (const c of blocking.cycles) {
      eg.push({ label: `lock cycle among pids ${c.join(', ')}`, application: null, client: null, database: null, users: [], state: null, wait_event: null, count: c.length, pids: c, oldest_ms: null, statement: null, severity: 'warning' });
    }
    if (next.length > 1 && blocking.roots.filter((r) => r.pid !== 0).length > 1) next.push(step('or terminate every root blocker at once (a plan is shown first)', 'terminate', ['--blockers']));
    const sev = worst(...eg.map((g) => g.severity));
    const r0 = blocking.roots[0];
    const g0 = eg[0]!;
    const title = r0
      ? `${g0.label} blocks ${plural(r0.all.length, 'session')}${r0.longest_wait_ms !== null ? `, longest wait ${dur(r0.longest_wait_ms)}` : ''}${blocking.roots.length > 1 ? `; ${blocking.roots.length - 1} more root blocker(s)` : ''}${blocking.cycles.length ? `; ${plural(blocking.cycles.length, 'lock cycle')}` : ''}`
      : `${plural(blocking.cycles.length, 'lock cycle')} (a deadlock the server breaks after deadlock_timeout)`;
    const blocked = uniq(blocking.roots.flatMap((r) => r.all));
    const ev: Evidence = {
      ...emptyEvidence(),
      sessions: blocking.waiting,
      pids: uniq([...blocking.roots.map((r) => r.pid), ...blocked]).slice(0, MAX_PIDS),
      applications: uniq(nonNull(eg.map((g) => g.application))),
      clients: uniq(nonNull(eg.map((g) => g.client))),
      users: uniq(eg.flatMap((g) => g.users)),
      databases: uniq(nonNull(eg.map((g) => g.database))),
      oldest_ms: r0?.longest_wait_ms === null || r0 === undefined ? null : Math.round(r0.longest_wait_ms),
      statements: uniq(nonNull(eg.map((g) => g.statement))).slice(0, 5),
      facts: [
        `${plural(blocking.waiting, 'session')} ${blocking.waiting === 1 ? 'waits' : 'wait'} on locks; ${plural(blocking.roots.length, 'root blocker')}`,
        ...blocking.roots.slice(0, 5).map((r) => `root pid ${r.pid}: blocks ${r.direct.length} directly, ${r.all.length} in all (pids ${r.all.slice(0, 10).join(', ')}${r.all.length > 10 ? ', ...' : ''}), longest wait ${dur(r.longest_wait_ms)}${r.holds_advisory ? ', holds advisory locks' : ''}`),
      ],
      groups: eg,
    };
    visit(w, 'blocking', 'is anyone blocked behind a lock?', sev === 'info' ? 'short-waits' : sev, title);
    const iitRoot = r0 ? rootIit(r0) : false;
    return finding(
      'blocking',
      sev,
      title,
      ev,
      iitRoot
        ? 'the root blocker is idle in transaction: the application took locks (an UPDATE, a SELECT ... FOR UPDATE) and stopped without COMMIT or ROLLBACK. Nothing releases them until it does or the session ends; every waiter holds a connection meanwhile.'
        : r0?.pid === 0
          ? 'a prepared transaction (two-phase commit) holds the lock; it survives restarts and cannot be terminated, only committed or rolled back'
          : 'the root blocker is running a long statement or transaction (a migration, a batch, a slow query) that holds the locks the others need',
      next,
    );
  })();
  if (blockFinding) w.findings.push(blockFinding);
  c.blocking = blocking;
  c.found.blockFinding = blockFinding;
}

/** long-queries: active statements running too long (lock and client waits are judged apart). */
function nodeLongQueries(c: Tree): void {
  const { facts, t, w, sessions, scope } = c;
  const longQ = longActiveQueries(sessions, t.long_query_ms).filter((r) => !lockWaiters(r));
  const pgss = facts.statements?.pg_stat_statements === 'available' ? facts.statements : null;
  const pgssHint: NextStep[] = pgss
    ? []
    : [textStep('install pg_stat_statements (shared_preload_libraries, then CREATE EXTENSION pg_stat_statements) to see which statements cost the most over time')];
  const longFinding = (() => {
    if (longQ.length === 0) {
      visit(w, 'long-queries', `are queries running for ${dur(t.long_query_ms)} or more?`, 'none', 'none (lock waiters and client waits are judged apart)');
      return null;
    }
    const sev: Severity = (longQ[0]!.query_age_ms ?? 0) >= t.long_query_crit_ms ? 'critical' : 'warning';
    const top = longQ.slice(0, 10);
    const eg: EvidenceGroup[] = top.map((r) => ({
      label: `pid ${r.pid} (${appLabel(r.application_name)})`,
      application: r.application_name,
      client: clientOf(r),
      database: r.datname,
      users: nonNull([r.usename]),
      state: r.state,
      wait_event: r.wait_event ? `${r.wait_event_type}:${r.wait_event}` : null,
      count: 1,
      pids: [r.pid],
      oldest_ms: r.query_age_ms === null ? null : Math.round(r.query_age_ms),
      statement: cut(r.query),
      severity: (r.query_age_ms ?? 0) >= t.long_query_crit_ms ? 'critical' : 'warning',
    }));
    const r0 = longQ[0]!;
    const cancelLongest = terminateFor(scope, [r0], { states: ['active'], olderThanMs: 0, cancelFirst: true, pidsOnly: true });
    visit(w, 'long-queries', `are queries running for ${dur(t.long_query_ms)} or more?`, sev, `${longQ.length}; longest pid ${r0.pid} for ${dur(r0.query_age_ms)}`);
    return finding(
      'long-queries',
      sev,
      `${plural(longQ.length, 'query', 'queries')} running for ${dur(t.long_query_ms)} or more; longest pid ${r0.pid} (${appLabel(r0.application_name)}) for ${dur(r0.query_age_ms)}: ${cut(r0.query, 60)}`,
      evidenceOf(longQ, (r) => r.query_age_ms, eg, [`${plural(longQ.length, 'active query', 'active queries')} over ${dur(t.long_query_ms)}, ${longQ.filter((r) => (r.query_age_ms ?? 0) >= t.long_query_crit_ms).length} over ${dur(t.long_query_crit_ms)}`]),
      'a statement that reads far more than it returns (a missing index, a sequential scan of a big table, a plan that changed), a batch job, or a query stuck on I/O. Each holds its connection for as long as it runs.',
      [
        step('see them with their durations and statements', 'queries', [['--min-duration', durationArg(t.long_query_ms)]]),
        { ...cancelLongest, text: `cancel the longest (pid ${r0.pid}), terminating it only if the cancel does not end it` },
        textStep('run EXPLAIN (ANALYZE, BUFFERS) on the statement to find the sequential scan or bad join'),
        ...pgssHint,
      ],
      'long-queries',
    );
  })();
  if (longFinding) w.findings.push(longFinding);
  c.longQ = longQ;
  c.pgss = pgss;
  c.pgssHint = pgssHint;
  c.found.longFinding = longFinding;
}

/** same-statement: one statement running in many sessions at once: seeds/004. */
function nodeSameStatement(c: Tree): void {
  const { t, w, sessions, scope, ordinary, pgss, pgssHint } = c;
  const sameCandidates = sessions.filter((r) => r.state === 'active' && !isClientWait(r) && !lockWaiters(r) && (r.query_age_ms ?? -1) >= t.same_statement_age_ms);
  const sameGroups = statementGroups(sameCandidates).filter((g) => g.count >= t.same_statement_sessions);
  const sameFinding = (() => {
    if (sameGroups.length === 0) {
      visit(w, 'same-statement', `are ${t.same_statement_sessions} or more sessions running the same statement for ${dur(t.same_statement_age_ms)} or more?`, 'none', 'none');
      return null;
    }
    const eg: EvidenceGroup[] = sameGroups.slice(0, 5).map((g) => ({
      label: `${plural(g.count, 'session')} of ${g.applications.slice(0, 3).map(appLabel).join(', ')}`,
      application: g.applications[0] ?? null,
      client: null,
      database: null,
      users: uniq(nonNull(sameCandidates.filter((r) => g.pids.includes(r.pid)).map((r) => r.usename))),
      state: 'active',
      wait_event: null,
      count: g.count,
      pids: g.pids,
      oldest_ms: g.oldest_ms,
      statement: cut(g.example),
      severity: sharePct(g.count, ordinary) >= t.group_share_crit_pct ? 'critical' : 'warning',
    }));
    const g0 = sameGroups[0]!;
    const sev = worst(...eg.map((g) => g.severity));
    const grouped = new Set(sameGroups.flatMap((g) => g.pids));
    const rows = sameCandidates.filter((r) => grouped.has(r.pid));
    const factsList = sameGroups.slice(0, 5).map((g) => `${g.count} sessions (${g.applications.slice(0, 3).map(appLabel).join(', ')}), oldest ${dur(g.oldest_ms)}, ${dur(g.total_ms)} of connection time in all, holding ${sharePct(g.count, ordinary)}% of the ordinary slots: ${cut(g.statement, 120)}`);
    if (pgss) {
      for (const g of sameGroups.slice(0, 3)) {
        const hit = [...pgss.by_total, ...pgss.by_mean].find((s) => s.query && normalizeStatement(s.query) === g.statement);
        if (hit) factsList.push(`pg_stat_statements: ${Math.round(hit.calls)} calls, mean ${dur(hit.mean_ms)}, max ${dur(hit.max_ms)}, ${dur(hit.total_ms)} in all`);
      }
    }
    const rowsG0 = sameCandidates.filter((r) => g0.pids.includes(r.pid));
    const relieve = terminateFor(scope, rowsG0, { states: ['active'], olderThanMs: 0, cancelFirst: true, pidsOnly: true });
    visit(w, 'same-statement', `are ${t.same_statement_sessions} or more sessions running the same statement for ${dur(t.same_statement_age_ms)} or more?`, sev, `${sameGroups.length} statement(s); largest ${g0.count} sessions`);
    return finding(
      'same-statement',
      sev,
      `${g0.count} sessions run the same statement at once (${g0.applications.slice(0, 2).map(appLabel).join(', ')}, oldest ${dur(g0.oldest_ms)}): ${cut(g0.statement, 70)}`,
      evidenceOf(rows, (r) => r.query_age_ms, eg, factsList),
      'one slow statement run by many requests at once holds a connection each, so a burst of traffic exhausts the pool (seeds/004: a dedup query scanning 150,000 rows took 10-15s in 50+ sessions). Usually a missing or unselective index; the fix is the index or the query, not more connections.',
      [
        step('see them grouped by statement', 'queries', ['--group']),
        { ...relieve, text: `relieve the pool now: cancel the ${g0.count} sessions, terminating only those that do not stop (a plan is shown first)` },
        textStep('EXPLAIN (ANALYZE, BUFFERS) the statement; an index matching its WHERE clause (seeds/004: a partial index) is the lasting fix; a statement_timeout bounds the damage'),
        ...pgssHint,
      ],
    );
  })();
  if (sameFinding) w.findings.push(sameFinding);
  c.sameCandidates = sameCandidates;
  c.sameGroups = sameGroups;
  c.found.sameFinding = sameFinding;
}

/** top-statements: what pg_stat_statements says costs the most, when it is available. */
function nodeTopStatements(c: Tree): void {
  const { facts, server, snap, w } = c;
  const st = facts.statements;
  if (!st) {
    const why = facts.unavailable.find((u) => u.what === 'statements')?.reason ?? 'not read';
    visit(w, 'top-statements', 'which statements cost the most over time (pg_stat_statements)?', 'unavailable', why);
  } else if (st.pg_stat_statements !== 'available') {
    const why: Record<PgssStatus, string> = {
      available: '',
      not_installed: `pg_stat_statements is not installed in database ${snap.database} (CREATE EXTENSION pg_stat_statements; the library must be in shared_preload_libraries)`,
      not_loaded: 'the extension exists but its library is not in shared_preload_libraries (needs a restart)',
      not_readable: `role ${server.current_user} may not read pg_stat_statements`,
    };
    visit(w, 'top-statements', 'which statements cost the most over time (pg_stat_statements)?', 'unavailable', why[st.pg_stat_statements]);
  } else if (st.by_total.length === 0) {
    visit(w, 'top-statements', 'which statements cost the most over time (pg_stat_statements)?', 'none', 'pg_stat_statements holds no entries yet');
  } else {
    const fmt = (s: TopStatement, pct: boolean) =>
      `${dur(s.total_ms)} in all${pct && st.total_exec_ms ? ` (${Math.round((s.total_ms / st.total_exec_ms) * 1000) / 10}%)` : ''}, ${Math.round(s.calls)} calls, mean ${dur(s.mean_ms)}, max ${dur(s.max_ms)}${s.role ? `, role ${s.role}` : ''}: ${cut(s.query, 100)}`;
    const ev = emptyEvidence();
    ev.statements = uniq(st.by_total.map((s) => cut(s.query))).slice(0, 5);
    ev.facts = [
      `${st.entries ?? 0} entries, ${dur(st.total_exec_ms)} of execution time${st.stats_reset ? ` since ${st.stats_reset}` : ''}`,
      ...st.by_total.map((s) => `by total: ${fmt(s, true)}`),
      ...st.by_mean.map((s) => `by mean: ${fmt(s, false)}`),
    ];
    if (!server.can_read_all_stats) ev.facts.push("other roles' statement texts show as <insufficient privilege> without pg_read_all_stats");
    ev.users = uniq(nonNull(st.by_total.map((s) => s.role)));
    ev.databases = uniq(nonNull(st.by_total.map((s) => s.database)));
    const s0 = st.by_total[0]!;
    w.findings.push(
      finding(
        'top-statements',
        'info',
        `pg_stat_statements: the costliest statement took ${dur(s0.total_ms)} in ${Math.round(s0.calls)} calls (mean ${dur(s0.mean_ms)}): ${cut(s0.query, 60)}`,
        ev,
        'statements with a high total time are where the server spends its time; a high mean time is what holds a connection per call. Either is where an index or a rewrite pays most.',
        [step('see what runs now, grouped by statement', 'queries', ['--group']), textStep('EXPLAIN (ANALYZE, BUFFERS) the top statements'), runbookStep('top-statements')],
      ),
    );
    visit(w, 'top-statements', 'which statements cost the most over time (pg_stat_statements)?', 'found', `${st.by_total.length} by total, ${st.by_mean.length} by mean`);
  }
}

/** seq-scans: big tables read mostly by sequential scans. */
function nodeSeqScans(c: Tree): void {
  const { facts, t, w } = c;
  const st = facts.statements;
  if (st?.seq_scan_tables.length) {
    const ev = emptyEvidence();
    ev.facts = st.seq_scan_tables.map((x) => `${x.table}: ${Math.round(x.seq_scan)} sequential scans read ${Math.round(x.seq_tup_read)} rows (${Math.round(x.live_rows)} live rows; ${Math.round(x.idx_scan)} index scans)`);
    const x0 = st.seq_scan_tables[0]!;
    w.findings.push(
      finding(
        'seq-scans',
        'info',
        `${plural(st.seq_scan_tables.length, 'table')} of ${t.seq_scan_rows}+ rows read mostly by sequential scans; most: ${x0.table} (${Math.round(x0.seq_tup_read)} rows read)`,
        ev,
        'queries that filter these tables without a matching index read every row; as the table grows, each call holds its connection longer (seeds/003, seeds/004)',
        [step('see which statements run now', 'queries', ['--group']), textStep(`find the statements on ${x0.table} (pg_stat_statements) and EXPLAIN them; add the index their WHERE clause needs (CREATE INDEX CONCURRENTLY)`), runbookStep('seq-scans')],
      ),
    );
    visit(w, 'seq-scans', 'are big tables read mostly by sequential scans?', 'found', `${st.seq_scan_tables.length} table(s)`);
  } else {
    visit(w, 'seq-scans', 'are big tables read mostly by sequential scans?', st ? 'none' : 'unavailable', st ? `no table of ${t.seq_scan_rows}+ rows is read mostly by sequential scans` : 'not read');
  }
}

/** setting-* and settings: the guards that would have stopped what was found, and the others that are off. */
function nodeSettings(c: Tree): void {
  const { facts, t, snap, w, iit, waits, idleCandidates, idleGroups, blocking, longQ, sameCandidates, sameGroups } = c;
  const iitFinding = c.found.iitFinding;
  const unreadFinding = c.found.unreadFinding;
  const idleFinding = c.found.idleFinding;
  const blockFinding = c.found.blockFinding;
  const longFinding = c.found.longFinding;
  const sameFinding = c.found.sameFinding;
  if (!facts.settings) {
    const why = facts.unavailable.find((u) => u.what === 'settings')?.reason ?? 'not read';
    visit(w, 'settings', 'which guards were off?', 'unavailable', why);
  } else {
    const view = new SettingsView(facts.settings);
    const major = Math.floor(facts.settings.server_version_num / 10000);
    const has = (f: Finding | null, min: Severity = 'warning') => f !== null && RANK[f.severity] >= RANK[min];
    const guards: GuardSpec[] = [];
    const iitRoots = blocking.roots.filter((r) => rootIit(r) && r.session).map((r) => r.session!);
    if (has(iitFinding) || (has(blockFinding) && iitRoots.length)) {
      guards.push({
        node: 'setting-idle-in-transaction-session-timeout',
        name: 'idle_in_transaction_session_timeout',
        value: pgInterval(Math.max(t.idle_in_transaction_crit_ms, 60_000)),
        rows: [...iit, ...iitRoots],
        severity: 'warning',
        why: 'ended these idle-in-transaction sessions and released their slots and locks',
        because: iitFinding ? `${plural(iit.length, 'session')} idle in transaction` : 'a root blocker idle in transaction',
        systemWide: true,
      });
    }
    if (has(longFinding) || has(sameFinding)) {
      guards.push({
        node: 'setting-statement-timeout',
        name: 'statement_timeout',
        value: pgInterval(t.long_query_ms),
        rows: [...longQ, ...sameCandidates.filter((r) => sameGroups.some((g) => g.pids.includes(r.pid)))],
        severity: 'warning',
        why: 'cancelled statements running longer than the limit and freed their connections',
        because: longFinding ? `${plural(longQ.length, 'long query', 'long queries')}` : 'many sessions running the same slow statement',
        systemWide: false,
        caution: 'Set it per role (the application), not in postgresql.conf, and give batch roles a higher value.',
      });
    }
    if (has(blockFinding)) {
      const byPid = new Map(snap.rows.map((r) => [r.pid, r]));
      const waiters = blocking.roots.flatMap((r) => r.all).map((p) => byPid.get(p)).filter((x): x is SessionRow => Boolean(x));
      guards.push({
        node: 'setting-lock-timeout',
        name: 'lock_timeout',
        value: pgInterval(t.lock_wait_crit_ms),
        rows: waiters,
        severity: 'warning',
        why: 'made the waiters fail fast instead of piling up behind the blocker, each holding a connection',
        because: `${plural(waiters.length, 'session')} waiting on locks`,
        systemWide: false,
        caution: 'Set it per role; the application must retry on SQLSTATE 55P03.',
      });
    }
    if (has(idleFinding) && major >= 14) {
      guards.push({
        node: 'setting-idle-session-timeout',
        name: 'idle_session_timeout',
        value: pgInterval(Math.max(t.idle_ms * 3, 3_600_000)),
        rows: idleCandidates.filter((r) => idleGroups.some((g) => g.pids.includes(r.pid))),
        severity: 'warning',
        why: 'closed sessions left idle far longer than any pool keeps them',
        because: 'applications keeping many sessions idle',
        systemWide: false,
        caution: "Pools reconnect transparently only if they validate connections; set it per role, above the pool's own idle timeout, never for LISTEN roles.",
      });
    }
    if (has(unreadFinding) && major >= 17) {
      guards.push({
        node: 'setting-transaction-timeout',
        name: 'transaction_timeout',
        value: pgInterval(t.client_wait_crit_ms),
        rows: waits,
        severity: 'warning',
        why: 'ended these half-read result sets: it is the only server setting that does (statement_timeout and idle_in_transaction_session_timeout do not)',
        because: `${plural(waits.length, 'active session')} waiting on their client`,
        systemWide: false,
        caution: 'It ends any transaction longer than the limit, batch jobs included: set it per role.',
      });
    }
    const clientWrites = waits.filter((r) => r.wait_event === 'ClientWrite');
    const guardFindings: Finding[] = [];
    for (const g of guards) {
      const f = guardFinding(view, g);
      if (f) guardFindings.push(f);
      visit(w, g.node, `was ${g.name} set for the roles of this incident?`, f ? 'off' : 'set', f ? f.title : `set for every role involved (or not known)`);
    }
    // TCP keepalives: dead peers behind ClientWrite waits.
    if (clientWrites.length) {
      const idle = view.get('tcp_keepalives_idle');
      const idleS = idle ? settingNumber(view.serverValue('tcp_keepalives_idle'), null, 'integer') : null;
      if (idleS !== null && (idleS === 0 || idleS > 300)) {
        const ev = emptyEvidence();
        ev.sessions = clientWrites.length;
        ev.pids = clientWrites.map((r) => r.pid);
        ev.facts = [`tcp_keepalives_idle = ${idleS === 0 ? '0 (the OS default, 7200s on Linux)' : `${idleS}s`}`, `${clientWrites.length} sessions blocked writing to their client`];
        const f = finding(
          'setting-tcp-keepalives',
          'warning',
          `TCP keepalives are at ${idleS === 0 ? 'the OS default (2 hours on Linux)' : `${idleS}s`}: a dead client behind a ClientWrite wait is noticed late`,
          ev,
          'a client that vanished (crash, NAT or load-balancer timeout) leaves the server blocked writing until TCP gives up; keepalives and tcp_user_timeout bound that',
          [
            sqlStep('probe idle connections after 60s, every 10s, 6 times; give up on unacknowledged data after 60s', "ALTER SYSTEM SET tcp_keepalives_idle = 60; ALTER SYSTEM SET tcp_keepalives_interval = 10; ALTER SYSTEM SET tcp_keepalives_count = 6; ALTER SYSTEM SET tcp_user_timeout = '60s'; SELECT pg_reload_conf();"),
            runbookStep('setting-tcp-keepalives'),
          ],
        );
        guardFindings.push(f);
        visit(w, 'setting-tcp-keepalives', 'do TCP keepalives notice dead clients soon?', 'no', f.title);
      } else {
        visit(w, 'setting-tcp-keepalives', 'do TCP keepalives notice dead clients soon?', idleS === null ? 'unknown' : 'yes', `tcp_keepalives_idle = ${idleS ?? 'unknown'}`);
      }
    }
    // log_lock_waits: the evidence of a blocking incident in the server log.
    const llw = view.get('log_lock_waits');
    const llwOff = llw ? settingNumber(view.serverValue('log_lock_waits'), null, 'bool') === 0 : false;
    if (has(blockFinding)) {
      if (llwOff) {
        const ev = emptyEvidence();
        ev.facts = ['log_lock_waits = off', `${plural(blocking.waiting, 'session')} ${blocking.waiting === 1 ? 'waits' : 'wait'} on locks now, and the server log holds no trace of it`];
        guardFindings.push(
          finding(
            'setting-log-lock-waits',
            'warning',
            'log_lock_waits is off: lock waits longer than deadlock_timeout leave no trace in the server log',
            ev,
            'with log_lock_waits on, every wait longer than deadlock_timeout (1s by default) is logged with the holders and waiters: the evidence of this incident after it is over. It is cheap.',
            [sqlStep('turn it on (takes effect on reload)', 'ALTER SYSTEM SET log_lock_waits = on; SELECT pg_reload_conf();'), runbookStep('setting-log-lock-waits')],
          ),
        );
      }
      visit(w, 'setting-log-lock-waits', 'are lock waits logged?', llwOff ? 'off' : 'on', `log_lock_waits = ${llw ? view.serverValue('log_lock_waits') ?? 'unknown' : 'unknown'}`);
    }
    w.findings.push(...guardFindings);

    // The other guards, off at server level with no incident now: one info finding.
    const reported = new Set(guardFindings.map((f) => f.id));
    const offNow: Array<{ node: NodeId; name: string; fix: string }> = [];
    const serverOff = (name: string) => {
      const s = view.get(name);
      if (!s) return false;
      const n = settingNumber(view.serverValue(name), s.unit, s.vartype);
      return n === 0;
    };
    const candidates: Array<{ node: NodeId; name: string; fix: string }> = [
      { node: 'setting-idle-in-transaction-session-timeout', name: 'idle_in_transaction_session_timeout', fix: `ALTER SYSTEM SET idle_in_transaction_session_timeout = '${pgInterval(Math.max(t.idle_in_transaction_crit_ms, 60_000))}'; SELECT pg_reload_conf();` },
      { node: 'setting-statement-timeout', name: 'statement_timeout', fix: `ALTER ROLE <app_role> SET statement_timeout = '${pgInterval(t.long_query_ms)}';` },
      { node: 'setting-lock-timeout', name: 'lock_timeout', fix: `ALTER ROLE <app_role> SET lock_timeout = '${pgInterval(t.lock_wait_crit_ms)}';` },
      { node: 'setting-log-lock-waits', name: 'log_lock_waits', fix: 'ALTER SYSTEM SET log_lock_waits = on; SELECT pg_reload_conf();' },
    ];
    if (major >= 17) candidates.push({ node: 'setting-transaction-timeout', name: 'transaction_timeout', fix: `ALTER ROLE <app_role> SET transaction_timeout = '${pgInterval(t.client_wait_crit_ms)}';` });
    for (const c of candidates) if (!reported.has(c.node) && serverOff(c.name)) offNow.push(c);
    const overridesOff = facts.settings.overrides.filter((o) => {
      const s = view.get(o.name);
      return s && settingNumber(o.value, s.unit, s.vartype) === 0 && settingNumber(view.serverValue(o.name), s.unit, s.vartype) !== 0 && view.serverValue(o.name) !== null;
    });
    if (offNow.length || overridesOff.length) {
      const ev = emptyEvidence();
      ev.facts = [
        ...offNow.map((c) => `${c.name} is off at server level`),
        ...overridesOff.map((o) => `${o.role ? `role ${o.role}` : 'every role'}${o.database ? ` in database ${o.database}` : ''} turns ${o.name} off (${o.value}) although the server sets it`),
      ];
      w.findings.push(
        finding(
          'settings',
          'info',
          `guards that are off: ${uniq([...offNow.map((c) => c.name), ...overridesOff.map((o) => o.name)]).join(', ')}`,
          ev,
          'none of them is behind a finding now; each bounds one kind of incident (a forgotten transaction, a runaway statement, a pile-up behind a lock) before it exhausts the pool',
          [...offNow.slice(0, 4).map((c) => sqlStep(`turn on ${c.name}`, c.fix)), runbookStep('settings')],
        ),
      );
      visit(w, 'settings', 'which other guards are off?', 'some', ev.facts.join('; '));
    } else {
      visit(w, 'settings', 'which other guards are off?', 'none', 'every guard checked is set (or already reported)');
    }
  }
}

/** The capacity finding, written last: by then the causes are known. */
function nodeCapacityFinding(c: Tree): void {
  const { server, w, cap, capSev, holders, leakSteps } = c;
  {
    const ev = emptyEvidence();
    ev.sessions = cap.client_backends;
    ev.facts = [
      `${cap.client_backends} client backends (dbdoctor's own included) of ${cap.ordinary_slots} slots ordinary roles may use (${cap.used_pct}%)`,
      `max_connections ${cap.max_connections}, superuser_reserved_connections ${cap.superuser_reserved}${server.server_version_num >= 160000 ? `, reserved_connections ${cap.reserved}` : ''}`,
      `headroom ${cap.headroom} (${cap.headroom_pct}%)`,
    ];
    const h0 = holders[0];
    if (h0) ev.facts.push(`largest holder: ${appLabel(h0.application)} with ${h0.count} (${sharePct(h0.count, cap.ordinary_slots)}%)`);
    ev.applications = holders.slice(0, 5).map((h) => h.application);
    const causes = w.findings.filter((f) => ['idle-in-transaction', 'unread-results', 'idle-pool', 'blocking', 'same-statement', 'long-queries'].includes(f.id) && RANK[f.severity] >= RANK.warning);
    const title = `${cap.client_backends} of ${cap.ordinary_slots} ordinary connection slots in use (${cap.used_pct}%), headroom ${cap.headroom}`;
    const cause =
      capSev === 'ok'
        ? 'enough headroom'
        : causes.length
          ? `the slots are held by: ${causes.map((f) => f.id).join(', ')} (see those findings); raising max_connections would only delay the next exhaustion`
          : h0
            ? `${appLabel(h0.application)} holds the most; a traffic spike, pools sized larger than the server, or a leak that has not aged past the thresholds yet`
            : 'superuser or reserved-slot sessions';
    w.findings.push(
      finding(
        'capacity',
        capSev,
        title,
        ev,
        cause,
        [step('see who holds the slots', 'connections', [['--by', 'app,state']]), ...(capSev === 'ok' ? [] : leakSteps.slice(0, 3))],
      ),
    );
  }
}

/** Decides. Pure: the same facts and thresholds always give the same report. */
export function diagnose(facts: DiagnoseFacts, t: Thresholds = DEFAULT_THRESHOLDS): DiagnoseReport {
  if (!facts.connect.ok) return connectFailureReport(facts as DiagnoseFacts & { connect: { ok: false } }, t);
  if (facts.gather_error || !facts.server || !facts.activity) {
    return gatherErrorReport(facts, t, facts.gather_error ?? { cause: 'no_facts', message: 'no server facts or activity snapshot', hint: null, exit_code: 3 });
  }
  const server = facts.server;
  const snap = facts.activity;
  const sessions = sessionsOf(snap);
  // Filled in node by node, in the order of the tree; each node reads what the earlier ones left.
  const c = { facts, t, server, snap, sessions, w: { findings: [], path: [] }, scope: { snapshot: snap, sessions }, leakSteps: [], found: {} } as unknown as Tree;
  visit(c.w, 'connect', 'can dbdoctor connect?', 'yes', `connected as ${server.current_user} to database ${server.current_database} in ${Math.round(facts.connect.connect_ms)} ms`);
  nodeVisibility(c);
  nodeCapacity(c);
  c.ordinary = c.cap.ordinary_slots;
  nodeConnectionLimit(c);
  nodeWhoHolds(c);
  nodeIdleInTransaction(c);
  nodeUnreadResults(c);
  nodeIdlePool(c);
  nodeBlocking(c);
  nodeLongQueries(c);
  nodeSameStatement(c);
  nodeTopStatements(c);
  nodeSeqScans(c);
  nodeSettings(c);
  nodeCapacityFinding(c);
  const { w, cap, capSev, iit, waits, idleCandidates, blocking, longQ, sameGroups, hiddenRows, partial, holders } = c;
  const metrics = metricsOf(facts, t, cap, {
    iit: iit.length,
    oldestIit: Math.max(0, ...iit.map((r) => r.state_age_ms ?? 0)),
    unread: waits.length,
    oldestUnread: Math.max(0, ...waits.map((r) => r.state_age_ms ?? 0)),
    idle: idleCandidates.length,
    waiting: blocking.waiting,
    longestWait: Math.max(0, ...blocking.roots.map((r) => r.longest_wait_ms ?? 0)),
    longQueries: longQ.length,
    longestQuery: Math.max(0, ...longQ.map((r) => r.query_age_ms ?? 0)),
    sameStatement: sameGroups[0]?.count ?? 0,
    hidden: hiddenRows.length,
  });
  return assemble({
    facts,
    t,
    findings: w.findings,
    path: w.path,
    capacity: { ...cap, severity: capSev },
    visibility: { partial, hidden: hiddenRows.length, can_read_all_stats: server.can_read_all_stats, role: server.current_user },
    holders: holders.slice(0, 10),
    metrics,
    server: serverOf(facts),
  });
}

function metricsOf(
  facts: DiagnoseFacts,
  t: Thresholds,
  cap: Capacity,
  n: { iit: number; oldestIit: number; unread: number; oldestUnread: number; idle: number; waiting: number; longestWait: number; longQueries: number; longestQuery: number; sameStatement: number; hidden: number },
): Metric[] {
  const abs = (pct: number) => Math.ceil((cap.ordinary_slots * pct) / 100);
  const s = (ms: number) => Math.round(ms) / 1000;
  return [
    { name: 'connections', value: cap.client_backends, uom: '', warn: abs(t.capacity_warn_pct), crit: abs(t.capacity_crit_pct), min: 0, max: cap.ordinary_slots },
    { name: 'connections_pct', value: cap.used_pct, uom: '%', warn: t.capacity_warn_pct, crit: t.capacity_crit_pct, min: 0, max: 100 },
    { name: 'idle_in_transaction', value: n.iit, uom: '', warn: null, crit: null, min: 0, max: null },
    { name: 'oldest_idle_in_transaction', value: s(n.oldestIit), uom: 's', warn: s(t.idle_in_transaction_ms), crit: s(t.idle_in_transaction_crit_ms), min: 0, max: null },
    { name: 'unread_results', value: n.unread, uom: '', warn: null, crit: null, min: 0, max: null },
    { name: 'oldest_unread_result', value: s(n.oldestUnread), uom: 's', warn: s(t.client_wait_ms), crit: s(t.client_wait_crit_ms), min: 0, max: null },
    { name: 'idle_long', value: n.idle, uom: '', warn: null, crit: null, min: 0, max: null },
    { name: 'lock_waiters', value: n.waiting, uom: '', warn: null, crit: t.blocked_crit_sessions, min: 0, max: null },
    { name: 'longest_lock_wait', value: s(n.longestWait), uom: 's', warn: s(t.lock_wait_ms), crit: s(t.lock_wait_crit_ms), min: 0, max: null },
    { name: 'long_queries', value: n.longQueries, uom: '', warn: null, crit: null, min: 0, max: null },
    { name: 'longest_query', value: s(n.longestQuery), uom: 's', warn: s(t.long_query_ms), crit: s(t.long_query_crit_ms), min: 0, max: null },
    { name: 'same_statement', value: n.sameStatement, uom: '', warn: t.same_statement_sessions, crit: null, min: 0, max: null },
    { name: 'hidden_sessions', value: n.hidden, uom: '', warn: null, crit: null, min: 0, max: null },
    timeMetric(facts),
  ];
}

function assemble(a: {
  facts: DiagnoseFacts;
  t: Thresholds;
  findings: Finding[];
  path: PathStep[];
  capacity: DiagnoseReport['capacity'];
  visibility: DiagnoseReport['visibility'];
  holders: HolderRow[];
  metrics: Metric[];
  server: DiagnoseReport['server'];
}): DiagnoseReport {
  const order = new Map<string, number>(DIAGNOSE_NODES.map((n, i) => [n, i]));
  for (const f of a.findings) f.summary = shortOf(f, a.capacity);
  const findings = [...a.findings].sort((x, y) => RANK[y.severity] - RANK[x.severity] || (order.get(x.id) ?? 0) - (order.get(y.id) ?? 0));
  let verdict = worst(...findings.map((f) => f.severity));
  // Never a silent OK: a partial view is at least UNKNOWN.
  if (a.visibility?.partial) verdict = worst(verdict, 'unknown');
  if (verdict === 'info') verdict = 'ok';
  const counts: Record<Severity, number> = { ok: 0, info: 0, warning: 0, critical: 0, unknown: 0 };
  for (const f of findings) counts[f.severity]++;
  const serious = findings.filter((f) => RANK[f.severity] >= RANK.warning);
  let summary: string;
  if (!a.facts.connect.ok || a.facts.gather_error) {
    summary = findings[0]?.title ?? 'cannot connect';
  } else if (serious.length) {
    // The worst level first; the rest as counts, so the line stays short enough for a pager.
    const top = serious.filter((f) => f.severity === 'critical' || f.severity === 'unknown');
    const shown = (top.length ? top : serious).slice(0, 4);
    const rest = serious.length - shown.length;
    const restWarn = serious.filter((f) => !shown.includes(f) && f.severity === 'warning').length;
    summary = shown.map((f) => f.summary).join('; ') + (rest > 0 ? ` (+${rest} more: ${restWarn === rest ? `${rest} warning${rest === 1 ? '' : 's'}` : `${rest} findings`})` : '');
  } else {
    const c = a.capacity;
    summary = `no problems found${c ? `: ${c.client_backends} of ${c.ordinary_slots} ordinary slots in use (${c.used_pct}%)` : ''}`;
  }
  return {
    verdict,
    exit_code: exitCodeForSeverity(verdict),
    summary,
    target: a.facts.target,
    connected: a.facts.connect.ok,
    server: a.server,
    taken_at: a.facts.activity?.taken_at ?? null,
    thresholds: a.t,
    counts,
    findings,
    path: a.path,
    capacity: a.capacity,
    visibility: a.visibility,
    holders: a.holders,
    metrics: a.metrics,
    unavailable: a.facts.unavailable,
  };
}

function topApps(e: Evidence): string {
  const apps = e.groups.length ? uniq(nonNull(e.groups.map((g) => g.application))) : e.applications;
  if (apps.length === 0) return '';
  return ` (${apps.slice(0, 2).map(appLabel).join(', ')}${apps.length > 2 ? ', ...' : ''})`;
}

/** A few words per finding, for the verdict line and the nagios status line. */
function shortOf(f: Finding, cap: DiagnoseReport['capacity']): string {
  const e = f.evidence;
  const n = e.sessions ?? 0;
  switch (f.id) {
    case 'connect':
      return f.title;
    case 'visibility':
      return n > 0 ? `partial view, ${n} sessions hidden` : 'partial view (no pg_read_all_stats)';
    case 'capacity':
      return cap ? `${cap.client_backends}/${cap.ordinary_slots} slots used (${cap.used_pct}%)` : f.title;
    case 'idle-in-transaction':
      return `${n} idle in transaction${topApps(e)}`;
    case 'unread-results':
      return `${n} unread result sets${topApps(e)}`;
    case 'idle-pool':
      return `${n} long-idle sessions${topApps(e)}`;
    case 'blocking': {
      const g = e.groups[0];
      return g && g.pids[0] !== undefined && !g.label.startsWith('lock cycle') ? `pid ${g.pids[0]} blocks ${g.count}` : 'lock cycle';
    }
    case 'long-queries':
      return `${n} long ${n === 1 ? 'query' : 'queries'}, longest ${dur(e.oldest_ms)}`;
    case 'same-statement': {
      const g = e.groups[0];
      return g ? `${g.count} sessions run the same statement${topApps(e)}` : f.title;
    }
    case 'connection-limit':
      return e.facts[0] ?? f.title;
    default: {
      const i = f.title.indexOf(':');
      return i > 0 ? f.title.slice(0, i) : f.title;
    }
  }
}

/** Exposed for tests and the renderer. */
export const SEVERITY_RANK = RANK;
