/**
 * The runbook decision tree (seeds/002's "Diagnosis Decision Tree", seeds/003's symptom branches,
 * and the incidents of seeds/000, 001 and 004), walked. PURE: it takes one typed snapshot of facts
 * (DiagnoseFacts, gathered by src/db/diagnose.ts) and the thresholds, and returns the report:
 * findings (stable id, severity, title, evidence, likely cause, next steps with an exact dbdoctor
 * command, runbook link), the path taken through the tree, the verdict (the worst severity; a
 * partial view is never OK), and performance data for monitoring.
 *
 * The nodes live in rooms, one module per runbook (src/core/diagnose/, mirroring runbooks/*.md):
 * cannot-connect, out-of-slots, leaks, blocking-locks, slow-queries, settings. Each node reads the
 * context (and what earlier nodes found, passed to it by name) and returns its findings and the
 * path it took. Adding a node: its function in its room (with its id in the room's NODES), its
 * section in the runbook, its id in schema/diagnose.schema.json, and its line below.
 */
import { type Capacity, worst } from './capacity.js';
import { cannotConnect, cannotGather, NODES as CONNECT_NODES } from './diagnose/cannot-connect.js';
import { blocking, ddlQueue, NODES as BLOCKING_NODES } from './diagnose/blocking-locks.js';
import { idleInTransaction, idlePool, NODES as LEAK_NODES, unreadResults } from './diagnose/leaks.js';
import { capacity, capacityFinding, connectionLimit, NODES as SLOT_NODES, whoHolds } from './diagnose/out-of-slots.js';
import { SETTING_NODES, settings, NODES as SETTINGS_ROOM_NODES, visibility } from './diagnose/settings.js';
import { type Context, type NodeResult, pathStep, RANK, sessionsOf } from './diagnose/shared.js';
import { NODES as TREND_NODES } from './diagnose/trends.js';
import { longQueries, sameStatement, NODES as SLOW_NODES, seqScans, topStatements } from './diagnose/slow-queries.js';
import type { DiagnoseFacts, DiagnoseReport, Finding, HolderRow, Metric, PathStep } from './diagnose/types.js';
import { exitCodeForSeverity, type Severity } from './exit-codes.js';
import type { RunbookFile } from './runbooks.js';
import { largest } from './stats.js';
import { DEFAULT_THRESHOLDS, type Thresholds } from './thresholds.js';

export * from './diagnose/types.js';
export { appLabel } from './diagnose/shared.js';
export { pgInterval, SETTING_NODES, settingNumber } from './diagnose/settings.js';

/** Every node of the tree, in visiting order. Each is an anchor in runbooks/ (tested). */
export const DIAGNOSE_NODES = [...CONNECT_NODES, 'visibility', ...SLOT_NODES, ...LEAK_NODES, ...BLOCKING_NODES, ...SLOW_NODES, ...SETTING_NODES, 'settings', ...TREND_NODES] as const;

export type NodeId = (typeof DIAGNOSE_NODES)[number];

/** Node id -> the runbook its room mirrors (its findings link there). */
export const NODE_RUNBOOKS: ReadonlyMap<NodeId, RunbookFile> = new Map<NodeId, RunbookFile>([
  ...CONNECT_NODES.map((n) => [n, 'cannot-connect'] as const),
  ...SLOT_NODES.map((n) => [n, 'out-of-slots'] as const),
  ...LEAK_NODES.map((n) => [n, 'leaks'] as const),
  ...BLOCKING_NODES.map((n) => [n, 'blocking-locks'] as const),
  ...SLOW_NODES.map((n) => [n, 'slow-queries'] as const),
  ...SETTINGS_ROOM_NODES.map((n) => [n, 'settings'] as const),
  ...TREND_NODES.map((n) => [n, 'trends'] as const),
]);

/** Decides. Pure: the same facts and thresholds always give the same report. */
export function diagnose(facts: DiagnoseFacts, t: Thresholds = DEFAULT_THRESHOLDS, extra: NodeResult | null = null): DiagnoseReport {
  if (!facts.connect.ok) {
    return assemble({ facts, t, ...cannotConnect(facts as DiagnoseFacts & { connect: { ok: false } }), capacity: null, visibility: null, holders: [], metrics: [timeMetric(facts)], server: null });
  }
  if (facts.gather_error || !facts.server || !facts.activity) {
    const e = facts.gather_error ?? { cause: 'no_facts', message: 'no server facts or activity snapshot', hint: null, exit_code: 3 as const };
    return assemble({ facts, t, ...cannotGather(facts, e), capacity: null, visibility: null, holders: [], metrics: [timeMetric(facts)], server: serverOf(facts) });
  }
  const server = facts.server;
  const snap = facts.activity;
  const sessions = sessionsOf(snap);
  const slots = capacity({ t, server, snap });
  const c: Context = { facts, t, server, snap, sessions, scope: { snapshot: snap }, ordinary: slots.cap.ordinary_slots };

  // The walk, in the order of the tree; each node gets what earlier ones found, by name.
  const connected: NodeResult = { findings: [], path: [pathStep('connect', 'can dbdoctor connect?', 'yes', `connected as ${server.current_user} to database ${server.current_database} in ${Math.round(facts.connect.connect_ms)} ms`)] };
  const seen = visibility(c);
  const limits = connectionLimit(c);
  const holders = whoHolds(c);
  const iit = idleInTransaction(c);
  const unread = unreadResults(c);
  const idle = idlePool(c, slots.severity);
  const blocked = blocking(c);
  const ddl = ddlQueue(c, blocked);
  const long = longQueries(c);
  const same = sameStatement(c);
  const top = topStatements(c);
  const seq = seqScans(c);
  const guards = settings(c, { iit, unread, idle, blocking: blocked, long, same });
  // the trends (src/core/diagnose/trends.ts), when the facts come with samples (a watch recording)
  const walked = [connected, seen, slots, limits, holders, iit, unread, idle, blocked, ddl, long, same, top, seq, guards, ...(extra ? [extra] : [])];

  const findings = walked.flatMap((n) => n.findings);
  findings.push(capacityFinding(c, slots, holders.holders, findings, [...iit.cleanups, ...unread.cleanups, ...idle.cleanups]));
  const metrics = metricsOf(facts, t, slots.cap, {
    iit: iit.rows.length,
    oldestIit: Math.max(0, largest(iit.rows.map((r) => r.state_age_ms)) ?? 0),
    unread: unread.rows.length,
    oldestUnread: Math.max(0, largest(unread.rows.map((r) => r.state_age_ms)) ?? 0),
    idle: idle.rows.length,
    waiting: blocked.report.waiting,
    longestWait: Math.max(0, largest(blocked.report.roots.map((r) => r.longest_wait_ms)) ?? 0),
    longQueries: long.rows.length,
    longestQuery: Math.max(0, largest(long.rows.map((r) => r.query_age_ms)) ?? 0),
    sameStatement: same.groups[0]?.count ?? 0,
    hidden: seen.hidden.length,
  });
  return assemble({
    facts,
    t,
    findings,
    path: walked.flatMap((n) => n.path),
    capacity: { ...slots.cap, severity: slots.severity },
    visibility: { partial: seen.partial, hidden: seen.hidden.length, can_read_all_stats: server.can_read_all_stats, role: server.current_user },
    holders: holders.holders.slice(0, 10),
    metrics,
    server: serverOf(facts),
  });
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

/** Exposed for tests and the renderer. */
export const SEVERITY_RANK = RANK;
