/**
 * `locks` as text: a verdict line, a table of root blockers (the one blocking most first), then
 * per root its details, the recommended action and the tree of sessions it blocks. Lines are cut
 * to the terminal's width; client-controlled text goes through oneLine().
 */
import type { ChalkInstance } from 'chalk';
import type { PreparedXact } from '../core/activity.js';
import { formatDuration } from '../core/duration.js';
import type { LockNode, LockRoot, LocksReport, WaitedLock } from '../core/locks.js';
import { ageCell, type ColumnSpec, clientText, fitLines, fittedTable, stateCell, tableWidth, wrap } from './connections.js';
import { oneLine } from './sanitize.js';
import { fitWidth } from './width.js';
import { severityLabel } from './style.js';
import { commandLines } from '../core/printed.js';
import { largest } from '../core/stats.js';

/** A line printed as it is: a command or statement, which cutting would change. */
class Verbatim {
  constructor(readonly text: string) {}
}
type Line = string | Verbatim;

/** Most tree lines printed per root; the rest are counted (all of them are in --json). */
export const MAX_TREE_LINES = 40;
/** Deepest level printed; a deeper chain is one line that counts it. */
export const MAX_DEPTH = 8;

const cut = fitWidth;

function lockText(l: WaitedLock): string {
  // every field is oneLine'd: a snapshot file (--from) can carry any text in any of them
  return `${l.mode ? `${oneLine(l.mode, 40)} on ` : ''}${oneLine(l.locktype, 40)}${l.relation ? ` ${oneLine(l.relation, 40)}` : ''}`;
}

function rootLabel(r: LockRoot): string {
  if (r.prepared_transaction) return 'prepared xact';
  if (r.vanished || !r.session) return `${r.pid} (gone)`;
  return String(r.pid);
}

function preparedText(p: PreparedXact): string {
  return `gid ${oneLine(p.gid, 60)} (owner ${oneLine(p.owner, 20)}, database ${oneLine(p.database, 20)}, prepared ${formatDuration(p.age_ms)} ago)`;
}

function nodeText(n: LockNode): string {
  const s = n.session;
  if (n.pid === 0) return '0 prepared transaction';
  if (!s) return `${n.pid} (gone since the read)`;
  const parts = [String(n.pid), oneLine(s.application_name || '-', 20)];
  if (n.waits_for) {
    parts.push(`waits ${formatDuration(n.waits_for.wait_ms ?? s.state_age_ms)}`, oneLine([n.waits_for.mode, n.waits_for.locktype].filter(Boolean).join(' '), 60));
  } else {
    parts.push(`${oneLine(s.state)} ${formatDuration(s.state_age_ms)}`);
  }
  if (n.queue_head) parts.push(`[queue head: ${n.behind} behind]`);
  if (s.parallel_workers) parts.push(`+${s.parallel_workers} parallel workers`);
  parts.push(s.query === null ? '(query hidden)' : oneLine(s.query));
  return parts.join('  ');
}

/**
 * A root's tree as lines ("└─ " and "├─ "), from the flat node list: at most `max` lines and
 * `MAX_DEPTH` levels (a deeper chain is one line, "… N more behind pid X"), cut to `width`;
 * `elsewhere`: the earlier roots under which some of the sessions behind this one are listed.
 */
export function treeLines(root: number, nodes: readonly LockNode[], width: number, max = MAX_TREE_LINES, elsewhere: readonly number[] = []): string[] {
  const children = new Map<number, LockNode[]>();
  let top: LockNode | undefined;
  let listedHere = 0;
  for (const n of nodes) {
    if (n.root !== root) continue;
    listedHere++;
    if (n.blocked_by === null) top = n;
    else {
      const siblings = children.get(n.blocked_by);
      if (siblings) siblings.push(n);
      else children.set(n.blocked_by, [n]);
    }
  }
  if (!top) return [];
  const lines: string[] = [];
  let shown = 0;
  const stack: Array<{ n: LockNode; prefix: string; childPrefix: string; depth: number }> = [{ n: top, prefix: '', childPrefix: '', depth: 0 }];
  while (stack.length && lines.length < max) {
    const { n, prefix, childPrefix, depth } = stack.pop()!;
    if (depth > MAX_DEPTH) {
      lines.push(cut(`${prefix}… ${n.behind + 1} more behind pid ${n.blocked_by}`, width));
      shown += n.behind + 1;
      continue;
    }
    lines.push(cut(prefix + nodeText(n), width));
    shown++;
    const kids = children.get(n.pid) ?? [];
    for (let i = kids.length - 1; i >= 0; i--) {
      const last = i === kids.length - 1;
      stack.push({ n: kids[i]!, prefix: childPrefix + (last ? '└─ ' : '├─ '), childPrefix: childPrefix + (last ? '   ' : '│  '), depth: depth + 1 });
    }
  }
  const total = top.behind + 1;
  // Sessions behind this root that are listed under an earlier one (each session is listed once).
  const listedElsewhere = total - listedHere;
  const where = elsewhere.map((p) => (p === 0 ? 'the prepared transaction' : `root ${p}`)).join(', ');
  if (total > shown) lines.push(`… and ${total - shown} more (all of them in --json${listedElsewhere > 0 && where ? `, where ${listedElsewhere} are listed under ${where}` : ''})`);
  return lines;
}

