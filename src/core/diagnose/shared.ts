/**
 * What the rooms of the decision tree share: the context every node reads (the facts, the
 * thresholds, the sessions), the shape of a node's result, and small builders for findings,
 * evidence and the exact `terminate` that selects a group. Pure.
 */
import { type ActivitySnapshot, clientSessions, isClientBackend, isParallelWorker, isVisible, type SessionRow } from '../activity.js';
import type { RootBlocker } from '../blocking.js';
import type { ServerProfile } from '../check.js';
import { bucketSessions, clientOf } from '../connections.js';
import type { NodeId } from '../diagnose.js';
import { formatDuration } from '../duration.js';
import { plural, these } from '../count.js';
import type { Severity } from '../exit-codes.js';
import { type Arg, commandStep, fixedStep, type NextStep } from '../printed.js';
import { RUNBOOK_FILES, type RunbookFile } from '../runbooks.js';
import { statementGroups } from '../queries.js';
import { largest, roundOrNull } from '../stats.js';
import { DEFAULT_MAX, emptyFilters, plannedPids, redactQuery, type TerminateFilters } from '../terminate.js';
import { durationArg, type Thresholds } from '../thresholds.js';
import type { DiagnoseFacts, Evidence, EvidenceGroup, Finding, PathStep } from './types.js';

export const RANK: Record<Severity, number> = { ok: 0, info: 1, warning: 2, unknown: 3, critical: 4 };
export const MAX_PIDS = 200;
const STATEMENT_CHARS = 300;

// ---------------------------------------------------------------------------------------------
// What a node reads, and what it returns

/** What every node of a connected diagnosis reads. Built once by the walk; never changed. */
export interface Context {
  facts: DiagnoseFacts;
  t: Thresholds;
  server: ServerProfile;
  snap: ActivitySnapshot;
  /** Client sessions the tree reasons about: dbdoctor itself, parallel workers and background processes left out. */
  sessions: SessionRow[];
  scope: TerminateScope;
  /** The slots ordinary roles may use (from the capacity node). */
  ordinary: number;
}

/** What a node says: its findings (none, one, or for the settings room several) and the path it took. */
export interface NodeResult {
  findings: Finding[];
  path: PathStep[];
}

export function pathStep(node: NodeId, question: string, branch: string, detail: string): PathStep {
  return { node, question, branch, detail };
}

/** A finding with its runbook section: `runbooks/<room's file>#<node>` (or another anchor of that file). */
export function finding(
  room: RunbookFile,
  id: NodeId,
  severity: Severity,
  title: string,
  evidence: Evidence,
  cause: string,
  next: NextStep[],
  summary: string = shortTitle(title),
  anchor: string = id,
): Finding {
  return { id, severity, title, summary, evidence: withGroupPidsCut(evidence), cause, next, runbook: `runbooks/${RUNBOOK_FILES[room]}#${anchor}` };
}

/**
 * Each group names at most MAX_PIDS of its sessions, as the evidence does (its count says how
 * many): groups may overlap (every holder of one shared lock blocks the whole queue behind it), and
 * the document must grow with holders plus waiters, not with their product.
 */
function withGroupPidsCut(evidence: Evidence): Evidence {
  if (evidence.groups.every((g) => g.pids.length <= MAX_PIDS)) return evidence;
  return { ...evidence, groups: evidence.groups.map((g) => (g.pids.length <= MAX_PIDS ? g : { ...g, pids: g.pids.slice(0, MAX_PIDS) })) };
}

