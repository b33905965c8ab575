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
import { runCli } from '../support/cli.js';

const commands = ['', ...landed(COMMANDS).map((c) => c.name)];

describe('every --help fits an 80-column terminal', () => {
  test.concurrent.each(commands.map((c) => [c || '(root)', c] as const))('dbdoctor %s --help', async (_label, name) => {
    const pty = runInPty([...(name ? [name] : []), '--help'], { cols: 80, rows: 24 });
    try {
      expect(await pty.exit).toBe(0);
      // The last bytes may arrive just after the exit: wait (bounded) for the end of the help.
      for (let i = 0; i < 100 && !/130 {2}interrupted/.test(pty.text()); i++) await new Promise((r) => setTimeout(r, 20));
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

describe('dbdoctor runbook on a terminal', () => {
  test('rendered: headings, lists, code and tables, links as text, no <a id> anchors; raw markdown when piped', async () => {
    const pty = runInPty(['runbook', 'leaks'], { cols: 80, rows: 24, env: { PAGER: 'cat', NO_COLOR: '1' } });
    try {
      expect(await pty.exit).toBe(0);
      const text = pty.text();
      expect(text.split('\n')[0]).toBe('Connection leaks');
      expect(text).not.toMatch(/<a id=|```|^#+ |\]\(|\*\*/m);
      expect(text).toMatch(/^• Terminating sessions relieves the incident/m);
      expect(text).toMatch(/^1\. See them\. dbdoctor connections/m);
      expect(text).toMatch(/^ {4}SELECT application_name, client_addr, state/m);
      expect(text).toMatch(/^• signature: idle in transaction \(aborted\)$/m);
    } finally {
      pty.kill();
    }
    const piped = await runCli(['runbook', 'leaks'], { env: { PAGER: 'cat' } });
    expect(piped.stdout.split('\n')[0]).toBe('# Connection leaks');
    expect(piped.stdout).toContain('<a id="idle-in-transaction"></a>');
  });
});
