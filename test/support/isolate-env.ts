/**
 * Runs before every test file (jest `setupFiles`): the developer's PG* variables and DATABASE_URL
 * are removed from this test file's environment, so that what a test sees never depends on the
 * shell it was started from (`PGHOST= PGPORT= PGOPTIONS=... npm test` passes). node-postgres reads
 * them for every setting a client leaves empty; in-process commands read them as libpq does.
 * Tests that are about those variables set them for the process they start (cleanEnv in cli.ts).
 * DBDOCTOR_TEST_URL and DBDOCTOR_PG_* are kept: they choose the servers.
 */
import { withoutConnectionEnv } from '../../src/core/target.js';

const kept = withoutConnectionEnv(process.env);
for (const key of Object.keys(process.env)) if (!(key in kept)) delete process.env[key];