function uniqueSorted(xs: number[]): number[] {
  return [...new Set(xs)].sort((a, b) => a - b);
}

function rootDetails(r: LockRoot, nodes: readonly LockNode[], elsewhere: number[], style: ChalkInstance, width: number): Line[] {
  const lines: Line[] = [];
  const s = r.session;
  const head = r.prepared_transaction
    ? `${style.bold('root: a prepared transaction')} (pid 0)`
    : s
      ? `${style.bold(`root ${r.pid}`)}  ${oneLine(s.application_name || '-', 30)}  ${oneLine(s.usename ?? '?', 20)}@${oneLine(s.datname ?? '?', 20)}  ${clientText(s.client_addr ?? (s.state === 'hidden' ? null : 'local'), s.client_hostname)}`
      : `${style.bold(`root ${r.pid}`)}  gone (or hidden) since the read`;
  lines.push(head);
  const ind = '  ';
  if (s) {
    lines.push(`${ind}state    ${stateCell(style, s.state)} for ${ageCell(style, s.state_age_ms)}; transaction open ${ageCell(style, s.xact_age_ms)}`);
    lines.push(cut(`${ind}query    ${s.query === null ? '(hidden)' : oneLine(s.query)}`, width));
  }
  for (const p of r.prepared) lines.push(cut(`${ind}prepared ${preparedText(p)}`, width));
  lines.push(`${ind}blocks   ${r.blocks_direct.length} directly, ${r.blocks_total} in total; longest wait ${ageCell(style, r.longest_wait_ms)}`);
  if (r.waited_locks.length) lines.push(wrap(`${ind}lock     ${r.waited_locks.map(lockText).join('; ')}`, width, `${ind}         `));
  if (r.holds_advisory) lines.push(`${ind}${style.yellow('advisory')} holds advisory locks (pg_advisory_lock): the application must release them, or end the session`);
  // The words of each step, then its command or statement as it was built: never cut or
  // collapsed (a command may be broken between words with a shell continuation).
  r.next.forEach((n, i) => {
    const label = i === 0 ? `${ind}${style.bold('next')}     ` : `${ind}      or `;
    lines.push(label + wrap(oneLine(n.text), width - 11, `${ind}         `).trimStart());
    const code = n.argv && n.command ? commandLines(n.argv, width - 11) : n.sql ? [n.sql] : [];
    for (const c of code) lines.push(new Verbatim(`${ind}         ${style.bold(c)}`));
  });
  lines.push(...treeLines(r.pid, nodes, width - 2, MAX_TREE_LINES, elsewhere).map((l) => `${ind}${l}`));
  return lines;
}

