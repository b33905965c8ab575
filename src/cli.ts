/**
 * Builds the commander tree, and is the ONLY place that turns errors into exit codes. Heavy
 * modules (pg, inquirer, execa) are imported inside the actions that need them, and each command's
 * module is loaded only when that command runs (all of them only for the root help, the guide and
 * the demo), so start-up stays fast when the server is on fire.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import type { CommandContext } from './commands/context.js';
import { COMMAND_NAMES, type CommandName, forMachinesOnly } from './commands/formats.js';
import { redactSecrets } from './core/conninfo.js';
import { editDistance } from './core/edit-distance.js';
import { DbdoctorError, InterruptedError } from './core/errors.js';
import { EXIT_CODE_TABLE, ExitCode, type ExitCodeValue } from './core/exit-codes.js';
import { envelope, renderJson } from './render/json.js';
import { packageFile } from './package-files.js';
import { helpWidth, wrapHelp } from './render/help.js';
import { oneLine } from './render/sanitize.js';
import { loadWidths } from './render/width.js';
import { type Output, processOutput } from './ui/output.js';

const pkg = JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string };

function exitCodeHelp(): string {
  const rows = EXIT_CODE_TABLE.map(([code, text]) => `  ${String(code).padStart(3)}  ${text}`);
  return `\nExit codes:\n${rows.join('\n')}\n`;
}

const EXAMPLES = `
Examples:
  dbdoctor                                   on a terminal: the guided on-call walk
  dbdoctor demo                              a throwaway PostgreSQL with a real incident
  dbdoctor check -h db1 -U postgres          can I connect, and what can my role do?
  dbdoctor diagnose -d postgres://user@db1/app   what is wrong, and what to run next
  dbdoctor diagnose --json | jq .report.verdict
  dbdoctor terminate --state "idle in transaction" --app worker --older-than 5m
`;

type ProgramFactory = (ctx: CommandContext) => Command;
type Register = (program: Command, ctx: CommandContext, factory: ProgramFactory) => void;

/** The module that declares each command (COMMAND_NAMES gives their help order); loaded on demand. */
const LOADERS: Readonly<Record<CommandName, () => Promise<Register>>> = {
  check: async () => (await import('./commands/check.js')).checkCommand,
  connections: async () => (await import('./commands/connections.js')).connectionsCommand,
  locks: async () => (await import('./commands/locks.js')).locksCommand,
  queries: async () => (await import('./commands/queries.js')).queriesCommand,
  pools: async () => (await import('./commands/pools.js')).poolsCommand,
  exporter: async () => (await import('./commands/exporter.js')).exporterCommand,
  terminate: async () => (await import('./commands/terminate.js')).terminateCommand,
  diagnose: async () => (await import('./commands/diagnose.js')).diagnoseCommand,
  watch: async () => (await import('./commands/watch.js')).watchCommand,
  snapshot: async () => (await import('./commands/snapshot.js')).snapshotCommand,
  runbook: async () => (await import('./commands/runbook.js')).runbookCommand,
  guide: async () => (await import('./commands/guide.js')).guideCommand,
  demo: async () => (await import('./commands/demo.js')).demoCommand,
};

/** Commands that run other commands in-process, and so need the whole tree (watch: its `t` hands over to terminate). */
const NEEDS_ALL = new Set(['guide', 'demo', 'watch']);

/** The subcommand named in argv (root options take no values), if it is one of ours. */
function requestedCommand(argv: string[]): CommandName | undefined {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  return COMMAND_NAMES.find((name) => name === first);
}

