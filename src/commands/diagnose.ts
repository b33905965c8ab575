import { closeSync } from 'node:fs';
import { hostname } from 'node:os';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type DiagnoseReport, diagnose } from '../core/diagnose.js';
import { requireValues } from '../core/connections.js';
import { UsageError } from '../core/errors.js';
import { type ExitCodeValue, exitCodeForSeverity } from '../core/exit-codes.js';
import { isConsoleTarget } from '../core/pgbouncer.js';
import { type FleetReport, fleetReport } from '../core/fleet.js';
import { parseDuration } from '../core/duration.js';
import { nowMs } from '../db/clock.js';
import { fleetTargets, parseConcurrency, runFleet } from './fleet.js';
import type { Target } from '../core/target.js';
import { type ConfigFile, formatDefault, resolveThresholds, THRESHOLD_DEFS, type ThresholdKey, type Thresholds } from '../core/thresholds.js';
import { type GatherDeps, gatherFacts } from '../db/diagnose.js';
import { resolveConnectionTarget } from '../db/target.js';
import { describeTarget } from '../core/target.js';
import { worst } from '../core/capacity.js';
import type { SessionOptions } from '../db/session.js';
import { envelope, renderJson } from '../render/json.js';
import { errorCode, FileProblem, type OpenedFile, openRegular, readCapped } from '../ui/files.js';
import { DEFAULT_TREND_OPTIONS, trendsNode } from '../core/diagnose/trends.js';
import { DIAGNOSE_FORMATS, type DiagnoseFormat } from './formats.js';
import { addFromOption, readFromFile, refuseServerWithFrom } from './from.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, sessionOptions, targetFrom, withReadProgress } from './context.js';

export interface DiagnoseOptions {
  target: Target;
  session: SessionOptions;
  thresholds: Thresholds;
  /** Where the thresholds came from, for the report. */
  config?: { file: string | null; environment: string | null };
}

export interface DiagnoseDeps extends GatherDeps {
  gather?: typeof gatherFacts;
}

export type DiagnoseResult = DiagnoseReport & { config: { file: string | null; environment: string | null } };

/**
 * Walks the runbook decision tree against the server: gathers the facts over one connection,
 * then decides. Never prints, never exits; a connection failure is the report's first finding
 * (unreachable: CRITICAL; dbdoctor's own credentials, database or TLS: UNKNOWN).
 */
export async function runDiagnose(options: DiagnoseOptions, deps: DiagnoseDeps = {}): Promise<DiagnoseResult> {
  const gather = deps.gather ?? gatherFacts;
  const facts = await gather(options.target, options.session, { thresholds: options.thresholds }, deps);
  return { ...diagnose(facts, options.thresholds), config: options.config ?? { file: null, environment: null } };
}

/** A config file is a few hundred bytes; a bigger one is a mistake (or /dev/zero behind a link). */
export const CONFIG_MAX_BYTES = 1024 * 1024;

const CONFIG_HINT = 'check --config, or leave it out to use ./dbdoctor.json or $XDG_CONFIG_HOME/dbdoctor/config.json';

/** The text of a config file: a regular file (a link to one is followed), at most 1 MB, UTF-8, a BOM allowed. Null when absent. */
function readConfigText(path: string): string | null {
  let f: OpenedFile | null;
  try {
    // Never blocks: a FIFO, a device or a directory is refused before it is opened.
    f = openRegular(path, { follow: true });
  } catch (err) {
    if (err instanceof FileProblem) throw new UsageError(`the config file ${path} is ${err.what}; nothing was read from it`, `a config file must be a regular file; ${CONFIG_HINT}`);
    throw err;
  }
  if (!f) return null;
  try {
    const bytes = readCapped(f, CONFIG_MAX_BYTES, 'larger than 1 MB');
    // fatal: invalid UTF-8 is refused, not read as U+FFFD; a leading BOM is dropped.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    if (err instanceof FileProblem) throw new UsageError(`the config file ${path} is ${err.what}; nothing was read from it`, `a config file holds a few thresholds; ${CONFIG_HINT}`);
    if (err instanceof TypeError) throw new UsageError(`the config file ${path} is not UTF-8 text`, 'save it as UTF-8 JSON');
    throw err;
  } finally {
    closeSync(f.fd);
  }
}

/**
 * The config file: `--config <file>`, else `./dbdoctor.json`, else
 * `$XDG_CONFIG_HOME/dbdoctor/config.json` (`~/.config/...`). JSON; see src/core/thresholds.ts.
 * Only a regular file is read: anything else at one of these paths (a FIFO, a device, a
 * directory, a dangling link) is a usage error, never skipped and never waited on.
 */
