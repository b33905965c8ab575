/**
 * dbdoctor's findings in the monitoring engines' own formats: the Prometheus text exposition
 * (node_exporter's textfile collector, the exporter's /metrics) and OpenMetrics, and the body of
 * Icinga 2's process-check-result API. Labels are bounded: the target, a finding id, a severity or
 * verdict, a state, and an application only for the top applications; never a pid, a query or a
 * client port. Every sample is a gauge (no counter here counts since a start).
 */
import type { DiagnoseReport, Metric } from '../core/diagnose/types.js';
import { exitCodeForSeverity, type Severity } from '../core/exit-codes.js';
import { NAGIOS_STATUS, perfItem } from './diagnose.js';
import { escapeCodePoint, revealHidden } from '../core/text.js';
import { inert } from './json.js';
import { oneLine } from './sanitize.js';

export interface Exposed {
  name: string;
  /** Milliseconds the diagnosis took. */
  ms: number;
  report: DiagnoseReport;
}

/** How many applications get a series of their own (the rest are summed as "other"). */
export const TOP_APPLICATIONS = 10;

const VERDICTS: readonly Severity[] = ['ok', 'warning', 'critical', 'unknown'];

/** A report metric (the nagios perfdata) as a Prometheus family: name, unit suffix, help. */
const FAMILIES: ReadonlyArray<[string, string, string]> = [
  ['connections', 'dbdoctor_client_connections', 'Client backends connected (pg_stat_activity).'],
  ['connections_pct', 'dbdoctor_client_connections_ratio', 'Client backends against the slots ordinary roles may use (0 to 1).'],
  ['idle_in_transaction', 'dbdoctor_idle_in_transaction_sessions', 'Sessions idle in a transaction longer than the threshold.'],
  ['oldest_idle_in_transaction', 'dbdoctor_oldest_idle_in_transaction_seconds', 'Age of the oldest idle-in-transaction state.'],
  ['unread_results', 'dbdoctor_unread_result_sessions', 'Sessions whose client stopped reading results (ClientWrite).'],
  ['oldest_unread_result', 'dbdoctor_oldest_unread_result_seconds', 'Longest wait on a client that does not read its results.'],
  ['idle_long', 'dbdoctor_idle_long_sessions', 'Sessions idle longer than the idle threshold.'],
  ['lock_waiters', 'dbdoctor_lock_waiting_sessions', 'Sessions waiting for a lock.'],
  ['longest_lock_wait', 'dbdoctor_longest_lock_wait_seconds', 'Longest current wait for a lock.'],
  ['long_queries', 'dbdoctor_long_query_sessions', 'Statements running longer than the threshold.'],
  ['longest_query', 'dbdoctor_longest_query_seconds', 'Runtime of the longest running statement.'],
  ['same_statement', 'dbdoctor_same_statement_sessions', 'Most sessions running one statement at once.'],
  ['hidden_sessions', 'dbdoctor_hidden_sessions', "Sessions whose details dbdoctor's role may not read."],
];

/**
 * A label value, escaped as the exposition formats want (backslash, double quote, newline), with
 * every other control character and every hidden character first written as its escape, the
 * backslash of which is then escaped too: the value reads `\u009d` as text. Raw, the terminal writer
 * would show them as `\u009d`, an escape no exposition parser accepts (a textfile collector drops
 * the whole file), and other clients choose application names.
 */
export function labelValue(v: string): string {
  return revealHidden(v.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, escapeCodePoint))
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\n/g, '\\n');
}

const labels = (l: Record<string, string>) => `{${Object.entries(l).map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')}}`;

/** A sample value: integers as they are, others with up to 6 decimals (seconds keep microseconds). */
const value = (n: number) => (Number.isInteger(n) ? String(n) : String(Math.round(n * 1e6) / 1e6));

function metricValue(m: Metric): number {
  return m.uom === '%' ? m.value / 100 : m.value;
}

/**
 * The exposition for one or many targets. `openmetrics` adds what that format requires (unit
 * metadata, `# EOF`); both are one family at a time, each with its HELP and TYPE.
 */
