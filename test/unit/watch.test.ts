/**
 * The watch decisions, pure: the least-squares fit, growth only from a steady rise over the whole
 * window (never from two points, never from noise), the forecast, churn from new sessions and
 * from pg_stat_database's deltas, the ring buffer's bound, and the interval's back-off.
 */
import { describe, expect, test } from '@jest/globals';
import { DEFAULT_TREND_OPTIONS, leastSquares, type TrendSample, trendFindings } from '../../src/core/diagnose/trends.js';
import { type HandOver, handOver, nextInterval, Ring, type WatchSample } from '../../src/core/watch.js';
import { shellWord } from '../../src/core/printed.js';

function samples(counts: number[], opts: { app?: string; iit?: boolean; stepMs?: number; slots?: number; fresh?: number } = {}): TrendSample[] {
  return counts.map((n, i) => ({
    at_ms: 1_000_000 + i * (opts.stepMs ?? 2000),
    client_sessions: n + 5,
    ordinary_slots: opts.slots ?? 100,
    by_app: [
      { app: opts.app ?? 'worker', total: n, idle_in_transaction: opts.iit ? n : 0, client_read: 0, new_sessions: i === 0 ? 0 : (opts.fresh ?? Math.max(0, n - (counts[i - 1] ?? 0))), pids_iit: [] },
      { app: 'web', total: 5, idle_in_transaction: 0, client_read: 0, new_sessions: 0, pids_iit: [] },
    ],
    new_sessions: i === 0 ? null : (opts.fresh ?? Math.max(0, n - (counts[i - 1] ?? 0))),
    session_stats: null,
  }));
}

describe('leastSquares', () => {
  test('a straight line', () => {
    const f = leastSquares([
      [0, 1],
      [1, 3],
      [2, 5],
    ]);
    expect(f.slope).toBeCloseTo(2);
    expect(f.r2).toBeCloseTo(1);
  });
  test('a flat series explains nothing', () => {
    expect(leastSquares([[0, 4], [1, 4], [2, 4]]).r2).toBe(0);
  });
});

describe('trend findings', () => {
  test('+1 idle in transaction every 2 s over 6 samples: growth naming worker, and a forecast', () => {
    const f = trendFindings(samples([1, 2, 3, 4, 5, 6], { iit: true }), DEFAULT_TREND_OPTIONS);
    const growth = f.find((x) => x.id === 'growth');
    expect(growth?.evidence.applications).toEqual(['worker']);
    expect(growth?.title).toMatch(/idle in transaction keep rising, \+30\/min/);
    expect(f.find((x) => x.id === 'exhaustion-forecast')?.title).toMatch(/exhausted in about .* at \+30\/min, mostly worker/);
  });
  test('fewer samples than the window: nothing yet', () => {
    expect(trendFindings(samples([1, 2, 3, 4, 5], { iit: true }), DEFAULT_TREND_OPTIONS)).toEqual([]);
  });
  test('a stable pool, and a noisy one, grow nothing', () => {
    expect(trendFindings(samples([40, 40, 40, 40, 40, 40]), DEFAULT_TREND_OPTIONS)).toEqual([]);
    expect(trendFindings(samples([40, 43, 39, 42, 40, 41], { fresh: 0 }), DEFAULT_TREND_OPTIONS).filter((x) => x.id !== 'churn')).toEqual([]);
  });
  test('many new sessions per second: churn', () => {
    const f = trendFindings(samples([5, 5, 5], { fresh: 40, stepMs: 1000 }), { ...DEFAULT_TREND_OPTIONS, window: 3 });
    expect(f.map((x) => x.id)).toEqual(['churn']);
  });
  test("pg_stat_database's abandoned sessions: churn", () => {
    const s = samples([5, 5, 5], { fresh: 0 });
    s[0]!.session_stats = { sessions: 10, abandoned: 0, fatal: 0, killed: 0 };
    s[2]!.session_stats = { sessions: 12, abandoned: 2, fatal: 0, killed: 0 };
    expect(trendFindings(s, { ...DEFAULT_TREND_OPTIONS, window: 3 }).find((x) => x.id === 'churn')?.title).toMatch(/2 abandoned/);
  });
});

describe('footprint', () => {
  test('the ring keeps the latest items only', () => {
    const r = new Ring<number>(3);
    for (let i = 0; i < 10; i++) r.push(i);
    expect(r.all()).toEqual([7, 8, 9]);
  });
  test('a sample over 10% of the interval backs it off', () => {
    expect(nextInterval(2000, 50)).toEqual({ interval_ms: 2000, backed_off: false });
    expect(nextInterval(2000, 500)).toEqual({ interval_ms: 5000, backed_off: true });
    expect(nextInterval(2000, 60_000).interval_ms).toBe(60_000);
  });
});

describe("t's hand-over to terminate", () => {
  const sample = (apps: Array<[string, number]>): WatchSample =>
    ({
      by_app: apps.map(([app, iit]) => ({ app, total: iit + 1, active: 1, idle: 0, idle_in_transaction: iit, client_read: 0, new_sessions: 0, pids_iit: [] })),
    }) as unknown as WatchSample;

  test('the command printed is the argv that runs, quoted by the shell quoter, whatever the application is called', () => {
    expect(handOver(sample([['worker', 3], ['web', 1]]), null)).toEqual({
      argv: ['terminate', '--app', 'worker', '--state', 'idle in transaction'],
      command: 'dbdoctor terminate --app worker --state "idle in transaction"',
    });
    const hostile = '$(touch /tmp/pwned); worker';
    const h = handOver(sample([[hostile, 3]]), null) as HandOver;
    expect(h.argv).toEqual(['terminate', '--app', hostile, '--state', 'idle in transaction']);
    expect(h.command).toBe(`dbdoctor terminate --app ${shellWord(hostile)} --state "idle in transaction"`);
    expect(h.command).toContain("'$(touch /tmp/pwned); worker'");
    // a name that begins with a dash is the option's value, not an option of its own
    expect((handOver(sample([['--yes', 2]]), null) as HandOver).argv).toEqual(['terminate', '--app=--yes', '--state', 'idle in transaction']);
  });

  test('nothing is handed over for a name that cannot be shown exactly (said so), a pattern, or no such application', () => {
    expect(handOver(sample([['pay\u202ements', 3]]), null)).toBe('unshowable');
    expect(handOver(sample([['line\nbreak', 3]]), null)).toBe('unshowable');
    expect(handOver(sample([['work*', 3]]), null)).toBeNull();
    expect(handOver(sample([['web', 0]]), null)).toBeNull();
    expect((handOver(sample([['web', 0]]), 'web') as HandOver).argv).toContain('web');
    expect(handOver(undefined, null)).toBeNull();
  });
});
