/**
 * Small statistics over per-session figures. Pure.
 */

/**
 * The largest of these values, nulls left out; null when none. A loop, never Math.max(...values):
 * spreading ~130,000 values into one call overflows Node's stack, and one group can hold every
 * session of a server (max_connections goes up to 262,143).
 */
export function largest(values: readonly (number | null | undefined)[]): number | null {
  let m: number | null = null;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== null && v !== undefined && (m === null || v > m)) m = v;
  }
  return m;
}

/** Rounded to the whole number (milliseconds, mostly); null and undefined stay null. */
export function roundOrNull(v: number | null | undefined): number | null {
  return v === null || v === undefined ? null : Math.round(v);
}
