import type { Severity } from './exit-codes.js';

export interface CapacityInput {
  max_connections: number;
  superuser_reserved: number;
  reserved: number;
  client_backends: number;
}

export interface Capacity {
  max_connections: number;
  superuser_reserved: number;
  /** reserved_connections (16+; 0 before). */
  reserved: number;
  /** Slots ordinary roles may use: max_connections minus both reserves. */
  ordinary_slots: number;
  client_backends: number;
  /** Free slots for ordinary roles (never below 0). */
  headroom: number;
  headroom_pct: number;
  used_pct: number;
}

export interface CapacityThresholds {
  /** Percent of ordinary slots in use that is a warning (seeds' alerts: 80). */
  warnPct: number;
  /** Percent of ordinary slots in use that is critical (90). */
  critPct: number;
}

export const DEFAULT_CAPACITY_THRESHOLDS: CapacityThresholds = { warnPct: 80, critPct: 90 };

export function capacityOf(i: CapacityInput): Capacity {
  const ordinary = Math.max(0, i.max_connections - i.superuser_reserved - i.reserved);
  const headroom = Math.max(0, ordinary - i.client_backends);
  const pct = (n: number) => (ordinary > 0 ? Math.round((n / ordinary) * 1000) / 10 : 0);
  return {
    max_connections: i.max_connections,
    superuser_reserved: i.superuser_reserved,
    reserved: i.reserved,
    ordinary_slots: ordinary,
    client_backends: i.client_backends,
    headroom,
    headroom_pct: pct(headroom),
    used_pct: ordinary > 0 ? Math.min(100, pct(i.client_backends)) : 100,
  };
}

export function capacitySeverity(c: Capacity, t: CapacityThresholds = DEFAULT_CAPACITY_THRESHOLDS): Severity {
  if (c.headroom === 0 || c.used_pct >= t.critPct) return 'critical';
  if (c.used_pct >= t.warnPct) return 'warning';
  return 'ok';
}

export interface ConnLimit {
  kind: 'database' | 'role';
  name: string;
  /** The role's or database's oid (absent in facts recorded before it was read). */
  oid?: number | null;
  conn_limit: number;
  connections: number;
}

/** Databases and roles whose CONNECTION LIMIT is nearly used up (at or over warnPct). */
export function nearLimits(limits: ConnLimit[], t: CapacityThresholds = DEFAULT_CAPACITY_THRESHOLDS): Array<ConnLimit & { used_pct: number; severity: Severity }> {
  return limits
    .map((l) => {
      const used = l.conn_limit === 0 ? 100 : Math.round((l.connections / l.conn_limit) * 1000) / 10;
      const severity: Severity = used >= 100 ? 'critical' : used >= t.warnPct ? 'warning' : 'ok';
      return { ...l, used_pct: used, severity };
    })
    .filter((l) => l.severity !== 'ok');
}

const RANK: Record<Severity, number> = { ok: 0, info: 1, warning: 2, unknown: 3, critical: 4 };

/** The worst of several severities; critical outranks unknown, which outranks warning. */
export function worst(...all: Severity[]): Severity {
  return worstOf(all);
}

/** The worst severity of a list of any length (one per group of sessions, say): never spread into worst(). */
export function worstOf(all: readonly Severity[]): Severity {
  return all.reduce<Severity>((a, b) => (RANK[b] > RANK[a] ? b : a), 'ok');
}
