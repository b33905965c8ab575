import type { ChalkInstance } from 'chalk';
import type { CheckReport } from '../core/check.js';
import { formatDuration } from '../core/duration.js';
import { runbookLink } from '../core/runbooks.js';
import { oneLine } from './sanitize.js';
import { severityLabel } from './style.js';
import { table } from './table.js';

export function renderCheck(r: CheckReport, style: ChalkInstance): string {
  const lines: string[] = [];
  lines.push(`${severityLabel(style, r.status)}  ${oneLine(r.summary)}`);
  lines.push(style.dim(`target: ${r.target}`));
  lines.push('');
  const steps = table({ head: ['step', 'result', 'time', 'detail'], wordWrap: true, colWidths: [8, 8, 8, 52] });
  for (const s of r.steps) {
    steps.push([s.step, s.ok ? style.green('ok') : style.red('FAILED'), s.ms === null ? '-' : `${Math.round(s.ms)} ms`, oneLine(s.detail)]);
  }
  lines.push(steps.toString());
  if (r.failure) {
    lines.push('');
    lines.push(`${style.bold('cause:')} ${oneLine(r.failure.message)}`);
    lines.push(`${style.bold('next:')}  ${oneLine(r.failure.hint)}`);
    lines.push(`${style.bold('runbook:')} ${runbookLink(r.failure.runbook)}  (dbdoctor runbook ${r.failure.runbook})`);
    return lines.join('\n');
  }
  if (r.server && r.capacity) {
    const c = r.capacity;
    const facts = table({ wordWrap: true, colWidths: [28, 49] });
    facts.push(
      ['server', oneLine(r.server.version, 48)],
      ['role of server', r.server.role],
      ['uptime', formatDuration(r.server.uptime_s * 1000)],
      ['round-trip latency', `${r.server.latency_ms} ms`],
      ['max_connections', String(c.max_connections)],
      ['reserved slots', `superuser ${c.superuser_reserved}${r.server.major >= 16 ? `, reserved_connections ${c.reserved}` : ''}`],
      ['client backends now', String(c.client_backends)],
      ['headroom (ordinary roles)', `${c.headroom} of ${c.ordinary_slots} (${c.headroom_pct}%)`],
    );
    for (const l of r.limits_near) {
      facts.push([`${l.kind} ${oneLine(l.name, 18)} limit`, `${l.connections}/${l.conn_limit} (${l.used_pct}%)`]);
    }
    lines.push(facts.toString());
  }
  if (r.privileges) {
    const p = r.privileges;
    const yes = (b: boolean) => (b ? style.green('yes') : style.yellow('no'));
    const priv = table({ head: [`role "${oneLine(p.role, 30)}" can`, ''], colWidths: [55, 7] });
    priv.push(
      ['act as superuser', yes(p.superuser)],
      ["see other roles' queries (pg_read_all_stats)", yes(p.can_see_other_sessions)],
      ["terminate other roles' sessions (pg_signal_backend)", yes(p.can_terminate_other_roles)],
      ['use reserved connection slots', yes(p.can_use_reserved_connections)],
    );
    lines.push(priv.toString());
    for (const n of p.notes) lines.push(style.yellow(`! ${oneLine(n)}`));
  }
  if (r.status !== 'ok') lines.push(`runbook: ${runbookLink(r.runbook)}`);
  return lines.join('\n');
}
