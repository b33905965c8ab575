import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { execa } from 'execa';
import { BIN, cleanEnv, runCli } from '../support/cli.js';

// @inquirer stands for every @inquirer/* package (the prompts and their core).
const HEAVY = ['@inquirer', 'execa', 'pg', 'pg-cursor'];
// The heavy packages cli.cjs holds behind lazy wrappers (execa and the prompts are not in it).
const IN_CLI = ['pg', 'pg-cursor'];
// What bin/ runs: the bundles scripts/bundle.js writes.
const APP = join(BIN, '..', '..', 'dist', 'app');

/**
 * The heavy packages whose code a run executes. bin/ runs the bundle dist/app/cli.cjs
 * (scripts/bundle.js) in which each CommonJS package file and each lazily imported ES module is
 * wrapped in a function named after its path ("node_modules/pg/lib/index.js"); V8's coverage
 * (NODE_V8_COVERAGE) tells which of them ran. execa and the prompts are bundles of their own
 * (dist/app/execa.cjs, dist/app/inquirer.cjs): loading one at all counts as running it. Also
 * returns the heavy packages found wrapped at all in cli.cjs: a package imported statically would
 * be inlined without its wrapper, and this check would then see nothing.
 */
async function heavyImports(args: string[], heavy: readonly string[] = HEAVY): Promise<{ ran: string[]; lazy: string[]; files: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-cov-'));
  try {
    await execa('node', [BIN, ...args], { env: { ...cleanEnv(), NODE_V8_COVERAGE: dir }, extendEnv: false, reject: false, stdin: 'ignore' });
    const ran = new Set<string>();
    const lazy = new Set<string>();
    const files = new Set<string>();
    for (const f of readdirSync(dir)) {
      const { result } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { result: Array<{ url: string; functions: Array<{ functionName: string; ranges: Array<{ count: number }> }> }> };
      for (const script of result) {
        const own = /\/dist\/app\/([^/]+\.cjs)$/.exec(script.url)?.[1];
        if (own) files.add(own);
        if (own === 'execa.cjs') ran.add('execa');
        if (own === 'inquirer.cjs') ran.add('@inquirer');
      }
      for (const script of result.filter((x) => x.url.endsWith('/dist/app/cli.cjs'))) {
        for (const fn of script.functions) {
          const name = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(fn.functionName)?.[1];
          const pkg = name?.startsWith('@inquirer/') ? '@inquirer' : name;
          if (!pkg || !heavy.includes(pkg)) continue;
          lazy.add(pkg);
          if ((fn.ranges[0]?.count ?? 0) > 0) ran.add(pkg);
        }
      }
    }
    return { ran: [...ran].sort(), lazy: [...lazy].sort(), files: [...files].sort() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('start-up', () => {
  test('--version and --help run none of pg, inquirer, execa', async () => {
    expect((await heavyImports(['--version'])).ran).toEqual([]);
    const help = await heavyImports(['--help']);
    expect(help.ran).toEqual([]);
    // pg is in cli.cjs behind its lazy wrapper, so the check above can see it run; execa and the
    // prompts are not in it at all, and their bundles are not loaded (compile-cache.cjs is: it
    // loads cli.cjs).
    expect(help.lazy).toEqual(IN_CLI);
    expect(help.files).toContain('cli.cjs');
    expect(help.files.filter((f) => f !== 'cli.cjs' && f !== 'compile-cache.cjs')).toEqual([]);
    expect((await heavyImports(['check', '--help'])).ran).toEqual([]);
    // And it does see them when a command needs them.
    expect((await heavyImports(['check', '-h', '127.0.0.1', '-p', '1'])).ran).toContain('pg');
  });

  test('a run for a machine (--json, a machine --format) does not load the display-width tables; -h is the host, not help', async () => {
    const widths = ['string-width'];
    const closed = ['-h', '127.0.0.1', '-p', '1'];
    for (const args of [['check', '--json', ...closed], ['diagnose', '--format', 'nagios', ...closed], ['diagnose', '--format=prometheus', ...closed]]) {
      expect({ args, ran: (await heavyImports(args, widths)).ran }).toEqual({ args, ran: [] });
    }
    // It is in cli.cjs behind its lazy wrapper, and runs when the output is for people.
    for (const args of [['check', ...closed], ['diagnose', '--format', 'text', ...closed], ['check', '--json', '--help']]) {
      expect({ args, ran: (await heavyImports(args, widths)).ran }).toEqual({ args, ran: widths });
    }
  });

  test('execa and the prompts are bundles of their own, loaded only when a pager or a question needs them', async () => {
    const bundles = readdirSync(APP).filter((f) => f.endsWith('.cjs'));
    expect(bundles.sort()).toEqual(['cli.cjs', 'compile-cache.cjs', 'execa.cjs', 'inquirer.cjs']);
    // What cli.cjs loads of them, it loads by file name, with a require() where the source has an
    // import(): bin runs cli.cjs as a script of vm's, which has no loader for import()
    // (scripts/bundle.js, src/ui/compile-cache.ts).
    const cli = readFileSync(join(APP, 'cli.cjs'), 'utf8');
    expect(cli.match(/require\("\.\/(\w+)\.cjs"\)/g)?.sort()).toEqual([...Array(5).fill('require("./inquirer.cjs")'), 'require("./execa.cjs")'].sort());
    expect(cli).not.toMatch(/[^\w$.]import\(/);
    // Each loads on its own, with the names src/ui/pager.ts and src/ui/prompts.ts import.
    const probe = await execa('node', ['-e', `Promise.all(['execa', 'inquirer'].map((n) => import(${JSON.stringify(APP)} + '/' + n + '.cjs'))).then(([e, i]) => console.log([typeof e.execa, typeof e.parseCommandString, typeof i.select, typeof i.Separator, typeof i.input, typeof i.password, typeof i.confirm, typeof i.checkbox].join()))`]);
    expect(probe.stdout).toBe(Array(8).fill('function').join());
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
});
