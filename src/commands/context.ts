import type { Command } from 'commander';
import { MAX_TIMEOUT_MS, parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import type { ExitCodeValue } from '../core/exit-codes.js';
import type { ConnectionFlags, Target } from '../core/target.js';
import { resolveConnectionTarget } from '../db/target.js';
import type { SessionOptions } from '../db/session.js';
import type { Output } from '../ui/output.js';
import { createProgress, holdProgress, withProgress } from '../ui/progress.js';
import { inquirerMenu } from '../ui/prompts.js';
import { isConsoleTarget, THROUGH_POOLER_NOTE } from '../core/pgbouncer.js';
import { commandLinePasswordWarning, describeTarget } from '../core/target.js';

/** What every command gets from cli.ts: where to write, the environment, Ctrl-C, and its exit code. */
export interface CommandContext {
  output: Output;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  version: string;
  /** Set by the command; cli.ts turns it into the process exit status. */
  exitCode: ExitCodeValue;
  /** Set by commands that print JSON, so a failure is reported as a JSON document too. */
  json: boolean;
  /** The command line as typed (after `node dbdoctor`), when there is one. */
  argv?: readonly string[];
  /** Warnings already given in this run (shared by the steps the guide runs), to give each once. */
  notices?: Set<string>;
  /**
   * Opts in to SIGTERM and SIGHUP stopping the command as a first Ctrl-C does (`signal` aborts;
   * the same signal again ends the process at once); returns the function that opts out. For a
   * command that must finish what it started (terminate: the outcome lines of a batch whose
   * intents are on record). Others keep Node's default, or their own handlers.
   */
  stopOnSignals?: () => () => void;
}

export interface ConnectionCliOptions extends ConnectionFlags {
  statementTimeout?: string;
  json?: boolean;
  /** psql's -W (true: ask before connecting) and -w (false: never ask). */
  password?: boolean;
}

/** psql's connection options. `--help` is the help flag, so `-h` is the host, as in psql. */
export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('-h, --host <host>', 'server host name, IP address, or socket directory (PGHOST)')
    .option('-p, --port <port>', 'server port (PGPORT, default 5432)')
    .option('-U, --username <user>', 'role to connect as (PGUSER)')
    .option('-d, --dbname <dbname>', 'database name, postgres:// URL, or conninfo string "host=... dbname=..." (PGDATABASE)')
    .option('--service <name>', 'service from pg_service.conf (PGSERVICE)')
    .option('-W, --password', 'ask for the password before connecting (as psql -W)')
    .option('-w, --no-password', 'never ask for a password (as psql -w)')
    .option('--connect-timeout <duration>', 'give up connecting after this long (PGCONNECT_TIMEOUT; default 5s)')
    .option('--statement-timeout <duration>', "server-side statement_timeout for dbdoctor's own queries (default 15s)");
}

export function targetFrom(opts: ConnectionCliOptions, ctx: CommandContext): Target {
  const target = resolveConnectionTarget(
    {
      host: opts.host,
      port: opts.port,
      username: opts.username,
      dbname: opts.dbname,
      service: opts.service,
      connectTimeout: opts.connectTimeout,
    },
    ctx.env,
  );
  // a password on the command line: said once per run, on stderr (never the password itself)
  const warning = commandLinePasswordWarning(opts.dbname, ctx.argv ?? []);
  if (warning && !ctx.notices?.has('password-on-command-line')) {
    ctx.notices?.add('password-on-command-line');
    ctx.output.err(ctx.output.errStyle.yellow(`warning: ${warning}`));
  }
  return target;
}

/** Passwords typed in this run, per role: a command that opens a second session does not ask again. */
const typed = new WeakMap<CommandContext, Map<string, string>>();

/**
 * The password prompt, as psql's: on the terminal (stdin and stderr), masked, never echoed; only
 * when one is there and -w was not given.
 */
function passwordPrompt(opts: ConnectionCliOptions, ctx: CommandContext): Pick<SessionOptions, 'askPassword' | 'askPasswordFirst'> {
  const terminal = ctx.output.stdinIsTTY && ctx.output.stderrIsTTY;
  if (opts.password === true && !terminal) {
    throw new UsageError('-W asks for the password on a terminal, and there is none', 'give the password in PGPASSWORD or ~/.pgpass');
  }
  if (opts.password === false || !terminal) return {};
  const askPassword = async (user: string) => {
    const known = typed.get(ctx) ?? new Map<string, string>();
    typed.set(ctx, known);
    const before = known.get(user);
    if (before !== undefined) return before;
    const resume = holdProgress();
    try {
      const answer = await inquirerMenu({ signal: ctx.signal }).password(`Password for user ${user}:`);
      known.set(user, answer);
      return answer;
    } finally {
      resume();
    }
  };
  return { askPassword, ...(opts.password === true ? { askPasswordFirst: true } : {}) };
}

/** Said once per run, on stderr: what an inspection sees through a pooler is the server side of the pool. */
function poolerNote(ctx: CommandContext): () => void {
  return () => {
    if (ctx.notices?.has('through-pooler')) return;
    ctx.notices?.add('through-pooler');
    ctx.output.err(ctx.output.errStyle.yellow(`note: ${THROUGH_POOLER_NOTE}`));
  };
}

/**
 * PgBouncer's admin console (-d pgbouncer) is not a database: the commands that read a server
 * say what it is and what reads it instead.
 */
export function refuseConsole(target: Target, command: string): void {
  if (!isConsoleTarget(target)) return;
  throw new UsageError(`-d pgbouncer is PgBouncer's admin console, not a PostgreSQL database: ${command} reads a server`, 'for the pooler run dbdoctor pools (or dbdoctor diagnose) with the same options; for the server, give its own host, port and database');
}

export function sessionOptions(opts: ConnectionCliOptions, ctx: CommandContext): SessionOptions {
  const out: SessionOptions = { signal: ctx.signal, onThroughPooler: poolerNote(ctx), ...passwordPrompt(opts, ctx) };
  if (opts.statementTimeout !== undefined) {
    const ms = parseDuration(opts.statementTimeout, '--statement-timeout');
    if (ms < 100) throw new UsageError('--statement-timeout must be at least 100ms', 'for example --statement-timeout 15s');
    // PostgreSQL's statement_timeout (and Node's timers) stop at 2^31-1 ms
    if (ms > MAX_TIMEOUT_MS) throw new UsageError('--statement-timeout must be at most 24d', 'for example --statement-timeout 15s');
    out.statementTimeoutMs = ms;
  }
  return out;
}

/**
 * Runs a command's read step with a spinner on stderr ("connecting to ..., reading ..."): shown
 * only when stderr is a terminal and no JSON is printed, and always erased before the report.
 */
export function withReadProgress<T>(ctx: CommandContext, target: Target, what: string, fn: () => Promise<T>): Promise<T> {
  return withProgress(createProgress(ctx.output, ctx.json), `connecting to ${describeTarget(target)}, reading ${what}`, fn);
}
