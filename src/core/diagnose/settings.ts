/**
 * runbooks/settings.md: the guards that would have stopped what the other rooms found, set per
 * role and database as a new session would get them (`setting-*`), the other guards that are off
 * (`settings`), and whether dbdoctor's own role sees every session (`visibility`: a partial view is
 * never OK). The fixes are statements built by src/core/printed.ts, for the roles and databases of
 * the incident.
 */
import type { SessionRow } from '../activity.js';
import type { Severity } from '../exit-codes.js';
import { database, fixedStep, literal, type NextStep, role, type SqlPart, sqlLiteral, sqlStep, statementStep } from '../printed.js';
import { byPid, isVisible, snapshotByPid } from '../activity.js';
import type { BlockingResult } from './blocking-locks.js';
import type { IdlePoolResult, LeakResult } from './leaks.js';
import {
  type Context,
  distinct,
  emptyEvidence,
  finding,
  MAX_PIDS,
  type NodeResult,
  pathStep,
  plural,
  RANK,
  rootIit,
  runbookStep,
  uniq,
} from './shared.js';
import type { LongQueriesResult, SameStatementResult } from './slow-queries.js';
import type { NodeId } from '../diagnose.js';
import type { Evidence, Finding, SettingOverride, SettingsFacts, SettingValue } from './types.js';

export const SETTING_NODES = [
  'setting-idle-in-transaction-session-timeout',
  'setting-statement-timeout',
  'setting-lock-timeout',
  'setting-idle-session-timeout',
  'setting-transaction-timeout',
  'setting-tcp-keepalives',
  'setting-log-lock-waits',
] as const;

export const NODES = ['visibility', ...SETTING_NODES, 'settings'] as const;

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
  /** True when the server-level value is not known (masked by an override on dbdoctor's own role/db, or by its connection options). */
  unknown: boolean;
}

export class SettingsView {
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

