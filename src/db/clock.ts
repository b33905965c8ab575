/**
 * A monotonic clock in milliseconds, for the timings dbdoctor reports (connect, gather, steps).
 * Not `performance.now()`: Node loads perf_hooks and its dozen internal modules on that global's
 * first use, on every command's start.
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
