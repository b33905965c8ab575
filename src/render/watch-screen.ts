/**
 * The live screen of `dbdoctor watch`, as text: one frame that fits `cols` x `rows` (every line cut
 * to the width, the sections cut to the height), built from the samples kept. Pure; the terminal
 * side (alternate screen, keys, resizes, restoring) is src/ui/watch-screen.ts. Client-controlled
 * text (application names, titles quoting them) goes through oneLine.
 */
import type { ChalkInstance } from 'chalk';
import type { Finding } from '../core/diagnose.js';
import type { WatchEvent, WatchSample } from '../core/watch.js';
import { oneLine } from './sanitize.js';
import { severityLabel } from './style.js';
import { fitWidth, padWidth } from './width.js';

export const SORTS = ['total', 'idle in transaction', 'change'] as const;
export type Sort = (typeof SORTS)[number];

export interface ScreenState {
  target: string;
  samples: readonly WatchSample[];
  trends: Finding[];
  /** The latest events, newest last. */
  events: WatchEvent[];
  paused: boolean;
  sort: Sort;
  /** Only applications whose name holds this text (the / filter), or null. */
  filter: string | null;
  /** What the filter line is being typed as, or null when not typing. */
  typing: string | null;
  help: boolean;
  /** A full view shown over the screen until a key (d: the diagnosis), as its lines. */
  overlay: string[] | null;
  /** A line of feedback (the last key's effect, a failure), or null. */
  message: string | null;
  cols: number;
  rows: number;
  intervalMs: number;
}

const SPARK = '▁▂▃▄▅▆▇█';

export function sparkline(values: number[], width: number): string {
  const v = values.slice(-width);
  if (!v.length) return '';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return v.map((x) => SPARK[hi === lo ? 0 : Math.round(((x - lo) / (hi - lo)) * (SPARK.length - 1))]).join('');
}

const signed = (n: number) => (n > 0 ? `+${n}` : n < 0 ? String(n) : '·');

export const HELP_LINES = [
  'q        quit (the exit code is the worst verdict seen)',
  'p        pause or resume sampling',
  's        sort the applications: total, idle in transaction, change over the window',
  '/        filter by application (type part of the name, Enter; empty Enter clears)',
  'd        a full diagnose now, over the same connection',
  't        leave the screen and hand over to terminate (its plan, checkbox and confirmation)',
  '?        this help (any key closes it)',
  'Ctrl-C   quit (exit 130)',
];

export function renderScreen(st: ScreenState, style: ChalkInstance): string {
  const cols = Math.max(20, st.cols);
  const rows = Math.max(6, st.rows);
  const last = st.samples[st.samples.length - 1];
  const first = st.samples[0];
  const prev = st.samples[st.samples.length - 2];
  const out: string[] = [];
  const time = last ? last.at.slice(11, 19) : '--:--:--';
  out.push(
    `${style.bold('dbdoctor watch')}  ${time}  ${last ? severityLabel(style, last.verdict) : '...'}${st.paused ? style.yellow('  PAUSED') : ''}  ${oneLine(st.target)}`,
  );
  if (last) {
    const pct = last.ordinary_slots ? Math.round((last.client_sessions / last.ordinary_slots) * 100) : 0;
    out.push(
      `slots ${last.client_sessions}/${last.ordinary_slots} (${pct}%), headroom ${Math.max(0, last.ordinary_slots - last.client_sessions)}  ${sparkline(
        st.samples.map((s) => s.client_sessions),
        Math.max(8, Math.min(40, cols - 45)),
      )}  sample ${last.server_ms} ms, every ${last.interval_ms / 1000}s${last.backed_off ? style.yellow(' (backed off: sampling took >10%)') : ''}`,
    );
  } else out.push('waiting for the first sample...');
  if (st.overlay) {
    out.push('', ...st.overlay.slice(0, rows - 4));
    if (st.overlay.length > rows - 4) out.push(`... ${st.overlay.length - (rows - 4)} more lines (run dbdoctor diagnose for all of it)`);
  } else if (st.help) {
    out.push('', style.bold('keys'), ...HELP_LINES);
  } else if (last) {
    const before = new Map((prev?.by_app ?? []).map((a) => [a.app, a.total]));
    const start = new Map((first?.by_app ?? []).map((a) => [a.app, a.total]));
    let apps = last.by_app.map((a) => ({ ...a, d: a.total - (before.get(a.app) ?? 0), w: a.total - (start.get(a.app) ?? 0) }));
    if (st.filter) apps = apps.filter((a) => a.app.toLowerCase().includes(st.filter!.toLowerCase()));
    if (st.sort === 'idle in transaction') apps.sort((a, b) => b.idle_in_transaction - a.idle_in_transaction || b.total - a.total);
    else if (st.sort === 'change') apps.sort((a, b) => Math.abs(b.w) - Math.abs(a.w) || b.total - a.total);
    const nameW = Math.max(12, Math.min(30, cols - 52));
    out.push(`sort: ${st.sort}${st.filter ? `   filter: ${oneLine(st.filter)}` : ''}`, style.bold(`${padWidth('application', nameW)} total   Δ  Δwin active  idle   iit  ClientRead`));
    const trendLines = st.trends.map((f) => `${severityLabel(style, f.severity)} ${oneLine(f.title)}`);
    const blockers = last.findings.filter((f) => f.id === 'blocking' || f.id === 'ddl-queue').map((f) => `${severityLabel(style, f.severity)} ${oneLine(f.title)}`);
    const waits = new Map<string, number>();
    for (const s of st.samples) for (const [k, n] of Object.entries(s.waits)) waits.set(k, (waits.get(k) ?? 0) + n);
    const waitLine = [...waits].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, n]) => `${oneLine(k)} ${n}`).join(', ');
    const eventLines = st.events.slice(-4).map((e) => `${e.at.slice(11, 19)} ${e.change === 'appeared' ? '+' : '-'} ${e.id}: ${oneLine(e.title)}`);
    const tail: string[] = [];
    tail.push('', `${style.bold('trends')} ${trendLines.length ? '' : 'nothing rising, forecast or churning'}`, ...trendLines);
    if (blockers.length) tail.push(style.bold('blocking'), ...blockers);
    tail.push(`${style.bold('waits over the window')} ${waitLine || 'none'}`);
    if (eventLines.length) tail.push(style.bold('appeared / cleared'), ...eventLines);
    // the table gets what the other sections leave (at least 3 rows)
    const room = Math.max(3, rows - out.length - tail.length - 2);
    const shown = apps.slice(0, room);
    for (const a of shown) {
      const n = (x: number | string, w: number) => String(x).padStart(w);
      out.push(
        `${padWidth(fitWidth(oneLine(a.app || '(no name)'), nameW), nameW)} ${n(a.total, 5)} ${n(signed(a.d), 3)} ${n(signed(a.w), 5)} ${n(a.active, 6)} ${n(a.idle, 5)} ${n(a.idle_in_transaction, 5)} ${n(a.client_read, 11)}`,
      );
    }
    if (apps.length > shown.length) out.push(`... ${apps.length - shown.length} more applications`);
    out.push(...tail);
  }
  const footer = st.overlay || st.help ? 'any key returns to the live view' : st.typing !== null ? `filter by application: ${oneLine(st.typing)}_` : (st.message ? `${oneLine(st.message)}  ` : '') + 'q quit  p pause  s sort  / filter  d diagnose  t terminate  ? help';
  const body = out.slice(0, rows - 1);
  while (body.length < rows - 1) body.push('');
  body.push(style.inverse(footer));
  return body.map((l) => fitWidth(l, cols)).join('\n');
}
