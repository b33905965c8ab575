/**
 * `dbdoctor watch`, decided: each sample's facts summarized (sessions by application and state,
 * waits, new sessions, the findings of the tree), the deltas against the previous sample, the
 * findings that appeared or cleared (with their times), the trend findings over the window
 * (src/core/diagnose/trends.ts), and the interval's back-off. PURE; the samples live in a ring
 * buffer, so a long watch holds a bounded number of small summaries.
 */
import { clientSessions, type SessionRow } from './activity.js';
import type { DiagnoseFacts, DiagnoseReport, Finding } from './diagnose/types.js';
import { type TrendOptions, type TrendSample, trendFindings } from './diagnose/trends.js';
import type { Severity } from './exit-codes.js';
import { dbdoctorArgv, shellCommand } from './printed.js';

export interface SessionStats {
  sessions: number;
  abandoned: number;
  fatal: number;
  killed: number;
}

export interface AppCount {
  app: string;
  total: number;
  active: number;
  idle: number;
  idle_in_transaction: number;
  client_read: number;
  new_sessions: number;
  /** The pids idle in transaction (for a growth finding's evidence). */
  pids_iit: number[];
}

export interface WatchSample extends TrendSample {
  seq: number;
  /** The client's clock at the sample (ISO), and the server's (pg_stat_activity's snapshot). */
  at: string;
  taken_at: string | null;
  /** How long the sample's round trip took (the server's time plus the network). */
  server_ms: number;
  interval_ms: number;
  /** The interval was lengthened because a sample took more than 10% of it. */
  backed_off: boolean;
  verdict: Severity;
  states: Record<string, number>;
  by_app: AppCount[];
  /** wait_event_type:wait_event -> sessions waiting on it in this sample (wait sampling without an extension). */
  waits: Record<string, number>;
  findings: Array<{ id: string; severity: Severity; title: string; pids: number[] }>;
}

export interface WatchEvent {
  at: string;
  seq: number;
  change: 'appeared' | 'cleared';
  id: string;
  severity: Severity;
  title: string;
  pids: number[];
}

/** A fixed-size ring of the latest items. */
export class Ring<T> {
  private readonly items: T[] = [];
  constructor(readonly capacity: number) {}
  push(x: T): void {
    this.items.push(x);
    if (this.items.length > this.capacity) this.items.shift();
  }
  all(): readonly T[] {
    return this.items;
  }
  get size(): number {
    return this.items.length;
  }
}

const identity = (r: SessionRow) => `${r.pid}@${r.backend_start ?? ''}`;

/** The identities of the client sessions, to count the new ones at the next sample. */
export function identities(facts: DiagnoseFacts): Set<string> {
  return new Set(facts.activity ? clientSessions(facts.activity).map(identity) : []);
}

export function summarize(
  facts: DiagnoseFacts,
  report: DiagnoseReport,
  previous: Set<string> | null,
  stats: SessionStats | null,
  meta: { seq: number; at_ms: number; server_ms: number; interval_ms: number; backed_off: boolean },
): WatchSample {
  const rows = facts.activity ? clientSessions(facts.activity) : [];
  const states: Record<string, number> = {};
  const waits: Record<string, number> = {};
  const apps = new Map<string, AppCount>();
  let fresh = 0;
  for (const r of rows) {
    const state = r.state ?? 'hidden';
    states[state] = (states[state] ?? 0) + 1;
    if (r.wait_event_type && state === 'active') waits[`${r.wait_event_type}:${r.wait_event ?? ''}`] = (waits[`${r.wait_event_type}:${r.wait_event ?? ''}`] ?? 0) + 1;
    let a = apps.get(r.application_name);
    if (!a) {
      a = { app: r.application_name, total: 0, active: 0, idle: 0, idle_in_transaction: 0, client_read: 0, new_sessions: 0, pids_iit: [] };
      apps.set(r.application_name, a);
    }
    a.total++;
    if (state === 'active') a.active++;
    if (state === 'idle') a.idle++;
    if (state.startsWith('idle in transaction')) {
      a.idle_in_transaction++;
      a.pids_iit.push(r.pid);
    }
    if (state === 'active' && r.wait_event === 'ClientRead') a.client_read++;
    if (previous && !previous.has(identity(r))) {
      fresh++;
      a.new_sessions++;
    }
  }
  const cap = report.capacity;
  return {
    seq: meta.seq,
    at: new Date(meta.at_ms).toISOString(),
    at_ms: meta.at_ms,
    taken_at: facts.activity?.taken_at ?? null,
    server_ms: Math.round(meta.server_ms * 10) / 10,
    interval_ms: meta.interval_ms,
    backed_off: meta.backed_off,
    verdict: report.verdict,
    client_sessions: cap?.client_backends ?? rows.length,
    ordinary_slots: cap?.ordinary_slots ?? 0,
    states,
    by_app: [...apps.values()].sort((x, y) => y.total - x.total || (x.app < y.app ? -1 : 1)),
    waits,
    new_sessions: previous ? fresh : null,
    session_stats: stats,
    findings: report.findings.filter((f) => f.severity !== 'ok' && f.severity !== 'info').map((f) => ({ id: f.id, severity: f.severity, title: f.title, pids: f.evidence.pids })),
  };
}

