/**
 * `dbdoctor runbook` on a terminal: the runbooks' markdown rendered (headings, lists, code blocks,
 * tables, links as text, no `<a id>` anchors), every line but a code line within the width.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { Chalk } from 'chalk';
import { renderMarkdown } from '../../src/render/markdown.js';
import { displayWidth } from '../../src/render/width.js';

const plain = new Chalk({ level: 0 });
const dir = new URL('../../runbooks/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.md'));

describe('runbooks rendered for a terminal', () => {
  test.each(files.map((f) => [f] as const))('%s at 80 and 100 columns', (file) => {
    const md = readFileSync(new URL(file, dir), 'utf8');
    const codeLines = new Set<string>();
    let inCode = false;
    for (const l of md.split('\n')) {
      if (/^\s*```/.test(l)) inCode = !inCode;
      else if (inCode) codeLines.add(l.trim());
    }
    for (const width of [80, 100]) {
      const text = renderMarkdown(md, plain, width);
      expect(text).not.toMatch(/<a id=/);
      expect(text).not.toMatch(/```/);
      expect(text).not.toMatch(/^#+ /m);
      expect(text).not.toMatch(/\]\([^)]*\)/);
      expect(text).not.toMatch(/^\s*\|.*\|\s*$/m);
      expect(text).not.toMatch(/\*\*/);
      const wide = text.split('\n').filter((l) => displayWidth(l) > width && !codeLines.has(l.trim()));
      expect(wide).toEqual([]);
      // The first heading is the title, as its text.
      expect(text.split('\n')[0]).toBe(/^#\s+(.+)$/m.exec(md)![1]);
    }
  });

  test('each construct', () => {
    const md = [
      '# Title',
      '<a id="node"></a>',
      'A paragraph with `code`, **bold** and [a link](other.md#x), and [the web](https://example.org).',
      '',
      '- one item',
      '  that goes on',
      '1. **First.** step',
      '',
      '```sql',
      'SELECT 1;',
      '```',
      '',
      '| a | b |',
      '|---|---|',
      '| x | y |',
    ].join('\n');
    expect(renderMarkdown(md, plain, 80).split('\n')).toEqual([
      'Title',
      'A paragraph with code, bold and a link, and the web <https://example.org>.',
      '',
      '• one item that goes on',
      '1. First. step',
      '',
      '    SELECT 1;',
      '',
      'a      b',
      'x      y',
    ]);
  });
});
