/**
 * Assertions the reliability suite shares: a stack trace from Node (not any line that happens to
 * start with "at"), terminal-inert text, and every string inside a JSON document.
 */
import type { CliResult } from './cli.js';

/** A V8 stack frame: "    at fn (file:///x.js:1:2)", "    at file:///x.js:1:2", "    at node:internal/...". */
const FRAME = /^\s+at (?:.+ \()?(?:file:\/\/|node:|\/|[A-Za-z]:\\)[^\s)]*:\d+:\d+\)?\s*$/m;

export function expectNoStack(r: CliResult): void {
  const all = `${r.stdout}\n${r.stderr}`;
  const m = FRAME.exec(all);
  if (m) throw new Error(`output holds a stack trace (${JSON.stringify(m[0])}):\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`);
  if (/^(?:Uncaught )?(?:Type|Reference|Range|Syntax)?Error: /m.test(r.stderr) && /\n\s+at /.test(r.stderr)) {
    throw new Error(`stderr holds an uncaught error:\n${r.stderr}`);
  }
}

const C0_EXCEPT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f]/;
const C1 = /[\u0080-\u009f]/;
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** No escape, no control character but line breaks, no bidi control: inert on any terminal. */
export function expectInert(text: string, where: string): void {
  const bad = [C0_EXCEPT_NEWLINE, C1, BIDI].find((re) => re.test(text));
  if (bad) {
    const i = text.search(bad);
    throw new Error(`${where}: a control character survived at ${i}: ${JSON.stringify(text.slice(Math.max(0, i - 40), i + 40))}`);
  }
}

/** Every string value inside a JSON document. */
export function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) strings(v, out);
  return out;
}

/**
 * The lines a run wrote to stderr, without the warning every run given a password in its -d URL
 * prints (the suite passes passwords that way for brevity; test/reliability/leaks.test.ts checks
 * the warning itself).
 */
export function stderrLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^warning: the password in the -d .* is visible to other users/.test(l));
}
