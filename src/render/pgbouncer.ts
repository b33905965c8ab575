/**
 * PgBouncer's pools and the findings about them, for a terminal, and as a nagios line. Database,
 * user and application names are other clients' text: oneLine makes them inert.
 */
import type { ChalkInstance } from 'chalk';
import { formatDuration } from '../core/duration.js';
import type { PgBouncerReport, PoolerJoin } from '../core/pgbouncer.js';
import { runbookLink } from '../core/runbooks.js';
import { NAGIOS_STATUS } from './diagnose.js';
import { oneLine } from './sanitize.js';
import { severityLabel } from './style.js';
import { table } from './table.js';

const n = (v: number | null) => (v === null ? '-' : String(v));

export function renderPgBouncer(r: PgBouncerReport, style: ChalkInstance): string {
  const lines: string[] = [];
  lines.push(`${severityLabel(style, r.verdict)}  ${oneLine(r.summary)}`);
  lines.push(style.dim(`PgBouncer console ${oneLine(r.target)}${r.version ? ` (${oneLine(r.version, 40)})` : ''}`));
  lines.push('');
  if (r.pools.length === 0) lines.push('no pools yet (no client has connected to a database through this PgBouncer)');
  else {
    // fits 80 columns: the mode shortened, sv_used and the rest in --json
    const t = table({ head: ['pool (db/user)', 'mode', 'cl_act', 'cl_wait', 'sv_act', 'sv_idle', 'maxwait', 'size'] });
    const mode = (m: string | null) => (m === 'transaction' ? 'txn' : m === 'statement' ? 'stmt' : oneLine(m ?? '-', 7));
    for (const p of r.pools) {
      const waiting = p.cl_waiting ?? 0;
      t.push([
        oneLine(`${p.database}/${p.user}`, 18),
        mode(p.pool_mode),
        n(p.cl_active),
        waiting > 0 ? style.red(String(waiting)) : n(p.cl_waiting),
        n(p.sv_active),
        n(p.sv_idle),
        p.maxwait_s === null ? '-' : `${p.maxwait_s.toFixed(1)}s`,
        n(p.pool_size),
      ]);
    }
    lines.push(t.toString());
  }
  const l = r.limits;
  lines.push(
    style.dim(
      `clients ${n(r.clients.total)} of max_client_conn ${n(l.max_client_conn)}; default_pool_size ${n(l.default_pool_size)}, reserve_pool_size ${n(l.reserve_pool_size)}, max_db_connections ${n(l.max_db_connections)}, max_user_connections ${n(l.max_user_connections)}`,
    ),
  );
  for (const f of r.findings) {
    lines.push('');
    lines.push(`${severityLabel(style, f.severity)}  ${oneLine(f.summary)}`);
    lines.push(`  ${oneLine(f.evidence)}`);
    lines.push(`  ${style.bold('next:')} ${oneLine(f.next)}`);
    lines.push(`  ${style.dim(`runbook: ${runbookLink(f.runbook)}`)}`);
  }
  if (r.unavailable.length > 0) lines.push('', style.dim(`not shown by this PgBouncer: ${oneLine(r.unavailable.join(', '))}`));
  return lines.join('\n');
}

/** One monitoring-plugin line: status, summary, and per-pool waiting clients and maxwait as perfdata. */
export function renderPgBouncerNagios(r: PgBouncerReport): string {
  const label = (s: string) => `'${oneLine(s, 60).replace(/['=|]/g, '_')}'`;
  const perf = r.pools.flatMap((p) => [`${label(`${p.database}/${p.user} cl_waiting`)}=${p.cl_waiting ?? 0}`, `${label(`${p.database}/${p.user} maxwait`)}=${(p.maxwait_s ?? 0).toFixed(3)}s`]);
  return `DBDOCTOR PGBOUNCER ${NAGIOS_STATUS[r.verdict]}: ${oneLine(r.summary, 400).replace(/\|/g, '/')}${perf.length ? ` | ${perf.join(' ')}` : ''}`;
}

/** The pooler's side beside the server's diagnosis (diagnose --pgbouncer). */
export function renderPoolerJoin(j: PoolerJoin, style: ChalkInstance): string {
  const lines: string[] = ['', style.bold(`PgBouncer ${oneLine(j.console)}${j.version ? ` (${oneLine(j.version, 40)})` : ''}: ${severityLabel(style, j.verdict)}`)];
  lines.push(oneLine(j.arithmetic.summary));
  for (const p of j.pools) {
    const apps = p.waiting_applications.map((a) => `${a.application_name || '(none)'} ${a.clients}`).join(', ');
    lines.push(
      `pool ${oneLine(`${p.database}/${p.user}`, 40)} (${oneLine(p.pool_mode ?? '?', 12)}): ${n(p.cl_waiting)} waiting${apps ? ` (${oneLine(apps, 60)})` : ''}, maxwait ${p.maxwait_s === null ? '-' : `${p.maxwait_s.toFixed(1)}s`}; ${p.server_sessions.length} server session${p.server_sessions.length === 1 ? '' : 's'}${p.unmatched ? `, ${p.unmatched} not found on this server` : ''}`,
    );
    for (const s of p.server_sessions) {
      const age = s.xact_age_ms === null ? '' : `, in a transaction for ${formatDuration(s.xact_age_ms)}`;
      const wait = s.wait_event ? `, waiting on ${oneLine(`${s.wait_event_type ?? ''}:${s.wait_event}`, 30)}` : '';
      lines.push(`  pid ${s.pid}  ${oneLine(s.state ?? 'hidden', 30)}${age}${wait}${s.application_name ? `  app ${oneLine(s.application_name, 30)}` : ''}${s.blocks_others ? style.red('  blocks others') : ''}`);
    }
  }
  for (const f of j.findings) {
    lines.push(`${severityLabel(style, f.severity)}  ${oneLine(f.summary)}`);
    lines.push(`  ${style.bold('next:')} ${oneLine(f.next)}`);
    lines.push(`  ${style.dim(`runbook: ${runbookLink(f.runbook)}`)}`);
  }
  return lines.join('\n');
}
