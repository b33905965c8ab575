/**
 * `dbdoctor watch` as text, one line per sample (on a terminal without --json), plus a line per
 * finding that appeared or cleared and per trend finding. Client-controlled text (application
 * names, titles that quote them) goes through oneLine.
 */
import type { ChalkInstance } from 'chalk';
import type { Finding } from '../core/diagnose.js';
import type { WatchEvent, WatchSample } from '../core/watch.js';
import { oneLine } from './sanitize.js';
import { severityLabel } from './style.js';

export function renderWatchSample(s: WatchSample, events: WatchEvent[], trends: Finding[], style: ChalkInstance): string {
  const time = s.at.slice(11, 19);
  const apps = s.by_app
    .slice(0, 4)
    .map((a) => `${oneLine(a.app || '(no name)')} ${a.total}${a.idle_in_transaction ? ` (${a.idle_in_transaction} iit)` : ''}`)
    .join(', ');
  const lines = [
    `${time} ${severityLabel(style, s.verdict)} ${s.client_sessions}/${s.ordinary_slots} slots${s.new_sessions ? `, +${s.new_sessions} new` : ''}; ${apps}; sample ${s.server_ms} ms${s.backed_off ? `, interval backed off to ${s.interval_ms} ms` : ''}`,
  ];
  for (const e of events) lines.push(`${time}   ${e.change === 'appeared' ? '+' : '-'} ${e.id}: ${oneLine(e.title)}`);
  for (const f of trends) lines.push(`${time}   trend ${severityLabel(style, f.severity)} ${oneLine(f.title)}`);
  return lines.join('\n');
}
