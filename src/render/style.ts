import type { ChalkInstance } from 'chalk';
import type { Severity } from '../core/exit-codes.js';

export function severityLabel(style: ChalkInstance, s: Severity): string {
  const label = s.toUpperCase();
  switch (s) {
    case 'critical':
      return style.bold.red(label);
    case 'warning':
      return style.bold.yellow(label);
    case 'unknown':
      return style.bold.magenta(label);
    case 'info':
      return style.cyan(label);
    default:
      return style.bold.green(label);
  }
}

