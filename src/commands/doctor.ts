/**
 * What the guided walk and the demo need of `diagnose` and `terminate`, adapted in one place from
 * their programmatic twins (runDiagnose, runTerminate) and renderers, so the walk and the demo
 * depend on a small, stable shape.
 *
 * A recommended clean-up arrives as text (`dbdoctor terminate --state "idle in transaction" --app
 * files-api --older-than 2s`). Its flags are read by terminate's own commander declaration (the
 * action swapped for one that only captures the options), then turned into options by terminate's
 * own `terminateOptionsFrom`, so the demo runs exactly what the finding printed.
 */
import type { ChalkInstance } from 'chalk';
import { Command } from 'commander';
import type { ExitCodeValue, Severity } from '../core/exit-codes.js';
import type { GuideFinding } from '../core/guide.js';
import type { Target } from '../core/target.js';
import type { SessionOptions } from '../db/session.js';
import { type ThresholdKey, resolveThresholds } from '../core/thresholds.js';
import { renderDiagnose } from '../render/diagnose.js';
import { renderTerminate, terminateNotices } from '../render/terminate.js';
import type { CommandContext } from './context.js';
import { loadConfigFile, runDiagnose } from './diagnose.js';
import { runTerminate, terminateCommand, terminateOptionsFrom } from './terminate.js';

/** Threshold values by diagnose's config key (`idle_in_transaction: '2s'`), as its flags take them. */
export type ThresholdFlags = Readonly<Record<string, string>>;

export interface Diagnosis {
  severity: Severity;
  findings: GuideFinding[];
  /** diagnose's own report, as its --json carries it. */
  report: unknown;
  /** diagnose's text; `brief`: the verdict and where only (the guide lists the findings in its menu). */
  render(style: ChalkInstance, opts?: { brief?: boolean }): string;
}

export interface Cleanup {
  /** The terminate arguments, as recommended (without "dbdoctor"). */
  argv: string[];
  /** terminate's own report, as its --json carries it. */
  report: unknown;
  exitCode: ExitCodeValue;
  /** Sessions terminated, and queries cancelled (the session kept), by this run. */
  terminated: number;
  cancelled: number;
  /** Pids whose session this run ended. */
  ended: number[];
  render(style: ChalkInstance): string;
}

export interface CleanupOptions {
  /** Where the audit lines go (the demo keeps them in its temporary directory). */
  auditLog?: string;
  lockFile?: string;
}

export interface Doctor {
  diagnose(target: Target, opts: SessionOptions, thresholds?: ThresholdFlags): Promise<Diagnosis>;
  /** Runs a recommended terminate without prompting (as `--yes`): the demo's clean-up. */
  terminate(target: Target, opts: SessionOptions, argv: string[], cleanup?: CleanupOptions): Promise<Cleanup>;
}

type TerminateFlags = Parameters<typeof terminateOptionsFrom>[0];

/** Reads terminate's flags with terminate's own declaration, without running it. */
export async function parseTerminateArgs(ctx: CommandContext, argv: string[]): Promise<TerminateFlags> {
  const program = new Command().exitOverride().configureOutput({
    writeOut: (s) => ctx.output.out(s.replace(/\n$/, '')),
    writeErr: (s) => ctx.output.err(s.replace(/\n$/, '')),
  });
  terminateCommand(program, ctx);
  const cmd = program.commands.find((c) => c.name() === 'terminate')!;
  cmd.exitOverride();
  let captured: TerminateFlags | undefined;
  cmd.action((opts: TerminateFlags) => {
    captured = opts;
  });
  const rest = argv[0] === 'terminate' ? argv.slice(1) : argv;
  await program.parseAsync(['node', 'dbdoctor', 'terminate', ...rest]);
  return captured!;
}

export function terminateDoctor(ctx: CommandContext): Doctor['terminate'] {
  return async (target, opts, argv, cleanup = {}) => {
    const flags = await parseTerminateArgs(ctx, argv);
    const options = terminateOptionsFrom({ ...flags, yes: true, json: false }, ctx.env, target, opts);
    if (cleanup.auditLog) options.auditLog = cleanup.auditLog;
    if (cleanup.lockFile) options.lockFile = cleanup.lockFile;
    const report = await runTerminate(options, { prompter: null, ...(opts.signal ? { signal: opts.signal } : {}), version: ctx.version });
    return {
      argv,
      report,
      exitCode: report.exit_code,
      terminated: report.counts?.terminated ?? 0,
      cancelled: report.counts?.cancelled ?? 0,
      ended: report.results.filter((r) => r.outcome === 'terminated').map((r) => r.pid),
      render: (style) => [renderTerminate(report, style), ...terminateNotices(report).map((l) => style.dim(l))].join('\n'),
    };
  };
}

/**
 * diagnose as the walk uses it. Given threshold flags (the demo), exactly those over the defaults;
 * otherwise the thresholds `dbdoctor diagnose` would use here (config file, DBDOCTOR_ENV).
 */
export function diagnoseDoctor(ctx: CommandContext): Doctor['diagnose'] {
  return async (target, opts, thresholdFlags) => {
    const environment = thresholdFlags ? null : ctx.env.DBDOCTOR_ENV || null;
    const config = thresholdFlags ? null : loadConfigFile(undefined, ctx.env);
    const thresholds = resolveThresholds({ config, environment, flags: (thresholdFlags ?? {}) as Partial<Record<ThresholdKey, string>> });
    const report = await runDiagnose({ target, session: opts, thresholds, config: { file: config?.path ?? null, environment } });
    return {
      severity: report.verdict,
      findings: report.findings.map((f) => ({
        id: f.id,
        severity: f.severity,
        title: f.title,
        cause: f.cause,
        next: f.next.map((n) => ({ text: n.text, command: n.command, argv: n.argv })),
        runbook: f.runbook.includes('#') ? f.runbook.slice(f.runbook.indexOf('#') + 1) : null,
      })),
      report,
      render: (style, o) => renderDiagnose(report, style, { brief: Boolean(o?.brief) }),
    };
  };
}

export async function loadDoctor(ctx: CommandContext): Promise<Doctor> {
  return { diagnose: diagnoseDoctor(ctx), terminate: terminateDoctor(ctx) };
}
