/** The real terminal writer (src/ui/output.ts) over buffers: what a command wrote, as the terminal got it. */
import { spawnSync } from 'node:child_process';
import { createOutput, type Output } from '../../src/ui/output.js';

export interface CapturedOutput {
  output: Output;
  /** Each write to stdout, as written (sanitized by the writer). */
  out: string[];
  err: string[];
}

export function captureOutput(opts: { tty?: boolean; stdinTTY?: boolean; colour?: boolean; columns?: number } = {}): CapturedOutput {
  const out: string[] = [];
  const err: string[] = [];
  const tty = opts.tty ?? false;
  const output = createOutput({
    stdout: (chunk) => out.push(chunk),
    stderr: (chunk) => err.push(chunk),
    stdoutIsTTY: tty,
    stderrIsTTY: tty,
    stdinIsTTY: () => opts.stdinTTY ?? tty,
    columns: opts.columns ?? 80,
    env: opts.colour ? { FORCE_COLOR: '1' } : { NO_COLOR: '1' },
  });
  return { output, out, err };
}

/**
 * The words a POSIX shell reads from a printed command (`dbdoctor ...`): the command is given to a
 * real `sh`, which prints each word it received; nothing is run.
 */
export function shellWords(command: string): string[] {
  const r = spawnSync('sh', ['-c', `f() { printf '%s\\0' "$@"; }; f ${command}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sh could not read ${JSON.stringify(command)}: ${r.stderr}`);
  return r.stdout.split('\0').slice(0, -1);
}