export function renderLocks(r: LocksReport, style: ChalkInstance, columns = 80): string {
  const width = tableWidth(columns);
  const lines: Line[] = [];
  if (r.waiting === 0) {
    const text = wrap(`${r.status.toUpperCase()}  no session waits on a lock held by another${r.visibility.partial ? ' (among the sessions this role can see)' : ''}`, width, '  ');
    lines.push(severityLabel(style, r.status) + text.slice(r.status.length));
  } else {
    const longest = Math.max(0, largest(r.roots.map((x) => x.longest_wait_ms)) ?? 0);
    const rootsText = `${r.roots.length} root blocker${r.roots.length === 1 ? '' : 's'}`;
    const cyclesText = r.cycles.length ? `, ${r.cycles.length} lock cycle${r.cycles.length === 1 ? '' : 's'}` : '';
    const text = wrap(`${r.status.toUpperCase()}  ${r.waiting} session${r.waiting === 1 ? '' : 's'} waiting on locks: ${rootsText}${cyclesText}${longest ? `; longest wait ${formatDuration(longest)}` : ''}`, width, '  ');
    lines.push(severityLabel(style, r.status) + text.slice(r.status.length));
  }
  if (r.roots.length > 0) {
    lines.push('');
    const cols: ColumnSpec[] = [
      { head: 'root', cells: r.roots.map(rootLabel) },
      { head: 'app', cells: r.roots.map((x) => oneLine(x.session?.application_name ?? '-')), min: 3, max: 20 },
      { head: 'state', cells: r.roots.map((x) => (x.session ? stateCell(style, x.session.state, true) : '-')), min: 5, max: 17 },
      { head: 'xact', cells: r.roots.map((x) => ageCell(style, x.session?.xact_age_ms ?? x.prepared[0]?.age_ms ?? null)) },
      { head: 'blocks', cells: r.roots.map((x) => `${x.blocks_direct.length}/${x.blocks_total}`) },
      { head: 'longest', cells: r.roots.map((x) => ageCell(style, x.longest_wait_ms)) },
      { head: 'action', cells: r.roots.map((x) => x.action.replace(/_/g, ' ') + (x.holds_advisory ? ' (advisory)' : '')), min: 8, max: 30 },
    ];
    lines.push(fittedTable(cols, width));
    lines.push(style.dim(wrap('blocks: directly/in total; longest: longest wait among them', width, '  ')));
    // Each root's nodes, bucketed once: every root's tree would otherwise scan every node.
    const nodesOf = new Map<number, LockNode[]>();
    const rootOf = new Map<number, number | null>();
    for (const n of r.nodes) {
      rootOf.set(n.pid, n.root);
      if (n.root === null) continue;
      const same = nodesOf.get(n.root);
      if (same) same.push(n);
      else nodesOf.set(n.root, [n]);
    }
    for (const root of r.roots) {
      // Sessions it blocks that are listed under an earlier root (each session is listed once).
      const elsewhere = uniqueSorted(root.blocks_all.map((p) => rootOf.get(p)).filter((x): x is number => x !== undefined && x !== null && x !== root.pid));
      lines.push('');
      lines.push(...rootDetails(root, nodesOf.get(root.pid) ?? [], elsewhere, style, width));
    }
  }
  r.cycles.forEach((c, i) => {
    lines.push('');
    lines.push(style.bold.red(`lock cycle: pids ${c.members.join(', ')} wait for each other; ${c.stuck.length} more stuck behind them`));
    lines.push(wrap('  a deadlock: the server breaks it only after deadlock_timeout (which a role or database may have raised), and everything behind it waits meanwhile', width, '  '));
    const members = new Set(c.members);
    for (const n of r.nodes.filter((x) => x.cycle === i && members.has(x.pid))) {
      const s = n.session;
      lines.push(cut(`  ${n.pid}  ${oneLine(s?.application_name || '-', 20)}  waits ${formatDuration(n.waits_for?.wait_ms ?? s?.state_age_ms ?? null)}  for ${n.blockers.join(', ')}  ${s?.query === null || !s ? '(hidden)' : oneLine(s.query)}`, width));
    }
    for (const n of c.next) {
      lines.push(`  ${style.bold('next')}  ${wrap(oneLine(n.text), width - 8, '        ').trimStart()}`);
      for (const l of n.argv ? commandLines(n.argv, width - 8) : []) lines.push(new Verbatim(`        ${style.bold(l)}`));
    }
  });
  if (r.prepared_transactions.length > 0 && r.roots.every((x) => !x.prepared_transaction)) {
    lines.push('');
    lines.push(style.dim(`prepared transactions (they hold their locks until COMMIT PREPARED / ROLLBACK PREPARED): ${r.prepared_transactions.length}`));
    for (const p of r.prepared_transactions) lines.push(style.dim(cut(`  ${preparedText(p)}`, width)));
  }
  // No line wider than the terminal, but for commands and statements, which are never cut.
  return lines.map((l) => (l instanceof Verbatim ? l.text : fitLines(l, width))).join('\n');
}
