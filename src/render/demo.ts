/** The demo's story, as text: the server, the incident, the three acts, and the summary. */
import type { ChalkInstance } from 'chalk';
import type { Severity } from '../core/exit-codes.js';
import { shellCommand } from '../core/printed.js';
import { severityLabel } from './style.js';

export interface DemoServerInfo {
  major: number;
  host: string;
  port: number;
  pid: number;
  data_directory: string;
  max_connections: number;
  ordinary_slots: number;
}

export interface DemoIncidentInfo {
  database: string;
  leaking_app: string;
  blocker_app: string;
  long_query_app: string;
  pids: {
    idle: number[];
    client_read: number[];
    idle_in_transaction: number[];
    blocker: number;
    waiters: number[];
    long_query: number;
  };
}

export function renderDemoIntro(s: DemoServerInfo, style: ChalkInstance): string {
  return [
    style.bold('dbdoctor demo: a throwaway PostgreSQL with a real incident in it (seeds/000, "connection pool exhausted")'),
    '',
    `  server  PostgreSQL ${s.major} on ${s.host}:${s.port} (pid ${s.pid}), max_connections ${s.max_connections}`,
    `  data    ${s.data_directory} (removed at the end)`,
  ].join('\n');
}

export function renderDemoIncident(i: DemoIncidentInfo, s: DemoServerInfo, style: ChalkInstance): string {
  const p = i.pids;
  const total = p.idle.length + p.client_read.length + p.idle_in_transaction.length + 1 + p.waiters.length + 1;
  const pad = Math.max(i.leaking_app.length, i.blocker_app.length, i.long_query_app.length) + 2;
  const app = (name: string) => style.bold(name.padEnd(pad));
  const blank = ' '.repeat(pad);
  return [
    `The incident, recreated with real client connections to database "${i.database}":`,
    `  ${app(i.leaking_app)}${p.client_read.length} result sets begun and never read to the end (active, ClientRead)`,
    `  ${blank}${p.idle_in_transaction.length} transactions never ended (idle in transaction)`,
    `  ${blank}${p.waiters.length} renames waiting for a row lock, ${p.idle.length} idle pool sessions`,
    `  ${app(i.blocker_app)}holds that row lock in a transaction it never committed (pid ${p.blocker})`,
    `  ${app(i.long_query_app)}runs a long query (pid ${p.long_query})`,
    `  ${total} of the ${s.ordinary_slots} connection slots ordinary roles may use are taken.`,
  ].join('\n');
}

export function renderDemoAct(n: number, title: string, style: ChalkInstance, width = 78): string {
  const head = `── ${n}. ${title} `;
  return style.bold(head + '─'.repeat(Math.max(3, width - head.length)));
}

export function renderDemoCommand(argv: string[], style: ChalkInstance): string {
  return style.dim(`$ ${shellCommand(argv) ?? `dbdoctor ${argv[0] ?? ''}`}`);
}

export function renderDemoSummary(before: Severity, after: Severity, done: { terminated: number; cancelled: number }, style: ChalkInstance): string {
  const what = [`${done.terminated} session${done.terminated === 1 ? '' : 's'} terminated`, ...(done.cancelled > 0 ? [`${done.cancelled} quer${done.cancelled === 1 ? 'y' : 'ies'} cancelled`] : [])];
  const lines = [`Before: ${severityLabel(style, before)}.  Clean-up: ${what.join(', ')}.  After: ${severityLabel(style, after)}.`];
  if (after !== 'ok' && after !== 'info') lines.push('The clean-up did not bring the server back to OK; the findings above say what is left.');
  return lines.join('\n');
}

export function renderDemoTeardown(s: Pick<DemoServerInfo, 'pid' | 'data_directory'>, style: ChalkInstance, opts: { interactive?: boolean } = {}): string {
  const lines = [style.dim(`Stopped the demo server (pid ${s.pid}) and removed ${s.data_directory}.`)];
  if (!opts.interactive) lines.push(style.dim('On a terminal, `dbdoctor demo` walks you through the same incident step by step.'));
  lines.push(style.dim('Against a real server: dbdoctor diagnose -d postgres://user@host/db (or just `dbdoctor` on a terminal)'));
  return lines.join('\n');
}
