import { closeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type DiagnoseReport, diagnose } from '../core/diagnose.js';
import { requireValues } from '../core/connections.js';
import { UsageError } from '../core/errors.js';
import { exitCodeForSeverity } from '../core/exit-codes.js';
import type { Target } from '../core/target.js';
import { type ConfigFile, formatDefault, resolveThresholds, THRESHOLD_DEFS, type ThresholdKey, type Thresholds } from '../core/thresholds.js';
import { type GatherDeps, gatherFacts } from '../db/diagnose.js';
import type { SessionOptions } from '../db/session.js';
import { envelope, renderJson } from '../render/json.js';
import { errorCode, FileProblem, type OpenedFile, openRegular, readCapped } from '../ui/files.js';
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

const FORMATS = ['text', 'json', 'nagios'] as const;
type Format = (typeof FORMATS)[number];

interface DiagnoseCliOptions extends ConnectionCliOptions {
  verbose?: boolean;
  format?: string;
  config?: string;
  environment?: string;
  [flag: string]: unknown;
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

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
    .option('--format <format>', `output format: ${FORMATS.join(', ')} (nagios: one check_postgres-style status line)`)
    .option('--config <file>', 'JSON file with thresholds (default ./dbdoctor.json, then $XDG_CONFIG_HOME/dbdoctor/config.json)')
    .option('--environment <name>', 'use the thresholds of this environment in the config file (DBDOCTOR_ENV)');
  for (const d of THRESHOLD_DEFS) {
    cmd.option(`${d.flag} <${d.kind === 'duration' ? 'duration' : d.kind === 'pct' ? 'percent' : 'n'}>`, `${d.help} (default ${formatDefault(d)})`);
  }
  cmd.action(async (opts: DiagnoseCliOptions) => {
    const format = (opts.json ? 'json' : (opts.format ?? 'text').toLowerCase()) as Format;
    if (format === 'json') ctx.json = true;
    if (!FORMATS.includes(format)) throw new UsageError(`unknown --format ${JSON.stringify(opts.format)}`, `use one of: ${FORMATS.join(', ')}`);
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
    const target = targetFrom(opts, ctx);
    const read = () => runDiagnose({ target, session: sessionOptions(opts, ctx), thresholds, config: { file: config?.path ?? null, environment } });
    const report = format === 'text' ? await withReadProgress(ctx, target, 'activity, locks and settings', read) : await read();
    if (format === 'json') ctx.output.out(renderJson(envelope('diagnose', report, ctx.version)));
    else {
      // The human and nagios renderers (cli-table3 and friends) load only when they are used.
      const { renderDiagnose, renderNagios } = await import('../render/diagnose.js');
      ctx.output.out(format === 'nagios' ? renderNagios(report) : renderDiagnose(report, ctx.output.style, { verbose: Boolean(opts.verbose) }));
    }
    ctx.exitCode = exitCodeForSeverity(report.verdict);
  });
}
