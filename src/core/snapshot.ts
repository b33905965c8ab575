/**
 * A snapshot: everything `diagnose` decides on (the DiagnoseFacts src/db/diagnose.ts gathers), kept
 * in one versioned document (`dbdoctor.snapshot`, schema/snapshot.schema.json) so that the same
 * decisions run later, offline, with no server: `diagnose`, `connections`, `locks` and `queries`
 * with `--from <file>`. PURE: masking the facts before they are written, and reading a document
 * back into facts (a file is hostile input: every field is checked before a decision sees it).
 */
import type { ActivitySnapshot, SessionRow } from './activity.js';
import type { TrendSample } from './diagnose/trends.js';
import type { DiagnoseFacts, SettingsFacts, StatementsFacts } from './diagnose/types.js';
import { DbdoctorError, UsageError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { redactSecrets, redactStatement } from './redact.js';

export const SNAPSHOT_SCHEMA = 'dbdoctor.snapshot';
export const SNAPSHOT_VERSION = 1;
export const WATCH_SCHEMA = 'dbdoctor.watch';

/** A setting whose name says it holds a secret: its value is never written. */
const SECRET_NAME = /password|secret|passphrase|token|credential/i;
const MASK = '***';

function maskStatement(q: string | null): string | null {
  return q === null ? null : redactStatement(q);
}

function maskSettings(s: SettingsFacts | null): SettingsFacts | null {
  if (!s) return null;
  return {
    ...s,
    settings: s.settings.map((v) => (SECRET_NAME.test(v.name) ? { ...v, value: MASK, boot_val: v.boot_val === null ? null : MASK } : v)),
    overrides: s.overrides.map((o) => (SECRET_NAME.test(o.name) ? { ...o, value: MASK } : o)),
  };
}

function maskStatements(s: StatementsFacts | null): StatementsFacts | null {
  if (!s) return null;
  const top = (xs: StatementsFacts['by_total']) => xs.map((x) => ({ ...x, query: maskStatement(x.query) }));
  return { ...s, by_total: top(s.by_total), by_mean: top(s.by_mean) };
}

/**
 * The facts as a snapshot keeps them: other clients' secrets masked where they can be (statement
 * texts in the activity and in pg_stat_statements, through the same redaction every view uses;
 * settings and per-role/database overrides whose names hold a secret; messages that may carry a
 * URL). The decisions read masked texts the same way (the views mask them anyway), so the findings
 * are the same.
 */
export function maskFacts(facts: DiagnoseFacts): DiagnoseFacts {
  const activity: ActivitySnapshot | null = facts.activity ? { ...facts.activity, rows: facts.activity.rows.map((r) => ({ ...r, query: maskStatement(r.query) })) } : null;
  return {
    ...facts,
    target: redactSecrets(facts.target),
    activity,
    settings: maskSettings(facts.settings),
    statements: maskStatements(facts.statements),
    gather_error: facts.gather_error ? { ...facts.gather_error, message: redactSecrets(facts.gather_error.message), hint: facts.gather_error.hint === null ? null : redactSecrets(facts.gather_error.hint) } : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Reading a document back (hostile input: checked field by field)

const HINT = 'give a file written by `dbdoctor snapshot` (or a `dbdoctor watch --json` recording)';

class Bad extends Error {}

type Kind = 'str' | 'str?' | 'num' | 'num?' | 'int' | 'int?' | 'bool' | 'bool?';

function check(v: unknown, kind: Kind, where: string): void {
  const nullable = kind.endsWith('?');
  if (v === null && nullable) return;
  const base = kind.replace('?', '');
  const ok = base === 'str' ? typeof v === 'string' : base === 'bool' ? typeof v === 'boolean' : typeof v === 'number' && Number.isFinite(v) && (base === 'num' || Number.isInteger(v));
  if (!ok) throw new Bad(`${where} is not ${nullable ? 'null or ' : ''}${base === 'str' ? 'a string' : base === 'bool' ? 'true or false' : base === 'int' ? 'an integer' : 'a number'}`);
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Bad(`${where} is not an object`);
  return v as Record<string, unknown>;
}

function arr(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) throw new Bad(`${where} is not a list`);
  return v;
}

function fields(o: Record<string, unknown>, spec: Record<string, Kind>, where: string, optional: readonly string[] = []): void {
  for (const [k, kind] of Object.entries(spec)) {
    if (!(k in o) && optional.includes(k)) continue;
    check(o[k], kind, `${where}.${k}`);
  }
}

const ROW: Record<string, Kind> = {
  pid: 'int',
  leader_pid: 'int?',
  backend_type: 'str?',
  datid: 'int?',
  datname: 'str?',
  usesysid: 'int?',
  usename: 'str?',
  superuser: 'bool?',
  application_name: 'str',
  client_addr: 'str?',
  client_hostname: 'str?',
  client_port: 'int?',
  backend_start: 'str?',
  state: 'str?',
  wait_event_type: 'str?',
  wait_event: 'str?',
  backend_age_ms: 'num?',
  xact_age_ms: 'num?',
  query_age_ms: 'num?',
  state_age_ms: 'num?',
  query_id: 'str?',
  query: 'str?',
  is_self: 'bool',
};

function checkRow(v: unknown, where: string): SessionRow {
  const r = obj(v, where);
  fields(r, ROW, where, ['datid', 'usesysid']);
  if (r.blocked_by !== null) for (const [i, p] of arr(r.blocked_by, `${where}.blocked_by`).entries()) check(p, 'int', `${where}.blocked_by[${i}]`);
  if (r.wait_lock !== null) fields(obj(r.wait_lock, `${where}.wait_lock`), { locktype: 'str', mode: 'str', relation: 'str?', wait_ms: 'num?' }, `${where}.wait_lock`);
  return r as unknown as SessionRow;
}

function checkActivity(v: unknown): ActivitySnapshot | null {
  if (v === null) return null;
  const a = obj(v, 'activity');
  fields(a, { server_version_num: 'int', taken_at: 'str', database: 'str' }, 'activity');
  const rows = arr(a.rows, 'activity.rows');
  // pg_stat_activity shows a server process once: a pid listed twice is no snapshot dbdoctor wrote
  // (and would leave which of its rows counts to each reader).
  const pids = new Set<number>();
  rows.forEach((r, i) => {
    const { pid } = checkRow(r, `activity.rows[${i}]`);
    if (pids.has(pid)) throw new Bad(`activity.rows[${i}].pid ${pid} is listed twice`);
    pids.add(pid);
  });
  arr(a.prepared, 'activity.prepared').forEach((p, i) => {
    fields(obj(p, `activity.prepared[${i}]`), { gid: 'str', owner: 'str', database: 'str', transaction: 'str', age_ms: 'num' }, `activity.prepared[${i}]`);
  });
  return a as unknown as ActivitySnapshot;
}

const SERVER: Record<string, Kind> = {
  version: 'str',
  server_version_num: 'int',
  uptime_s: 'num',
  in_recovery: 'bool',
  max_connections: 'int',
  superuser_reserved: 'int',
  reserved: 'int',
  current_user: 'str',
  current_user_oid: 'int?',
  current_database: 'str',
  is_superuser: 'bool',
  can_read_all_stats: 'bool',
  can_signal_backend: 'bool',
  can_use_reserved: 'bool',
  has_monitor: 'bool',
};

function checkSettings(v: unknown): void {
  if (v === null) return;
  const s = obj(v, 'settings');
  fields(s, { server_version_num: 'int', current_user: 'str', current_database: 'str' }, 'settings');
  arr(s.settings, 'settings.settings').forEach((x, i) => {
    fields(obj(x, `settings.settings[${i}]`), { name: 'str', value: 'str', unit: 'str?', vartype: 'str', context: 'str', boot_val: 'str?' }, `settings.settings[${i}]`);
  });
  arr(s.overrides, 'settings.overrides').forEach((x, i) => {
    fields(obj(x, `settings.overrides[${i}]`), { role: 'str?', database: 'str?', name: 'str', value: 'str', role_oid: 'int?', database_oid: 'int?' }, `settings.overrides[${i}]`, ['role_oid', 'database_oid']);
  });
}

function checkStatements(v: unknown): void {
  if (v === null) return;
  const s = obj(v, 'statements');
  fields(s, { pg_stat_statements: 'str', extension_schema: 'str?', extension_version: 'str?', stats_reset: 'str?', total_exec_ms: 'num?', entries: 'num?' }, 'statements');
  for (const list of ['by_total', 'by_mean'] as const) {
    arr(s[list], `statements.${list}`).forEach((x, i) => {
    fields(obj(x, `statements.${list}[${i}]`), { queryid: 'str?', role: 'str?', database: 'str?', calls: 'num', total_ms: 'num', mean_ms: 'num', max_ms: 'num', rows: 'num', query: 'str?' }, `statements.${list}[${i}]`);
  });
  }
  arr(s.seq_scan_tables, 'statements.seq_scan_tables').forEach((x, i) => {
    fields(obj(x, `statements.seq_scan_tables[${i}]`), { table: 'str', seq_scan: 'num', seq_tup_read: 'num', idx_scan: 'num', live_rows: 'num' }, `statements.seq_scan_tables[${i}]`);
  });
}

/** The facts inside a `dbdoctor.snapshot` report, checked. Throws Bad with where it went wrong. */
export function checkFacts(v: unknown): DiagnoseFacts {
  const f = obj(v, 'report');
  check(f.target, 'str', 'target');
  const c = obj(f.connect, 'connect');
  if (c.ok === true) check(c.connect_ms, 'num', 'connect.connect_ms');
  else if (c.ok === false) {
    const failure = obj(c.failure, 'connect.failure');
    fields(failure, { step: 'str', cause: 'str', message: 'str', hint: 'str', exit_code: 'int', runbook: 'str' }, 'connect.failure');
    if (![2, 3].includes(failure.exit_code as number)) throw new Bad('connect.failure.exit_code is not 2 or 3');
    check(c.ms, 'num?', 'connect.ms');
  } else throw new Bad('connect.ok is not true or false');
  if (f.server !== null) fields(obj(f.server, 'server'), SERVER, 'server', ['current_user_oid']);
  arr(f.limits, 'limits').forEach((l, i) => {
    const o = obj(l, `limits[${i}]`);
    fields(o, { kind: 'str', name: 'str', oid: 'int?', conn_limit: 'int', connections: 'int' }, `limits[${i}]`, ['oid']);
    if (o.kind !== 'database' && o.kind !== 'role') throw new Bad(`limits[${i}].kind is not database or role`);
  });
  checkActivity(f.activity);
  checkSettings(f.settings);
  checkStatements(f.statements);
  if (f.gather_error !== null) {
    const e = obj(f.gather_error, 'gather_error');
    fields(e, { cause: 'str', message: 'str', hint: 'str?', exit_code: 'int' }, 'gather_error');
  }
  arr(f.unavailable, 'unavailable').forEach((u, i) => {
    fields(obj(u, `unavailable[${i}]`), { what: 'str', reason: 'str' }, `unavailable[${i}]`);
  });
  check(f.gather_ms, 'num', 'gather_ms');
  return f as unknown as DiagnoseFacts;
}

/** The envelope around the facts: its kind and version checked. */
export function factsFromSnapshot(doc: unknown, source: string): DiagnoseFacts {
  try {
    const d = obj(doc, 'the document');
    if (d.schema !== SNAPSHOT_SCHEMA) throw new Bad(`it is ${typeof d.schema === 'string' ? `a ${d.schema} document` : 'not a dbdoctor document'}, not ${SNAPSHOT_SCHEMA}`);
    if (d.schema_version !== SNAPSHOT_VERSION) throw new Bad(`its schema_version ${JSON.stringify(d.schema_version)} is not ${SNAPSHOT_VERSION}, the one this dbdoctor reads`);
    return checkFacts(d.report);
  } catch (err) {
    if (err instanceof Bad) throw new UsageError(`${source} is not a snapshot dbdoctor can read: ${err.message}`, HINT);
    throw err;
  }
}

/** What a `--from` file holds: the facts to decide on, and for a `watch` recording its samples. */
export interface FromFile {
  facts: DiagnoseFacts;
  recording: { samples: TrendSample[]; window: number } | null;
}

function checkSample(v: unknown, where: string): TrendSample {
  const s = obj(v, where);
  fields(s, { at_ms: 'num', client_sessions: 'int', ordinary_slots: 'int', new_sessions: 'int?' }, where);
  for (const [i, a] of arr(s.by_app, `${where}.by_app`).entries()) {
    const o = obj(a, `${where}.by_app[${i}]`);
    fields(o, { app: 'str', total: 'int', idle_in_transaction: 'int', client_read: 'int', new_sessions: 'int' }, `${where}.by_app[${i}]`);
    for (const [k, p] of arr(o.pids_iit, `${where}.by_app[${i}].pids_iit`).entries()) check(p, 'int', `${where}.by_app[${i}].pids_iit[${k}]`);
  }
  if (s.session_stats !== null) fields(obj(s.session_stats, `${where}.session_stats`), { sessions: 'num', abandoned: 'num', fatal: 'num', killed: 'num' }, `${where}.session_stats`);
  return s as unknown as TrendSample;
}

/**
 * A `dbdoctor watch --json` recording (one dbdoctor.watch document a line): the samples, and the
 * facts of the latest line that kept them (the first, every change, the last).
 */
function parseRecording(lines: string[], source: string): FromFile {
  const samples: TrendSample[] = [];
  let facts: DiagnoseFacts | null = null;
  let window = 0;
  for (const [i, line] of lines.entries()) {
    const where = `line ${i + 1}`;
    try {
      let doc: unknown;
      try {
        doc = JSON.parse(line);
      } catch (err) {
        throw new Bad(`it is not JSON (${(err as Error).message})`);
      }
      const d = obj(doc, 'the document');
      if (d.schema !== WATCH_SCHEMA) throw new Bad(`it is not a ${WATCH_SCHEMA} document`);
      if (d.schema_version !== SNAPSHOT_VERSION) throw new Bad(`its schema_version ${JSON.stringify(d.schema_version)} is not ${SNAPSHOT_VERSION}`);
      const r = obj(d.report, 'report');
      samples.push(checkSample(r.sample, 'sample'));
      check(r.trend_window, 'int', 'trend_window');
      window = r.trend_window as number;
      if (r.facts !== null) facts = checkFacts(r.facts);
    } catch (err) {
      if (err instanceof Bad) throw new UsageError(`${source} is not a recording dbdoctor can read: ${where}: ${err.message}`, HINT);
      throw err;
    }
  }
  if (!facts) throw new UsageError(`${source} is a recording with no facts in it (cut before its first line ended?)`, HINT);
  return { facts, recording: { samples, window: Math.max(3, window) } };
}

/** A `--from` file's text: a snapshot (one JSON document) or a watch recording (JSON lines). */
export function parseFromText(text: string, source: string): FromFile {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length >= 1 && lines[0]!.trimStart().startsWith('{"schema":"dbdoctor.watch"')) return parseRecording(lines, source);
  return { facts: parseSnapshotText(text, source), recording: null };
}

/** Parses a snapshot file's text (JSON) into facts. */
export function parseSnapshotText(text: string, source: string): DiagnoseFacts {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${source} is not valid JSON: ${(err as Error).message}`, HINT);
  }
  return factsFromSnapshot(doc, source);
}

/**
 * The activity and server facts a view (connections, locks, queries) renders from; a snapshot of
 * a server that could not be read has none, and says why (the exit code of that failure).
 */
export function viewFacts(facts: DiagnoseFacts, source: string): { activity: ActivitySnapshot; server: NonNullable<DiagnoseFacts['server']> } {
  if (facts.activity && facts.server) return { activity: facts.activity, server: facts.server };
  const why = !facts.connect.ok ? facts.connect.failure.message : (facts.gather_error?.message ?? 'no activity was read');
  const code = !facts.connect.ok ? facts.connect.failure.exit_code : (facts.gather_error?.exit_code ?? ExitCode.UNKNOWN);
  throw new DbdoctorError(`${source} holds no sessions: when it was taken, ${why}`, { exitCode: code, cause: 'snapshot_without_activity', hint: 'run dbdoctor diagnose --from on it for the whole story' });
}

/** The activity with its query texts cut to `chars`, as a live read cuts them server-side (left(query, N)). */
export function cutQueries(activity: ActivitySnapshot, chars: number): ActivitySnapshot {
  return { ...activity, rows: activity.rows.map((r) => (r.query !== null && r.query.length > chars ? { ...r, query: r.query.slice(0, chars) } : r)) };
}
