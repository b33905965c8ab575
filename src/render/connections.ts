/**
 * `connections` as text: the capacity line, the sessions per state, the summary table by the
 * chosen keys, other processes, and with --list one row per session cut to the terminal's width.
 * Also the small helpers the locks and queries renderers share (ages, states, clients, fitting
 * columns into a width). Every piece of client-controlled text goes through oneLine().
 */
import type { ChalkInstance } from 'chalk';
import { plural } from '../core/count.js';
import type { ConnectionsReport, GroupKey, SessionGroup, SessionInfo, Visibility, WaitEventCount } from '../core/connections.js';
import { formatDuration } from '../core/duration.js';
import { largest } from '../core/stats.js';
import type { Severity } from '../core/exit-codes.js';
import { oneLine } from './sanitize.js';
import { displayWidth, fitWidth } from './width.js';
import { severityLabel } from './style.js';
import { longTable } from './table.js';

/** The width tables are fitted into: the terminal's, within reason. */
export function tableWidth(columns: number): number {
  return Math.max(60, Math.min(Number.isFinite(columns) && columns > 0 ? columns : 80, 200));
}

/** A duration, yellow from `warnMs`, red from `critMs`. */
export function ageCell(style: ChalkInstance, ms: number | null | undefined, warnMs = 60_000, critMs = 600_000): string {
  const text = formatDuration(ms ?? null);
  if (ms === null || ms === undefined) return style.dim(text);
  if (ms >= critMs) return style.red(text);
  if (ms >= warnMs) return style.yellow(text);
  return text;
}

const SHORT_STATES: Record<string, string> = {
  'idle in transaction': 'idle in xact',
  'idle in transaction (aborted)': 'idle xact (abort)',
  'fastpath function call': 'fastpath',
};

/** A state for a table cell, coloured by how bad it usually is. */
export function stateCell(style: ChalkInstance, state: string | null | undefined, short = false): string {
  const s = state ?? 'hidden';
  const text = oneLine(short ? (SHORT_STATES[s] ?? s) : s);
  if (s === 'hidden') return style.magenta(text);
  if (s.startsWith('idle in transaction')) return style.yellow(text);
  if (s === 'active') return style.green(text);
  return text;
}

/** Address (host name), "local" for a Unix socket, "?" when hidden. */
export function clientText(addr: string | null | undefined, hostname?: string | null): string {
  if (addr === null || addr === undefined) return '?';
  // the address too: a snapshot file (--from) can carry any text in it
  return hostname ? `${oneLine(hostname)} (${oneLine(addr)})` : oneLine(addr);
}

export function waitText(type: string | null | undefined, event: string | null | undefined): string {
  if (!type && !event) return '';
  if (type === 'Lock') return `Lock:${oneLine(event)}`;
  return oneLine(event ?? type);
}

function waitEventsText(w: WaitEventCount[]): string {
  return w.map((e) => `${waitText(e.wait_event_type, e.wait_event)}${e.count > 1 ? ` (${e.count})` : ''}`).join(', ');
}

export interface ColumnSpec {
  head: string;
  /** Cell texts (already sanitized; may hold our own colour codes). */
  cells: string[];
  /** Narrowest this column may get (content, without padding); default: it never shrinks. */
  min?: number;
  /** Width it gives way to first, before any column goes below its soft width (default: min). */
  soft?: number;
  /** Widest it needs (content, without padding); default: its longest cell. */
  max?: number;
}

/**
 * Content widths (without padding) so that the columns plus `overhead` fit `total`: each column
 * gets what it needs; when that is too much, the widest columns give way first, down to their soft
 * width, then down to their min.
 */
