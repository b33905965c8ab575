/**
 * The diagnose report as text for a person (verdict first, findings by severity each with its
 * next command, then short summary tables; readable in 80 columns) and as a monitoring-plugin
 * status line (check_postgres style). No decisions here; every piece of client-controlled text
 * goes through sanitize/oneLine before it reaches a terminal.
 */
import type { ChalkInstance } from 'chalk';
import type { DiagnoseReport, Finding, Metric } from '../core/diagnose.js';
import { appLabel } from '../core/diagnose.js';
import type { Severity } from '../core/exit-codes.js';
import { commandLines } from '../core/printed.js';
import { oneLine } from './sanitize.js';
import { severityLabel } from './style.js';
import { displayWidth, headToWidth } from './width.js';
import { table } from './table.js';

const WIDTH = 80;
const LABEL = 10;

/** Greedy word wrap of one (already sanitized) line, by display columns; words wider than the line are cut (never inside a character). */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (let word of text.split(' ')) {
    while (displayWidth(word) > width) {
      if (line) {
        out.push(line);
        line = '';
      }
      const head = headToWidth(word, width) || [...word][0]!;
      out.push(head);
      word = word.slice(head.length);
    }
    if (!line) line = word;
    else if (displayWidth(line) + 1 + displayWidth(word) <= width) line += ` ${word}`;
    else {
      out.push(line);
      line = word;
    }
  }
  if (line || out.length === 0) out.push(line);
  return out;
}

/** A labelled block: "  label     text..." with continuation lines aligned under the text. */
function block(label: string, text: string, style: ChalkInstance, width = WIDTH): string[] {
  const lines = wrap(oneLine(text), width - 2 - LABEL);
  return lines.map((l, i) => `  ${i === 0 ? style.dim(label.padEnd(LABEL)) : ' '.repeat(LABEL)}${l}`);
}

const ORDER: Severity[] = ['critical', 'unknown', 'warning', 'info', 'ok'];

function renderFinding(f: Finding, style: ChalkInstance, detailed: boolean): string[] {
  const lines: string[] = [];
  const head = `${severityLabel(style, f.severity)} ${style.bold(f.id)}`;
  lines.push(head);
  for (const l of wrap(oneLine(f.title), WIDTH - 2)) lines.push(`  ${l}`);
  if (detailed) {
    const facts = f.evidence.facts.slice(0, 6);
    facts.forEach((fact, i) => {
      lines.push(...block(i === 0 ? 'evidence' : '', fact, style));
    });
    if (f.evidence.facts.length > facts.length) lines.push(...block('', `... ${f.evidence.facts.length - facts.length} more (see --json)`, style));
    const stmts = f.evidence.statements.slice(0, 2);
    stmts.forEach((s, i) => {
      lines.push(...block(i === 0 ? 'statement' : '', oneLine(s, 220), style));
    });
    lines.push(...block('cause', f.cause, style));
  }
  const steps = detailed ? f.next : f.next.filter((n) => n.command).slice(0, 1);
  steps.forEach((n, i) => {
    const label = i === 0 ? 'next' : '';
    // Commands and statements are printed as they were built: a command may be broken between
    // its words with a shell continuation; a statement is never broken (a break could fall inside
    // a quoted name).
    const code = n.argv && n.command ? commandLines(n.argv, WIDTH - 2 - LABEL) : n.sql ? [n.sql] : null;
    if (code) {
      code.forEach((l, k) => {
        lines.push(`  ${k === 0 ? style.dim(label.padEnd(LABEL)) : ' '.repeat(LABEL)}${style.cyan(l)}`);
      });
      if (detailed) lines.push(...block('', `↳ ${n.text}`, style).map((l) => style.dim(l)));
    } else {
      lines.push(...block(label, n.text, style));
    }
  });
  // oneLine'd: a snapshot file (--from) can carry any text in it
  const runbook = oneLine(f.runbook);
  const anchor = runbook.split('#')[1] ?? oneLine(f.id);
  const link = `  ${style.dim('runbook'.padEnd(LABEL))}${runbook}`;
  const hint = `(dbdoctor runbook ${anchor})`;
  // Links stay whole (a broken anchor resolves nowhere); the command goes on the next line if need be.
  if (2 + LABEL + runbook.length + 2 + hint.length <= WIDTH) lines.push(`${link}  ${style.dim(hint)}`);
  else lines.push(link, `  ${' '.repeat(LABEL)}${style.dim(hint)}`);
  return lines;
}

