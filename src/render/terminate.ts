/**
 * `terminate` as text: the plan (what will be terminated, what is excluded and why), the results,
 * and the one-line notices for stderr. Every piece of client-controlled text goes through
 * sanitize/oneLine. Tables stay within 80 columns.
 */
import type { ChalkInstance } from 'chalk';
import { formatDuration } from '../core/duration.js';
import { exclusionText, type Outcome, type PlannedSession, type TerminateReport } from '../core/terminate.js';
import { ageCell, type ColumnSpec, listTable, stateCell, tableWidth, wrap } from './connections.js';
import { oneLine } from './sanitize.js';
import { table } from './table.js';

const STATE_SHORT: Record<string, string> = {
  'idle in transaction': 'idle in xact',
  'idle in transaction (aborted)': 'idle xact (abort)',
  'fastpath function call': 'fastpath',
};

export function shortState(state: string): string {
  return STATE_SHORT[state] ?? state;
}

function label(style: ChalkInstance, r: TerminateReport): string {
  switch (r.status) {
    case 'done':
      return style.bold.green('OK');
    case 'partly_done':
      return style.bold.yellow('WARNING');
    case 'not_done':
      return style.bold.red('CRITICAL');
    case 'dry_run':
      return style.bold.cyan('DRY RUN');
    case 'over_max':
    case 'not_confirmed':
      return style.bold.yellow('NOT CONFIRMED');
    case 'nothing_to_do':
      return r.exit_code === 0 ? style.bold.green('OK') : style.bold.magenta('UNKNOWN');
  }
}

function outcomeText(style: ChalkInstance, o: Outcome): string {
  switch (o) {
    case 'terminated':
      return style.green('terminated');
    case 'cancelled':
      return style.green('query cancelled');
    case 'gone':
      return style.dim('already gone');
    case 'changed':
      return style.yellow('changed, kept');
    case 'permission_denied':
      return style.red('permission denied');
    case 'failed':
      return style.red('failed');
    case 'not_attempted':
      return style.dim('not attempted');
  }
}

/** One line per planned session for the interactive checkbox. */
export function choiceLabel(p: PlannedSession, width = 76): string {
  const head = [
    String(p.pid).padEnd(8),
    oneLine(p.app || '-', 16).padEnd(16),
    oneLine(p.user ?? '-', 12).padEnd(12),
    shortState(p.state).padEnd(12),
    formatDuration(p.age_ms).padEnd(7),
  ].join(' ');
  const room = width - head.length - 1;
  return room > 8 ? `${head} ${oneLine(p.query, room)}` : head;
}

function planTable(r: TerminateReport, style: ChalkInstance, width: number): string {
  const ps = r.planned;
  const cols: ColumnSpec[] = [
    { head: 'pid', cells: ps.map((p) => String(p.pid) + (p.action === 'cancel_then_terminate' ? '*' : '')) },
    { head: 'app', cells: ps.map((p) => oneLine(p.app || '-')), min: 3, soft: 8, max: 20 },
    { head: 'user', cells: ps.map((p) => oneLine(p.user ?? '?')), min: 3, soft: 8, max: 16 },
    { head: 'client', cells: ps.map((p) => oneLine(p.client)), min: 5, soft: 9, max: 39 },
    { head: 'state', cells: ps.map((p) => stateCell(style, p.state, true)) },
    { head: 'age', cells: ps.map((p) => ageCell(style, p.age_ms)) },
    { head: 'xact', cells: ps.map((p) => ageCell(style, p.xact_age_ms)) },
    {
      head: 'query',
      cells: ps.map((p) => {
        // Idle sessions always wait for the client: only an active session's wait says something.
        const wait = p.state === 'active' && p.wait_event ? oneLine(p.wait_event) : '';
        const extra = [p.blocks > 0 ? `blocks ${p.blocks}` : '', wait].filter(Boolean).join(', ');
        return `${extra ? style.dim(`[${extra}] `) : ''}${oneLine(p.query) || '-'}`;
      }),
      min: 12,
    },
  ];
  return listTable(
    cols.map((c) => ({ ...c, head: style.bold(c.head) })),
    width,
  );
}

function excludedTable(r: TerminateReport, style: ChalkInstance, limit = 20): string[] {
  if (r.excluded.length === 0) return [];
  const t = table({ head: ['pid', 'app', 'user', 'excluded because'].map((h) => style.bold(h)), colWidths: [9, 14, 10, 39], wordWrap: true });
  for (const e of r.excluded.slice(0, limit)) {
    t.push([String(e.pid), oneLine(e.app || '-', 12), oneLine(e.user ?? '-', 8), oneLine(e.detail)]);
  }
  const lines = [`${style.bold('Not touched')} (matched the filters, but excluded):`, t.toString()];
  if (r.excluded.length > limit) {
    const byReason = new Map<string, number>();
    for (const e of r.excluded.slice(limit)) byReason.set(e.reason, (byReason.get(e.reason) ?? 0) + 1);
    const rest = [...byReason].map(([reason, n]) => `${n} ${exclusionText(reason as Parameters<typeof exclusionText>[0]).split(' (')[0]}`);
    lines.push(style.dim(`... and ${r.excluded.length - limit} more: ${rest.join('; ')} (all of them are in --json)`));
  }
  return lines;
}