export function fitWidths(cols: ColumnSpec[], total: number, overhead: number): number[] {
  // a loop over the cells, not a spread: a column of --list has one cell per session
  const natural = cols.map((c) => Math.max(displayWidth(c.head), largest(c.cells.map(displayWidth)) ?? 0, 1));
  const want = cols.map((c, i) => Math.max(c.min ?? natural[i]!, Math.min(c.max ?? Number.POSITIVE_INFINITY, natural[i]!)));
  const min = cols.map((c, i) => Math.min(want[i]!, c.min ?? natural[i]!));
  const soft = cols.map((c, i) => Math.max(min[i]!, c.soft ?? min[i]!));
  let excess = want.reduce((a, b) => a + b, 0) + overhead - total;
  for (const floor of [soft, min]) {
    while (excess > 0) {
      let widest = -1;
      for (let i = 0; i < want.length; i++) if (want[i]! > floor[i]! && (widest < 0 || want[i]! > want[widest]!)) widest = i;
      if (widest < 0) break;
      want[widest]!--;
      excess--;
    }
  }
  return want;
}

/** A bordered table fitted into `width` (cells cut with an ellipsis). */
export function fittedTable(cols: ColumnSpec[], width: number, align?: Array<'left' | 'right'>): string {
  if (cols.length === 0) return '';
  // Each column: 2 padding; borders: columns + 1.
  const widths = fitWidths(cols, width, cols.length * 2 + cols.length + 1);
  return longTable({ head: cols.map((c) => c.head), colWidths: widths.map((w) => w + 2), ...(align ? { colAligns: align } : {}) }, rowsOf(cols), true);
}

/** The columns' cells as rows. */
function rowsOf(cols: ColumnSpec[]): string[][] {
  return cols[0]!.cells.map((_, i) => cols.map((c) => c.cells[i] ?? ''));
}

/** A borderless table (one space between columns), fitted into `width`: for one row per session. */
export function listTable(cols: ColumnSpec[], width: number): string {
  if (cols.length === 0) return '';
  const widths = fitWidths(cols, width, cols.length - 1);
  const blank = { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' ' };
  return longTable({ head: cols.map((c) => c.head), colWidths: widths, chars: blank, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 } }, rowsOf(cols), false)
    .split('\n')
    .map((l) => fitWidth(l.replace(/\s+$/, ''), width))
    .join('\n');
}

/** The partial-view warning, for stderr (null when the view is complete). */
export function visibilityWarning(v: Visibility, style: ChalkInstance): string | null {
  if (!v.warning) return null;
  // The statement is printed as it was built, on a line of its own (never wrapped or collapsed).
  return style.yellow(`warning: ${oneLine(v.warning)}`) + (v.fix ? `\n  ${v.fix}` : '');
}

function capacityLine(r: ConnectionsReport, style: ChalkInstance, width: number): string {
  const c = r.capacity;
  const colour = (s: Severity, text: string) => (s === 'critical' ? style.bold.red(text) : s === 'warning' ? style.bold.yellow(text) : style.green(text));
  const reserved = [`${c.superuser_reserved} superuser`, ...(c.reserved > 0 ? [`${c.reserved} reserved_connections`] : [])].join(' + ');
  // Wrapped as plain text first, then coloured, so the width is right.
  const plain = wrap(`capacity ${c.client_backends}/${c.max_connections} client backends; headroom ${c.headroom} of ${c.ordinary_slots} slots for ordinary roles (${c.headroom_pct}%); reserved: ${reserved}`, width, '  ');
  return plain.replace(/^capacity/, style.bold('capacity')).replace(/headroom \d+ of \d+ slots for ordinary roles \([\d.]+%\)/, (m) => colour(c.severity, m));
}

const KEY_HEAD: Record<GroupKey, string> = { app: 'app', state: 'state', user: 'user', db: 'db', client: 'client' };

function keyCell(g: SessionGroup, k: GroupKey, style: ChalkInstance): string {
  switch (k) {
    case 'app':
      return g.app ? oneLine(g.app) : style.dim('(none)');
    case 'state':
      return stateCell(style, g.state, true);
    case 'user':
      return g.user === null || g.user === undefined ? '?' : oneLine(g.user);
    case 'db':
      return g.db === null || g.db === undefined ? '?' : oneLine(g.db);
    case 'client':
      return clientText(g.client, g.client_hostname);
  }
}

