/**
 * Counts in words that agree in number: "1 session", "2 sessions", "this session", "these 2
 * sessions", "1 more group". Every message that says how many of something goes through these
 * (test/unit/counts.test.ts checks them with 0, 1 and 2, and that no message builder falls back
 * on "(s)"). Pure.
 */

/** "0 sessions", "1 session", "2 sessions". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The noun alone, agreeing with n: "session" or "sessions". */
export function noun(n: number, one: string, many = `${one}s`): string {
  return n === 1 ? one : many;
}

/** "this session" (1), "these 2 sessions" (2 or more), "no sessions" (0). */
export function these(n: number, one: string, many = `${one}s`): string {
  if (n === 0) return `no ${many}`;
  return n === 1 ? `this ${one}` : `these ${n} ${many}`;
}

/** "is" or "are", agreeing with n. */
export function isAre(n: number): string {
  return n === 1 ? 'is' : 'are';
}
