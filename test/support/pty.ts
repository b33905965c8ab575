/**
 * Runs the built binary in a real pseudo-terminal, through util-linux `script`, driven by the test:
 * stdin, stdout and stderr of dbdoctor are the pty (so isTTY holds, inquirer runs in raw mode and
 * Ctrl-C is a key), and the test writes keys and reads the screen. Every wait is bounded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { BIN, cleanEnv } from './cli.js';
import { scaled } from './timing.js';

export const KEY = {
  up: '\u001b[A',
  down: '\u001b[B',
  enter: '\r',
  space: ' ',
  ctrlC: '\u0003',
} as const;

/** Removes terminal escape sequences and carriage returns, so the screen reads as text. */
export function stripAnsi(text: string): string {
  return text
    // A spinner's line, erased ("\r" + erase line) before the next thing is printed: gone from the screen.
    .replace(/[^\n]*\r\u001b\[2K/g, '')
    .replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, '')
    .replace(/\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)/g, '')
    .replace(/\u001b[()][A-Za-z0-9]/g, '')
    .replace(/\u001b[=>78]/g, '')
    .replace(/\r/g, '');
}

function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Reads one rendering of an inquirer select menu (the text from its message to its key help) and
 * returns how many rows the cursor must move to reach the first choice matching `choice`
 * (negative: up), or throws with the menu when no choice matches.
 */
export function menuMoves(screen: string, choice: RegExp): number {
  const lines = screen.split('\n');
  const rows: string[] = [];
  for (const line of lines.slice(1)) {
    if (line.trim() === '' || /navigate/.test(line)) break;
    if (/^\s*─+\s*$/.test(line)) continue;
    rows.push(line);
  }
  const cursor = rows.findIndex((l) => l.startsWith('❯'));
  const target = rows.findIndex((l) => choice.test(l));
  if (cursor < 0 || target < 0) throw new Error(`no choice ${choice} (cursor ${cursor}) in the menu:\n${screen}`);
  return target - cursor;
}

export interface PtyRun {
  child: ChildProcess;
  /** Everything the terminal showed so far, escape sequences removed. */
  text(): string;
  /** Every byte dbdoctor wrote to the terminal so far, as written (decoded as UTF-8). */
  raw(): string;
  /** Waits until `pattern` appears after the last thing waited for; returns the text up to it. */
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
  /** Types keys, after a short pause so the prompt is listening. */
  type(keys: string, pauseMs?: number): Promise<void>;
  /**
   * Waits for the select menu whose message matches `message`, moves to the choice matching
   * `choice` and presses Enter. Returns the menu as it was first drawn.
   */
  choose(message: RegExp, choice: RegExp, ms?: number): Promise<string>;
  /** Resolves with the exit code of dbdoctor (script passes it on with -e). */
  exit: Promise<number>;
  kill(): void;
}

export function runInPty(args: string[], opts: { env?: Record<string, string>; cols?: number; rows?: number; cwd?: string } = {}): PtyRun {
  const cols = opts.cols ?? 100;
  const rows = opts.rows ?? 40;
  const command = `stty cols ${cols} rows ${rows}; exec node ${[BIN, ...args].map(shellQuote).join(' ')}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: cleanEnv({ TERM: 'xterm-256color', ...opts.env }),
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  // Bytes, decoded only when read: a chunk may end inside a UTF-8 character.
  const chunks: Buffer[] = [];
  let consumed = 0;
  child.stdout!.on('data', (d: Buffer) => chunks.push(d));
  child.stderr!.on('data', (d: Buffer) => chunks.push(d));
  const raw = () => Buffer.concat(chunks).toString('utf8');
  const exit = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : -1)));
  });
  let exited = false;
  void exit.then(() => {
    exited = true;
  });
  const text = () => stripAnsi(raw());
  return {
    child,
    text,
    raw,
    async waitFor(pattern, ms = 30_000) {
      const deadline = Date.now() + scaled(ms);
      for (;;) {
        const all = text();
        const rest = all.slice(consumed);
        const m = pattern.exec(rest);
        if (m) {
          consumed += m.index + m[0].length;
          return rest.slice(0, m.index + m[0].length);
        }
        if (exited || Date.now() > deadline) {
          throw new Error(`${exited ? 'dbdoctor exited' : 'timed out'} waiting for ${pattern}; the screen after the last match:\n${rest.slice(-3000)}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async type(keys, pauseMs = 150) {
      await new Promise((r) => setTimeout(r, pauseMs));
      child.stdin!.write(keys);
    },
    async choose(message, choice, ms) {
      const drawn = await this.waitFor(new RegExp(`${message.source}[^\\n]*\\n[\\s\\S]*?navigate`), ms);
      const menu = drawn.slice(drawn.search(message));
      const moves = menuMoves(menu, choice);
      for (let i = 0; i < Math.abs(moves); i++) await this.type(moves > 0 ? KEY.down : KEY.up, 60);
      await this.type(KEY.enter);
      // Consume the redraws up to the answered line, so the next wait starts after this menu.
      await this.waitFor(new RegExp(`✔ ${message.source}`), ms);
      return menu;
    },
    exit,
    kill() {
      if (!exited) child.kill('SIGKILL');
    },
  };
}