function filtersText(r: ConnectionsReport): string | null {
  const f = r.filters;
  const parts: string[] = [];
  if (f.app) parts.push(`app ${f.app.map((a) => oneLine(a)).join('|')}`);
  if (f.user) parts.push(`user ${f.user.map((a) => oneLine(a)).join('|')}`);
  if (f.db) parts.push(`db ${f.db.map((a) => oneLine(a)).join('|')}`);
  if (f.state) parts.push(`state ${f.state.join('|')}`);
  if (f.client) parts.push(`client ${f.client.map((a) => oneLine(a)).join('|')}`);
  if (f.min_age_ms) parts.push(`in state >= ${formatDuration(f.min_age_ms)}`);
  return parts.length ? parts.join(', ') : null;
}

/**
 * One row per session (pid, app, user, db, client, state, ages, wait, query), fitted to `width`.
 * A column holding one value for every row (say, every session is in database "app") is printed
 * once above the table instead, to leave the query more room.
 */
export function sessionList(sessions: SessionInfo[], width: number, style: ChalkInstance): string {
  const q = Math.max(16, Math.min(40, width - 60));
  const cols: ColumnSpec[] = [
    { head: 'pid', cells: sessions.map((s) => String(s.pid) + (s.parallel_workers ? `+${s.parallel_workers}` : '')) },
    { head: 'app', cells: sessions.map((s) => oneLine(s.application_name || '-')), min: 3, soft: 8, max: 20 },
    { head: 'user', cells: sessions.map((s) => oneLine(s.usename ?? '?')), min: 3, soft: 8, max: 16 },
    { head: 'db', cells: sessions.map((s) => oneLine(s.datname ?? '?')), min: 2, soft: 8, max: 16 },
    { head: 'client', cells: sessions.map((s) => clientText(s.client_addr ?? (s.state === 'hidden' ? null : 'local'), s.client_hostname)), min: 5, soft: 15, max: 24 },
    { head: 'state', cells: sessions.map((s) => stateCell(style, s.state, true)), min: 4, soft: 12, max: 17 },
    { head: 'age', cells: sessions.map((s) => ageCell(style, s.state_age_ms)) },
    { head: 'xact', cells: sessions.map((s) => ageCell(style, s.xact_age_ms)) },
    // Idle sessions always wait on ClientRead (for the next command): no news, left blank.
    { head: 'wait', cells: sessions.map((s) => (s.state.startsWith('idle') ? '' : waitText(s.wait_event_type, s.wait_event))), min: 4, soft: 10, max: 18 },
    { head: 'query', cells: sessions.map((s) => (s.query === null ? style.dim('(hidden)') : oneLine(s.query, width))), min: 8, soft: q, max: width },
  ];
  return `${sessionTable(cols, sessions.length, width, style)}\n${style.dim(wrap('age: time in the current state; xact: transaction open for', width, '  '))}`;
}

/** Collects the "every session below: ..." line that hoistConstant() fills. */
function lines0(style: ChalkInstance, width: number, what = 'every session below'): { add(text: string): void; text(): string } {
  const parts: string[] = [];
  return { add: (t) => parts.push(t), text: () => (parts.length ? style.dim(fitWidth(`${what}: ${parts.join(', ')}`, width)) : '') };
}

/**
 * Drops the named columns that hold one value in every row (when there are 2 rows or more), and
 * returns the rest; the dropped ones are said once, above the table.
 */
export function hoistConstant(cols: ColumnSpec[], heads: string[], rows: number, note: { add(text: string): void }): ColumnSpec[] {
  return cols.filter((c) => {
    if (rows < 2 || !heads.includes(c.head)) return true;
    if (c.cells.some((v) => v !== c.cells[0])) return true;
    note.add(`${c.head} ${c.cells[0]}`);
    return false;
  });
}

/** A borderless session table with the constant columns said once above it. */
export function sessionTable(cols: ColumnSpec[], rows: number, width: number, style: ChalkInstance, hoist = ['user', 'db', 'client']): string {
  const note = lines0(style, width);
  const table = listTable(hoistConstant(cols, hoist, rows, note), width);
  return [note.text(), table].filter(Boolean).join('\n');
}

