/**
 * Progress for slow steps (connecting, gathering, starting a server): a one-line spinner on
 * stderr. It is shown only when stderr is a TTY and the command is not printing JSON; otherwise
 * every call is a no-op, so callers never have to ask. Nothing ever goes to stdout. The line is
 * erased when the step ends, so it never mixes with what the command prints next.
 */
import { oneLine } from '../render/sanitize.js';
import type { Output } from './output.js';

export interface Progress {
  /** Starts (or retitles) the spinner with this step. */
  start(text: string): void;
  /** Changes the text of the running step. */
  update(text: string): void;
  /** Ends the step and erases the line. */
  stop(): void;
  /** Whether anything is shown at all (stderr is a TTY and no --json). */
  readonly enabled: boolean;
}

export interface ProgressOptions {
  /** Frame interval in ms. */
  intervalMs?: number;
  /** Width to cut the text to (default: the terminal's). */
  columns?: number;
}

/** The spinners drawing now: a question asked meanwhile (a password prompt) holds them. */
const drawing = new Set<{ hold(): void; resume(): void }>();

/** Holds every spinner and erases its line while a question is asked on the terminal; returns the resume. */
export function holdProgress(): () => void {
  const held = [...drawing];
  for (const p of held) p.hold();
  return () => {
    for (const p of held) p.resume();
  };
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const NO_PROGRESS: Progress = { start() {}, update() {}, stop() {}, enabled: false };

/** A spinner on stderr, or a no-op when stderr is not a terminal or JSON is being printed. */
export function createProgress(output: Pick<Output, 'stderrIsTTY' | 'errStyle' | 'status'>, json: boolean, opts: ProgressOptions = {}): Progress {
  if (!output.stderrIsTTY || json) return NO_PROGRESS;
  const interval = opts.intervalMs ?? 80;
  const width = Math.max(20, (opts.columns ?? process.stderr.columns ?? 80) - 3);
  let text = '';
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  let held = false;
  const handle = {
    hold() {
      held = true;
      output.status(null);
    },
    resume() {
      held = false;
    },
  };
  const draw = () => {
    if (held) return;
    const glyph = output.errStyle.cyan(FRAMES[frame % FRAMES.length]!);
    frame++;
    output.status(`${glyph} ${oneLine(text, width)}`);
  };
  return {
    enabled: true,
    start(t) {
      text = t;
      if (!timer) {
        timer = setInterval(draw, interval);
        // A spinner must never keep the process alive.
        timer.unref();
        drawing.add(handle);
      }
      draw();
    },
    update(t) {
      text = t;
      if (timer) draw();
    },
    stop() {
      if (!timer) return;
      clearInterval(timer);
      timer = undefined;
      drawing.delete(handle);
      if (!held) output.status(null);
      held = false;
    },
  };
}

/** Runs `fn` with the spinner showing `text`, and always erases it afterwards. */
export async function withProgress<T>(progress: Progress, text: string, fn: () => Promise<T>): Promise<T> {
  progress.start(text);
  try {
    return await fn();
  } finally {
    progress.stop();
  }
}
