/** The human report (verdict first, 80 columns, inert hostile text) and the nagios status line. */
import { describe, expect, test } from '@jest/globals';
import { Chalk } from 'chalk';
import { classifyConnectError } from '../../src/core/classify.js';
import { type DiagnoseFacts, type DiagnoseReport, diagnose } from '../../src/core/diagnose.js';
import { resolveThresholds } from '../../src/core/thresholds.js';
import { commandLines } from '../../src/core/printed.js';
import { perfItem, renderDiagnose, renderNagios, wrap } from '../../src/render/diagnose.js';
import { type FixtureName, fixture } from '../support/diagnose.js';
import { shellWords } from '../support/output.js';

const plain = new Chalk({ level: 0 });
const coloured = new Chalk({ level: 1 });
const LOW = resolveThresholds({ flags: { idle_in_transaction: '1s', client_wait: '1s', idle: '1s', idle_pool: '5' } });
const NAMES: FixtureName[] = ['seeds-000', 'seeds-000-pg14', 'lock-chain', 'same-statement', 'listeners', 'healthy-busy', 'unprivileged'];

function refused(): DiagnoseFacts {
  const f = fixture('healthy-busy');
  return {
    ...f,
    connect: { ok: false, failure: classifyConnectError({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5999' }, { host: '127.0.0.1', port: 5999, user: 'postgres', dbname: 'postgres', connectTimeoutMs: 5000, sslmode: 'prefer' }), ms: 2 },
    server: null,
    activity: null,
  };
}

const reports: Array<[string, DiagnoseReport]> = [...NAMES.map((n): [string, DiagnoseReport] => [n, diagnose(fixture(n), LOW)]), ['refused', diagnose(refused(), LOW)]];

describe('the human report', () => {
  test.each(reports)('%s: every line fits in 80 columns, by default and with --verbose', (_name, r) => {
    // Statements are printed whole, never broken (a break could fall inside a quoted name): the
    // terminal wraps them, and a copy of the line is the statement.
    const statements = r.findings.flatMap((f) => f.next.map((n) => n.sql)).filter((s): s is string => s !== null);
    for (const verbose of [false, true]) {
      for (const line of renderDiagnose(r, plain, { verbose }).split('\n')) {
        const whole = statements.some((s) => line.endsWith(` ${s}`));
        expect([...line].length <= 80 || whole ? '' : line).toBe('');
      }
    }
  });

  test.each(reports)('%s: by default, the verdict, the incident worst first in a few lines each, the settings advice gathered, what --verbose adds', (_name, r) => {
    const lines = renderDiagnose(r, plain).split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${(r.verdict === 'info' ? 'ok' : r.verdict).toUpperCase()} {2}\\S`));
    const serious = r.findings.filter((f) => ['critical', 'unknown', 'warning'].includes(f.severity));
    const incident = serious.filter((f) => !f.id.startsWith('setting-'));
    // Not connected, the one finding is shown whole (its cause is the answer), as --verbose does.
    const heads = lines.filter((l) => (r.connected ? /^(CRITICAL|UNKNOWN|WARNING|INFO|OK) [a-z-]+: / : /^(CRITICAL|UNKNOWN|WARNING|INFO|OK) [a-z-]+$/).test(l)).map((l) => l.split(':')[0]);
    expect(heads).toEqual(incident.map((f) => `${f.severity.toUpperCase()} ${f.id}`));
    if (!r.connected) expect(lines.join('\n')).toMatch(/^ {2}cause {5}/m);
    // Each finding in a few lines: head (title in at most 2 lines), one evidence line, the next command.
    const blocks = lines.join('\n').split('\n\n').filter((b) => /^(CRITICAL|UNKNOWN|WARNING) [a-z-]+: /.test(b));
    for (const b of blocks) {
      const ls = b.split('\n');
      const next = ls.findIndex((l) => l.startsWith('  next'));
      // What and evidence: at most 3 lines; then the next command (its continuation lines, if long).
      expect(next === -1 ? ls.length : next).toBeLessThanOrEqual(4);
      expect(ls.filter((l) => l.startsWith('  evidence')).length).toBeLessThanOrEqual(1);
    }
    const advice = serious.filter((f) => f.id.startsWith('setting-'));
    const text = lines.join('\n');
    if (advice.length) {
      expect(text.match(/^to prevent a repeat/gm)).toHaveLength(1);
      const section = text.slice(text.search(/^to prevent a repeat/m)).split('\n\n')[0]!;
      expect(section.split('\n')).toHaveLength(advice.length + 1);
    } else {
      expect(text).not.toMatch(/to prevent a repeat/);
    }
    // Settings statements, evidence tables and the path are behind --verbose.
    expect(text).not.toMatch(/path taken\n|who holds the connections|ALTER ROLE/);
    if (r.connected) expect(text.split('\n\n').at(-1)).toMatch(/^--verbose adds: [^\n]*$/);
  });

  test.each(reports)('%s: --verbose: the verdict comes first, then the findings from worst to best', (_name, r) => {
    const lines = renderDiagnose(r, plain, { verbose: true }).split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${r.verdict.toUpperCase()} {2}\\S`));
    const heads = lines.filter((l) => /^(CRITICAL|UNKNOWN|WARNING|INFO|OK) [a-z-]+$/.test(l)).map((l) => l.split(' ')[0]);
    const rank = { CRITICAL: 0, UNKNOWN: 1, WARNING: 2, INFO: 3, OK: 4 } as Record<string, number>;
    expect(heads.map((h) => rank[h!])).toEqual([...heads.map((h) => rank[h!]!)].sort((a, b) => a - b));
    expect(heads).toHaveLength(r.findings.length);
  });

  test('seeds/000: each finding shows its next command and its runbook', () => {
    const text = renderDiagnose(reports[0]![1], plain, { verbose: true });
    expect(text).toMatch(/^CRITICAL {2}26\/27 slots used/);
    expect(text).toContain('  next      dbdoctor terminate --state "idle in transaction" --app cloudvault');
    expect(text).toContain('  runbook   runbooks/leaks.md#unread-results  (dbdoctor runbook unread-results)');
    expect(text).toMatch(/who holds the connections/);
    expect(text).toMatch(/path taken\n {2}connect: yes → visibility: yes → capacity: critical/);
  });

  test('colour only when asked, and the severity label carries it', () => {
    expect(renderDiagnose(reports[0]![1], plain)).not.toMatch(/\u001b\[/);
    expect(renderDiagnose(reports[0]![1], coloured).split('\n')[0]).toContain('\u001b[31m');
  });

  test('hostile text from clients prints inert', () => {
    const f = fixture('seeds-000');
    for (const r of f.activity!.rows) {
      if (r.application_name === 'cloudvault') {
        r.application_name = 'evil\u001b]0;pwned\u0007\u001b[2J';
        r.query = `${r.query}\n\u001b[31mred\u202e`;
      }
    }
    const text = renderDiagnose(diagnose(f, LOW), plain);
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(text).toContain('evil');
  });

  test('long commands wrap with shell continuations, and still read back as the same command', () => {
    const argv = ['terminate', '--state', 'idle in transaction', '--app', 'a-rather-long-application-name', '--client', '10.120.33.201', '--older-than', '30s', '--max', '40'];
    const lines = commandLines(argv, 68);
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(68);
    for (const l of lines.slice(0, -1)) expect(l.endsWith(' \\')).toBe(true);
    expect(shellWords(lines.join('\n'))).toEqual(['dbdoctor', ...argv]);
  });

  test('wrap keeps words, and cuts only words longer than the line', () => {
    expect(wrap('a bb ccc dddd', 6)).toEqual(['a bb', 'ccc', 'dddd']);
    expect(wrap('x'.repeat(13), 5)).toEqual(['xxxxx', 'xxxxx', 'xxx']);
  });
});

describe('--format nagios', () => {
  const LINE = /^DBDOCTOR (OK|WARNING|CRITICAL|UNKNOWN): [^|\n]+ \| ([a-z_]+=-?[\d.]+(%|s)?(;-?[\d.]*){0,4})( [a-z_]+=-?[\d.]+(%|s)?(;-?[\d.]*){0,4})*$/;

  test.each(reports)('%s: one status line with performance data, status matching the verdict', (_name, r) => {
    const line = renderNagios(r);
    expect(line).toMatch(LINE);
    expect(line.split(' | ')[0]).toBe(`DBDOCTOR ${r.verdict === 'ok' ? 'OK' : r.verdict.toUpperCase()}: ${line.split(' | ')[0]!.split(': ').slice(1).join(': ')}`);
  });

  test('seeds/000: connections against the ordinary slots, with warning and critical levels', () => {
    const line = renderNagios(reports[0]![1]);
    expect(line).toMatch(/^DBDOCTOR CRITICAL: 26\/27 slots used \(96\.3%\); 10 idle in transaction \(cloudvault\)/);
    expect(line).toContain(' | connections=26;22;25;0;27 connections_pct=96.3%;80;90;0;100 idle_in_transaction=10;;;0 oldest_idle_in_transaction=');
    expect(line).toMatch(/ oldest_idle_in_transaction=\d+(\.\d+)?s;1;300;0 unread_results=15;;;0 oldest_unread_result=\d+(\.\d+)?s;1;300;0 /);
    expect(line).toMatch(/ time=[\d.]+s;;;0$/);
  });

  test('an unreachable server is CRITICAL with the cause', () => {
    expect(renderNagios(reports.find(([n]) => n === 'refused')![1])).toMatch(/^DBDOCTOR CRITICAL: cannot connect: nothing listens on 127\.0\.0\.1:5999: the server is down, or the host or port is wrong \| time=[\d.]+s;;;0$/);
  });

  test('a pipe in the summary cannot break the performance data', () => {
    const r = { ...reports[0]![1], summary: 'a | b' };
    expect(renderNagios(r).split(' | ')[0]).toBe('DBDOCTOR CRITICAL: a / b');
  });

  test('performance items drop trailing empty fields and quote odd labels', () => {
    expect(perfItem({ name: 'x', value: 3, uom: '', warn: null, crit: null, min: 0, max: null })).toBe('x=3;;;0');
    expect(perfItem({ name: 'wait', value: 1.23456, uom: 's', warn: 1, crit: 30, min: 0, max: null })).toBe('wait=1.235s;1;30;0');
    expect(perfItem({ name: 'odd name', value: 1, uom: '', warn: null, crit: null, min: null, max: null })).toBe("'odd name'=1");
  });
});
