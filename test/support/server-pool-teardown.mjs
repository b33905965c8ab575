/** The db and e2e tiers' globalTeardown: stops the shared servers (see server-pool.mjs). */
export { teardown as default } from './server-pool.mjs';
