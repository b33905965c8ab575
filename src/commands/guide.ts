/**
 * The guided on-call walk: `dbdoctor` with no subcommand on a terminal, `dbdoctor guide`, and
 * `dbdoctor demo` on a terminal. It connects (asking where, when neither the options nor the
 * environment say), diagnoses, shows the verdict and the findings, and offers the next steps the
 * decision tree gives for each finding: inspect (connections, locks, queries), clean up (the
 * recommended `terminate`, through that command's own plan and confirmation), read the runbook
 * section, diagnose again, quit. It loops until quit. Ctrl-C at any prompt exits 130.
 *
 * Every step runs the real dbdoctor command in-process (a fresh commander tree from cli.ts's
 * factory, the same output, environment and Ctrl-C signal), so what the walk does is exactly what
 * the command printed in the menu does.
 */
import { CommanderError, type Command } from 'commander';
import { redactSecrets } from '../core/conninfo.js';
import { DbdoctorError, InterruptedError, UsageError } from '../core/errors.js';
import { ExitCode, type ExitCodeValue } from '../core/exit-codes.js';
import {
  actionableFindings,
  CONNECTING_COMMANDS,
  connectionArgs,
  findingActions,
  flagsFromAnswer,
  type GuideAction,
  type GuideFinding,
  type TargetFlags,
  targetGiven,
} from '../core/guide.js';
import { describeTarget, type Target } from '../core/target.js';
import { ConnectError, openSession, type SessionOptions } from '../db/session.js';
import { oneLine } from '../render/sanitize.js';
import { actionLabel, findingLabel, renderFindingHeader } from '../render/guide.js';
import { inquirerMenu, type Menu, type MenuChoice } from '../ui/prompts.js';
import type { Output } from '../ui/output.js';
import { createProgress, type Progress } from '../ui/progress.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, sessionOptions, targetFrom } from './context.js';
import { type Diagnosis, type Doctor, loadDoctor, type ThresholdFlags } from './doctor.js';

/** cli.ts's buildProgram: a fresh commander tree for each step the walk runs. */
export type ProgramFactory = (ctx: CommandContext) => Command;

export interface GuideSessionOptions {
  target: Target;
  doctor: Doctor;
  progress: Progress;
  /** Threshold flags for diagnose (the demo lowers some). */
  thresholds?: ThresholdFlags;
  /** Flags passed on to every connecting step besides the target (e.g. --statement-timeout). */
  extraArgs?: string[];
  /** Flags added to every terminate step (the demo keeps its audit log in its own directory). */
  terminateArgs?: string[];
  sessionOptions?: SessionOptions;
  intro?: string;
  /** The prompts; default inquirer on the terminal. */
  menu?: Menu;
}

/**
 * Runs one dbdoctor command in-process; resolves its exit code. Errors are reported, not thrown
 * (Ctrl-C is). A spinner names the step until the step prints its first line (before any of its
 * questions: terminate shows its plan first).
 */
function subcommandRunner(ctx: CommandContext, factory: ProgramFactory, progress: Progress) {
  return async (argv: string[], label: string | null): Promise<ExitCodeValue> => {
    // No spinner for steps that do not connect: `runbook` may hand the terminal to a pager.
    if (label) progress.start(`running ${label}`);
    const quiet = (write: (text: string) => void) => (text: string) => {
      progress.stop();
      write(text);
    };
    const output: Output = { ...ctx.output, out: quiet((t) => ctx.output.out(t)), err: quiet((t) => ctx.output.err(t)) };
    const sub: CommandContext = { ...ctx, output, exitCode: ExitCode.OK, json: false };
    try {
      await factory(sub).parseAsync(['node', 'dbdoctor', ...argv]);
      return sub.exitCode;
    } catch (err) {
      progress.stop();
      if (ctx.signal.aborted || err instanceof InterruptedError) throw new InterruptedError();
      // commander has already printed its own message (a usage error in a pasted command).
      if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
      if (err instanceof DbdoctorError) {
        ctx.output.err(`dbdoctor: ${oneLine(redactSecrets(err.message))}`);
        if (err.hint) ctx.output.err(`hint: ${oneLine(redactSecrets(err.hint))}`);
        return err.exitCode;
      }
      throw err;
    } finally {
      progress.stop();
    }
  };
}

const DIAGNOSE = 'diagnose';
const QUIT = 'quit';
const BACK = 'back';

