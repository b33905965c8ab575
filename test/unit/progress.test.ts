import { describe, expect, test } from '@jest/globals';
import { createProgress, withProgress } from '../../src/ui/progress.js';
import { captureOutput } from '../support/output.js';

describe('progress', () => {
  test('nothing at all when stderr is not a TTY, or with --json', async () => {
    const written: string[] = [];
    for (const [isTTY, json] of [
      [false, false],
      [true, true],
    ] as const) {
      const { output, err } = captureOutput({ tty: isTTY });
      const p = createProgress(output, json);
      written.push(...err);
      expect(p.enabled).toBe(false);
      await withProgress(p, 'connecting', async () => undefined);
      written.push(...err);
    }
    expect(written).toEqual([]);
  });

  test('on a TTY: a spinner line with the step, sanitized, erased at the end', async () => {
    const { output, err: written } = captureOutput({ tty: true });
    const p = createProgress(output, false, { intervalMs: 5, columns: 80 });
    expect(p.enabled).toBe(true);
    await withProgress(p, 'gathering \u001b]0;evil\u0007sessions', async () => {
      await new Promise((r) => setTimeout(r, 30));
      p.update('gathering locks');
    });
    const all = written.join('');
    expect(all).toContain('gathering \\u001b]0;evil\\u0007sessions');
    expect(all).toContain('gathering locks');
    expect(all).not.toContain('\u001b]0;evil');
    expect(written.at(-1)).toBe('\r\u001b[2K');
    const count = written.length;
    await new Promise((r) => setTimeout(r, 20));
    expect(written.length).toBe(count);
  });
});