export function loadConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd: string = process.cwd()): ConfigFile | null {
  const read = (path: string, required: boolean): ConfigFile | null => {
    let text: string | null;
    try {
      text = readConfigText(path);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      const code = errorCode(err);
      if (!required && code === 'ENOTDIR') return null;
      throw new UsageError(`cannot read the config file ${path}: ${(err as Error).message}`, CONFIG_HINT);
    }
    if (text === null) {
      if (!required) return null;
      throw new UsageError(`cannot read the config file ${path}: no such file`, CONFIG_HINT);
    }
    try {
      return { path, doc: JSON.parse(text) as unknown };
    } catch (err) {
      throw new UsageError(`the config file ${path} is not valid JSON: ${(err as Error).message}`, 'it holds { "thresholds": { ... }, "environments": { "<name>": { "thresholds": { ... } } } }');
    }
  };
  if (explicit !== undefined) return read(resolve(cwd, explicit), true);
  const xdg = env.XDG_CONFIG_HOME?.startsWith('/') ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), '.config');
  for (const path of [join(cwd, 'dbdoctor.json'), join(xdg, 'dbdoctor', 'config.json')]) {
    const cfg = read(path, false);
    if (cfg) return cfg;
  }
  return null;
}

interface DiagnoseCliOptions extends ConnectionCliOptions {
  verbose?: boolean;
  format?: string;
  targets?: string;
  concurrency?: string;
  ttl?: string;
  pgbouncer?: string;
  pgbouncerInstances?: string;
  config?: string;
  environment?: string;
  from?: string;
  [flag: string]: unknown;
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/** diagnose pointed at PgBouncer's admin console: the pooler's own decisions (runbooks/pgbouncer.md). */
async function diagnosePgBouncer(ctx: CommandContext, target: Target, session: SessionOptions, format: DiagnoseFormat): Promise<ExitCodeValue> {
  const { runPgBouncer } = await import('./pools.js');
  const report = format === 'text' ? await withReadProgress(ctx, target, "PgBouncer's pools", () => runPgBouncer(target, session)) : await runPgBouncer(target, session);
  if (format === 'json') ctx.output.out(renderJson(envelope('pgbouncer', report, ctx.version)));
  else {
    const { renderPgBouncer, renderPgBouncerNagios } = await import('../render/pgbouncer.js');
    ctx.output.out(format === 'nagios' ? renderPgBouncerNagios(report) : renderPgBouncer(report, ctx.output.style));
  }
  return report.exit_code;
}

function pgbouncerInstances(value: string | undefined): number {
  if (value === undefined) return 1;
  const n = /^\s*\d{1,5}\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 10_000) {
    throw new UsageError(`invalid --pgbouncer-instances ${JSON.stringify(value)}`, 'the number of PgBouncer instances in front of the server (1 to 10000), e.g. --pgbouncer-instances 3');
  }
  return n;
}

/**
 * diagnose --pgbouncer: the server's diagnosis and the pooler's console, read at the same time
 * (one connection each), joined by server connection: which application's clients wait in which
 * pool, and which server sessions hold that pool's connections.
 */
async function diagnoseWithPooler(ctx: CommandContext, opts: DiagnoseCliOptions, options: DiagnoseOptions, format: DiagnoseFormat, instances: number): Promise<ExitCodeValue> {
  const { consoleTarget } = await import('./pools.js');
  const { readConsole } = await import('../db/pgbouncer.js');
  const { consoleConninfo, joinPooler } = await import('../core/pgbouncer.js');
  const given = opts.pgbouncer ?? '';
  const consoleT = consoleTarget(resolveConnectionTarget({ dbname: given }, ctx.env));
  let facts: Awaited<ReturnType<typeof gatherFacts>> | undefined;
  const gather: typeof gatherFacts = async (...args) => {
    facts = await gatherFacts(...args);
    return facts;
  };
  const both = () => Promise.all([runDiagnose(options, { gather }), readConsole(consoleT, options.session)]);
  const [report, consoleFacts] = format === 'text' ? await withReadProgress(ctx, options.target, "activity, locks, settings and PgBouncer's pools", both) : await both();
  const consoleName = describeTarget(consoleT);
  const joined = joinPooler(consoleFacts, consoleName, consoleConninfo(consoleT), facts?.activity?.rows ?? [], report.capacity?.ordinary_slots ?? null, instances);
  if (format === 'json') ctx.output.out(renderJson(envelope('diagnose', { ...report, pgbouncer: joined }, ctx.version)));
  else {
    const { renderDiagnose, renderNagios } = await import('../render/diagnose.js');
    const { renderPoolerJoin } = await import('../render/pgbouncer.js');
    ctx.output.out(format === 'nagios' ? renderNagios(report) : `${renderDiagnose(report, ctx.output.style, { verbose: Boolean(opts.verbose) })}\n${renderPoolerJoin(joined, ctx.output.style)}`);
  }
  return exitCodeForSeverity(worst(report.verdict, joined.verdict));
}