export function renderConnections(r: ConnectionsReport, style: ChalkInstance, columns = 80): string {
  const width = tableWidth(columns);
  const lines: string[] = [];
  lines.push(capacityLine(r, style, width));
  const states = Object.entries(r.states)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const filters = filtersText(r);
  const label = r.status.toUpperCase();
  const sessionsText = `${plural(r.total, 'client session')}${filters ? ` of ${r.total_unfiltered} matching ${filters}` : ''} (dbdoctor itself left out)${states ? `: ${states}` : ''}`;
  if (filters && r.status !== 'ok') {
    // The level is the server's (capacity, or a partial view), not the filtered sessions': it is
    // labelled as what it is, and the matching sessions get a line of their own, unlabelled.
    const c = r.capacity;
    const why =
      c.severity === r.status
        ? `capacity: ${c.client_backends} of ${c.ordinary_slots} ordinary slots in use on the server, headroom ${c.headroom} (${c.headroom_pct}%)`
        : 'partial view: some sessions are hidden from this role';
    const verdict = wrap(`${label}  ${why}`, width, '  ');
    lines.push(severityLabel(style, r.status) + verdict.slice(label.length));
    lines.push(wrap(sessionsText, width, '  '));
  } else {
    const verdict = wrap(`${label}  ${sessionsText}`, width, '  ');
    lines.push(severityLabel(style, r.status) + verdict.slice(label.length));
  }
  if (r.groups.length > 0) {
    lines.push('');
    const keys = r.by;
    const cols: ColumnSpec[] = [
      ...keys.map((k) => ({ head: KEY_HEAD[k], cells: r.groups.map((g) => keyCell(g, k, style)), min: 3, soft: k === 'state' ? 12 : 10, max: k === 'client' ? 30 : 24 })),
      // Counts and ages never shrink: a cut number is a wrong number.
      { head: 'n', cells: r.groups.map((g) => String(g.count)) },
      { head: 'oldest', cells: r.groups.map((g) => ageCell(style, g.oldest_state_age_ms)) },
      { head: 'median', cells: r.groups.map((g) => ageCell(style, g.median_state_age_ms)) },
      { head: 'xact', cells: r.groups.map((g) => ageCell(style, g.oldest_xact_age_ms)) },
      { head: 'waits', cells: r.groups.map((g) => waitEventsText(g.wait_events)), min: 4, soft: 12, max: 30 },
    ];
    // A key column with one value in every group is said once above the table.
    const note = lines0(style, width, 'every group below');
    const shown = hoistConstant(cols, ['user', 'db', 'client'], r.groups.length, note);
    if (note.text()) lines.push(note.text());
    lines.push(fittedTable(shown, width));
    lines.push(style.dim(wrap('oldest / median: time in the current state; xact: oldest open transaction', width, '  ')));
  } else {
    lines.push(style.dim('no client sessions match'));
  }
  if (r.other_processes.length > 0) {
    const n = r.other_processes.reduce((a, g) => a + g.count, 0);
    const parts = r.other_processes.map((g) => `${oneLine(g.backend_type)}${g.count > 1 ? ` ${g.count}` : ''}${g.leader_pids.length ? ` (for ${g.leader_pids.join(', ')})` : ''}`);
    lines.push('');
    lines.push(style.dim(wrap(`other processes, not counted above (${n}): ${parts.join(', ')}`, width)));
  }
  if (r.sessions) {
    lines.push('');
    lines.push(r.sessions.length ? sessionList(r.sessions, width, style) : style.dim('no sessions to list'));
  }
  return fitLines(lines.join('\n'), width);
}

/** The last guard: no line wider than the terminal, whatever a table could not shrink away. */
export function fitLines(text: string, width: number): string {
  return text
    .split('\n')
    .map((l) => fitWidth(l, width))
    .join('\n');
}

/**
 * Wraps plain text at spaces to `width`; continuation lines start with `indent`. Leading spaces of
 * the text are kept; a word longer than the width is cut.
 */
export function wrap(text: string, width: number, indent = ''): string {
  const out: string[] = [];
  let line = '';
  for (const token of text.match(/ *[^ ]+| +$/g) ?? []) {
    if (line.trim() !== '' && displayWidth(line) + displayWidth(token) > width) {
      out.push(line);
      line = indent + token.trimStart();
    } else {
      line += token;
    }
  }
  out.push(line);
  return out.map((l) => fitWidth(l, width)).join('\n');
}
