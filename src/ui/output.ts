/**
 * Where dbdoctor writes: stdout is the product, stderr is for progress, warnings and errors.
 * Colour only on a TTY and never with NO_COLOR (FORCE_COLOR forces it, for tests).
 */
import { Chalk, type ChalkInstance } from 'chalk';

export interface Output {
  out(text: string): void;
  err(text: string): void;
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  readonly stdinIsTTY: boolean;
  /** Colours for stdout. */
  readonly style: ChalkInstance;
  /** Colours for stderr. */
  readonly errStyle: ChalkInstance;
  readonly columns: number;
}

function colourLevel(isTTY: boolean, env: NodeJS.ProcessEnv): 0 | 1 | 2 | 3 {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return 1;
  if (!isTTY || env.TERM === 'dumb') return 0;
  return 1;
}

let pipeGuarded = false;

/**
 * A reader that goes away (`dbdoctor --help | head`) closes the pipe: that is not a failure of
 * dbdoctor, so EPIPE on stdout or stderr is ignored instead of crashing with a stack trace.
 */
function guardPipes(): void {
  if (pipeGuarded) return;
  pipeGuarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
}

export function processOutput(env: NodeJS.ProcessEnv = process.env): Output {
  guardPipes();
  const stdoutIsTTY = Boolean(process.stdout.isTTY);
  const stderrIsTTY = Boolean(process.stderr.isTTY);
  return {
    out: (text) => {
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    err: (text) => {
      process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    stdoutIsTTY,
    stderrIsTTY,
    // Read only when asked: process.stdin builds the stdin stream (~1 ms), which only the commands
    // that may prompt need.
    get stdinIsTTY() {
      return Boolean(process.stdin.isTTY);
    },
    style: new Chalk({ level: colourLevel(stdoutIsTTY, env) }),
    errStyle: new Chalk({ level: colourLevel(stderrIsTTY, env) }),
    columns: process.stdout.columns || Number(env.COLUMNS) || 80,
  };
}