/** A fleet (or one target) in a monitoring engine's format, or as the fleet table and document. */
async function renderFleetAs(format: DiagnoseFormat, fleet: FleetReport, ctx: CommandContext, ttlS: number): Promise<string> {
  if (format === 'json') return renderJson(envelope('fleet', fleet, ctx.version));
  if (format === 'prometheus' || format === 'openmetrics') {
    const { exposition } = await import('../render/exposition.js');
    return exposition(fleet.targets, format);
  }
  if (format === 'icinga') {
    const { icingaLines } = await import('../render/exposition.js');
    return icingaLines(fleet.targets, hostname(), ttlS);
  }
  const { renderFleet, renderFleetNagios } = await import('../render/fleet.js');
  return format === 'nagios' ? renderFleetNagios(fleet) : renderFleet(fleet, ctx.output.style);
}

export function diagnoseCommand(program: Command, ctx: CommandContext): void {
  const cmd = addConnectionOptions(
    program
      .command('diagnose')
      .description('walk the runbook decision tree: what is wrong, how bad, the likely cause, the next command, the runbook')
      .addHelpText(
        'after',
        `
Thresholds can also be set in a JSON config file (--config, ./dbdoctor.json, or
$XDG_CONFIG_HOME/dbdoctor/config.json), flags winning:
  { "thresholds": { "idle_in_transaction": "1m" },
    "environments": { "batch": { "thresholds": { "long_query": "30m" } } } }

Examples:
  dbdoctor diagnose -h db1 -U monitor
  dbdoctor diagnose --json | jq '.report.findings[] | {id, severity, title}'
  dbdoctor diagnose --format nagios --idle-in-transaction 1m
`,
      ),
  )
    .option('--verbose', 'text: every finding in full (evidence, cause, every next step), the info findings, the holders table and the path through the tree')
    .option('--json', 'one JSON document on stdout (same as --format json)')
    .option('--format <format>', `output format: ${DIAGNOSE_FORMATS.join(', ')} (nagios: one check_postgres-style status line; prometheus and openmetrics: an exposition; icinga: process-check-result bodies)`)
    .option('--config <file>', 'JSON file with thresholds (default ./dbdoctor.json, then $XDG_CONFIG_HOME/dbdoctor/config.json)')
    .option('--environment <name>', 'use the thresholds of this environment in the config file (DBDOCTOR_ENV)')
    .option('--targets <file>', 'diagnose every target in this file (one a line: a URL, a conninfo string or service=name; @name first to name it), side by side')
    .option('--concurrency <n>', 'with --targets or --service a,b,c: how many targets at once (default 16)')
    .option('--ttl <duration>', 'icinga: how long the check result stays valid (default 5m)')
    .option('--pgbouncer <conninfo>', "also read this PgBouncer's console (a URL or conninfo string for its host and port) and join its pools with the server's sessions")
    .option('--pgbouncer-instances <n>', 'how many PgBouncer instances share the server, for the pool-size arithmetic (default 1)');
  addFromOption(cmd);
  for (const d of THRESHOLD_DEFS) {
    cmd.option(`${d.flag} <${d.kind === 'duration' ? 'duration' : d.kind === 'pct' ? 'percent' : 'n'}>`, `${d.help} (default ${formatDefault(d)})`);
  }
  cmd.action(async (opts: DiagnoseCliOptions) => {
    const format = (opts.json ? 'json' : (opts.format ?? 'text').toLowerCase()) as DiagnoseFormat;
    if (format === 'json') ctx.json = true;
    if (!DIAGNOSE_FORMATS.includes(format)) throw new UsageError(`unknown --format ${JSON.stringify(opts.format)}`, `use one of: ${DIAGNOSE_FORMATS.join(', ')}`);
    if (opts.json && opts.format && opts.format.toLowerCase() !== 'json') throw new UsageError('--json and --format disagree', 'give one of them');
    const flags: Partial<Record<ThresholdKey, string>> = {};
    for (const d of THRESHOLD_DEFS) {
      const v = opts[camel(d.key)];
      if (typeof v === 'string') flags[d.key] = v;
    }
    // --environment "$ENV" with ENV unset is refused, not read as "no environment" (DBDOCTOR_ENV, like libpq's variables, may be empty)
    if (opts.environment !== undefined) requireValues('--environment', [opts.environment]);
    if (opts.config !== undefined) requireValues('--config', [opts.config]);
    const environment = opts.environment ?? (ctx.env.DBDOCTOR_ENV || undefined) ?? null;
    const config = loadConfigFile(opts.config, ctx.env);
    const thresholds = resolveThresholds({ config, environment, flags });
    // checked before connecting, whether or not --pgbouncer is given
    const instances = pgbouncerInstances(opts.pgbouncerInstances);
    const concurrency = parseConcurrency(opts.concurrency);
    const ttlS = opts.ttl === undefined ? 300 : Math.max(1, Math.round(parseDuration(opts.ttl, '--ttl') / 1000));
    if (opts.from !== undefined) {
      refuseServerWithFrom(opts, { '--targets': opts.targets, '--pgbouncer': opts.pgbouncer, '--pgbouncer-instances': opts.pgbouncerInstances, '--concurrency': opts.concurrency });
      const { facts, recording } = readFromFile(opts.from);
      const started = nowMs();
      const extra = recording ? trendsNode(recording.samples, { ...DEFAULT_TREND_OPTIONS, window: recording.window }) : null;
      const report: DiagnoseResult = { ...diagnose(facts, thresholds, extra), config: { file: config?.path ?? null, environment } };
      if (format === 'json') ctx.output.out(renderJson(envelope('diagnose', report, ctx.version)));
      else if (format === 'prometheus' || format === 'openmetrics' || format === 'icinga') {
        ctx.output.out(await renderFleetAs(format, fleetReport([{ name: facts.target, ms: nowMs() - started, report }], 1, nowMs() - started), ctx, ttlS));
      } else {
        const { renderDiagnose, renderNagios } = await import('../render/diagnose.js');
        ctx.output.out(format === 'nagios' ? renderNagios(report) : renderDiagnose(report, ctx.output.style, { verbose: Boolean(opts.verbose) }));
      }
      ctx.exitCode = exitCodeForSeverity(report.verdict);
      return;
    }
    if (opts.targets !== undefined || opts.service?.includes(',')) {
      if (opts.targets !== undefined) requireValues('--targets', [opts.targets]);
      if (opts.host !== undefined || opts.port !== undefined || opts.dbname !== undefined || (opts.targets !== undefined && opts.service !== undefined) || opts.pgbouncer !== undefined) {
        throw new UsageError('--targets and --service a,b,c name the targets: -h, -p, -d and --pgbouncer do not go with them', 'put each target in the file (a URL, a conninfo string or service=name); -U and the timeouts apply to every target');
      }
      const targets = fleetTargets(opts.targets !== undefined ? { file: opts.targets } : { services: opts.service ?? '' }, { username: opts.username, connectTimeout: opts.connectTimeout }, ctx.env);
      const started = nowMs();
      const entries = await runFleet(targets, sessionOptions({ ...opts, password: false }, ctx), thresholds, concurrency);
      const fleet = fleetReport(entries, concurrency, nowMs() - started);
      ctx.output.out(await renderFleetAs(format, fleet, ctx, ttlS));
      ctx.exitCode = fleet.exit_code;
      return;
    }
    if (opts.pgbouncer !== undefined) requireValues('--pgbouncer', [opts.pgbouncer]);
    const target = targetFrom(opts, ctx);
    if (isConsoleTarget(target)) {
      ctx.exitCode = await diagnosePgBouncer(ctx, target, sessionOptions(opts, ctx), format);
      return;
    }
    if (opts.pgbouncer !== undefined) {
      ctx.exitCode = await diagnoseWithPooler(ctx, opts, { target, session: sessionOptions(opts, ctx), thresholds, config: { file: config?.path ?? null, environment } }, format, instances);
      return;
    }
    const read = () => runDiagnose({ target, session: sessionOptions(opts, ctx), thresholds, config: { file: config?.path ?? null, environment } });
    const started = nowMs();
    const report = format === 'text' ? await withReadProgress(ctx, target, 'activity, locks and settings', read) : await read();
    if (format === 'json') ctx.output.out(renderJson(envelope('diagnose', report, ctx.version)));
    else if (format === 'prometheus' || format === 'openmetrics' || format === 'icinga') {
      ctx.output.out(await renderFleetAs(format, fleetReport([{ name: describeTarget(target), ms: nowMs() - started, report }], 1, nowMs() - started), ctx, ttlS));
    } else {
      // The human and nagios renderers (cli-table3 and friends) load only when they are used.
      const { renderDiagnose, renderNagios } = await import('../render/diagnose.js');
      ctx.output.out(format === 'nagios' ? renderNagios(report) : renderDiagnose(report, ctx.output.style, { verbose: Boolean(opts.verbose) }));
    }
    ctx.exitCode = exitCodeForSeverity(report.verdict);
  });
}
