/**
 * `queries` as text: a verdict line with the thresholds, then one table per list (long queries,
 * idle in transaction, client waits, long transactions) and, with --group, the statement groups.
 * Tables fit the terminal's width; client-controlled text goes through oneLine().
 */
import type { ChalkInstance } from 'chalk';
import type { SessionInfo } from '../core/connections.js';
import { plural } from '../core/count.js';
import { formatDuration } from '../core/duration.js';
import type { QueriesReport, StatementGroup } from '../core/queries.js';
import { ageCell, type ColumnSpec, clientText, fitLines, fittedTable, sessionTable, stateCell, tableWidth, waitText, wrap } from './connections.js';
import { oneLine } from './sanitize.js';
import { severityLabel } from './style.js';

function queryCells(list: SessionInfo[], width: number, style: ChalkInstance): string[] {
  return list.map((s) => (s.query === null ? style.dim('(hidden)') : oneLine(s.query, width)));
}

function common(list: SessionInfo[]): ColumnSpec[] {
  return [
    { head: 'pid', cells: list.map((s) => String(s.pid) + (s.parallel_workers ? `+${s.parallel_workers}` : '')) },
    { head: 'app', cells: list.map((s) => oneLine(s.application_name || '-')), min: 3, soft: 8, max: 18 },
    { head: 'user', cells: list.map((s) => oneLine(s.usename ?? '?')), min: 3, soft: 8, max: 14 },
    { head: 'client', cells: list.map((s) => clientText(s.client_addr ?? (s.state === 'hidden' ? null : 'local'), s.client_hostname)), min: 5, soft: 9, max: 22 },
  ];
}

function section(title: string, cols: ColumnSpec[], width: number, style: ChalkInstance): string[] {
  return ['', wrap(title, width, '  '), sessionTable(cols, cols[0]?.cells.length ?? 0, width, style, ['user', 'client'])];
}

function groupTable(groups: StatementGroup[], width: number, style: ChalkInstance): string {
  const cols: ColumnSpec[] = [
    { head: 'n', cells: groups.map((g) => String(g.count)) },
    { head: 'apps', cells: groups.map((g) => g.applications.map((a) => oneLine(a || '-')).join(', ')), min: 4, soft: 10, max: 20 },
    { head: 'oldest', cells: groups.map((g) => ageCell(style, g.oldest_ms)) },
    { head: 'total', cells: groups.map((g) => formatDuration(g.total_ms)) },
    { head: 'statement (normalized)', cells: groups.map((g) => oneLine(g.statement, width)), min: 12, soft: 30, max: width },
  ];
  return fittedTable(cols, width);
}

export function renderQueries(r: QueriesReport, style: ChalkInstance, columns = 80): string {
  const width = tableWidth(columns);
  const t = r.thresholds;
  const lines: string[] = [];
  const counts = [
    plural(r.long_queries.length, 'long query', 'long queries'),
    `${r.idle_in_transaction.length} idle in transaction`,
    plural(r.client_waits.length, 'client wait'),
    plural(r.long_transactions.length, 'long transaction'),
  ];
  const label = r.status.toUpperCase();
  const verdict = wrap(`${label}  ${counts.join(', ')} among ${plural(r.sessions_considered, 'client session')}`, width, '  ');
  lines.push(severityLabel(style, r.status) + verdict.slice(label.length));
  lines.push(
    style.dim(
      wrap(
        `thresholds: active >= ${formatDuration(t.active_ms)}, idle in transaction >= ${formatDuration(t.idle_in_transaction_ms)}, client wait >= ${formatDuration(t.client_wait_ms)}, transaction >= ${formatDuration(t.transaction_ms)}`,
        width,
        '  ',
      ),
    ),
  );
  const warn = (ms: number) => Math.max(ms, 1000);
  if (r.long_queries.length) {
    const l = r.long_queries;
    lines.push(
      ...section(
        style.bold(`long queries: active for ${formatDuration(t.active_ms)} or more`),
        [
          ...common(l),
          { head: 'for', cells: l.map((s) => ageCell(style, s.query_age_ms, warn(t.active_ms), warn(t.active_ms) * 10)) },
          { head: 'wait', cells: l.map((s) => waitText(s.wait_event_type, s.wait_event)), min: 4, max: 18 },
          { head: 'query', cells: queryCells(l, width, style), min: 10, soft: 24, max: width },
        ],
        width,
        style,
      ),
    );
  }
  if (r.idle_in_transaction.length) {
    const l = r.idle_in_transaction;
    lines.push(
      ...section(
        style.bold(`idle in transaction for ${formatDuration(t.idle_in_transaction_ms)} or more: COMMIT/ROLLBACK never came`),
        [
          ...common(l),
          { head: 'idle', cells: l.map((s) => ageCell(style, s.state_age_ms, warn(t.idle_in_transaction_ms), warn(t.idle_in_transaction_ms) * 10)) },
          { head: 'xact', cells: l.map((s) => ageCell(style, s.xact_age_ms)) },
          { head: 'last query', cells: queryCells(l, width, style), min: 10, soft: 24, max: width },
        ],
        width,
        style,
      ),
    );
  }
  if (r.client_waits.length) {
    const l = r.client_waits;
    lines.push(
      ...section(
        style.bold(`client waits: results the client began and never finished reading (${formatDuration(t.client_wait_ms)} or more)`),
        [
          ...common(l),
          { head: 'for', cells: l.map((s) => ageCell(style, s.state_age_ms, warn(t.client_wait_ms), warn(t.client_wait_ms) * 10)) },
          { head: 'wait', cells: l.map((s) => waitText(s.wait_event_type, s.wait_event)), min: 4, max: 11 },
          { head: 'query', cells: queryCells(l, width, style), min: 10, soft: 24, max: width },
        ],
        width,
        style,
      ),
    );
  }
  // Long transactions already listed above (as long queries, idle in transaction or client waits)
  // are not repeated; the JSON lists them all.
  const above = new Set([...r.long_queries, ...r.idle_in_transaction, ...r.client_waits].map((s) => s.pid));
  const others = r.long_transactions.filter((s) => !above.has(s.pid));
  if (others.length) {
    const l = others;
    lines.push(
      ...section(
        style.bold(`${above.size ? 'other ' : ''}long transactions: open for ${formatDuration(t.transaction_ms)} or more`),
        [
          ...common(l).filter((c) => c.head !== 'user'),
          { head: 'xact', cells: l.map((s) => ageCell(style, s.xact_age_ms, warn(t.transaction_ms), warn(t.transaction_ms) * 10)) },
          { head: 'state', cells: l.map((s) => stateCell(style, s.state, true)), min: 5, max: 17 },
          { head: 'query', cells: queryCells(l, width, style), min: 10, soft: 24, max: width },
        ],
        width,
        style,
      ),
    );
  }
  if (r.statement_groups) {
    lines.push('', style.bold('the sessions above by statement'));
    lines.push(r.statement_groups.length ? groupTable(r.statement_groups, width, style) : style.dim('no statements to group'));
  }
  return fitLines(lines.join('\n'), width);
}
