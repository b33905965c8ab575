/**
 * PgBouncer's pools and the findings about them, for a terminal, and as a nagios line. Database,
 * user and application names are other clients' text: oneLine makes them inert.
 */
import type { ChalkInstance } from 'chalk';
import type { PgBouncerReport } from '../core/pgbouncer.js';
import { runbookLink } from '../core/runbooks.js';
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
    const t = table({ head: ['pool (database/user)', 'mode', 'cl_active', 'cl_waiting', 'sv_active', 'sv_idle', 'sv_used', 'maxwait', 'size'] });
    for (const p of r.pools) {
      const waiting = p.cl_waiting ?? 0;
      t.push([
        oneLine(`${p.database}/${p.user}`, 30),
        oneLine(p.pool_mode ?? '-', 11),
        n(p.cl_active),
        waiting > 0 ? style.red(String(waiting)) : n(p.cl_waiting),
        n(p.sv_active),
        n(p.sv_idle),
        n(p.sv_used),
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

const NAGIOS_STATUS = { ok: 'OK', info: 'OK', warning: 'WARNING', critical: 'CRITICAL', unknown: 'UNKNOWN' } as const;

/** One monitoring-plugin line: status, summary, and per-pool waiting clients and maxwait as perfdata. */
export function renderPgBouncerNagios(r: PgBouncerReport): string {
  const label = (s: string) => `'${oneLine(s, 60).replace(/['=|]/g, '_')}'`;
  const perf = r.pools.flatMap((p) => [`${label(`${p.database}/${p.user} cl_waiting`)}=${p.cl_waiting ?? 0}`, `${label(`${p.database}/${p.user} maxwait`)}=${(p.maxwait_s ?? 0).toFixed(3)}s`]);
  return `DBDOCTOR PGBOUNCER ${NAGIOS_STATUS[r.verdict]}: ${oneLine(r.summary, 400).replace(/\|/g, '/')}${perf.length ? ` | ${perf.join(' ')}` : ''}`;
}
