/**
 * The report's and the facts' shapes (the JSON contract: schema/diagnose.schema.json), shared by
 * the rooms of the tree, the walk (src/core/diagnose.ts), src/db (which gathers the facts) and
 * src/render. Types only.
 */
import type { ActivitySnapshot } from '../activity.js';
import type { Capacity, ConnLimit } from '../capacity.js';
import type { ServerProfile } from '../check.js';
import type { ConnectFailure } from '../classify.js';
import type { NodeId } from '../diagnose.js';
import type { ExitCodeValue, Severity } from '../exit-codes.js';
import type { NextStep } from '../printed.js';
import type { Thresholds } from '../thresholds.js';

export type { NextStep };

// ---------------------------------------------------------------------------------------------
// Facts

export interface SettingValue {
  name: string;
  /** pg_settings.reset_val: what a new session gets (dbdoctor's own SETs excluded; its connection options not: see client_options). */
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
  /** The role's and the database's oids (absent in facts recorded before they were read). */
  role_oid?: number | null;
  database_oid?: number | null;
}

export interface SettingsFacts {
  server_version_num: number;
  settings: SettingValue[];
  overrides: SettingOverride[];
  current_user: string;
  current_database: string;
  /**
   * The settings dbdoctor's own connection options set (`options`, PGOPTIONS: `-c name=value`):
   * for these reset_val is the client's value, not the server's, which is then unknown. Absent in
   * snapshots written before it was recorded.
   */
  client_options?: string[];
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
  /** Their pids (at most 200; `sessions` has the full count). Never 0: a prepared transaction is in `prepared_transactions`. */
  pids: number[];
  /** Prepared transactions involved (they hold locks, and have no pid). */
  prepared_transactions: Array<{ gid: string; owner: string; database: string; transaction: string }>;
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
