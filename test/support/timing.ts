/**
 * Time limits that follow the machine: a test never asserts how fast anything ran, but its
 * safety limits (a spawned binary's timeout, a wait for a session to reach a state) must hold on a
 * loaded CI runner as on a quiet laptop. jest.config.js fixes the factor when the run starts (the
 * load average per core, 1 to 4, or DBDOCTOR_TEST_SLOWDOWN as given) and hands it to the workers
 * in DBDOCTOR_TEST_SLOWDOWN; it scales jest's test timeout, and this scales the support code's.
 */
export function slowdown(env: NodeJS.ProcessEnv = process.env): number {
  const given = Number(env.DBDOCTOR_TEST_SLOWDOWN);
  return Number.isFinite(given) && given >= 1 ? given : 1;
}

/** A limit of `ms` on a quiet machine, on this one. */
export function scaled(ms: number): number {
  return Math.round(ms * slowdown());
}
