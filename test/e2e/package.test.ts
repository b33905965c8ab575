/**
 * The published package: `npm pack` ships only what runs (the bin, the bundles, runbooks, schemas,
 * README, LICENSE and the third-party notices), it has no runtime dependencies, and it installs
 * into an empty folder and runs from there read-only, as root and as an unprivileged user, writing
 * nothing into itself. (`npm test` builds first; the pack here runs no scripts.)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execa } from 'execa';
import { cleanEnv } from '../support/cli.js';
import { useServer } from '../support/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const isRoot = process.geteuid?.() === 0;
const server = useServer();

let work: string;
let app: string;
let shipped: string[];

/** Every file under dir with its size and mtime: what "nothing was written" compares. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      out.push(`${relative(dir, p)} ${st.isDirectory() ? 'dir' : st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'dbdoctor-pack-'));
  // readable by an unprivileged user too
  chmodSync(work, 0o755);
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  shipped = packed!.files.map((f) => f.path).sort();
  app = join(work, 'app');
  mkdirSync(app);
  execFileSync('npm', ['init', '-y'], { cwd: app, stdio: 'pipe' });
  // --offline: a package with no dependencies needs nothing from a registry
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', join(work, packed!.filename)], { cwd: app, stdio: 'pipe' });
  // a read-only install (a global one, or one on a read-only file system)
  execFileSync('chmod', ['-R', 'a-w', app]);
}, 180_000);
afterAll(() => {
  if (!work) return;
  execFileSync('chmod', ['-R', 'u+w', work]);
  rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  test('ships only what runs: bin, the bundles, runbooks, schemas, README, LICENSE and the notices', () => {
    const listed = (dir: string) => readdirSync(join(ROOT, dir)).map((f) => `${dir}/${f}`);
    const expected = [
      'LICENSE',
      'README.md',
      'package.json',
      'bin/dbdoctor.cjs',
      'dist/app/cli.cjs',
      'dist/app/compile-cache.cjs',
      'dist/app/execa.cjs',
      'dist/app/inquirer.cjs',
      'dist/app/THIRD-PARTY-NOTICES.txt',
      ...listed('runbooks'),
      ...listed('schema'),
    ].sort();
    expect(shipped).toEqual(expected);
  });

  test('no runtime dependencies: everything the bundle holds is bundled, and in the notices', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string; dependencies?: object };
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    const meta = JSON.parse(readFileSync(join(ROOT, 'dist', 'bundle-meta.json'), 'utf8')) as { inputs: Record<string, unknown> };
    const bundled = new Set<string>();
    for (const input of Object.keys(meta.inputs)) {
      const dir = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1];
      if (!dir) continue;
      const { name, version } = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as { name: string; version: string };
      bundled.add(`${name}@${version}`);
    }
    expect([...bundled]).toEqual(expect.arrayContaining(['pg@' + pkgVersion('pg'), 'commander@' + pkgVersion('commander')]));
    const notices = readFileSync(join(ROOT, 'dist', 'app', 'THIRD-PARTY-NOTICES.txt'), 'utf8');
    const listed = new Set([...notices.matchAll(/^-{78}\n(\S+@[^\s(]+)/gm)].map((m) => m[1]!));
    expect([...listed].sort()).toEqual([...bundled].sort());
    // no prompt edits text in an editor: @inquirer/prompts (and its encoding stack) stays out
    for (const name of bundled) expect(name).not.toMatch(/^(@inquirer\/(prompts|editor|external-editor)|iconv-lite|chardet)@/);
  });
});

function pkgVersion(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

describe('installed from the tarball into an empty folder, read-only', () => {
  const env = (extra: Record<string, string> = {}) => cleanEnv({ npm_config_update_notifier: 'false', PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, ...extra });
  const target = () => {
    const s = server();
    return { url: `postgres://postgres@${s.host}:${s.port}/postgres`, password: s.password };
  };

  test('npx dbdoctor --version, --help and check work, and write nothing into the package', async () => {
    const before = tree(app);
    const cache = mkdtempSync(join(work, 'cache-'));
    const { url, password } = target();
    const run = (args: string[]) => execa('npx', ['--no-install', 'dbdoctor', ...args], { cwd: app, env: env({ PGPASSWORD: password, XDG_CACHE_HOME: cache }), extendEnv: false, reject: false, stdin: 'ignore' });
    const version = await run(['--version']);
    expect(version.exitCode).toBe(0);
    expect(String(version.stdout)).toBe(pkgJsonVersion());
    const help = await run(['--help']);
    expect(help.exitCode).toBe(0);
    expect(String(help.stdout)).toMatch(/^Usage: dbdoctor/);
    for (let i = 0; i < 2; i++) {
      const check = await run(['check', '--json', '-d', url]);
      expect({ exit: check.exitCode, stderr: String(check.stderr) }).toMatchObject({ exit: 0 });
      expect(JSON.parse(String(check.stdout))).toMatchObject({ schema: 'dbdoctor.check', report: { status: 'ok' } });
    }
    expect(tree(app)).toEqual(before);
    // V8's code for the bundle is kept in the user's cache directory, a file for each command and
    // audience (--help; check for a machine)
    expect(readdirSync(join(cache, 'dbdoctor', 'code')).map((f) => f.replace(/^cli\.cjs-.*-\d+-([a-z]+(-machine)?)\.v8$/, '$1')).sort()).toEqual(['check-machine', 'none']);
  }, 120_000);

  (isRoot ? test : test.skip)('as an unprivileged user (nobody, whose home does not exist)', async () => {
    const before = tree(app);
    const { url, password } = target();
    const run = (args: string[]) =>
      execa('runuser', ['-u', 'nobody', '--', 'env', ...Object.entries(env({ HOME: '/nonexistent', PGPASSWORD: password })).map(([k, v]) => `${k}=${v}`), 'npx', '--no-install', 'dbdoctor', ...args], {
        cwd: app,
        extendEnv: false,
        env: { PATH: env().PATH! },
        reject: false,
        stdin: 'ignore',
      });
    expect(String((await run(['--version'])).stdout)).toBe(pkgJsonVersion());
    expect((await run(['--help'])).exitCode).toBe(0);
    const check = await run(['check', '--json', '-d', url]);
    expect({ exit: check.exitCode, stderr: String(check.stderr) }).toMatchObject({ exit: 0 });
    expect(JSON.parse(String(check.stdout))).toMatchObject({ schema: 'dbdoctor.check', report: { status: 'ok' } });
    expect(tree(app)).toEqual(before);
  }, 120_000);
});

function pkgJsonVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}
