import { describe, expect, test } from '@jest/globals';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { UsageError } from '../../src/core/errors.js';

describe('durations', () => {
  test.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['10', 10_000],
    ['1.5s', 1500],
    [' 5M ', 300_000],
  ])('%p is %p ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  test.each(['5x', '-1m', '', '1e309', 'm', '5 m', '1y', '400d', 'NaN', 'Infinity'])('%p is a usage error', (text) => {
    expect(() => parseDuration(text, '--older-than')).toThrow(UsageError);
  });
  test('formats compactly', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(42_000)).toBe('42s');
    expect(formatDuration(725_000)).toBe('12m 5s');
    expect(formatDuration(3 * 3_600_000 + 4 * 60_000)).toBe('3h 4m');
    expect(formatDuration(null)).toBe('-');
  });
});