function assemble(ctx: CommandContext, registers: Register[]): Command {
  const program = new Command()
    .name('dbdoctor')
    .description('Incident response for PostgreSQL connection trouble: pool exhaustion, leaks, idle in transaction, blocking locks, long queries.')
    .version(pkg.version, '-V, --version', 'print the version')
    .helpOption('--help', 'show help (-h is the host, as in psql)')
    .addOption(new Option('--debug', 'print stack traces of internal errors'))
    .showSuggestionAfterError(true)
    // Help at the terminal's width: commander wraps descriptions at helpWidth (wrapping even beside
    // a wide term, as diagnose's thresholds have), and wrapHelp the rest (examples, exit codes).
    .configureHelp({ minWidthToWrap: 20 })
    .configureOutput({
      writeOut: (s) => ctx.output.out(wrapHelp(s.replace(/\n$/, ''), helpWidth(ctx.output.columns))),
      writeErr: (s) => ctx.output.err(wrapHelp(s.replace(/\n$/, ''), helpWidth(ctx.output.columns))),
      getOutHelpWidth: () => helpWidth(ctx.output.columns),
      getErrHelpWidth: () => helpWidth(ctx.output.columns),
      // commander quotes the word it refused: a URL or conninfo given as a command or a flag may hold a password
      outputError: (s, write) => write(`dbdoctor: ${redactSecrets(s.replace(/^error: /, '').trim())}\nhint: see dbdoctor --help\n`),
    })
    .exitOverride()
    .addHelpText('after', EXAMPLES + exitCodeHelp());

  const factory: ProgramFactory = (c) => assemble(c, registers);
  for (const register of registers) register(program, ctx, factory);

  for (const sub of program.commands) {
    sub.helpOption('--help', 'show help');
    sub.exitOverride();
    // "Did you mean" names only a flag this command has, and only one a typo away (commander's
    // own guess also looks at the parent's flags and accepts far ones: `locks --list` got --host).
    sub.configureOutput({
      ...sub.configureOutput(),
      outputError: (s, write) => write(`dbdoctor: ${redactSecrets(withOwnSuggestion(s, sub).replace(/^error: /, '').trim())}\nhint: see dbdoctor ${sub.name()} --help\n`),
    });
    sub.addHelpText('after', exitCodeHelp());
  }
  return program;
}

/**
 * The flags of `cmd` close to `flag`: a typo away (one edit for short names, two for names of 8
 * or more letters), or the start of one (--all -> --all-databases). Best first.
 */
export function similarFlags(flag: string, cmd: Command): string[] {
  const name = flag.replace(/^--?/, '').replace(/=.*$/, '');
  const longs = [...cmd.options.map((o) => o.long).filter((l): l is string => Boolean(l)), '--help'];
  const scored = longs
    .map((l) => {
      const n = l.slice(2);
      const d = editDistance(name, n);
      const near = d <= (name.length >= 8 ? 2 : 1) || (name.length >= 3 && n.startsWith(name));
      return { l, d, near };
    })
    .filter((x) => x.near)
    .sort((a, b) => a.d - b.d || a.l.localeCompare(b.l));
  return scored.map((x) => x.l);
}

/** commander's error text with its "(Did you mean ...?)" replaced by ours for an unknown option. */
function withOwnSuggestion(message: string, cmd: Command): string {
  const m = /unknown option '([^']+)'/.exec(message);
  if (!m) return message;
  const base = message.replace(/\n?\(Did you mean [^)]*\)/, '');
  const similar = similarFlags(m[1]!, cmd).slice(0, 2);
  return similar.length ? `${base.trimEnd()}\n(Did you mean ${similar.join(' or ')}?)` : base;
}

/**
 * The commander tree for this argv: only the command it names (so its start-up loads nothing
 * else), or every command for the root help, unknown commands (suggestions) and the guided walk.
 */
export async function buildProgram(ctx: CommandContext, argv: string[] = []): Promise<Command> {
  const wanted = requestedCommand(argv);
  const names = wanted && !NEEDS_ALL.has(wanted) ? [wanted] : COMMAND_NAMES;
  const registers = await Promise.all(names.map((name) => LOADERS[name]()));
  return assemble(ctx, registers);
}