/** The plan: shown before the questions, and in every report that did not act. */
export function renderPlan(r: TerminateReport, style: ChalkInstance, columns = 80): string {
  const width = tableWidth(columns);
  const lines: string[] = [];
  const scope = r.all_databases ? 'all databases' : `database ${JSON.stringify(oneLine(r.database ?? '', 40))}`;
  if (r.planned.length > 0) {
    const cancel = r.planned.some((p) => p.action === 'cancel_then_terminate');
    lines.push(`${style.bold('Plan')}: terminate ${r.planned.length} session${r.planned.length === 1 ? '' : 's'} (${scope}; --max ${r.max})`);
    lines.push(planTable(r, style, width));
    lines.push(style.dim(wrap("age: in the current state (active: the query's); xact: the open transaction's", width)));
    if (cancel) lines.push(style.dim(wrap(`* cancelled first; terminated only if still running after ${formatDuration(r.grace_ms ?? 0)}`, width)));
  } else {
    lines.push(`${style.bold('Plan')}: no session to terminate (${scope})`);
  }
  lines.push(...excludedTable(r, style));
  if (r.not_found_pids.length > 0) lines.push(style.yellow(wrap(`! not connected: pid ${r.not_found_pids.join(', ')}`, width, '  ')));
  if (r.hidden_sessions > 0) {
    const n = r.hidden_sessions;
    const text = `! your role cannot see the state and identity of ${n} session${n === 1 ? '' : 's'} that may match; they are not touched (grant pg_read_all_stats or pg_monitor)`;
    lines.push(style.yellow(wrap(text, width, '  ')));
  }
  return lines.join('\n');
}

/** The detail of a result, short enough for one table line (the JSON keeps the whole sentence). */
export function shortDetail(detail: string): string {
  if (detail === 'terminated; its exit confirmed') return 'exit confirmed';
  if (detail === 'still running after the cancel and the grace period; terminated, its exit confirmed') return 'ran past the grace period; exit confirmed';
  const stopped = /^the query stopped after the cancel \(now (.*)\); session kept$/.exec(detail);
  if (stopped) return `query stopped (now ${stopped[1]}); session kept`;
  return detail;
}

/** One line per session, whatever the width: long details are cut (the JSON has them whole). */
export function renderResults(r: TerminateReport, style: ChalkInstance, columns = 80): string {
  const rs = r.results;
  return listTable(
    [
      { head: 'pid', cells: rs.map((x) => String(x.pid)) },
      { head: 'app', cells: rs.map((x) => oneLine(x.app || '-')), min: 3, soft: 8, max: 20 },
      { head: 'outcome', cells: rs.map((x) => outcomeText(style, x.outcome)) },
      { head: 'detail', cells: rs.map((x) => oneLine(shortDetail(x.detail))), min: 12 },
    ].map((c) => ({ ...c, head: style.bold(c.head) })),
    tableWidth(columns),
  );
}

/** The whole report for stdout. `planShown`: the plan was already printed before the questions. */
export function renderTerminate(r: TerminateReport, style: ChalkInstance, opts: { planShown?: boolean; columns?: number } = {}): string {
  const width = tableWidth(opts.columns ?? 80);
  // The label says it: "DRY RUN  2 sessions would be terminated", not "DRY RUN  dry run: ...", and
  // "NOT CONFIRMED  nothing was terminated", not "NOT CONFIRMED  not confirmed; ...".
  const summary = r.status === 'dry_run' ? r.summary.replace(/^dry run: /, '') : r.status === 'not_confirmed' ? r.summary.replace(/^not confirmed[;:] /, '') : r.summary;
  const lines: string[] = [wrap(`${label(style, r)}  ${oneLine(summary)}`, width, '  '), style.dim(wrap(`target: ${oneLine(r.target)}`, width, '  ')), ''];
  if (!opts.planShown) lines.push(renderPlan(r, style, opts.columns));
  if (r.results.length > 0) {
    if (!opts.planShown) lines.push('');
    lines.push(renderResults(r, style, opts.columns));
  }
  if (r.deselected.length > 0) lines.push(style.dim(wrap(`deselected (kept): pid ${r.deselected.join(', ')}`, width, '  ')));
  if (r.audit_log && r.results.some((x) => x.outcome !== 'not_attempted')) lines.push(style.dim(`audit log: ${oneLine(r.audit_log)}`));
  return lines.join('\n');
}

/**
 * What goes to stderr besides the report: the clear line and hint when nothing was done on
 * purpose (no TTY, over --max, answered No) or when the result needs attention.
 */
export function terminateNotices(r: TerminateReport, opts: { summaryShown?: boolean } = {}): string[] {
  const out: string[] = [];
  const loud = r.status === 'over_max' || r.status === 'not_confirmed' || r.exit_code !== 0;
  // On one terminal the report above already said it: said once, not twice.
  if (loud && !opts.summaryShown) out.push(`dbdoctor: ${oneLine(r.summary)}`);
  if (loud && r.hint) out.push(`hint: ${oneLine(r.hint)}`);
  return out;
}
