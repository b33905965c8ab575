import type { Command } from 'commander';
import { compileFilter } from '../core/connections.js';
import { parseDuration } from '../core/duration.js';
import { exitCodeForSeverity } from '../core/exit-codes.js';
import { DEFAULT_QUERY_THRESHOLDS, type QueriesOptions, type QueriesReport, type QueryThresholds, queriesReport } from '../core/queries.js';
import type { Target } from '../core/target.js';
import { formatDuration } from '../core/duration.js';
import { type SessionOptions, withSession } from '../db/session.js';
import { readActivity } from '../db/sql/activity.js';
import { visibilityWarning } from '../render/connections.js';
import { envelope, renderJson } from '../render/json.js';
import { renderQueries } from '../render/queries.js';
import { addFilterOptions, type FilterCliOptions, filterFrom } from './connections.js';
import { viewFacts } from '../core/snapshot.js';
import { addFromOption, readFromFile, refuseServerWithFrom } from './from.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, sessionOptions, targetFrom, withReadProgress, refuseConsole } from './context.js';

/**
 * "What has been running or open too long?" One activity snapshot, then the four lists and the
 * statement groups (src/core/queries.ts). Never prints, never exits.
 */
export async function runQueries(target: Target, opts: SessionOptions, options: QueriesOptions = {}): Promise<QueriesReport> {
  compileFilter(options.filter ?? {});
  return withSession(target, opts, async (session) => {
    // The role's privileges came with the session; one round trip reads the sessions.
    const snapshot = await readActivity(session, { queryChars: 2000 });
    return queriesReport(snapshot, { can_read_all_stats: session.role.can_read_all_stats, role: session.role.current_user }, options);
  });
}

interface QueriesCliOptions extends ConnectionCliOptions, FilterCliOptions {
  minDuration?: string;
  longXact?: string;
  idleInXact?: string;
  clientWait?: string;
  group?: boolean;
  from?: string;
}

/** Each threshold: its own flag, else --min-duration, else its default. */
export function thresholdsFrom(opts: Pick<QueriesCliOptions, 'minDuration' | 'longXact' | 'idleInXact' | 'clientWait'>): QueryThresholds {
  const base = opts.minDuration !== undefined ? parseDuration(opts.minDuration, '--min-duration') : undefined;
  const pick = (flag: string, value: string | undefined, fallback: number) => (value !== undefined ? parseDuration(value, flag) : (base ?? fallback));
  return {
    activeMs: base ?? DEFAULT_QUERY_THRESHOLDS.activeMs,
    transactionMs: pick('--long-xact', opts.longXact, DEFAULT_QUERY_THRESHOLDS.transactionMs),
    idleInTransactionMs: pick('--idle-in-xact', opts.idleInXact, DEFAULT_QUERY_THRESHOLDS.idleInTransactionMs),
    clientWaitMs: pick('--client-wait', opts.clientWait, DEFAULT_QUERY_THRESHOLDS.clientWaitMs),
  };
}

export function queriesCommand(program: Command, ctx: CommandContext): void {
  const d = DEFAULT_QUERY_THRESHOLDS;
  const cmd = program
    .command('queries')
    .description('what runs or stays open too long: long queries, long transactions, idle in transaction, results the client never read')
    .option('--min-duration <duration>', `active queries running at least this long (default ${formatDuration(d.activeMs)}); also the default for the three thresholds below`)
    .option('--long-xact <duration>', `transactions open at least this long (default ${formatDuration(d.transactionMs)})`)
    .option('--idle-in-xact <duration>', `sessions idle in transaction at least this long (default ${formatDuration(d.idleInTransactionMs)})`)
    .option('--client-wait <duration>', `active sessions waiting on ClientRead/ClientWrite at least this long (default ${formatDuration(d.clientWaitMs)})`)
    .option('--group', 'group the sessions found by normalized statement (literals and $n replaced)');
  addFilterOptions(cmd);
  addFromOption(cmd);
  addConnectionOptions(cmd)
    .option('--json', 'one JSON document on stdout')
    .action(async (opts: QueriesCliOptions) => {
      ctx.json = Boolean(opts.json);
      const options: QueriesOptions = { thresholds: thresholdsFrom(opts), filter: filterFrom(opts), group: Boolean(opts.group) };
      let report: QueriesReport;
      if (opts.from !== undefined) {
        refuseServerWithFrom(opts);
        const { activity, server } = viewFacts(readFromFile(opts.from).facts, opts.from);
        report = queriesReport(activity, { can_read_all_stats: server.can_read_all_stats, role: server.current_user }, options);
      } else {
        const target = targetFrom(opts, ctx);
        refuseConsole(target, 'queries');
        report = await withReadProgress(ctx, target, 'pg_stat_activity', () => runQueries(target, sessionOptions(opts, ctx), options));
      }
      const warning = visibilityWarning(report.visibility, ctx.output.errStyle);
      if (warning) ctx.output.err(warning);
      ctx.output.out(opts.json ? renderJson(envelope('queries', report, ctx.version)) : renderQueries(report, ctx.output.style, ctx.output.columns));
      ctx.exitCode = exitCodeForSeverity(report.status);
    });
}
