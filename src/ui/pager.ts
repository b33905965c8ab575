/**
 * Long text through $PAGER (default `less` with LESS=FRX) when stdout is a terminal; through the
 * writer otherwise, or when the pager cannot be started. What the pager gets is sanitized as the
 * writer sanitizes (terminalText), so it shows nothing the writer would not. execa is imported only
 * here.
 */
import { terminalText } from '../render/sanitize.js';
import type { Output } from './output.js';

export async function page(text: string, output: Output, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const pager = env.PAGER ?? 'less';
  if (!output.stdoutIsTTY || pager.trim() === '' || pager.trim() === 'cat') {
    output.out(text);
    return;
  }
  const { execa, parseCommandString } = await import('execa');
  const [file, ...args] = parseCommandString(pager);
  if (!file) {
    output.out(text);
    return;
  }
  const r = await execa(file, args, {
    // dbdoctor's own colours pass (less -R shows them); nothing else does.
    input: terminalText(`${text}\n`, output.style.level > 0),
    stdout: 'inherit',
    stderr: 'inherit',
    reject: false,
    env: { ...env, LESS: env.LESS ?? 'FRX' },
    extendEnv: false,
  });
  // A pager that cannot start (not installed) must not swallow the runbook.
  if (r.failed && (r.exitCode === undefined || r.exitCode === 127)) output.out(text);
}
