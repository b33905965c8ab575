/**
 * The one terminal writer. stdout is the product, stderr is for progress, warnings and errors.
 * Every byte dbdoctor writes to either goes through here, and is sanitized here (terminalText in
 * src/render/sanitize.ts), whoever built the text: no escape sequence but dbdoctor's own colour
 * codes, no control character but the line break, no hidden character unescaped. Callers cannot
 * forget: there is no other way to write. Colour only on a TTY and never with NO_COLOR
 * (FORCE_COLOR forces it, for tests).
 */
import { isatty } from 'node:tty';
import { Chalk, type ChalkInstance } from 'chalk';
import { terminalText } from '../render/sanitize.js';

/**
 * The only terminal controls dbdoctor writes besides colour, for the live screen of `watch`: each
 * op is a fixed sequence from this table (never text from elsewhere), written to stdout only when
 * it is a terminal.
 */
export const SCREEN_CONTROLS = {
  /** The alternate screen on, cursor hidden, cleared. */
  enter: '\u001b[?1049h\u001b[?25l\u001b[H\u001b[2J',
  /** Cursor home and the screen cleared, before a frame. */
  frame: '\u001b[H\u001b[2J',
  /** The cursor shown and the normal screen back, attributes reset. */
  leave: '\u001b[0m\u001b[?25h\u001b[?1049l',
} as const;

export type ScreenControl = keyof typeof SCREEN_CONTROLS;

export interface Output {
  /** A block of text on stdout (a line break is written after it when it has none). */
  out(text: string): void;
  /** A frame of the live screen: the text as out() sanitizes it, after `frame` control, with no added line break. */
  frame?(text: string): void;
  /** One of dbdoctor's own screen controls (SCREEN_CONTROLS), on a terminal only. */
  control?(op: ScreenControl): void;
  /** A block of text on stderr. */
  err(text: string): void;
  /** The one status line on stderr (a spinner): drawn over itself; null erases it. */
  status(line: string | null): void;
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  readonly stdinIsTTY: boolean;
  /** Colours for stdout. */
  readonly style: ChalkInstance;
  /** Colours for stderr. */
  readonly errStyle: ChalkInstance;
  readonly columns: number;
}

/** Where the bytes go, and what is known of the terminal. */
export interface OutputSinks {
  stdout: (chunk: string) => void;
  stderr: (chunk: string) => void;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  /** Read only when asked, and from the descriptor: making process.stdin has a cost (a stream, and
   * its module: ~4 ms when stdin is a file or /dev/null), and only a prompt reads from it. */
  stdinIsTTY: () => boolean;
  columns: number;
  env: Readonly<Record<string, string | undefined>>;
}

function colourLevel(isTTY: boolean, env: OutputSinks['env']): 0 | 1 {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return 1;
  if (!isTTY || env.TERM === 'dumb') return 0;
  return 1;
}

const CLEAR_LINE = '\r\u001b[2K';

/** The writer over any pair of sinks (the process's streams, or a test's buffers). */
export function createOutput(sinks: OutputSinks): Output {
  const outColour = colourLevel(sinks.stdoutIsTTY, sinks.env);
  const errColour = colourLevel(sinks.stderrIsTTY, sinks.env);
  const block = (text: string) => (text.endsWith('\n') ? text : `${text}\n`);
  return {
    // A block and its line break in one write, so nothing another writer sends can come between
    // them; after a long text (a JSON document) in a write of its own, since joined to it, it
    // would copy the whole text.
    out: (text) => {
      const safe = terminalText(text, outColour > 0);
      if (safe.endsWith('\n') || safe.length < WRITE_PIECE) {
        sinks.stdout(block(safe));
      } else {
        sinks.stdout(safe);
        sinks.stdout('\n');
      }
    },
    frame: (text) => {
      if (sinks.stdoutIsTTY) sinks.stdout(SCREEN_CONTROLS.frame + terminalText(text, outColour > 0).replace(/\n/g, '\r\n'));
    },
    control: (op) => {
      if (sinks.stdoutIsTTY) sinks.stdout(SCREEN_CONTROLS[op]);
    },
    err: (text) => sinks.stderr(terminalText(block(text), errColour > 0)),
    status: (line) => sinks.stderr(line === null ? CLEAR_LINE : `${CLEAR_LINE}${terminalText(line.replace(/\n/g, ' '), errColour > 0)}`),
    stdoutIsTTY: sinks.stdoutIsTTY,
    stderrIsTTY: sinks.stderrIsTTY,
    get stdinIsTTY() {
      return sinks.stdinIsTTY();
    },
    style: new Chalk({ level: outColour }),
    errStyle: new Chalk({ level: errColour }),
    columns: sinks.columns,
  };
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

/** The most of a text one write to a stream takes (UTF-16 units). */
export const WRITE_PIECE = 65_536;

/**
 * A long text in pieces of at most `size` units (an integer, 2 or more), a surrogate pair never
 * split, joined exactly the text. Each write to a stream encodes its text into a buffer of its own:
 * written whole to a file or a terminal (synchronous writes), a 1.7 MB document (`locks --json` at
 * 5,000 sessions) had a 1.7 MB copy beside it; in pieces, 64 KiB at a time (pieces of a flat
 * string are views of it, not copies). Into a pipe whose reader lags, Node queues what the pipe
 * does not take at once and encodes it in one buffer all the same.
 */
export function pieces(text: string, size = WRITE_PIECE): string[] {
  if (!Number.isInteger(size) || size < 2) throw new RangeError(`pieces of ${size} units: the size must be an integer, 2 or more`);
  if (text.length <= size) return [text];
  const out: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + size);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

export function processOutput(env: NodeJS.ProcessEnv = process.env): Output {
  guardPipes();
  return createOutput({
    stdout: (chunk) => {
      for (const piece of pieces(chunk)) process.stdout.write(piece);
    },
    stderr: (chunk) => void process.stderr.write(chunk),
    stdoutIsTTY: Boolean(process.stdout.isTTY),
    stderrIsTTY: Boolean(process.stderr.isTTY),
    stdinIsTTY: () => isatty(0),
    columns: process.stdout.columns || Number(env.COLUMNS) || 80,
    env,
  });
}