/** Per application: the change in its sessions since the previous sample (only those that changed). */
export function deltas(prev: WatchSample | null, cur: WatchSample): { client_sessions: number; by_app: Array<{ app: string; total: number; idle_in_transaction: number; client_read: number }> } {
  if (!prev) return { client_sessions: 0, by_app: [] };
  const before = new Map(prev.by_app.map((a) => [a.app, a]));
  const after = new Map(cur.by_app.map((a) => [a.app, a]));
  const out: Array<{ app: string; total: number; idle_in_transaction: number; client_read: number }> = [];
  for (const app of new Set([...before.keys(), ...after.keys()])) {
    const b = before.get(app);
    const a = after.get(app);
    const d = { app, total: (a?.total ?? 0) - (b?.total ?? 0), idle_in_transaction: (a?.idle_in_transaction ?? 0) - (b?.idle_in_transaction ?? 0), client_read: (a?.client_read ?? 0) - (b?.client_read ?? 0) };
    if (d.total || d.idle_in_transaction || d.client_read) out.push(d);
  }
  return { client_sessions: cur.client_sessions - prev.client_sessions, by_app: out.sort((x, y) => Math.abs(y.total) - Math.abs(x.total)) };
}

/** The findings (by id) that appeared or cleared between two samples. */
export function eventsBetween(prev: WatchSample | null, cur: WatchSample): WatchEvent[] {
  const before = new Map((prev?.findings ?? []).map((f) => [f.id, f]));
  const after = new Map(cur.findings.map((f) => [f.id, f]));
  const out: WatchEvent[] = [];
  for (const [id, f] of after) if (!before.has(id)) out.push({ at: cur.at, seq: cur.seq, change: 'appeared', id, severity: f.severity, title: f.title, pids: f.pids });
  for (const [id, f] of before) if (!after.has(id)) out.push({ at: cur.at, seq: cur.seq, change: 'cleared', id, severity: f.severity, title: f.title, pids: f.pids });
  return out;
}

/** The trend findings over the samples kept. */
export function trends(samples: readonly WatchSample[], o: TrendOptions): Finding[] {
  return trendFindings([...samples], o);
}

/**
 * The next interval: the one asked for, unless the sample took more than 10% of it; then ten
 * times the sample's time (at most a minute), so that watching never costs the server more than
 * a tenth of its time on this connection.
 */
export function nextInterval(asked: number, sampleMs: number): { interval_ms: number; backed_off: boolean } {
  if (sampleMs <= asked / 10) return { interval_ms: asked, backed_off: false };
  return { interval_ms: Math.min(60_000, Math.max(asked, Math.ceil(sampleMs * 10))), backed_off: true };
}

/** What `t` in the live view hands over to: terminate's argv and the same command as printed. */
export interface HandOver {
  argv: string[];
  command: string;
}

/**
 * What `t` hands over: terminate of the sessions idle in transaction of the application filtered
 * with `/`, else of the one with the most of them. None when there is no such application, its name
 * is empty or a pattern (terminate's --app would match more); 'unshowable' when its name cannot be
 * shown exactly (the command printed before the hand-over is the one that runs, built once by the
 * quoters, with dbdoctor's connection options added as for every printed command).
 */
export function handOver(sample: WatchSample | undefined, filter: string | null): HandOver | 'unshowable' | null {
  if (!sample) return null;
  const exact = filter ? sample.by_app.find((a) => a.app === filter) : undefined;
  const pick = exact ?? [...sample.by_app].filter((a) => a.idle_in_transaction > 0).sort((a, b) => b.idle_in_transaction - a.idle_in_transaction)[0];
  if (!pick || pick.app === '' || /[*?]/.test(pick.app)) return null;
  const argv = dbdoctorArgv('terminate', [
    ['--app', pick.app],
    ['--state', 'idle in transaction'],
  ]);
  const command = shellCommand(argv);
  return command === null ? 'unshowable' : { argv, command };
}