export function exposition(targets: readonly Exposed[], format: 'prometheus' | 'openmetrics'): string {
  const out: string[] = [];
  const family = (name: string, help: string, unit: string | null, samples: string[]) => {
    out.push(`# HELP ${name} ${help}`);
    out.push(`# TYPE ${name} gauge`);
    if (format === 'openmetrics' && unit) out.push(`# UNIT ${name} ${unit}`);
    out.push(...samples);
  };
  family('dbdoctor_up', 'Whether dbdoctor could connect to the target and read it (1) or not (0).', null, targets.map((t) => `dbdoctor_up${labels({ target: t.name })} ${t.report.connected && t.report.server !== null ? 1 : 0}`));
  family('dbdoctor_diagnose_duration_seconds', 'How long the diagnosis of the target took.', 'seconds', targets.map((t) => `dbdoctor_diagnose_duration_seconds${labels({ target: t.name })} ${value(t.ms / 1000)}`));
  family(
    'dbdoctor_verdict',
    'The verdict of the diagnosis: 1 for the verdict it is, 0 for the others.',
    null,
    targets.flatMap((t) => VERDICTS.map((v) => `dbdoctor_verdict${labels({ target: t.name, verdict: v })} ${(t.report.verdict === 'info' ? 'ok' : t.report.verdict) === v ? 1 : 0}`)),
  );
  family(
    'dbdoctor_finding',
    'A finding of the diagnosis, by its id and severity (1 while it holds; absent when it does not).',
    null,
    targets.flatMap((t) => t.report.findings.filter((f) => f.severity !== 'info' && f.severity !== 'ok').map((f) => `dbdoctor_finding${labels({ target: t.name, finding: f.id, severity: f.severity })} 1`)),
  );
  for (const [metric, name, help] of FAMILIES) {
    const samples = targets.flatMap((t) => {
      const m = t.report.metrics.find((x) => x.name === metric);
      return m && t.report.connected ? [`${name}${labels({ target: t.name })} ${value(metricValue(m))}`] : [];
    });
    if (samples.length) family(name, help, name.endsWith('_seconds') ? 'seconds' : name.endsWith('_ratio') ? 'ratio' : null, samples);
  }
  family(
    'dbdoctor_ordinary_slots',
    'Connection slots ordinary roles may use (max_connections less the reserved slots).',
    null,
    targets.flatMap((t) => (t.report.capacity ? [`dbdoctor_ordinary_slots${labels({ target: t.name })} ${t.report.capacity.ordinary_slots}`] : [])),
  );
  family(
    'dbdoctor_application_sessions',
    `Sessions by application_name, for the ${TOP_APPLICATIONS} largest applications (the rest as "other").`,
    null,
    targets.flatMap((t) => {
      // the report keeps 10 holders: the rest is every client session who-holds counted less the top
      const top = t.report.holders.slice(0, TOP_APPLICATIONS);
      const all = t.report.findings.find((f) => f.id === 'who-holds')?.evidence.sessions ?? 0;
      const rest = Math.max(0, all - top.reduce((n, h) => n + h.count, 0));
      return [...top.map((h) => `dbdoctor_application_sessions${labels({ target: t.name, application: h.application })} ${h.count}`), ...(rest > 0 ? [`dbdoctor_application_sessions${labels({ target: t.name, application: 'other' })} ${rest}`] : [])];
    }),
  );
  if (format === 'openmetrics') out.push('# EOF');
  return `${out.join('\n')}\n`;
}

/** Icinga 2's process-check-result body for one target (POST /v1/actions/process-check-result; add type and filter). */
export interface IcingaCheckResult {
  exit_status: number;
  plugin_output: string;
  performance_data: string[];
  check_source: string;
  ttl: number;
  /** The target, for the caller's filter (host.name/service.name are the caller's to choose). */
  target: string;
}

export function icingaCheckResult(t: Exposed, checkSource: string, ttlSeconds: number): IcingaCheckResult {
  return {
    exit_status: exitCodeForSeverity(t.report.verdict),
    plugin_output: `DBDOCTOR ${NAGIOS_STATUS[t.report.verdict]}: ${oneLine(t.report.summary, 400)}`,
    performance_data: t.report.metrics.map(perfItem),
    check_source: checkSource,
    ttl: ttlSeconds,
    target: t.name,
  };
}

/** The bodies of a fleet, one JSON document a line (a target each), for a loop that POSTs them. */
export function icingaLines(targets: readonly Exposed[], checkSource: string, ttlSeconds: number): string {
  return targets.map((t) => inert(JSON.stringify(icingaCheckResult(t, checkSource, ttlSeconds)))).join('\n');
}
