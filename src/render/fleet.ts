/** The fleet at a glance, worst first, then the findings of every target that is not OK. */
import type { ChalkInstance } from 'chalk';
import type { FleetReport } from '../core/fleet.js';
import { NAGIOS_STATUS } from './diagnose.js';
import { oneLine } from './sanitize.js';
import { severityLabel } from './style.js';
import { table } from './table.js';

export function renderFleet(r: FleetReport, style: ChalkInstance): string {
  const lines = [`${severityLabel(style, r.verdict)}  ${oneLine(r.summary)}`, style.dim(`${r.targets.length} targets, ${r.concurrency} at a time, ${(r.ms / 1000).toFixed(1)}s`), ''];
  const t = table({ head: ['target', 'verdict', 'worst finding', 'headroom', 'time'], wordWrap: true, colWidths: [26, 10, 26, 10, 8] });
  for (const e of r.targets) {
    const worstFinding = e.report.findings.find((f) => f.severity !== 'info' && f.severity !== 'ok');
    const c = e.report.capacity;
    t.push([oneLine(e.name, 60), severityLabel(style, e.report.verdict), worstFinding ? oneLine(worstFinding.title, 60) : '-', c ? `${c.headroom_pct}%` : '-', `${(e.ms / 1000).toFixed(1)}s`]);
  }
  lines.push(t.toString());
  for (const e of r.targets) {
    const serious = e.report.findings.filter((f) => f.severity === 'critical' || f.severity === 'warning' || f.severity === 'unknown');
    if (serious.length === 0) continue;
    lines.push('', style.bold(oneLine(e.name)));
    for (const f of serious) lines.push(`  ${severityLabel(style, f.severity)}  ${oneLine(f.summary)}`);
  }
  return lines.join('\n');
}

/** The fleet as one monitoring-plugin line: the worst verdict and the counts. */
export function renderFleetNagios(r: FleetReport): string {
  return `DBDOCTOR ${NAGIOS_STATUS[r.verdict]}: ${oneLine(r.summary, 400)}`;
}
