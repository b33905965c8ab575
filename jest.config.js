/**
 * The suite in four tiers, each a jest project; `npm test` runs them all, and
 * `npm test -- --selectProjects unit` (or a path such as test/unit) one of them:
 * - unit: pure code and fixtures, no server, no process (under a minute);
 * - db: the SQL and the commands' functions against a real PostgreSQL the tier starts;
 * - e2e: the built binary as a user runs it, against real servers and a real terminal (pty);
 * - reliability: hostile input, faults, leaks, files, privileges, the bad-input table.
 *
 * Time limits (the test timeout here, and the support code's) scale with the machine's load when
 * the run starts (the factor below; test/support/timing.ts applies it), so a busy runner gets
 * longer limits instead of failures; no test asserts how fast anything ran.
 */
import { availableParallelism, loadavg } from 'node:os';

const given = Number(process.env.DBDOCTOR_TEST_SLOWDOWN);
const slowdown = process.env.DBDOCTOR_TEST_SLOWDOWN && given >= 1 ? given : Math.min(4, Math.max(1, loadavg()[0] / availableParallelism()));
// The workers read the same factor, fixed when the run started.
process.env.DBDOCTOR_TEST_SLOWDOWN = String(slowdown);

/** What every tier shares. */
const base = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2023' }, module: { type: 'es6' } }],
  },
  // Sources use NodeNext-style "./x.js" specifiers; map them back to the .ts file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // No PG* variable of the developer's reaches a test (see the file).
  setupFiles: ['<rootDir>/test/support/isolate-env.ts'],
  // Display widths loaded, as the CLI loads them for people's output (see the file).
  setupFilesAfterEnv: ['<rootDir>/test/support/widths.ts'],
};

/** The db and e2e tiers share one default server per worker (test/support/server-pool.mjs). */
const pool = {
  globalSetup: '<rootDir>/test/support/server-pool.mjs',
  globalTeardown: '<rootDir>/test/support/server-pool-teardown.mjs',
};

const tier = (name, extra = {}) => ({
  ...extra,
  ...base,
  displayName: name,
  roots: [`<rootDir>/test/${name}`],
  testMatch: ['**/*.test.ts'],
});

/** @type {import('jest').Config} */
export default {
  projects: [tier('unit'), tier('db', pool), tier('e2e', pool), tier('reliability')],
  maxWorkers: 2,
  // (a global option: jest ignores a project's own testTimeout)
  testTimeout: Math.round(60_000 * slowdown),
};