  /** The server-level value, or null when dbdoctor's own role/database overrides or its connection options mask it. */
  serverValue(name: string): string | null {
    const s = this.get(name);
    if (!s || this.facts.client_options?.includes(name)) return null;
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

interface RoleInDatabase {
  role: string;
  roleOid: number | null;
  db: string | null;
  dbOid: number | null;
  rows: SessionRow[];
}

/**
 * The guard's sessions by role and database (a database named '' counts as none), in the order
 * first seen; each pid once, as its last row (a root idle in transaction is among the idle in
 * transaction too).
 */
function byRoleInDatabase(rows: readonly SessionRow[]): RoleInDatabase[] {
  const pairs: RoleInDatabase[] = [];
  const byRole = new Map<string, Map<string, RoleInDatabase>>();
  for (const r of byPid(rows).values()) {
    if (!r.usename) continue;
    let dbs = byRole.get(r.usename);
    if (!dbs) {
      dbs = new Map();
      byRole.set(r.usename, dbs);
    }
    let p = dbs.get(r.datname ?? '');
    if (!p) {
      p = { role: r.usename, roleOid: r.usesysid ?? null, db: r.datname, dbOid: r.datid ?? null, rows: [] };
      dbs.set(r.datname ?? '', p);
      pairs.push(p);
    }
    p.rows.push(r);
  }
  return pairs;
}

function guardFinding(view: SettingsView, g: GuardSpec): Finding | null {
  const off = byRoleInDatabase(g.rows).filter((p) => view.isOff(g.name, p.role, p.db) === true);
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
  const dbs = distinct(off, (p) => p.db);
  const db0 = off.find((p) => p.db === dbs[0]);
  if (dbs.length === 1 && db0) next.push(statementStep(`or for every role in database ${dbs[0]}`, ['ALTER DATABASE ', database(db0.db!, db0.dbOid), ...set], `ALTER DATABASE ... SET ${g.name}`));
  if (g.systemWide) next.push(statementStep('or server-wide (roles and databases with their own value keep it)', [`ALTER SYSTEM SET ${g.name} = `, literal(g.value), '; SELECT pg_reload_conf();'], ''));
  next.push(runbookStep(g.node));
  const roles = uniq(off.map((p) => p.role));
  const ev: Evidence = { ...emptyEvidence(), sessions: off.reduce((n, p) => n + p.rows.length, 0), users: roles, databases: dbs, facts: [`${g.because}`, ...facts] };
  ev.pids = off.flatMap((p) => p.rows.map((r) => r.pid)).sort((a, b) => a - b).slice(0, MAX_PIDS);
  return finding(
    'settings',
    g.node,
    g.severity,
    `${g.name} is off for ${roles.length === 1 ? `role ${roles[0]}` : `roles ${roles.slice(0, 3).join(', ')}${roles.length > 3 ? ', ...' : ''}`}: it would have ${g.why}`,
    ev,
    `${g.name} = 0 means no limit. ${g.caution ?? ''}`.trim(),
    next,
  );
}

// ---------------------------------------------------------------------------------------------
// visibility

export interface VisibilityResult extends NodeResult {
  hidden: SessionRow[];
  partial: boolean;
}

/** visibility: can the role see every session? A partial view is never OK. */
export function visibility(c: Context): VisibilityResult {
  const { server, sessions } = c;
  const hidden = sessions.filter((r) => !isVisible(r));
  const partial = hidden.length > 0 || !server.can_read_all_stats;
  const question = 'can the role see every session?';
  if (!partial) return { hidden, partial, findings: [], path: [pathStep('visibility', question, 'yes', `every session is visible to ${server.current_user}`)] };
  const ev = emptyEvidence();
  ev.sessions = hidden.length;
  ev.pids = hidden.map((r) => r.pid).slice(0, MAX_PIDS);
  ev.users = distinct(hidden, (r) => r.usename);
  ev.applications = uniq(hidden.map((r) => r.application_name));
  ev.facts = [
    `${plural(hidden.length, 'session')} of other roles ${hidden.length === 1 ? 'is' : 'are'} hidden: state, ages, client and query unknown`,
    `role ${server.current_user} ${server.can_read_all_stats ? 'has' : 'lacks'} pg_read_all_stats (pg_monitor)`,
  ];
  const f = finding(
    'settings',
    'visibility',
    'unknown',
    hidden.length > 0
      ? `partial view: ${plural(hidden.length, 'session')} of other roles ${hidden.length === 1 ? 'is' : 'are'} hidden from role ${server.current_user}`
      : `partial view: role ${server.current_user} cannot see other roles' sessions (none are connected now)`,
    ev,
    `role ${server.current_user} is not a superuser and lacks pg_read_all_stats, so other roles' sessions show no state, age, client or query: leaks, blocking and slow work among them cannot be judged, and this diagnosis cannot be OK`,
    [
      statementStep('grant the monitoring role (as a superuser), then diagnose again', ['GRANT pg_monitor TO ', role(server.current_user, server.current_user_oid ?? null), ';'], 'GRANT pg_monitor to this role'),
      fixedStep('or diagnose as a role that sees everything', 'diagnose', [['-U', 'postgres']]),
      fixedStep('see what this role can see and do', 'check'),
    ],
    hidden.length > 0 ? `partial view, ${plural(hidden.length, 'session')} hidden` : 'partial view (no pg_read_all_stats)',
  );
  return {
    hidden,
    partial,
    findings: [f],
    path: [pathStep('visibility', question, 'no', `${plural(hidden.length, 'session')} of other roles hidden; role ${server.current_user} lacks pg_read_all_stats`)],
  };
}

// ---------------------------------------------------------------------------------------------
// setting-* and settings

/** What the other rooms found, which the guards are judged against. */
export interface SettingsInputs {
  iit: LeakResult;
  unread: LeakResult;
  idle: IdlePoolResult;
  blocking: BlockingResult;
  long: LongQueriesResult;
  same: SameStatementResult;
}

/** The guards that would have stopped what the other rooms found (warning or worse), with the sessions each would have stopped. */
function guardsFor(c: Context, found: SettingsInputs, major: number): GuardSpec[] {
  const { t, snap } = c;
  const has = (f: Finding | null) => f !== null && RANK[f.severity] >= RANK.warning;
  const guards: GuardSpec[] = [];
  const blocking = found.blocking.report;
  const iitRoots = blocking.roots.filter((r) => rootIit(r) && r.session).map((r) => r.session!);
  if (has(found.iit.finding) || (has(found.blocking.finding) && iitRoots.length)) {
    guards.push({
      node: 'setting-idle-in-transaction-session-timeout',
      name: 'idle_in_transaction_session_timeout',
      value: pgInterval(Math.max(t.idle_in_transaction_crit_ms, 60_000)),
      rows: [...found.iit.rows, ...iitRoots],
      severity: 'warning',
      why: 'ended these idle-in-transaction sessions and released their slots and locks',
      because: found.iit.finding ? `${plural(found.iit.rows.length, 'session')} idle in transaction` : 'a root blocker idle in transaction',
      systemWide: true,
    });
  }
  if (has(found.long.finding) || has(found.same.finding)) {
    guards.push({
      node: 'setting-statement-timeout',
      name: 'statement_timeout',
      value: pgInterval(t.long_query_ms),
      rows: [...found.long.rows, ...found.same.rows],
      severity: 'warning',
      why: 'cancelled statements running longer than the limit and freed their connections',
      because: found.long.finding ? `${plural(found.long.rows.length, 'long query', 'long queries')}` : 'many sessions running the same slow statement',
      systemWide: false,
      caution: 'Set it per role (the application), not in postgresql.conf, and give batch roles a higher value.',
    });
  }
  if (has(found.blocking.finding)) {
    const rowOf = snapshotByPid(snap);
    // A session behind several roots (a DDL statement waiting for several readers) counts once.
    const waiters = [...new Set(blocking.roots.flatMap((r) => r.all))].map((p) => rowOf.get(p)).filter((x): x is SessionRow => Boolean(x));
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
  if (has(found.idle.finding) && major >= 14) {
    const grouped = new Set(found.idle.groups.flatMap((g) => g.pids));
    guards.push({
      node: 'setting-idle-session-timeout',
      name: 'idle_session_timeout',
      value: pgInterval(Math.max(t.idle_ms * 3, 3_600_000)),
      rows: found.idle.rows.filter((r) => grouped.has(r.pid)),
      severity: 'warning',
      why: 'closed sessions left idle far longer than any pool keeps them',
      because: 'applications keeping many sessions idle',
      systemWide: false,
      caution: "Pools reconnect transparently only if they validate connections; set it per role, above the pool's own idle timeout, never for LISTEN roles.",
    });
  }
  if (has(found.unread.finding) && major >= 17) {
    guards.push({
      node: 'setting-transaction-timeout',
      name: 'transaction_timeout',
      value: pgInterval(t.client_wait_crit_ms),
      rows: found.unread.rows,
      severity: 'warning',
      why: 'ended these half-read result sets: it is the only server setting that does (statement_timeout and idle_in_transaction_session_timeout do not)',
      because: `${plural(found.unread.rows.length, 'active session')} waiting on their client`,
      systemWide: false,
      caution: 'It ends any transaction longer than the limit, batch jobs included: set it per role.',
    });
  }
  return guards;
}

const KEEPALIVES_QUESTION = 'do TCP keepalives notice dead clients soon?';

/** setting-tcp-keepalives: dead peers behind ClientWrite waits (asked only when there are such waits). */
function keepalives(view: SettingsView, waits: SessionRow[]): NodeResult {
  const clientWrites = waits.filter((r) => r.wait_event === 'ClientWrite');
  if (!clientWrites.length) return { findings: [], path: [] };
  const idle = view.get('tcp_keepalives_idle');
  const idleS = idle ? settingNumber(view.serverValue('tcp_keepalives_idle'), null, 'integer') : null;
  if (idleS === null || (idleS !== 0 && idleS <= 300)) {
    return { findings: [], path: [pathStep('setting-tcp-keepalives', KEEPALIVES_QUESTION, idleS === null ? 'unknown' : 'yes', `tcp_keepalives_idle = ${idleS ?? 'unknown'}`)] };
  }
  const ev = emptyEvidence();
  ev.sessions = clientWrites.length;
  ev.pids = clientWrites.map((r) => r.pid);
  ev.facts = [`tcp_keepalives_idle = ${idleS === 0 ? '0 (the OS default, 7200s on Linux)' : `${idleS}s`}`, `${plural(clientWrites.length, 'session')} blocked writing to their client`];
  const f = finding(
    'settings',
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
  return { findings: [f], path: [pathStep('setting-tcp-keepalives', KEEPALIVES_QUESTION, 'no', f.title)] };
}

/** setting-log-lock-waits: the evidence of a blocking incident in the server log (asked only when there is one). */
function lockWaitLogging(view: SettingsView, found: SettingsInputs): NodeResult {
  const blocked = found.blocking.finding;
  if (blocked === null || RANK[blocked.severity] < RANK.warning) return { findings: [], path: [] };
  const llw = view.get('log_lock_waits');
  const off = llw ? settingNumber(view.serverValue('log_lock_waits'), null, 'bool') === 0 : false;
  const path = [pathStep('setting-log-lock-waits', 'are lock waits logged?', off ? 'off' : 'on', `log_lock_waits = ${llw ? view.serverValue('log_lock_waits') ?? 'unknown' : 'unknown'}`)];
  if (!off) return { findings: [], path };
  const waiting = found.blocking.report.waiting;
  const ev = emptyEvidence();
  ev.facts = ['log_lock_waits = off', `${plural(waiting, 'session')} ${waiting === 1 ? 'waits' : 'wait'} on locks now, and the server log holds no trace of it`];
  const f = finding(
    'settings',
    'setting-log-lock-waits',
    'warning',
    'log_lock_waits is off: lock waits longer than deadlock_timeout leave no trace in the server log',
    ev,
    'with log_lock_waits on, every wait longer than deadlock_timeout (1s by default) is logged with the holders and waiters: the evidence of this incident after it is over. It is cheap.',
    [sqlStep('turn it on (takes effect on reload)', 'ALTER SYSTEM SET log_lock_waits = on; SELECT pg_reload_conf();'), runbookStep('setting-log-lock-waits')],
  );
  return { findings: [f], path };
}

const OTHERS_QUESTION = 'which other guards are off?';

/** settings: the other guards, off at server level (or turned off for a role) with no incident now: one info finding. */
function otherGuards(c: Context, view: SettingsView, reported: Set<string>, major: number): NodeResult {
  const { t } = c;
  const serverOff = (name: string) => {
    const s = view.get(name);
    return s !== undefined && settingNumber(view.serverValue(name), s.unit, s.vartype) === 0;
  };
  const reload = '; SELECT pg_reload_conf();';
  const candidates: Array<{ node: NodeId; name: string; fix: string }> = [
    { node: 'setting-idle-in-transaction-session-timeout', name: 'idle_in_transaction_session_timeout', fix: `ALTER SYSTEM SET idle_in_transaction_session_timeout = ${sqlLiteral(pgInterval(Math.max(t.idle_in_transaction_crit_ms, 60_000)))}${reload}` },
    { node: 'setting-statement-timeout', name: 'statement_timeout', fix: `ALTER ROLE <app_role> SET statement_timeout = ${sqlLiteral(pgInterval(t.long_query_ms))};` },
    { node: 'setting-lock-timeout', name: 'lock_timeout', fix: `ALTER ROLE <app_role> SET lock_timeout = ${sqlLiteral(pgInterval(t.lock_wait_crit_ms))};` },
    { node: 'setting-log-lock-waits', name: 'log_lock_waits', fix: `ALTER SYSTEM SET log_lock_waits = on${reload}` },
  ];
  if (major >= 17) candidates.push({ node: 'setting-transaction-timeout', name: 'transaction_timeout', fix: `ALTER ROLE <app_role> SET transaction_timeout = ${sqlLiteral(pgInterval(t.client_wait_crit_ms))};` });
  const offNow = candidates.filter((g) => !reported.has(g.node) && serverOff(g.name));
  const overridesOff = c.facts.settings!.overrides.filter((o) => {
    const s = view.get(o.name);
    return s && settingNumber(o.value, s.unit, s.vartype) === 0 && settingNumber(view.serverValue(o.name), s.unit, s.vartype) !== 0 && view.serverValue(o.name) !== null;
  });
  if (!offNow.length && !overridesOff.length) return { findings: [], path: [pathStep('settings', OTHERS_QUESTION, 'none', 'every guard checked is set (or already reported)')] };
  const ev = emptyEvidence();
  ev.facts = [
    ...offNow.map((g) => `${g.name} is off at server level`),
    ...overridesOff.map((o) => `${o.role ? `role ${o.role}` : 'every role'}${o.database ? ` in database ${o.database}` : ''} turns ${o.name} off (${o.value}) although the server sets it`),
  ];
  const f = finding(
    'settings',
    'settings',
    'info',
    `guards that are off: ${uniq([...offNow.map((g) => g.name), ...overridesOff.map((o) => o.name)]).join(', ')}`,
    ev,
    'none of them is behind a finding now; each bounds one kind of incident (a forgotten transaction, a runaway statement, a pile-up behind a lock) before it exhausts the pool',
    [...offNow.slice(0, 4).map((g) => sqlStep(`turn on ${g.name}`, g.fix)), runbookStep('settings')],
  );
  return { findings: [f], path: [pathStep('settings', OTHERS_QUESTION, 'some', ev.facts.join('; '))] };
}

/** setting-* and settings: the guards that would have stopped what was found, and the others that are off. */
export function settings(c: Context, found: SettingsInputs): NodeResult {
  const { facts } = c;
  if (!facts.settings) {
    const why = facts.unavailable.find((u) => u.what === 'settings')?.reason ?? 'not read';
    return { findings: [], path: [pathStep('settings', 'which guards were off?', 'unavailable', why)] };
  }
  const view = new SettingsView(facts.settings);
  const major = Math.floor(facts.settings.server_version_num / 10000);
  const guards: NodeResult[] = guardsFor(c, found, major).map((g) => {
    const f = guardFinding(view, g);
    return { findings: f ? [f] : [], path: [pathStep(g.node, `was ${g.name} set for the roles of this incident?`, f ? 'off' : 'set', f ? f.title : 'set for every role involved (or not known)')] };
  });
  guards.push(keepalives(view, found.unread.rows), lockWaitLogging(view, found));
  const reported = new Set(guards.flatMap((g) => g.findings.map((f) => f.id)));
  const results = [...guards, otherGuards(c, view, reported, major)];
  return { findings: results.flatMap((r) => r.findings), path: results.flatMap((r) => r.path) };
}
