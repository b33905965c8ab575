/**
 * Time limits that follow the machine: a test never asserts how fast anything ran, but its
 * safety limits (a spawned binary's timeout, a wait for a session to reach a state) must hold on a
 * loaded CI runner as on a quiet laptop. `slowdown()` is the factor the suite's limits are scaled
 * by: the load average per core when the suite started (at least 1, at most 4), or
 * DBDOCTOR_TEST_SLOWDOWN when set. jest.config.js scales each tier's test timeout the same way.
 */
import { availableParallelism, loadavg } from 'node:os';

export function slowdown(env: NodeJS.ProcessEnv = process.env): number {
  const given = Number(env.DBDOCTOR_TEST_SLOWDOWN);
  if (env.DBDOCTOR_TEST_SLOWDOWN && Number.isFinite(given) && given >= 1) return given;
  return Math.min(4, Math.max(1, loadavg()[0]! / availableParallelism()));
}

/** A limit of `ms` on a quiet machine, on this one. */
export function scaled(ms: number): number {
  return Math.round(ms * slowdown());
}
