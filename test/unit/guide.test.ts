import { describe, expect, test } from '@jest/globals';
import { parseDbnameArg } from '../../src/core/conninfo.js';
import {
  actionableFindings,
  connectionArgs,
  coveredByEarlier,
  findingActions,
  flagsFromAnswer,
  type GuideFinding,
  recommendedTerminations,
  targetGiven,
} from '../../src/core/guide.js';
import { shellCommand } from '../../src/core/printed.js';
import type { Target } from '../../src/core/target.js';
import { shellWords } from '../support/output.js';

const ALL = new Set(['check', 'connections', 'locks', 'queries', 'diagnose', 'terminate', 'runbook', 'guide', 'demo']);

function finding(over: Partial<Omit<GuideFinding, 'next'>> & { next?: string[] }): GuideFinding {
  const { next = [], ...rest } = over;
  // Steps as diagnose gives them: words, and for a dbdoctor command its text and argv.
  const steps = next.map((line, i) => {
    const argv = line.startsWith('dbdoctor ') ? shellWords(line).slice(1) : null;
    return { text: `step ${i}`, command: argv ? line : null, argv };
  });
  return { id: 'x', severity: 'warning', title: 't', runbook: null, ...rest, next: steps };
}

describe('the printed command', () => {
  test('quotes what needs quoting, and a shell reads back the argv', () => {
    const argv = ['terminate', '--state', 'idle in transaction', '--app', 'files-api', '--query', 'a "b" $c'];
    const text = shellCommand(argv)!;
    expect(text).toBe(`dbdoctor terminate --state "idle in transaction" --app files-api --query 'a "b" $c'`);
    expect(shellWords(text).slice(1)).toEqual(argv);
  });

  test('a step whose words cannot be shown exactly is not offered', () => {
    const f: GuideFinding = { id: 'x', severity: 'warning', title: 't', runbook: null, next: [{ text: 'x', command: null, argv: ['connections', '--app', 'a\u202eb'] }] };
    expect(findingActions(f, ALL).map((a) => a.command)).toEqual([]);
  });
});

describe('findingActions', () => {
  test('inspections first, then the clean-up, then the runbook; flags that change the step are dropped', () => {
    const f = finding({
      id: 'leak.idle_in_transaction',
      next: [
        'dbdoctor terminate --state "idle in transaction" --app files-api --older-than 2s --yes',
        'dbdoctor connections --app files-api --list',
        'dbdoctor diagnose',
        'Fix the code path that forgets COMMIT.',
      ],
      runbook: 'idle-in-transaction',
    });
    const actions = findingActions(f, ALL);
    expect(actions.map((a) => [a.kind, a.command])).toEqual([
      ['inspect', 'dbdoctor connections --app files-api --list'],
      ['terminate', 'dbdoctor terminate --state "idle in transaction" --app files-api --older-than 2s'],
      ['runbook', 'dbdoctor runbook idle-in-transaction'],
    ]);
    expect(actions.find((a) => a.kind === 'terminate')!.destructive).toBe(true);
  });

  test('a default inspection when the finding names none; commands this build lacks are left out', () => {
    expect(findingActions(finding({ id: 'blocking.root' }), ALL).map((a) => a.command)).toEqual(['dbdoctor locks']);
    expect(findingActions(finding({ id: 'capacity' }), ALL).map((a) => a.command)).toEqual(['dbdoctor connections']);
    expect(findingActions(finding({ id: 'slow.same_statement' }), ALL).map((a) => a.command)).toEqual(['dbdoctor queries --group']);
    const few = new Set(['terminate']);
    expect(findingActions(finding({ id: 'blocking', next: ['dbdoctor terminate --blockers'], runbook: 'blocking-locks' }), few).map((a) => a.command)).toEqual([
      'dbdoctor terminate --blockers',
    ]);
  });
});

describe('actionableFindings and recommendedTerminations', () => {
  const findings = [
    finding({ id: 'a', severity: 'ok', next: ['dbdoctor terminate --pid 1'] }),
    finding({ id: 'b', severity: 'warning', next: ['dbdoctor terminate --state idle --app x --older-than 1m'] }),
    finding({ id: 'c', severity: 'critical', next: ['dbdoctor terminate --blockers', 'dbdoctor locks'] }),
    finding({ id: 'd', severity: 'info', next: ['dbdoctor terminate --pid 9'] }),
    finding({ id: 'e', severity: 'critical', next: ['dbdoctor terminate --blockers --dry-run'] }),
  ];

  test('worst first, ok left out', () => {
    expect(actionableFindings(findings).map((f) => f.id)).toEqual(['c', 'e', 'b', 'd']);
  });

  test('the terminates of critical and warning findings, worst first, each once, without --dry-run', () => {
    expect(recommendedTerminations(findings)).toEqual([
      ['terminate', '--blockers'],
      ['terminate', '--state', 'idle', '--app', 'x', '--older-than', '1m'],
    ]);
  });
});

describe('targets', () => {
  test('targetGiven: options or environment', () => {
    expect(targetGiven({}, {})).toBe(false);
    expect(targetGiven({}, { PGUSER: '' })).toBe(false);
    expect(targetGiven({ host: 'db1' }, {})).toBe(true);
    expect(targetGiven({}, { DATABASE_URL: 'postgres://x@y/z' })).toBe(true);
    expect(targetGiven({}, { PGSERVICE: 'prod' })).toBe(true);
  });

  test('flagsFromAnswer: URL, conninfo, host, host:port, [v6]:port', () => {
    expect(flagsFromAnswer('postgres://u@h/db')).toEqual({ dbname: 'postgres://u@h/db' });
    expect(flagsFromAnswer('host=db1 dbname=app')).toEqual({ dbname: 'host=db1 dbname=app' });
    expect(flagsFromAnswer(' db1 ')).toEqual({ host: 'db1' });
    expect(flagsFromAnswer('db1:6432')).toEqual({ host: 'db1', port: '6432' });
    expect(flagsFromAnswer('[::1]:5433')).toEqual({ host: '::1', port: '5433' });
  });

  test('connectionArgs: one conninfo string that parses back to the same target', () => {
    const t: Target = {
      host: '/var/run/postgresql',
      port: 5433,
      user: "o'brien",
      dbname: 'app db',
      password: "p'w\\x",
      sslmode: 'verify-full',
      sslrootcert: '/etc/ca.pem',
      connectTimeoutMs: 2500,
      service: undefined,
      options: "-c search_path='a b'",
    };
    const args = connectionArgs(t);
    expect(args[0]).toBe('-d');
    expect(args.slice(2)).toEqual(['--connect-timeout', '2500ms']);
    expect(parseDbnameArg(args[1]!)).toEqual({
      host: '/var/run/postgresql',
      port: '5433',
      user: "o'brien",
      dbname: 'app db',
      password: "p'w\\x",
      sslmode: 'verify-full',
      sslrootcert: '/etc/ca.pem',
      options: "-c search_path='a b'",
    });
  });
});

describe('coveredByEarlier', () => {
  test('only a pid-only terminate whose pids were all ended already', () => {
    const ended = new Set([1, 2, 3]);
    expect(coveredByEarlier(['terminate', '--pid', '1,2'], ended)).toBe(true);
    expect(coveredByEarlier(['terminate', '--pid=3', '--cancel-first'], ended)).toBe(true);
    expect(coveredByEarlier(['terminate', '--pid', '1,4'], ended)).toBe(false);
    expect(coveredByEarlier(['terminate', '--pid', '1', '--state', 'idle'], ended)).toBe(false);
    expect(coveredByEarlier(['terminate', '--blockers'], ended)).toBe(false);
  });
});
