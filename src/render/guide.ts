/** The guided walk's own text: a finding's header when it is picked, and the menu labels. */
import type { ChalkInstance } from 'chalk';
import type { GuideAction, GuideFinding } from '../core/guide.js';
import { wrap } from './connections.js';
import { oneLine } from './sanitize.js';
import { severityLabel } from './style.js';

/** Shown when a finding is picked: its severity and title, and the likely cause, wrapped. */
export function renderFindingHeader(f: GuideFinding, style: ChalkInstance, columns = 80): string {
  const width = Math.max(40, Math.min(columns, 100) - 2);
  // The title wrapped at the terminal's width, continuations under its first word.
  const label = f.severity.toUpperCase();
  const title = wrap(`${label}  ${oneLine(f.title)}`, width + 2, ' '.repeat(label.length + 2)).split('\n');
  const out = [`${severityLabel(style, f.severity)}  ${style.bold(title[0]!.slice(label.length + 2))}`, ...title.slice(1).map((l) => style.bold(l))];
  if (f.cause) out.push(style.dim(wrap(`  likely cause: ${oneLine(f.cause)}`, width + 2, '  ')));
  return out.join('\n');
}

/** A finding as a menu entry: severity and title on one line. */
export function findingLabel(f: GuideFinding, style: ChalkInstance, width: number): string {
  return `${severityLabel(style, f.severity)} ${oneLine(f.title, width)}`;
}

/** A next step as a menu entry, with a one-line description of what it does. */
export function actionLabel(a: GuideAction): { name: string; description: string } {
  switch (a.kind) {
    case 'inspect':
      return { name: `Inspect: ${a.command}`, description: 'read-only: shows the sessions behind this finding' };
    case 'terminate':
      return { name: `Clean up: ${a.command}`, description: 'shows the plan first; nothing is ended without your Yes' };
    case 'runbook':
      return { name: `Read the runbook: ${a.command}`, description: 'what this finding means and what to do, step by step' };
    default:
      return { name: `Run: ${a.command}`, description: '' };
  }
}
