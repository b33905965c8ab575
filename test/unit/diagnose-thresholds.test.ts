/** Thresholds: documented defaults, flags, the JSON config file and its environments. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { loadConfigFile } from '../../src/commands/diagnose.js';
import { parseDuration } from '../../src/core/duration.js';
import { UsageError } from '../../src/core/errors.js';
import { DEFAULT_THRESHOLDS, durationArg, formatDefault, resolveThresholds, THRESHOLD_DEFS, THRESHOLD_KEYS } from '../../src/core/thresholds.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'dbdoctor-cfg-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('defaults', () => {
  test('every threshold has a default, a flag and help, and the defaults are the documented ones', () => {
    expect(THRESHOLD_DEFS.map((d) => d.key)).toEqual([...THRESHOLD_KEYS]);
    for (const d of THRESHOLD_DEFS) {
      expect(d.flag).toBe(`--${d.key.replace(/_/g, '-')}`);
      expect(d.help.length).toBeGreaterThan(5);
    }
    expect(DEFAULT_THRESHOLDS).toMatchObject({
      capacity_warn_pct: 80,
      capacity_crit_pct: 90,
      idle_in_transaction_ms: 30_000,
      client_wait_ms: 30_000,
      lock_wait_ms: 1_000,
      long_query_ms: 30_000,
      same_statement_sessions: 5,
    });
    expect(formatDefault(THRESHOLD_DEFS.find((d) => d.key === 'idle')!)).toBe('10m');
    expect(formatDefault(THRESHOLD_DEFS.find((d) => d.key === 'capacity_warn')!)).toBe('80%');
  });

  test('durationArg writes what every duration flag reads back', () => {
    for (const ms of [0, 500, 1000, 1500, 30_000, 90_000, 300_000, 3_600_000, 5_400_000]) expect(parseDuration(durationArg(ms))).toBe(ms);
    expect(durationArg(300_000)).toBe('5m');
  });
});

describe('merging: defaults < file < environment < flags', () => {
  const config = {
    path: '/etc/dbdoctor.json',
    doc: {
      thresholds: { capacity_warn: 70, idle_in_transaction: '1m', long_query: 10 },
      environments: { batch: { thresholds: { long_query: '30m', long_query_crit: '2h' } } },
    },
  };

  test('the file sets thresholds; numbers of seconds are durations, as on the command line', () => {
    const t = resolveThresholds({ config });
    expect(t).toMatchObject({ capacity_warn_pct: 70, idle_in_transaction_ms: 60_000, long_query_ms: 10_000, capacity_crit_pct: 90 });
  });

  test('an environment overrides the file, and flags override both', () => {
    expect(resolveThresholds({ config, environment: 'batch' })).toMatchObject({ long_query_ms: 1_800_000, long_query_crit_ms: 7_200_000, idle_in_transaction_ms: 60_000 });
    expect(resolveThresholds({ config, environment: 'batch', flags: { long_query: '45m', capacity_warn: '75' } })).toMatchObject({ long_query_ms: 2_700_000, capacity_warn_pct: 75 });
  });

  test('mistakes are usage errors that say where', () => {
    const bad = (src: Parameters<typeof resolveThresholds>[0], re: RegExp) => {
      expect(() => resolveThresholds(src)).toThrow(UsageError);
      expect(() => resolveThresholds(src)).toThrow(re);
    };
    bad({ config: { path: 'c.json', doc: { thresholds: { idle_in_transactoin: '1m' } } } }, /unknown threshold "idle_in_transactoin" in c.json/);
    bad({ config: { path: 'c.json', doc: { threshold: {} } } }, /c.json: unknown key "threshold"/);
    bad({ config: { path: 'c.json', doc: [] } }, /must hold a JSON object/);
    bad({ config, environment: 'prod' }, /no environment "prod"/);
    bad({ environment: 'prod' }, /needs a config file/);
    bad({ flags: { capacity_warn: '120' } }, /invalid --capacity-warn/);
    bad({ flags: { idle_in_transaction: 'soon' } }, /invalid --idle-in-transaction/);
    bad({ flags: { same_statement: '0' } }, /invalid --same-statement/);
    bad({ flags: { long_query: '10m', long_query_crit: '5m' } }, /long query warning threshold \(10m\) is above its critical threshold \(5m\)/);
  });
});

describe('finding the config file', () => {
  test('--config names it; a missing one is a usage error', () => {
    const d = tmp();
    writeFileSync(join(d, 'mine.json'), JSON.stringify({ thresholds: { idle: '5m' } }));
    expect(loadConfigFile('mine.json', {}, d)).toEqual({ path: join(d, 'mine.json'), doc: { thresholds: { idle: '5m' } } });
    expect(() => loadConfigFile('missing.json', {}, d)).toThrow(/cannot read the config file .*missing.json: no such file/);
  });

  test('./dbdoctor.json, then $XDG_CONFIG_HOME/dbdoctor/config.json, then ~/.config, else none', () => {
    const cwd = tmp();
    const xdg = tmp();
    const home = tmp();
    expect(loadConfigFile(undefined, { XDG_CONFIG_HOME: xdg, HOME: home }, cwd)).toBeNull();
    mkdirSync(join(home, '.config', 'dbdoctor'), { recursive: true });
    writeFileSync(join(home, '.config', 'dbdoctor', 'config.json'), '{"thresholds":{"idle":"3m"}}');
    expect(loadConfigFile(undefined, { HOME: home }, cwd)?.path).toBe(join(home, '.config', 'dbdoctor', 'config.json'));
    mkdirSync(join(xdg, 'dbdoctor'));
    writeFileSync(join(xdg, 'dbdoctor', 'config.json'), '{"thresholds":{"idle":"2m"}}');
    expect(loadConfigFile(undefined, { XDG_CONFIG_HOME: xdg, HOME: home }, cwd)?.path).toBe(join(xdg, 'dbdoctor', 'config.json'));
    writeFileSync(join(cwd, 'dbdoctor.json'), '{"thresholds":{"idle":"1m"}}');
    expect(loadConfigFile(undefined, { XDG_CONFIG_HOME: xdg, HOME: home }, cwd)?.path).toBe(join(cwd, 'dbdoctor.json'));
  });

  test('a file that is not JSON is a usage error naming the file', () => {
    const d = tmp();
    writeFileSync(join(d, 'dbdoctor.json'), '{ thresholds: ');
    expect(() => loadConfigFile(undefined, { HOME: d }, d)).toThrow(/dbdoctor.json is not valid JSON/);
  });
});
