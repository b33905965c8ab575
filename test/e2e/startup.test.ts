import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { execa } from 'execa';
import { BIN, cleanEnv, runCli } from '../support/cli.js';

const HOOK = fileURLToPath(new URL('../support/import-hook.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HEAVY = /^(pg|pg-cursor|execa|@inquirer\/prompts|inquirer)$/;

/** The packages bundled into each file of dist/app/, from esbuild's metafile (scripts/bundle.js). */
function bundledPackages(): Map<string, string[]> {
  const meta = JSON.parse(readFileSync(join(ROOT, 'dist', 'app', 'meta.json'), 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  const out = new Map<string, string[]>();
  for (const [file, { inputs }] of Object.entries(meta.outputs)) {
    const pkgs = Object.keys(inputs).flatMap((i) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(i)?.[1] ?? []);
    out.set(file, [...new Set(pkgs)]);
  }
  return out;
}

/** The heavy packages a run loads: imported by name, or bundled into a file of dist/app/ it loads. */
async function heavyImports(args: string[]): Promise<string[]> {
  const register = `data:text/javascript,import { register } from "node:module"; register(${JSON.stringify(`file://${HOOK}`)});`;
  const r = await execa('node', ['--import', register, BIN, ...args], { env: cleanEnv(), extendEnv: false, reject: false, stdin: 'ignore' });
  const lines = String(r.stderr).split('\n');
  const bundled = bundledPackages();
  const loaded = [
    ...lines.filter((l) => l.startsWith('HEAVY-IMPORT ')).map((l) => l.slice('HEAVY-IMPORT '.length)),
    ...lines.filter((l) => l.startsWith('BUNDLE-FILE ')).flatMap((l) => bundled.get(l.slice('BUNDLE-FILE '.length)) ?? []),
  ];
  return [...new Set(loaded.filter((p) => HEAVY.test(p)))];
}

describe('start-up', () => {
  test('--version and --help load none of pg, inquirer, execa', async () => {
    expect(await heavyImports(['--version'])).toEqual([]);
    expect(await heavyImports(['--help'])).toEqual([]);
    expect(await heavyImports(['check', '--help'])).toEqual([]);
    // The hook does see them when a command needs them.
    expect(await heavyImports(['check', '-h', '127.0.0.1', '-p', '1'])).toContain('pg');
  });

  test('--help documents the exit codes, and -h is the host', async () => {
    const r = await runCli(['--help']);
    expect(r.exitCode).toBe(0);
    for (const code of ['0', '1', '2', '3', '64', '70', '130']) expect(r.stdout).toMatch(new RegExp(`^\\s+${code}\\s+\\S`, 'm'));
    const check = await runCli(['check', '--help']);
    expect(check.stdout).toMatch(/-h, --host <host>/);
  });

  test('an unknown flag or command is a usage error: one line and a hint, exit 64', async () => {
    for (const args of [['check', '--bogus'], ['no-such-command'], ['check', '-p']]) {
      const r = await runCli(args);
      expect(r.exitCode).toBe(64);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines.length).toBeLessThanOrEqual(3);
      expect(lines[0]).toMatch(/^dbdoctor: /);
    }
  });

  test('a reader that closes the pipe early is not a crash (no EPIPE stack trace)', async () => {
    for (const args of ['--help', 'runbook leaks']) {
      const r = await execa('sh', ['-c', `node ${JSON.stringify(BIN)} ${args} | true`], { env: cleanEnv(), extendEnv: false, reject: false });
      expect(String(r.stderr)).toBe('');
    }
  });

  test('the packed package installs elsewhere and runs', async () => {
    const work = mkdtempSync(join(tmpdir(), 'dbdoctor-pack-'));
    try {
      execFileSync('npm', ['pack', '--pack-destination', work, '--ignore-scripts'], { cwd: ROOT, stdio: 'pipe' });
      const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
      const app = join(work, 'app');
      execFileSync('mkdir', ['-p', app]);
      execFileSync('npm', ['init', '-y'], { cwd: app, stdio: 'pipe' });
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--omit=dev', join(work, tgz)], { cwd: app, stdio: 'pipe' });
      const r = await execa('npx', ['--no-install', 'dbdoctor', '--version'], { cwd: app, reject: false });
      expect(r.exitCode).toBe(0);
      expect(String(r.stdout)).toMatch(/^\d+\.\d+\.\d+$/);
      const help = await execa('npx', ['--no-install', 'dbdoctor', 'check', '--help'], { cwd: app, reject: false });
      expect(String(help.stdout)).toMatch(/--dbname/);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 180_000);
});
