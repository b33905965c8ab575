import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { packageFile } from '../package-files.js';
import { RUNBOOK_FILES, RUNBOOK_NODES, type RunbookFile } from '../core/runbooks.js';
import { page } from '../ui/pager.js';
import type { CommandContext } from './context.js';

/** runbooks/ ships next to dist/ and src/ (package.json "files"). */
export const RUNBOOKS_DIR = packageFile('runbooks');

export interface RunbookInfo {
  id: RunbookFile;
  file: string;
  title: string;
  /** The node ids (anchors) in it, in order. */
  nodes: string[];
}

export type RunbookResult =
  | { kind: 'list'; runbooks: RunbookInfo[] }
  | { kind: 'page'; id: string; file: string; /** The whole file (false) or one section (true). */ section: boolean; text: string };

const ANCHOR = /<a id="([^"]+)"><\/a>/g;

function readRunbook(dir: string, id: RunbookFile): string {
  return readFileSync(join(dir, RUNBOOK_FILES[id]), 'utf8');
}

export function listRunbooks(dir = RUNBOOKS_DIR): RunbookInfo[] {
  return (Object.keys(RUNBOOK_FILES) as RunbookFile[]).map((id) => {
    const text = readRunbook(dir, id);
    const title = /^#\s+(.+)$/m.exec(text)?.[1]?.trim() ?? id;
    return { id, file: `runbooks/${RUNBOOK_FILES[id]}`, title, nodes: [...text.matchAll(ANCHOR)].map((m) => m[1]!) };
  });
}

/**
 * The section that holds `<a id="node">`: from the heading above the anchor to the next heading
 * of the same or a higher level. An anchor under the file's title (level 1) is the whole file.
 */
export function sectionFor(text: string, node: string): string | null {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.includes(`<a id="${node}"></a>`));
  if (at < 0) return null;
  let start = at;
  while (start > 0 && !/^#{1,6}\s/.test(lines[start]!)) start--;
  const level = /^(#{1,6})\s/.exec(lines[start]!)?.[1]?.length ?? 1;
  if (level === 1) return text.trimEnd();
  let end = at + 1;
  while (end < lines.length) {
    const m = /^(#{1,6})\s/.exec(lines[end]!);
    if (m && m[1]!.length <= level) break;
    end++;
  }
  return lines.slice(start, end).join('\n').trimEnd();
}

/** `dbdoctor runbook [id]`: the list, a whole runbook, or the section for a node id. Never prints. */
export function runRunbook(id: string | undefined, dir = RUNBOOKS_DIR): RunbookResult {
  if (id === undefined || id === '') return { kind: 'list', runbooks: listRunbooks(dir) };
  const key = id.replace(/\.md$/, '').replace(/^runbooks\//, '').replace(/^.*#/, '');
  if (key in RUNBOOK_FILES) {
    const file = key as RunbookFile;
    return { kind: 'page', id: key, file: `runbooks/${RUNBOOK_FILES[file]}`, section: false, text: readRunbook(dir, file).trimEnd() };
  }
  const owner = RUNBOOK_NODES[key];
  const files = owner ? [owner] : (Object.keys(RUNBOOK_FILES) as RunbookFile[]);
  for (const f of files) {
    const section = sectionFor(readRunbook(dir, f), key);
    if (section !== null) return { kind: 'page', id: key, file: `runbooks/${RUNBOOK_FILES[f]}`, section: true, text: section };
  }
  throw new UsageError(`no runbook or section "${id}"`, `run "dbdoctor runbook" to list them; ids: ${Object.keys(RUNBOOK_FILES).join(', ')}, or a node id such as idle-in-transaction`);
}

export function renderRunbookList(list: RunbookInfo[]): string {
  const lines = ['Runbooks (dbdoctor runbook <id>; a node id prints its section):', ''];
  for (const r of list) {
    lines.push(`  ${r.id.padEnd(16)}${r.title}`);
    const nodes = r.nodes.filter((n) => n !== r.id);
    if (nodes.length) {
      let line = '';
      for (const n of nodes) {
        if (line && line.length + n.length + 2 > 60) {
          lines.push(`  ${''.padEnd(16)}${line},`);
          line = '';
        }
        line = line ? `${line}, ${n}` : n;
      }
      if (line) lines.push(`  ${''.padEnd(16)}${line}`);
    }
  }
  return lines.join('\n');
}

export function runbookCommand(program: Command, ctx: CommandContext): void {
  program
    .command('runbook')
    .argument('[id]', 'a runbook (cannot-connect, out-of-slots, leaks, blocking-locks, slow-queries, settings) or a node id from diagnose (e.g. idle-in-transaction)')
    .description('print a runbook, or the section for a diagnose node id; without an id, list them')
    .action(async (id: string | undefined) => {
      const r = runRunbook(id);
      if (r.kind === 'list') {
        ctx.output.out(renderRunbookList(r.runbooks));
        return;
      }
      const text = r.section ? `${r.text}\n\n(from ${r.file}#${r.id}; the whole runbook: dbdoctor runbook ${r.file.replace(/^runbooks\/|\.md$/g, '')})` : r.text;
      // On a terminal, rendered (headings, lists, code, tables, links as text); piped, the markdown itself.
      if (!ctx.output.stdoutIsTTY) {
        ctx.output.out(text);
        return;
      }
      const { renderMarkdown } = await import('../render/markdown.js');
      const width = Math.max(40, Math.min(ctx.output.columns, 100));
      await page(renderMarkdown(text, ctx.output.style, width), ctx.output, ctx.env);
    });
}
