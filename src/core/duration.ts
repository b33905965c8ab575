import { UsageError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** The longest duration any flag accepts: a year. Anything longer is a typo. */
export const MAX_DURATION_MS = 365 * UNIT_MS.d!;

/**
 * The longest timeout dbdoctor can keep (about 24.8 days): Node's timers and PostgreSQL's
 * statement_timeout and lock_timeout are 32-bit signed milliseconds. A longer timer fires at once.
 */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * Parses a duration such as `500ms`, `30s`, `5m`, `1h30m`, `1h 30m` or `2d` into milliseconds. A bare
 * number means seconds. Throws a UsageError for anything else (negative, empty, exponent, unknown
 * unit, over a year).
 */
export function parseDuration(input: string, flag = 'duration'): number {
  const text = input.trim().toLowerCase();
  const bad = () =>
    new UsageError(
      `invalid ${flag} ${JSON.stringify(input)}`,
      'use a duration like 500ms, 30s, 5m, 1h30m or 2d (a bare number means seconds)',
    );
  if (text === '') throw bad();
  if (/^\d+(\.\d+)?$/.test(text)) return check(Number(text) * 1000, bad);
  // Parts may be written apart ("1h 30m", as formatDuration prints them), a number never apart from its unit.
  const re = /\s*(\d+(?:\.\d+)?)(ms|min|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed !== text.length) throw bad();
  return check(total, bad);
}

function check(ms: number, bad: () => UsageError): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_DURATION_MS) throw bad();
  return Math.round(ms);
}

/** Formats milliseconds compactly for humans: `850ms`, `42s`, `12m 5s`, `3h 4m`, `2d 1h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d ${h % 24}h` : `${d}d`;
}