/** The part of a title before its first colon: the summary of findings that name none. */
function shortTitle(title: string): string {
  const i = title.indexOf(':');
  return i > 0 ? title.slice(0, i) : title;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Statement text for a finding: secrets (PASSWORD '...', URLs with passwords) masked, cut. */
export function cut(text: string | null | undefined, max = STATEMENT_CHARS): string {
  const s = redactQuery(text ?? '').replace(/\s+/g, ' ').trim();
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function appLabel(app: string | null | undefined): string {
  return app ? app : '(no application_name)';
}

export { plural };

function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

export function uniq<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

export function nonNull<T>(xs: Array<T | null | undefined>): T[] {
  return xs.filter((x): x is T => x !== null && x !== undefined);
}

/**
 * The distinct values `of` gives for the rows, nulls left out, in the order first seen: what
 * uniq(nonNull(rows.map(of))) gives, in one pass and without an array for each step (the tree
 * runs once, over every session: what it allocates is time, see bucketSessions).
 */
export function distinct<T, V>(rows: readonly T[], of: (row: T) => V | null | undefined): V[] {
  const seen = new Set<V>();
  for (let i = 0; i < rows.length; i++) {
    const v = of(rows[i]!);
    if (v !== null && v !== undefined) seen.add(v);
  }
  return [...seen];
}

export const dur = (ms: number | null | undefined) => formatDuration(ms ?? null);

/**
 * `connections ... --list`, narrowed to one application when its name can be given exactly (shown
 * safely, not empty, no glob characters); all of them otherwise.
 */
export function listStep(text: string, args: Arg[], app: string | null): NextStep {
  const exact = app && !/[*?]/.test(app) ? commandStep(text, 'connections', [...args, ['--app', app], '--list']) : null;
  return exact ?? fixedStep(text, 'connections', [...args, '--list']);
}

export function runbookStep(node: NodeId): NextStep {
  return fixedStep('read the runbook section', 'runbook', [node]);
}

export function emptyEvidence(): Evidence {
  return { sessions: null, pids: [], prepared_transactions: [], applications: [], clients: [], users: [], databases: [], oldest_ms: null, statements: [], facts: [], groups: [] };
}

export function evidenceOf(rows: SessionRow[], ageOf: (r: SessionRow) => number | null, groups: EvidenceGroup[], facts: string[] = []): Evidence {
  const ages = nonNull(rows.map(ageOf));
  return {
    sessions: rows.length,
    pids: rows.map((r) => r.pid).sort((a, b) => a - b).slice(0, MAX_PIDS),
    prepared_transactions: [],
    applications: uniq(rows.map((r) => r.application_name)),
    clients: distinct(rows, clientOf),
    users: distinct(rows, (r) => r.usename),
    databases: distinct(rows, (r) => r.datname),
    oldest_ms: roundOrNull(largest(ages)),
    statements: uniq(groups.map((g) => g.statement).filter((s): s is string => Boolean(s))).slice(0, 5),
    facts,
    groups,
  };
}

/** The most common normalized statement among the rows, as one original example. */
export function typicalStatement(rows: SessionRow[]): string | null {
  const g = statementGroups(rows)[0];
  return g ? cut(g.example) : null;
}

/** Apps at clients, statements, ...: critical past the critical age or share of the slots, else a warning. */
export function groupSeverity(count: number, oldest: number | null, ordinary: number, critAge: number, t: Thresholds): Severity {
  const share = ordinary > 0 ? (count / ordinary) * 100 : 100;
  return (oldest ?? 0) >= critAge || share >= t.group_share_crit_pct ? 'critical' : 'warning';
}

export function sharePct(count: number, ordinary: number): number {
  return ordinary > 0 ? Math.round((count / ordinary) * 1000) / 10 : 100;
}

export const rootIit = (r: RootBlocker) => r.session?.state === 'idle in transaction' || r.session?.state === 'idle in transaction (aborted)';
export const lockWaiter = (r: SessionRow) => r.wait_event_type === 'Lock';

// ---------------------------------------------------------------------------------------------
// Sessions

/** Hidden rows with no role are background processes (autovacuum, checkpointer, ...), not sessions. */
function isHiddenBackground(r: SessionRow): boolean {
  return !isVisible(r) && r.backend_type === null && r.usename === null;
}

/** Client sessions the tree reasons about: dbdoctor itself and parallel workers left out. */
export function sessionsOf(snapshot: ActivitySnapshot): SessionRow[] {
  return clientSessions(snapshot).filter((r) => !isHiddenBackground(r));
}

/** Slots in use: client backends, dbdoctor's own included (it holds one too). */
export function slotsInUse(snapshot: ActivitySnapshot): number {
  return snapshot.rows.filter((r) => isClientBackend(r) && !isParallelWorker(r) && !isHiddenBackground(r)).length;
}

// ---------------------------------------------------------------------------------------------
// terminate commands that select exactly a group

export interface TerminateScope {
  snapshot: ActivitySnapshot;
  /**
   * Per application name, the part of the snapshot `--app <name>` can select (a name without
   * wildcards matches itself exactly), made once per diagnosis: planning each group against every
   * row of a 1,500-session incident was most of the tree's time.
   */
  byApp?: Map<string, ActivitySnapshot>;
}

/** The part of the snapshot terminate's planner can select with `--app <app>`. */
function appScope(scope: TerminateScope, app: string): ActivitySnapshot {
  scope.byApp ??= new Map(bucketSessions(scope.snapshot.rows, ['app']).map(({ keys, rows }) => [keys.app ?? '', { ...scope.snapshot, rows }]));
  return scope.byApp.get(app) ?? { ...scope.snapshot, rows: [] };
}

/**
 * The narrowest `dbdoctor terminate` that selects exactly `target`, checked with terminate's own
 * planner (its age rules, exclusions of listeners and superusers, database scope); a --pid list
 * when no filter combination does, or when a name cannot be shown exactly. Adds
 * --include-superusers, --all-databases and --max as the plan needs them.
 */
export function terminateFor(scope: TerminateScope, target: SessionRow[], base: { states: string[]; olderThanMs: number; cancelFirst?: boolean; pidsOnly?: boolean }): NextStep {
  const want = new Set(target.map((r) => r.pid));
  const apps = uniq(target.map((r) => r.application_name));
  const clients = distinct(target, clientOf);
  const dbs = distinct(target, (r) => r.datname);
  const otherDb = dbs.some((d) => d !== scope.snapshot.database);
  const superusers = target.some((r) => r.superuser === true);
  const extra: Arg[] = [];
  if (otherDb) extra.push('--all-databases');
  if (superusers) extra.push('--include-superusers');
  if (base.cancelFirst) extra.push('--cancel-first');
  if (target.length > DEFAULT_MAX) extra.push(['--max', String(target.length)]);
  // Only called with one application and no wildcards: see appScope.
  const selects = (f: TerminateFilters) => {
    const planned = plannedPids(appScope(scope, f.apps[0]!), { filters: f, allDatabases: otherDb, includeSuperusers: superusers, cancelFirst: Boolean(base.cancelFirst) });
    return planned.length === want.size && planned.every((p) => want.has(p));
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
  const words = `terminate exactly ${these(target.length, 'session')}`;
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

/** " (app1, app2, ...)": the applications of a finding, for its summary. */
export function topApps(e: Evidence): string {
  const apps = e.groups.length ? distinct(e.groups, (g) => g.application) : e.applications;
  if (apps.length === 0) return '';
  return ` (${apps.slice(0, 2).map(appLabel).join(', ')}${apps.length > 2 ? ', ...' : ''})`;
}
