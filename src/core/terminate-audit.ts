/**
 * terminate's audit records, built here and written by src/ui/audit.ts (one intent line before a
 * signal, one outcome line after it; never a password), and where its state (audit log, lock file)
 * lives.
 */
import { redactQuery, type Outcome, type PlannedSession, type SignalKind, type StepResult, type TerminateFilters } from './terminate.js';

/** Query text in an audit line is cut to this many characters. */
export const AUDIT_QUERY_CHARS = 500;

export interface AuditContext {
  run_id: string;
  os_user: string;
  machine: string;
  dbdoctor_pid: number;
  dbdoctor_version: string;
  /** The server dbdoctor is connected to: host, port, database and role; never a password. */
  host: string;
  port: number;
  database: string;
  role: string;
  filters: TerminateFilters;
}

/** One intent line: the run's context (every field of AuditContext) and the session to be signalled. */
export interface AuditIntent extends AuditContext {
  ts: string;
  event: 'intent';
  action: SignalKind;
  pid: number;
  backend_start: string;
  app: string;
  user: string | null;
  client: string;
  session_database: string | null;
  state: string;
  age_ms: number | null;
  xact_age_ms: number | null;
  query: string;
}

export interface AuditOutcome {
  ts: string;
  event: 'outcome';
  run_id: string;
  action: SignalKind;
  pid: number;
  backend_start: string;
  outcome: Outcome | 'signalled';
  detail: string;
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const rounded = (v: number | null) => (v === null ? null : Math.round(v));

export function auditIntent(ctx: AuditContext, p: PlannedSession, action: SignalKind, now: Date): AuditIntent {
  return {
    ts: now.toISOString(),
    event: 'intent',
    run_id: ctx.run_id,
    action,
    os_user: ctx.os_user,
    machine: ctx.machine,
    dbdoctor_pid: ctx.dbdoctor_pid,
    dbdoctor_version: ctx.dbdoctor_version,
    host: ctx.host,
    port: ctx.port,
    database: ctx.database,
    role: ctx.role,
    pid: p.pid,
    backend_start: p.backend_start,
    app: p.app,
    user: p.user,
    client: p.client,
    session_database: p.database,
    state: p.state,
    age_ms: rounded(p.age_ms),
    xact_age_ms: rounded(p.xact_age_ms),
    query: cut(redactQuery(p.query), AUDIT_QUERY_CHARS),
    filters: ctx.filters,
  };
}

export function auditOutcome(ctx: AuditContext, p: PlannedSession, action: SignalKind, r: StepResult, now: Date): AuditOutcome {
  return { ts: now.toISOString(), event: 'outcome', run_id: ctx.run_id, action, pid: p.pid, backend_start: p.backend_start, outcome: r.outcome, detail: r.detail };
}

// ---------------------------------------------------------------------------------------------
// Where state lives

/** `$XDG_STATE_HOME/dbdoctor` (absolute paths only, per the XDG spec), else `~/.local/state/dbdoctor`. */
export function stateDir(env: Readonly<Record<string, string | undefined>>, home: string): string {
  const xdg = env.XDG_STATE_HOME;
  const base = xdg?.startsWith('/') ? xdg : `${home.replace(/\/+$/, '')}/.local/state`;
  return `${base.replace(/\/+$/, '')}/dbdoctor`;
}