/** The walk itself, against a target that is known to work. Returns when the user quits. */
export async function runGuideSession(ctx: CommandContext, factory: ProgramFactory, opts: GuideSessionOptions): Promise<void> {
  const { output } = ctx;
  const style = output.style;
  const menu = opts.menu ?? inquirerMenu({ signal: ctx.signal });
  const runSub = subcommandRunner(ctx, factory, opts.progress);
  const available = new Set(factory({ ...ctx, exitCode: ExitCode.OK, json: false }).commands.map((c) => c.name()));
  const connArgs = [...connectionArgs(opts.target), ...(opts.extraArgs ?? [])];
  const sessionOpts: SessionOptions = opts.sessionOptions ?? { signal: ctx.signal };
  const width = Math.max(40, Math.min(output.columns, 100) - 14);

  if (opts.intro) output.out(`${style.dim(opts.intro)}\n`);

  const diagnose = async (): Promise<Diagnosis | null> => {
    opts.progress.start(`diagnosing ${describeTarget(opts.target)}`);
    let d: Diagnosis;
    try {
      d = await opts.doctor.diagnose(opts.target, sessionOpts, opts.thresholds);
    } catch (err) {
      opts.progress.stop();
      if (ctx.signal.aborted || err instanceof InterruptedError) throw new InterruptedError();
      if (!(err instanceof DbdoctorError)) throw err;
      output.err(`dbdoctor: ${oneLine(redactSecrets(err.message))}`);
      if (err.hint) output.err(`hint: ${oneLine(redactSecrets(err.hint))}`);
      return null;
    }
    opts.progress.stop();
    // The walk lists the findings in its menu: above it, the verdict (so it stays on the first screen).
    output.out(d.render(style, { brief: true }));
    return d;
  };

  const runAction = async (a: GuideAction): Promise<ExitCodeValue> => {
    const connecting = CONNECTING_COMMANDS.has(a.argv[0] ?? '');
    const argv = connecting ? [...a.argv, ...connArgs] : [...a.argv];
    if (a.kind === 'terminate') argv.push(...(opts.terminateArgs ?? []));
    output.out(`\n${style.bold(`$ ${a.command}`)}`);
    const code = await runSub(argv, connecting ? a.command : null);
    output.out('');
    return code;
  };

  /** One finding: its next steps, until the user goes back, diagnoses again or quits. */
  const walkFinding = async (f: GuideFinding): Promise<typeof DIAGNOSE | typeof QUIT | typeof BACK> => {
    const actions = findingActions(f, available);
    output.out(`\n${renderFindingHeader(f, style, output.columns)}`);
    let cleanedUp = false;
    for (;;) {
      // Each command whole (what will run matters more than one line per choice; the menu wraps it).
      const choices: Array<MenuChoice<string> | 'separator'> = actions.map((a, i) => ({ ...actionLabel(a), value: `a${i}` }));
      if (choices.length > 0) choices.push('separator');
      choices.push(
        { name: 'Diagnose again (see the effect)', value: DIAGNOSE },
        { name: 'Back to the findings', value: BACK },
        { name: 'Quit', value: QUIT },
      );
      // "? Next step for: " takes 17 columns of the line.
      const pick = await menu.select(`Next step for: ${oneLine(f.title, Math.max(20, Math.min(output.columns, 100) - 19))}`, choices, cleanedUp ? { default: DIAGNOSE } : {});
      if (pick === DIAGNOSE || pick === BACK || pick === QUIT) return pick;
      const action = actions[Number(pick.slice(1))];
      if (!action) continue;
      await runAction(action);
      if (action.kind === 'terminate') cleanedUp = true;
    }
  };

  let diagnosis = await diagnose();
  for (;;) {
    const findings = diagnosis ? actionableFindings(diagnosis.findings) : [];
    if (diagnosis && findings.length === 0) output.out(style.dim('Nothing to walk through: no finding needs attention.'));
    const choices: Array<MenuChoice<string> | 'separator'> = findings.map((f, i) => ({ name: findingLabel(f, style, width), value: `f${i}` }));
    if (choices.length > 0) choices.push('separator');
    choices.push({ name: 'Diagnose again', value: DIAGNOSE }, { name: 'Quit', value: QUIT });
    const pick = await menu.select(findings.length > 0 ? 'Pick a finding to see its next steps' : 'What next?', choices);
    if (pick === QUIT) return;
    if (pick === DIAGNOSE) {
      diagnosis = await diagnose();
      continue;
    }
    const f = findings[Number(pick.slice(1))];
    if (!f) continue;
    const next = await walkFinding(f);
    if (next === QUIT) return;
    if (next === DIAGNOSE) diagnosis = await diagnose();
  }
}

