import type { Command } from 'commander';
import { exitCodeForSeverity } from '../core/exit-codes.js';
import { type LocksReport, locksReport } from '../core/locks.js';
import type { Target } from '../core/target.js';
import { type SessionOptions, withSession } from '../db/session.js';
import { readActivity } from '../db/sql/activity.js';
import { visibilityWarning } from '../render/connections.js';
import { envelope, renderJson } from '../render/json.js';
import { renderLocks } from '../render/locks.js';
import { cutQueries, viewFacts } from '../core/snapshot.js';
import { addFromOption, readFromFile, refuseServerWithFrom } from './from.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, sessionOptions, targetFrom, withReadProgress, refuseConsole } from './context.js';

/** How much of each statement `locks` reads (and keeps from a snapshot). */
const LOCKS_QUERY_CHARS = 1000;

/**
 * "Who is blocking whom?" One activity snapshot of the blocking chains (never the pg_locks
 * self-join), then the tree (src/core/blocking.ts). The lock each waiter waits for comes from its
 * wait_event where that fixes it, and from pg_locks only when a waiter waits for a relation-level
 * lock, who blocks whom then from pg_locks' rows, else from pg_blocking_pids(); `detail` reads
 * pg_locks whenever someone waits (exact modes and wait starts, at the cost of the whole lock
 * table: README, "locks").
 * The role's privileges come with the session. Never prints, never exits.
 */
export async function runLocks(target: Target, opts: SessionOptions, how: { detail?: boolean } = {}): Promise<LocksReport> {
  return withSession(target, opts, async (session) => {
    const snapshot = await readActivity(session, { scope: 'blocking', queryChars: LOCKS_QUERY_CHARS, lockDetail: how.detail ? 'full' : 'targeted' });
    return locksReport(snapshot, { can_read_all_stats: session.role.can_read_all_stats, role: session.role.current_user });
  });
}

export function locksCommand(program: Command, ctx: CommandContext): void {
  addConnectionOptions(
    addFromOption(
      program
        .command('locks')
        .description('who is blocking whom: root blockers first, with the sessions they block as a tree and what to do about each'),
    ),
  )
    .option('--json', 'one JSON document on stdout')
    .option('--detail', "every waiter's exact lock mode, relation and wait start from pg_locks (reads the whole lock table: slower at scale)")
    .action(async (opts: ConnectionCliOptions & { from?: string; detail?: boolean }) => {
      ctx.json = Boolean(opts.json);
      let report: LocksReport;
      if (opts.from !== undefined) {
        refuseServerWithFrom(opts);
        const { activity, server } = viewFacts(readFromFile(opts.from).facts, opts.from);
        // the query texts cut as the live read cuts them
        report = locksReport(cutQueries(activity, LOCKS_QUERY_CHARS), { can_read_all_stats: server.can_read_all_stats, role: server.current_user });
      } else {
        const target = targetFrom(opts, ctx);
        refuseConsole(target, 'locks');
        report = await withReadProgress(ctx, target, 'pg_stat_activity and lock waits', () => runLocks(target, sessionOptions(opts, ctx), { detail: Boolean(opts.detail) }));
      }
      const warning = visibilityWarning(report.visibility, ctx.output.errStyle);
      if (warning) ctx.output.err(warning);
      ctx.output.out(opts.json ? renderJson(envelope('locks', report, ctx.version)) : renderLocks(report, ctx.output.style, ctx.output.columns));
      ctx.exitCode = exitCodeForSeverity(report.status);
    });
}
