/**
 * A monotonic clock in milliseconds, for the timings dbdoctor reports (connect, gather, steps).
 * Not `performance.now()`: Node loads perf_hooks and its dozen internal modules on that global's
 * first use, ~0.6 ms of every command's start (measured by `npm run bench`).
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