// ---------------------------------------------------------------------------------------------
// Connecting: from the options and environment, or by asking.

async function askTarget(menu: Menu, ctx: CommandContext, opts: ConnectionCliOptions): Promise<ConnectionCliOptions> {
  ctx.output.out(ctx.output.style.dim('No server given (no -h/-d/--service, no PGHOST/PGDATABASE/DATABASE_URL): where should dbdoctor connect?'));
  const answer = await menu.input('Server (host, host:port, postgres:// URL, or "host=... dbname=...")', {
    default: 'localhost',
    validate: (v) => (v.trim() === '' ? 'type a host name, a URL or a conninfo string' : true),
  });
  const flags: TargetFlags = flagsFromAnswer(answer);
  const next: ConnectionCliOptions = { ...opts, ...flags };
  if (flags.dbname === undefined) {
    const fallback = targetFrom(next, ctx);
    next.username = await menu.input('Role to connect as', { default: fallback.user });
    next.dbname = await menu.input('Database', { default: next.username || fallback.dbname });
  }
  return next;
}

/**
 * A target that connects: tries it (one session, closed at once), asks for a password when the
 * server wants one, and offers to try again or elsewhere when the server cannot be reached. When
 * the user quits there, the exit code `check` would give for that failure.
 */
async function connectInteractively(ctx: CommandContext, menu: Menu, progress: Progress, opts: ConnectionCliOptions): Promise<Target | ExitCodeValue> {
  let cli = targetGiven(opts, ctx.env) ? opts : await askTarget(menu, ctx, opts);
  let target = targetFrom(cli, ctx);
  // The walk asks for a password itself (after saying why, and again when it was wrong), and keeps
  // it in the target for the steps it runs: not the commands' own prompt.
  const { askPassword: _own, askPasswordFirst: _first, ...sessionOpts } = sessionOptions(cli, ctx);
  for (let attempt = 0; attempt < 20; attempt++) {
    progress.start(`connecting to ${describeTarget(target)}`);
    try {
      const s = await openSession(target, sessionOpts);
      await s.close();
      progress.stop();
      return target;
    } catch (err) {
      progress.stop();
      if (ctx.signal.aborted || err instanceof InterruptedError) throw new InterruptedError();
      if (!(err instanceof ConnectError)) throw err;
      const f = err.failure;
      ctx.output.err(`dbdoctor: ${oneLine(f.message)}`);
      ctx.output.err(`hint: ${oneLine(f.hint)}`);
      if ((f.cause === 'no_password' || f.cause === 'auth_failed') && attempt < 3) {
        const password = await menu.password(`Password for role "${oneLine(target.user)}"`);
        target = { ...target, password };
        continue;
      }
      const pick = await menu.select('Could not connect. What now?', [
        { name: 'Try again', value: 'again' },
        { name: 'Connect somewhere else', value: 'elsewhere' },
        { name: 'Quit', value: QUIT },
      ]);
      // The cause and hint are on the screen already; leave with the exit code check would give.
      if (pick === QUIT) return f.exit_code;
      if (pick === 'elsewhere') {
        cli = await askTarget(menu, ctx, {});
        target = targetFrom(cli, ctx);
      }
    }
  }
  throw new DbdoctorError('gave up connecting after 20 attempts', { exitCode: ExitCode.UNKNOWN, hint: 'run: dbdoctor check' });
}

export function guideCommand(program: Command, ctx: CommandContext, factory: ProgramFactory): void {
  addConnectionOptions(
    program
      .command('guide')
      .description('the guided on-call walk (also `dbdoctor` alone on a terminal): diagnose, then inspect, clean up, read the runbook, diagnose again'),
  ).action(async (opts: ConnectionCliOptions) => {
    const { output } = ctx;
    if (!output.stdinIsTTY || !output.stderrIsTTY) {
      throw new UsageError('the guided walk needs a terminal (its questions read stdin and are asked on stderr)', 'for a report without prompts run: dbdoctor diagnose');
    }
    const progress = createProgress(output, false);
    const menu = inquirerMenu({ signal: ctx.signal });
    const doctor = await loadDoctor(ctx);
    const target = await connectInteractively(ctx, menu, progress, opts);
    if (typeof target === 'number') {
      ctx.exitCode = target;
      return;
    }
    const extraArgs = opts.statementTimeout !== undefined ? ['--statement-timeout', opts.statementTimeout] : [];
    await runGuideSession(ctx, factory, { target, doctor, progress, menu, extraArgs, sessionOptions: sessionOptions(opts, ctx) });
    ctx.exitCode = ExitCode.OK;
  });
}