function reportError(err: unknown, ctx: CommandContext, debug: boolean): ExitCodeValue {
  const { output } = ctx;
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.OK;
    return ExitCode.USAGE;
  }
  if (err instanceof DbdoctorError) {
    if (ctx.json && !(err instanceof InterruptedError)) {
      output.out(
        renderJson(
          envelope('error', { status: err.exitCode === ExitCode.CRITICAL ? 'critical' : err.exitCode === ExitCode.USAGE ? 'usage' : 'unknown', cause: err.cause_id, message: redactSecrets(err.message), hint: err.hint ?? null, exit_code: err.exitCode }, pkg.version),
        ),
      );
    }
    output.err(`dbdoctor: ${oneLine(redactSecrets(err.message))}`);
    if (err.hint) output.err(`hint: ${oneLine(redactSecrets(err.hint))}`);
    return err.exitCode;
  }
  output.err(`dbdoctor: internal error: ${oneLine(redactSecrets(err instanceof Error ? err.message : String(err)))}`);
  output.err(debug && err instanceof Error && err.stack ? redactSecrets(err.stack) : 'hint: this is a bug; run again with --debug for the stack trace and report it');
  return ExitCode.INTERNAL;
}

/**
 * Parses argv and runs the command against this output and environment; returns the exit code
 * without touching the process's (the tests run the bad-input table through here, in-process).
 */
export async function run(argv: string[], output: Output, env: NodeJS.ProcessEnv, hooks: RunHooks = {}): Promise<ExitCodeValue> {
  const controller = new AbortController();
  const ctx: CommandContext = { output, env, signal: controller.signal, version: pkg.version, exitCode: ExitCode.OK, json: false, argv: argv.slice(2), notices: new Set() };
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    controller.abort();
    if (interrupts > 1) process.exit(ExitCode.INTERRUPTED);
  };
  process.on('SIGINT', onSigint);
  // SIGTERM and SIGHUP, for a command that opts in (CommandContext.stopOnSignals): the first as a
  // first Ctrl-C; the same signal again has Node's default (the handlers are gone, so it ends the
  // process, or goes to whoever else listens: the demo's teardown, a prompt's).
  let stoppedBy: NodeJS.Signals | null = null;
  const offStop = () => {
    process.off('SIGTERM', onStop);
    process.off('SIGHUP', onStop);
  };
  function onStop(sig: NodeJS.Signals): void {
    if (stoppedBy === null) {
      stoppedBy = sig;
      hooks.stopped?.(sig);
      controller.abort();
      return;
    }
    offStop();
    process.kill(process.pid, sig);
  }
  ctx.stopOnSignals = () => {
    process.on('SIGTERM', onStop);
    process.on('SIGHUP', onStop);
    return offStop;
  };
  const debug = argv.includes('--debug');
  let code: ExitCodeValue;
  try {
    // A machine's run skips the display-width tables: 25-35 ms of start-up on the bench's host.
    if (!forMachinesOnly(argv.slice(2))) await loadWidths();
    if (argv.length <= 2 && !(output.stdinIsTTY && output.stdoutIsTTY && output.stderrIsTTY)) {
      // No subcommand: the guided walk needs a terminal; without one, help and the usage code.
      (await buildProgram(ctx, argv)).outputHelp({ error: true });
      code = ExitCode.USAGE;
    } else {
      // No subcommand on a terminal: the guided walk.
      const args = argv.length <= 2 ? [...argv, 'guide'] : argv;
      await (await buildProgram(ctx, args)).parseAsync(args);
      code = controller.signal.aborted ? ExitCode.INTERRUPTED : ctx.exitCode;
    }
  } catch (err) {
    code = controller.signal.aborted ? reportError(new InterruptedError(), ctx, debug) : reportError(err, ctx, debug);
  } finally {
    process.off('SIGINT', onSigint);
    offStop();
  }
  return code;
}

export interface RunHooks {
  /** A SIGTERM or SIGHUP stopped the command (one that opted in). */
  stopped?: (signal: NodeJS.Signals) => void;
}

/** The entry point: runs argv with the process's streams and environment, and sets the exit status. */
export async function main(argv: string[], output: Output = processOutput()): Promise<ExitCodeValue> {
  let hungUp = false;
  const code = await run(argv, output, process.env, { stopped: (sig) => (hungUp = sig === 'SIGHUP') });
  process.exitCode = code;
  // The terminal is gone: end by the signal, now that the run has cleaned up. Exiting normally
  // would have Node give the dead terminal its modes back, which aborts the process (SIGABRT).
  if (hungUp) process.kill(process.pid, 'SIGHUP');
  return code;
}
