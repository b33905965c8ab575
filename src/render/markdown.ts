/**
 * The runbooks' markdown for a terminal: headings in bold, paragraphs and list items wrapped to
 * the width (continuations under their text), code blocks indented and never wrapped (a statement
 * is copied as printed), tables fitted to the width, links as their text, and the `<a id>` anchors
 * (for the diagnose node ids) left out. Only what the runbooks use; anything else passes as text.
 * Pure: the caller sanitizes (every byte goes through the writer or the pager's terminalText).
 */
import type { ChalkInstance } from 'chalk';
import { type ColumnSpec, listTable } from './connections.js';
import { displayWidth } from './width.js';

const ANCHOR = /<a id="[^"]*"><\/a>/g;

/** Inline markup: `code`, **bold**, *emphasis*, [text](link) as its text (a web link keeps its address). */
export function inline(text: string, style: ChalkInstance): string {
  return text
    .replace(ANCHOR, '')
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_m, t: string, href: string) => (/^https?:\/\//.test(href) ? `${t} <${href}>` : t))
    .replace(/`([^`]+)`/g, (_m, c: string) => style.cyan(c))
    .replace(/\*\*([^*]+)\*\*/g, (_m, b: string) => style.bold(b))
    .replace(/(^|[\s(])\*([^*\s][^*]*)\*(?=[\s).,:;]|$)/g, (_m, pre: string, e: string) => `${pre}${style.italic(e)}`);
}

/** Greedy wrap by display width (colour codes take no room); the first line after `first`, the rest after `rest`. */
function wrapText(text: string, width: number, first: string, rest: string): string[] {
  const out: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (!empty && displayWidth(line) + 1 + displayWidth(word) > width) {
      out.push(line);
      line = rest + word;
    } else line += (empty ? '' : ' ') + word;
    empty = false;
  }
  out.push(line);
  return out;
}

function cells(row: string): string[] {
  return row
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

function renderTable(rows: string[], style: ChalkInstance, width: number): string[] {
  const body = rows.filter((r) => !/^\s*\|?\s*:?-{3,}/.test(r)).map(cells);
  const head = body[0] ?? [];
  const data = body.slice(1);
  const cols: ColumnSpec[] = head.map((h, i) => ({
    head: style.bold(inline(h, style)),
    cells: data.map((r) => inline(r[i] ?? '', style)),
    min: 6,
  }));
  // Rows that do not fit are cut by the table; a long cell is better read whole: wrap instead when
  // the table would cut, one "head: value" block per row.
  const natural = cols.reduce((a, c) => a + Math.max(displayWidth(c.head), ...c.cells.map(displayWidth)), 0) + cols.length - 1;
  if (natural <= width) return listTable(cols, width).split('\n');
  const out: string[] = [];
  for (const r of data) {
    r.forEach((c, i) => {
      out.push(...wrapText(inline(c, style), width, `${i === 0 ? '• ' : '  '}${style.dim(`${head[i] ?? ''}:`)} `, '    '));
    });
  }
  return out;
}

/** The markdown as terminal text at `width` columns (at least 40). */
export function renderMarkdown(md: string, style: ChalkInstance, width = 80): string {
  const w = Math.max(40, width);
  const lines = md.split('\n');
  const out: string[] = [];
  let para: string[] = [];
  /** The open list item: its marker and indent, and its text so far. */
  let item: { first: string; rest: string; text: string[] } | null = null;
  const flush = () => {
    if (item) out.push(...wrapText(inline(item.text.join(' '), style), w, item.first, item.rest));
    else if (para.length) out.push(...wrapText(inline(para.join(' '), style), w, '', ''));
    item = null;
    para = [];
  };
  const blank = () => {
    if (out.length && out[out.length - 1] !== '') out.push('');
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = raw.replace(ANCHOR, '');
    if (raw.trim() !== '' && line.trim() === '') continue; // an anchor on a line of its own
    const fence = /^(\s*)```/.exec(line);
    if (fence) {
      flush();
      const pad = ' '.repeat(4);
      i++;
      while (i < lines.length && !/^\s*```/.test(lines[i]!)) {
        out.push(style.cyan(`${pad}${lines[i]!.slice(fence[1]!.length)}`));
        i++;
      }
      blank();
      continue;
    }
    if (line.trim() === '') {
      flush();
      blank();
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      blank();
      const text = inline(heading[2]!, style);
      out.push(heading[1]!.length <= 1 ? style.bold.underline(text) : style.bold(text));
      continue;
    }
    if (/^\s*\|/.test(line)) {
      flush();
      const rows: string[] = [];
      while (i < lines.length && /^\s*\|/.test(lines[i]!)) rows.push(lines[i++]!);
      i--;
      out.push(...renderTable(rows, style, w));
      continue;
    }
    const quote = /^>\s?(.*)$/.exec(line);
    if (quote) {
      flush();
      out.push(...wrapText(inline(quote[1]!, style), w, style.dim('│ '), style.dim('│ ')));
      continue;
    }
    const li = /^(\s*)([-*]|\d+\.)\s+(.*)$/.exec(line);
    if (li) {
      flush();
      const indent = ' '.repeat(li[1]!.length);
      const marker = /^\d/.test(li[2]!) ? `${li[2]} ` : '• ';
      item = { first: `${indent}${marker}`, rest: `${indent}${' '.repeat(marker.length)}`, text: [li[3]!] };
      continue;
    }
    if (item && /^\s+\S/.test(line)) {
      item.text.push(line.trim());
      continue;
    }
    if (item) flush();
    para.push(line.trim());
  }
  flush();
  while (out.length && out[out.length - 1] === '') out.pop();
  return out.join('\n');
}