function holdersTable(r: DiagnoseReport): string | null {
  if (!r.holders.length) return null;
  const t = table({ head: ['application', 'total', 'active', 'idle', 'idle in tx', 'other'], colWidths: [28, 8, 8, 8, 12, 9] });
  for (const h of r.holders.slice(0, 8)) {
    const s = h.states;
    const active = s.active ?? 0;
    const idle = s.idle ?? 0;
    const iit = (s['idle in transaction'] ?? 0) + (s['idle in transaction (aborted)'] ?? 0);
    const other = h.count - active - idle - iit;
    t.push([oneLine(appLabel(h.application), 26), String(h.count), String(active), h.listeners ? `${idle} (${h.listeners}L)` : String(idle), String(iit), String(other)]);
  }
  return t.toString();
}

/**
 * The verdict's one line (as check does: the label, two spaces, what is wrong): the worst
 * findings' summaries, as many as fit, then "…" when some did not; the findings below say all.
 */
export function verdictLine(r: DiagnoseReport, width: number): string {
  const serious = r.findings.filter((f) => f.severity === 'critical' || f.severity === 'unknown' || f.severity === 'warning');
  if (!r.connected || serious.length === 0) return oneLine(r.summary, width);
  const items = serious.map((f) => oneLine(f.summary));
  let line = oneLine(items[0], items.length > 1 ? width - 3 : width);
  let shown = 1;
  for (const item of items.slice(1)) {
    const more = shown + 1 < items.length ? 3 : 0;
    if (displayWidth(line) + 2 + displayWidth(item) + more > width) break;
    line = `${line}; ${item}`;
    shown++;
  }
  return shown < items.length ? `${line}; …` : line;
}

export interface DiagnoseTextOptions {
  /** Everything: evidence, causes and every next step of each finding, the info findings, the holders table, the path. */
  verbose?: boolean;
  /** Only the verdict and where (the guided walk lists the findings in its menu). */
  brief?: boolean;
}

/** Settings advice (`setting-*`): what would have prevented the incident, not the incident itself. */
export function isSettingsAdvice(f: Finding): boolean {
  return f.id.startsWith('setting-');
}

/**
 * The verdict, wrapped (never cut: every serious finding's summary is there), with its label on
 * the first line and the rest indented under the text.
 */
function verdictLines(r: DiagnoseReport, style: ChalkInstance, width: number): string[] {
  const sev = r.verdict === 'info' ? 'ok' : r.verdict;
  const label = sev.toUpperCase();
  const serious = r.findings.filter((f) => f.severity === 'critical' || f.severity === 'unknown' || f.severity === 'warning');
  const incident = serious.filter((f) => !isSettingsAdvice(f));
  const advice = serious.length - incident.length;
  const text = !r.connected || serious.length === 0 ? oneLine(r.summary) : [...incident.map((f) => oneLine(f.summary)), ...(advice > 0 ? [`${advice} setting${advice === 1 ? '' : 's'} to prevent a repeat`] : [])].join('; ');
  const indent = label.length + 2;
  const wrapped = wrap(text, width - indent);
  return wrapped.map((l, i) => (i === 0 ? `${severityLabel(style, sev)}  ${l}` : `${' '.repeat(indent)}${l}`));
}

