import { plural } from './count.js';
import { type Capacity, type CapacityThresholds, capacityOf, capacitySeverity, type ConnLimit, nearLimits, worst } from './capacity.js';
import type { ConnectFailure, ConnectStep } from './classify.js';
import type { Severity } from './exit-codes.js';

export interface StepResult {
  step: ConnectStep | 'facts' | 'privileges';
  ok: boolean;
  ms: number | null;
  detail: string;
}

/**
 * What the server says of itself and of the current role, without check's backend counts:
 * `diagnose` and `connections` count the backends from their own activity snapshot instead.
 */
export type ServerProfile = Omit<CheckFacts, 'client_backends' | 'other_backends'>;

export interface CheckFacts {
  version: string;
  server_version_num: number;
  uptime_s: number;
  in_recovery: boolean;
  max_connections: number;
  superuser_reserved: number;
  reserved: number;
  client_backends: number;
  other_backends: number;
  current_user: string;
  /** The current role's oid (absent in facts recorded before it was read). */
  current_user_oid?: number | null;
  current_database: string;
  is_superuser: boolean;
  can_read_all_stats: boolean;
  can_signal_backend: boolean;
  can_use_reserved: boolean;
  has_monitor: boolean;
}

export interface Privileges {
  role: string;
  superuser: boolean;
  /** pg_read_all_stats (or pg_monitor, or superuser): sees other roles' queries and states. */
  can_see_other_sessions: boolean;
  /** pg_signal_backend (or superuser): may terminate other (non-superuser) roles' sessions. */
  can_terminate_other_roles: boolean;
  can_use_reserved_connections: boolean;
  pg_monitor: boolean;
  notes: string[];
}

export interface CheckReport {
  status: Severity;
  summary: string;
  target: string;
  steps: StepResult[];
  failure: ConnectFailure | null;
  server: {
    version: string;
    version_num: number;
    major: number;
    uptime_s: number;
    role: 'primary' | 'standby';
    latency_ms: number;
    connect_ms: number;
  } | null;
  capacity: Capacity | null;
  limits_near: Array<ConnLimit & { used_pct: number; severity: Severity }>;
  privileges: Privileges | null;
  runbook: string;
}

export function privilegesOf(f: CheckFacts): Privileges {
  const notes: string[] = [];
  if (!f.can_read_all_stats) {
    notes.push(
      `role "${f.current_user}" cannot see other roles' queries and states: grant pg_monitor (or pg_read_all_stats) for a full view`,
    );
  }
  if (!f.can_signal_backend) {
    notes.push(`role "${f.current_user}" cannot terminate other roles' sessions: grant pg_signal_backend to clean up`);
  }
  if (!f.can_use_reserved) {
    notes.push(
      f.server_version_num >= 160000
        ? `role "${f.current_user}" cannot use reserved slots: grant pg_use_reserved_connections (and set reserved_connections) so dbdoctor gets in when the server is full`
        : `role "${f.current_user}" cannot use reserved slots: only superusers can on PostgreSQL < 16`,
    );
  }
  return {
    role: f.current_user,
    superuser: f.is_superuser,
    can_see_other_sessions: f.can_read_all_stats,
    can_terminate_other_roles: f.can_signal_backend,
    can_use_reserved_connections: f.can_use_reserved,
    pg_monitor: f.has_monitor,
    notes,
  };
}

/** The verdict and report for a connection that worked. */
export function checkReportConnected(args: {
  target: string;
  steps: StepResult[];
  facts: CheckFacts;
  limits: ConnLimit[];
  latencyMs: number;
  connectMs: number;
  thresholds?: CapacityThresholds;
}): CheckReport {
  const { facts } = args;
  const capacity = capacityOf(facts);
  const limitsNear = nearLimits(args.limits, args.thresholds);
  const capSeverity = capacitySeverity(capacity, args.thresholds);
  const status = worst(capSeverity === 'critical' ? 'warning' : capSeverity, ...limitsNear.map((l) => (l.severity === 'critical' ? 'warning' : l.severity)));
  const major = Math.floor(facts.server_version_num / 10000);
  const parts = [
    `connected to PostgreSQL ${major} (${facts.in_recovery ? 'standby' : 'primary'}) in ${Math.round(args.connectMs)} ms`,
    `${capacity.client_backends}/${capacity.ordinary_slots} ordinary slots used, headroom ${capacity.headroom} (${capacity.headroom_pct}%)`,
  ];
  if (limitsNear.length) parts.push(`${plural(limitsNear.length, 'connection limit')} nearly used up`);
  return {
    status,
    summary: parts.join('; '),
    target: args.target,
    steps: args.steps,
    failure: null,
    server: {
      version: facts.version,
      version_num: facts.server_version_num,
      major,
      uptime_s: Math.round(facts.uptime_s),
      role: facts.in_recovery ? 'standby' : 'primary',
      latency_ms: Math.round(args.latencyMs * 100) / 100,
      connect_ms: Math.round(args.connectMs * 100) / 100,
    },
    capacity,
    limits_near: limitsNear,
    privileges: privilegesOf(facts),
    runbook: capSeverity === 'ok' ? 'cannot-connect' : 'capacity',
  };
}

/** The verdict and report for a connection that failed at some step. */
export function checkReportFailed(target: string, steps: StepResult[], failure: ConnectFailure): CheckReport {
  const status: Severity = failure.exit_code === 2 ? 'critical' : 'unknown';
  return {
    status,
    summary: `${failure.step} failed: ${failure.message}`,
    target,
    steps,
    failure,
    server: null,
    capacity: null,
    limits_near: [],
    privileges: null,
    runbook: failure.runbook,
  };
}
