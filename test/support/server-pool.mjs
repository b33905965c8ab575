/**
 * The db and e2e tiers' globalSetup (this file) and globalTeardown (server-pool-teardown.mjs): one
 * PostgreSQL with default settings per jest worker, shared by that worker's files that ask for no
 * settings of their own (`useServer()`), instead of one server per file. Files that need settings
 * (max_connections, logging, a major) still start their own. The URLs reach the workers as
 * DBDOCTOR_POOL_URL_<worker id> (read by test/support/server.ts).
 *
 * Plain JavaScript over the build (`npm test` builds first): jest loads global hooks outside the
 * tests' module mapping. Both tiers name these files; the servers start once per run and stop
 * once, after all tests. DBDOCTOR_TEST_URL (an existing server) replaces the pool.
 */
import { startServer } from '../../dist/db/embedded.js';

const POOL = Symbol.for('dbdoctor.test.server-pool');

export default async function setup(config) {
  if (process.env.DBDOCTOR_TEST_URL) return;
  globalThis[POOL] ??= Promise.all(Array.from({ length: Math.max(1, config.maxWorkers) }, () => startServer()));
  const servers = await globalThis[POOL];
  servers.forEach((s, i) => {
    process.env[`DBDOCTOR_POOL_URL_${i + 1}`] = s.url();
  });
}

export async function teardown() {
  const pending = globalThis[POOL];
  delete globalThis[POOL];
  if (pending) await Promise.all((await pending).map((s) => s.stop()));
}
