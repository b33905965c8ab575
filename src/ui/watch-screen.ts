/**
 * The terminal side of `dbdoctor watch`'s live view: the alternate screen (cursor hidden), keys
 * read raw from stdin, the size followed on resize, and the terminal ALWAYS given back (normal
 * screen, cursor, echo and line mode) when the view closes: on q, on Ctrl-C (a key in raw mode),
 * on SIGTERM or SIGHUP, when the connection is lost or anything throws (the caller closes in a
 * finally), and, last, when the process exits. Frames go through the one writer (src/ui/output.ts).
 */
import type { Output } from './output.js';

export interface LiveScreen {
  draw(frame: string): void;
  size(): { cols: number; rows: number };
  /** Gives the terminal back; idempotent. */
  close(): void;
}

export interface LiveScreenHandlers {
  onKey(key: string): void;
  onResize(): void;
  /** SIGTERM or SIGHUP arrived: the terminal is already given back. */
  onSignal(signal: 'SIGTERM' | 'SIGHUP'): void;
}

export function openLiveScreen(output: Output, h: LiveScreenHandlers): LiveScreen {
  const stdin = process.stdin;
  let closed = false;
  const onData = (chunk: Buffer | string) => {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    // arrow keys and the like arrive as one escape sequence: one key each
    for (const key of text.match(/\u001b\[[0-9;]*[A-Za-z~]|\u001b.|[\s\S]/gu) ?? []) h.onKey(key);
  };
  const onResize = () => h.onResize();
  const restore = () => {
    if (closed) return;
    closed = true;
    stdin.off('data', onData);
    process.stdout.off('resize', onResize);
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onHup);
    process.off('exit', restore);
    try {
      if (stdin.isTTY) stdin.setRawMode(false);
    } catch {
      // the terminal is gone (a hang-up): nothing to give back
    }
    stdin.pause();
    output.control?.('leave');
  };
  const onTerm = () => {
    restore();
    h.onSignal('SIGTERM');
  };
  const onHup = () => {
    restore();
    h.onSignal('SIGHUP');
  };
  output.control?.('enter');
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.resume();
  process.stdout.on('resize', onResize);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);
  // the last resort: whatever ends the process gives the terminal back first
  process.on('exit', restore);
  return {
    draw(frame) {
      if (!closed) output.frame?.(frame);
    },
    size() {
      return { cols: process.stdout.columns || output.columns || 80, rows: process.stdout.rows || 24 };
    },
    close: restore,
  };
}
