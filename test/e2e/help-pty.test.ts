/**
 * Every --help on a real 80-column terminal (a pty at 80x24): no line wider than the terminal.
 * commander wraps the descriptions at the terminal's width (configureOutput's help width), and the
 * examples and exit codes are wrapped too, a long example command with " \" continuations.
 */
import { describe, expect, test } from '@jest/globals';
import { displayWidth } from '../../src/render/width.js';
import { COMMANDS, landed } from '../support/commands.js';
import { shellWords } from '../support/output.js';
import { runInPty } from '../support/pty.js';

const commands = ['', ...landed(COMMANDS).map((c) => c.name)];

describe('every --help fits an 80-column terminal', () => {
  test.concurrent.each(commands.map((c) => [c || '(root)', c] as const))('dbdoctor %s --help', async (_label, name) => {
    const pty = runInPty([...(name ? [name] : []), '--help'], { cols: 80, rows: 24 });
    try {
      expect(await pty.exit).toBe(0);
      const lines = pty.text().split('\n');
      expect(lines.length).toBeGreaterThan(10);
      const wide = lines.filter((l) => displayWidth(l) > 80);
      expect(wide).toEqual([]);
      expect(pty.text()).toMatch(/Exit codes:/);
    } finally {
      pty.kill();
    }
  });

  test('a long example command is wrapped with continuations, and still reads as one command', async () => {
    const pty = runInPty(['terminate', '--help'], { cols: 60, rows: 24 });
    try {
      expect(await pty.exit).toBe(0);
      const text = pty.text();
      const start = text.indexOf('  dbdoctor terminate --state "idle in transaction"');
      expect(start).toBeGreaterThan(0);
      const lines = text.slice(start).split('\n');
      const end = lines.findIndex((l) => !l.endsWith(' \\'));
      expect(end).toBeGreaterThan(0);
      for (const l of lines.slice(0, end + 1)) expect(displayWidth(l)).toBeLessThanOrEqual(60);
      expect(shellWords(lines.slice(0, end + 1).join('\n'))).toEqual(['dbdoctor', 'terminate', '--state', 'idle in transaction', '--older-than', '5m', '--app', 'worker*']);
    } finally {
      pty.kill();
    }
  });
});
