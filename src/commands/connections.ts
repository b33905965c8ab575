import type { Command } from 'commander';
import {
  type ConnectionsOptions,
  type ConnectionsReport,
  connectionsReport,
  DEFAULT_GROUP_BY,
  GROUP_KEYS,
  parseGroupBy,
  type SessionFilter,
  compileFilter,
} from '../core/connections.js';
import type { ActivitySnapshot } from '../core/activity.js';
import { parseDuration } from '../core/duration.js';
import { exitCodeForSeverity } from '../core/exit-codes.js';
import type { Target } from '../core/target.js';
import { type SessionOptions, withSession } from '../db/session.js';
import { activityRead } from '../db/sql/activity.js';
import { readTogether } from '../db/sql/read.js';
import { type ServerProfileFacts, serverProfileRead } from '../db/sql/server-facts.js';
import { renderConnections, visibilityWarning } from '../render/connections.js';
import { envelope, renderJson } from '../render/json.js';
import type { DiagnoseFacts } from '../core/diagnose.js';
import { cutQueries, viewFacts } from '../core/snapshot.js';
import { addFromOption, readFromFile, refuseServerWithFrom } from './from.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, sessionOptions, targetFrom, withReadProgress, refuseConsole } from './context.js';

/** How much of each statement `connections` reads (and keeps from a snapshot): more for --list. */
const queryChars = (options: ConnectionsOptions): number => (options.list ? 1000 : 200);

/**
 * "Who holds the connections?" Reads the server's limits and one activity snapshot on one
 * connection, then summarizes (src/core/connections.ts). Never prints, never exits.
 */
export async function runConnections(target: Target, opts: SessionOptions, options: ConnectionsOptions = {}): Promise<ConnectionsReport> {
  // Validate the filters before connecting: a bad flag costs no connection slot.
  compileFilter(options.filter ?? {});
  return withSession(target, opts, async (session) => {
    // One round trip, one pg_stat_activity snapshot for the capacity line and the sessions (who
    // blocks whom is not read: the report shows neither blockers nor waits).
    const [{ server }, snapshot] = await readTogether<[ServerProfileFacts, ActivitySnapshot]>(
      session,
      serverProfileRead(session),
      activityRead(session, { queryChars: queryChars(options), blockers: false }),
    );
    return connectionsReport(snapshot, server, options);
  });
}

export interface FilterCliOptions {
  app?: string[];
  user?: string[];
  db?: string[];
  state?: string[];
  client?: string[];
  minAge?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** --app, --user, --db, --state, --client (each repeatable: any of them matches) and --min-age. */
export function addFilterOptions(cmd: Command): Command {
  return cmd
    .option('--app <glob>', 'only sessions whose application_name matches this glob (* and ?); repeatable', collect)
    .option('--user <role>', 'only sessions of this role; repeatable', collect)
    .option('--db <name>', 'only sessions in this database; repeatable', collect)
    .option('--state <state>', 'only sessions in this state (active, idle, "idle in transaction", ..., hidden); repeatable', collect)
    .option('--client <addr>', 'only sessions from this address or CIDR range (10.0.0.0/8, ::1, local); repeatable', collect)
    .option('--min-age <duration>', 'only sessions in their current state at least this long (e.g. 5m)');
}

export function filterFrom(opts: FilterCliOptions): SessionFilter {
  const f: SessionFilter = {};
  if (opts.app?.length) f.app = opts.app;
  if (opts.user?.length) f.user = opts.user;
  if (opts.db?.length) f.db = opts.db;
  if (opts.state?.length) f.state = opts.state;
  if (opts.client?.length) f.client = opts.client;
  if (opts.minAge !== undefined) f.minAgeMs = parseDuration(opts.minAge, '--min-age');
  // Throws a UsageError for a bad state or client now, before any connection.
  compileFilter(f);
  return f;
}

interface ConnectionsCliOptions extends ConnectionCliOptions, FilterCliOptions {
  by?: string;
  list?: boolean;
  from?: string;
}

/** The report from a snapshot's facts, with the query texts cut as the live read cuts them. */
export function connectionsFromFacts(facts: DiagnoseFacts, source: string, options: ConnectionsOptions): ConnectionsReport {
  const { activity, server } = viewFacts(facts, source);
  return connectionsReport(cutQueries(activity, queryChars(options)), server, options);
}

export function connectionsCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('connections')
    .description('who holds the connections: by state and application (or user, database, client), how old, how close to the limit')
    .option('--by <keys>', `group by any of ${GROUP_KEYS.join(', ')}, comma-separated (default ${DEFAULT_GROUP_BY.join(',')})`)
    .option('--list', 'one row per session (pid, app, user, db, client, state, ages, wait, query)');
  addFilterOptions(cmd);
  addFromOption(cmd);
  addConnectionOptions(cmd)
    .option('--json', 'one JSON document on stdout')
    .action(async (opts: ConnectionsCliOptions) => {
      ctx.json = Boolean(opts.json);
      const options: ConnectionsOptions = { filter: filterFrom(opts), by: opts.by !== undefined ? parseGroupBy(opts.by) : DEFAULT_GROUP_BY, list: Boolean(opts.list) };
      let report: ConnectionsReport;
      if (opts.from !== undefined) {
        refuseServerWithFrom(opts);
        report = connectionsFromFacts(readFromFile(opts.from).facts, opts.from, options);
      } else {
        const target = targetFrom(opts, ctx);
        refuseConsole(target, 'connections');
        report = await withReadProgress(ctx, target, 'pg_stat_activity', () => runConnections(target, sessionOptions(opts, ctx), options));
      }
      const warning = visibilityWarning(report.visibility, ctx.output.errStyle);
      if (warning) ctx.output.err(warning);
      ctx.output.out(opts.json ? renderJson(envelope('connections', report, ctx.version)) : renderConnections(report, ctx.output.style, ctx.output.columns));
      ctx.exitCode = exitCodeForSeverity(report.status);
    });
}