/** At most `max` lines of `text` wrapped to `width`, the last one cut with "…" when there is more. */
function clipped(text: string, width: number, max: number): string[] {
  const lines = wrap(text, width);
  if (lines.length <= max) return lines;
  const kept = lines.slice(0, max);
  kept[max - 1] = oneLine(`${kept[max - 1]} ${lines[max]}`, width);
  return kept;
}

/** One finding in a few lines: what (severity, id, title), the evidence in one line, the next command. */
function shortFinding(f: Finding, style: ChalkInstance): string[] {
  const lines: string[] = [];
  const head = `${f.severity.toUpperCase()} ${f.id}: `;
  const title = clipped(`${head}${oneLine(f.title)}`, WIDTH - 2, 2);
  title.forEach((l, i) => {
    lines.push(i === 0 ? `${severityLabel(style, f.severity)} ${style.bold(f.id)}:${l.slice(head.length - 1)}` : `  ${l}`);
  });
  const fact = f.evidence.facts[0];
  if (fact) lines.push(`  ${style.dim('evidence'.padEnd(LABEL))}${oneLine(fact, WIDTH - 2 - LABEL)}`);
  // The command that deals with it (a clean-up) when the finding has one of its own; capacity's
  // clean-ups are its causes' (listed as findings of their own), so it shows who holds the slots.
  const commands = f.next.filter((n) => n.command && n.argv);
  const first = f.next[0];
  const step = (f.id === 'capacity' ? undefined : commands.find((n) => n.argv![0] === 'terminate')) ?? (first?.sql ? first : undefined) ?? commands[0] ?? first;
  if (step) {
    const code = step.argv && step.command ? commandLines(step.argv, WIDTH - 2 - LABEL) : step.sql ? [step.sql] : null;
    if (code) {
      code.forEach((l, k) => {
        lines.push(`  ${k === 0 ? style.dim('next'.padEnd(LABEL)) : ' '.repeat(LABEL)}${style.cyan(l)}`);
      });
    } else lines.push(...block('next', step.text, style));
  }
  return lines;
}

/** What --verbose adds, in one line. */
function verboseLine(r: DiagnoseReport): string {
  const info = r.findings.filter((f) => f.severity === 'info' || f.severity === 'ok').length;
  const parts = ['evidence, causes, all steps', ...(info > 0 ? [`${info} info finding${info === 1 ? '' : 's'}`] : []), ...(r.holders.length ? ['holders'] : []), 'path'];
  return `--verbose adds: ${parts.join(', ')}`;
}

/**
 * The human report. By default, one screen: the verdict, the incident's findings worst first (a
 * few lines each), one section gathering the settings advice, and what --verbose adds. With
 * `verbose`, every finding in full (evidence, cause, every next step), the summary tables and the
 * path taken. With `brief`, the verdict and where only.
 */
export function renderDiagnose(r: DiagnoseReport, style: ChalkInstance, opts: DiagnoseTextOptions = {}): string {
  if (opts.verbose) return renderVerbose(r, style);
  const lines: string[] = [];
  lines.push(...verdictLines(r, style, WIDTH));
  const where = r.server ? `PostgreSQL ${r.server.major} ${r.server.role}` : 'not connected';
  for (const l of wrap(oneLine(`${r.target} · ${where}`), WIDTH)) lines.push(style.dim(l));
  if (opts.brief) return lines.join('\n');
  const serious = r.findings.filter((f) => f.severity === 'critical' || f.severity === 'unknown' || f.severity === 'warning');
  // Worst first (the report's order: severity, then the tree's order).
  for (const f of serious.filter((x) => !isSettingsAdvice(x))) {
    lines.push('');
    // Not connected: one finding, and its cause is the answer (what the server said, what to
    // change): shown whole, as --verbose does.
    lines.push(...(r.connected ? shortFinding(f, style) : renderFinding(f, style, true)));
  }
  const advice = serious.filter(isSettingsAdvice);
  if (advice.length) {
    lines.push('');
    lines.push(`${style.bold('to prevent a repeat')}${style.dim('  (the statements: --verbose, or dbdoctor runbook <id>)')}`);
    for (const f of advice) lines.push(`  ${oneLine(f.summary === f.title ? f.title.split(':')[0]! : f.summary, WIDTH - 2)}`);
  }
  if (!r.connected) return lines.join('\n');
  lines.push('');
  for (const l of wrap(verboseLine(r), WIDTH)) lines.push(style.dim(l));
  return lines.join('\n');
}

