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
import { renderTerminate, terminateNotices } from '../render/terminate.js';
import type { CommandContext } from './context.js';
import { runTerminate, terminateCommand, terminateOptionsFrom } from './terminate.js';

/** Threshold values by diagnose's config key (`idle_in_transaction: '2s'`), as its flags take them. */
export type ThresholdFlags = Readonly<Record<string, string>>;

export interface Diagnosis {
  severity: Severity;
  findings: GuideFinding[];
  /** diagnose's own report, as its --json carries it. */
  report: unknown;
  render(style: ChalkInstance): string;
}

export interface Cleanup {
  /** The terminate arguments, as recommended (without "dbdoctor"). */
  argv: string[];
  /** terminate's own report, as its --json carries it. */
  report: unknown;
  exitCode: ExitCodeValue;
  /** Sessions terminated (or cancelled) by this run. */
  done: number;
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
      done: report.counts?.done ?? 0,
      render: (style) => [renderTerminate(report, style), ...terminateNotices(report).map((l) => style.dim(l))].join('\n'),
    };
  };
}

export async function loadDoctor(ctx: CommandContext): Promise<Doctor> {
  const missing = async (): Promise<never> => {
    throw new Error('diagnose is not part of this build yet');
  };
  return { diagnose: missing, terminate: terminateDoctor(ctx) };
}
