/**
 * psql, to compare dbdoctor's connecting with on the same input: from the test binaries where they
 * hold one (the npm-shipped servers do not), else the one on PATH (Debian's postgresql-client,
 * which .ci/run installs when it is missing). No psql is a failed test, never a skipped one.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { findPgBinaries } from '../../src/db/find-postgres.js';
import { cleanEnv } from './cli.js';
import { stripAnsi } from './pty.js';
import { scaled } from './timing.js';

export function psqlPath(): string {
  const bins = findPgBinaries();
  if (bins && existsSync(join(bins.binDir, 'psql'))) return join(bins.binDir, 'psql');
  const which = spawnSync('sh', ['-c', 'command -v psql'], { encoding: 'utf8' });
  const found = which.stdout.trim();
  if (which.status !== 0 || !found) throw new Error('no psql to compare with: install postgresql-client (apt-get install postgresql-client)');
  return found;
}

export interface PsqlResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** psql with no terminal and never a password prompt (-w), in the tests' clean environment. */
export async function runPsql(args: string[], env: Record<string, string> = {}): Promise<PsqlResult> {
  const r = await execa(psqlPath(), ['-X', '-w', '-At', ...args], { env: cleanEnv(env), extendEnv: false, reject: false, stdin: 'ignore', timeout: scaled(30_000) });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** psql in a pseudo-terminal: answers its password prompt with `password`; returns what it showed. */
export async function psqlWithPassword(args: string[], password: string, env: Record<string, string> = {}): Promise<PsqlResult & { screen: string }> {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const child = spawn('script', ['-qfec', `stty cols 100 rows 40; exec ${[psqlPath(), '-X', '-At', ...args].map(q).join(' ')}`, '/dev/null'], {
    env: cleanEnv({ TERM: 'xterm-256color', ...env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => chunks.push(d));
  child.stderr!.on('data', (d: Buffer) => chunks.push(d));
  const screen = () => stripAnsi(Buffer.concat(chunks).toString('utf8'));
  const exit = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  const deadline = Date.now() + scaled(20_000);
  let exited = false;
  void exit.then(() => {
    exited = true;
  });
  while (!/Password/.test(screen()) && !exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (!exited) child.stdin!.write(`${password}\r`);
  const timer = setTimeout(() => child.kill('SIGKILL'), scaled(20_000));
  const exitCode = await exit;
  clearTimeout(timer);
  return { exitCode, stdout: screen(), stderr: '', screen: screen() };
}