/** Everything, as --verbose shows it. */
function renderVerbose(r: DiagnoseReport, style: ChalkInstance): string {
  const lines: string[] = [];
  lines.push(...verdictLines(r, style, WIDTH));
  const counts = ORDER.filter((s) => r.counts[s] > 0).map((s) => `${r.counts[s]} ${s}`).join(', ');
  const where = r.server ? `PostgreSQL ${r.server.major} ${r.server.role}, as ${r.server.user} on ${r.server.database}` : 'not connected';
  for (const l of wrap(oneLine(`${r.target} · ${where} · ${counts || 'no findings'}`), WIDTH)) lines.push(style.dim(l));

  for (const sev of ORDER) {
    const fs = r.findings.filter((f) => f.severity === sev);
    if (!fs.length) continue;
    for (const f of fs) {
      lines.push('');
      lines.push(...renderFinding(f, style, sev !== 'ok' && sev !== 'info'));
    }
  }

  if (r.capacity) {
    lines.push('');
    const c = r.capacity;
    lines.push(style.bold('capacity'));
    const text = `${c.client_backends} of ${c.ordinary_slots} ordinary slots in use (${c.used_pct}%), headroom ${c.headroom}; max_connections ${c.max_connections}, reserved: ${c.superuser_reserved} for superusers${c.reserved ? `, ${c.reserved} reserved_connections` : ''}`;
    for (const l of wrap(text, WIDTH - 2)) lines.push(`  ${l}`);
  }
  const holders = holdersTable(r);
  if (holders) {
    lines.push('');
    lines.push(style.bold('who holds the connections') + style.dim('  (L = LISTEN, idle by design)'));
    lines.push(holders);
  }
  lines.push('');
  lines.push(style.bold('path taken'));
  const path = r.path.map((p) => `${p.node}: ${p.branch}`).join(' → ');
  for (const l of wrap(path, WIDTH - 2)) lines.push(style.dim(`  ${l}`));
  if (r.unavailable.length) {
    for (const u of r.unavailable) for (const l of wrap(oneLine(`not read: ${u.what} (${u.reason})`), WIDTH - 2)) lines.push(style.yellow(`  ${l}`));
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Nagios / Icinga / Sensu

/** The monitoring-plugin status word of a verdict. */
export const NAGIOS_STATUS: Record<Severity, string> = { ok: 'OK', info: 'OK', warning: 'WARNING', critical: 'CRITICAL', unknown: 'UNKNOWN' };

function num(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '';
  return String(Math.round(v * 1000) / 1000);
}

/** One performance-data item: 'label'=value[UOM];[warn];[crit];[min];[max], trailing empties dropped. */
export function perfItem(m: Metric): string {
  const label = /^[A-Za-z0-9_.-]+$/.test(m.name) ? m.name : `'${m.name.replace(/'/g, "''").replace(/=/g, '_')}'`;
  const fields = [`${num(m.value)}${m.uom}`, num(m.warn), num(m.crit), num(m.min), num(m.max)];
  while (fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
  return `${label}=${fields.join(';')}`;
}

/** `DBDOCTOR CRITICAL: <summary> | name=value;warn;crit;min;max ...`, one line. */
export function renderNagios(r: DiagnoseReport): string {
  const summary = oneLine(r.summary, 400).replace(/\|/g, '/');
  const perf = r.metrics.map(perfItem).join(' ');
  return `DBDOCTOR ${NAGIOS_STATUS[r.verdict]}: ${summary}${perf ? ` | ${perf}` : ''}`;
}

