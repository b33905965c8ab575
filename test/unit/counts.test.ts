/**
 * Counts agree in number: "1 session", "2 sessions", "terminate this session", never "(s)" and
 * never "1 sessions" or "2 session". Over the helpers, and over the message builders with counts
 * 0, 1 and 2: every text of every recorded diagnose report (titles, summaries, evidence, steps,
 * the path), terminate's summaries and question, and the nagios line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { confirmQuestion } from '../../src/commands/terminate.js';
import { isAre, noun, plural, these } from '../../src/core/count.js';
import type { DiagnoseReport } from '../../src/core/diagnose.js';
import { type OutcomeCounts, terminateSummary, type TerminateStatus } from '../../src/core/terminate.js';
import { renderNagios } from '../../src/render/diagnose.js';
import { type ConsoleFacts, joinPooler, pgbouncerReport } from '../../src/core/pgbouncer.js';
import { fleetReport } from '../../src/core/fleet.js';

const NOUNS = ['server connection', 'server session', 'pool', 'target', 'PgBouncer instance', 'session', 'table', 'group', 'query', 'scan', 'row', 'application', 'limit', 'blocker', 'result set', 'finding', 'warning', 'waiter', 'lock cycle', 'slot', 'statement', 'role', 'transaction', 'connection limit', 'setting', 'pid'];
const PLURALS: Record<string, string> = { query: 'queries' };
const pl = (n: string) => PLURALS[n] ?? `${n}s`;

/** What disagrees in number in `text`: "(s)", "1 <plural>", "<n != 1> <singular>". */
function disagreements(text: string): string[] {
  const bad: string[] = [];
  if (/\w\(s\)/.test(text)) bad.push(`"(s)" in: ${text}`);
  for (const n of NOUNS) {
    const one = new RegExp(`(?<![\\d.,:/])\\b1 (?:more )?${pl(n)}\\b`);
    const many = new RegExp(`(?<![\\d.,:/-])\\b(?:0|[2-9]|\\d{2,}) (?:more )?${n}\\b(?!s|-)`);
    if (one.test(text)) bad.push(`"1 ${pl(n)}" in: ${text}`);
    if (many.test(text)) bad.push(`"n ${n}" in: ${text}`);
  }
  if (/\bthese 1 /.test(text)) bad.push(`"these 1" in: ${text}`);
  return bad;
}

function strings(x: unknown, out: string[] = []): string[] {
  if (typeof x === 'string') out.push(x);
  else if (Array.isArray(x)) for (const v of x) strings(v, out);
  else if (x && typeof x === 'object') for (const v of Object.values(x)) strings(v, out);
  return out;
}

describe('the helpers, with 0, 1 and 2', () => {
  test.each([
    [0, '0 sessions', 'sessions', 'no sessions', 'are'],
    [1, '1 session', 'session', 'this session', 'is'],
    [2, '2 sessions', 'sessions', 'these 2 sessions', 'are'],
  ])('%i', (n, p, nn, t, v) => {
    expect(plural(n, 'session')).toBe(p);
    expect(noun(n, 'session')).toBe(nn);
    expect(these(n, 'session')).toBe(t);
    expect(isAre(n)).toBe(v);
    expect(plural(n, 'query', 'queries')).toBe(`${n} ${n === 1 ? 'query' : 'queries'}`);
  });
  test('the checker itself finds what it should', () => {
    expect(disagreements('terminate exactly these 1 session')).not.toEqual([]);
    expect(disagreements('1 more group(s), 5 in all')).not.toEqual([]);
    expect(disagreements('1 sessions idle')).not.toEqual([]);
    expect(disagreements('2 session idle')).not.toEqual([]);
    expect(disagreements('1 session, 2 sessions, 1 query, 3 queries, 10000+ rows, 95.5% slots, 2s')).toEqual([]);
  });
});

describe('the message builders agree in number', () => {
  const dir = new URL('fixtures/diagnose/reports/', import.meta.url);
  const reports = readdirSync(dir).filter((f) => f.endsWith('.json'));

  test.each(reports.map((f) => [f] as const))('diagnose report %s: every text, and the nagios line', (file) => {
    const r = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as DiagnoseReport;
    const bad = [...strings({ findings: r.findings, path: r.path, summary: r.summary }), renderNagios(r)].flatMap(disagreements);
    expect(bad).toEqual([]);
  });

  const statuses: TerminateStatus[] = ['nothing_to_do', 'dry_run', 'over_max', 'not_confirmed', 'done', 'partly_done', 'not_done'];
  test.each([0, 1, 2])('terminate summaries and the question with %i', (n) => {
    const counts: OutcomeCounts = { planned: n, attempted: n, done: n, terminated: n, cancelled: n, changed: n, gone: n, permission_denied: n, failed: n, not_attempted: n };
    const texts = statuses.map((s) => terminateSummary(s, { planned: n, max: 1, counts, reason: 'answered_no', hidden: n }));
    for (let c = 0; c <= n; c++) texts.push(confirmQuestion(n, c, 5000, 'postgres://db1/app'));
    expect(texts.flatMap(disagreements)).toEqual([]);
  });

  test.each([0, 1, 2])("PgBouncer's findings, the join and the fleet summary with %i", (n) => {
    const facts: ConsoleFacts = {
      version: 'PgBouncer 1.18.0',
      pools: [{ database: 'app', user: 'api', cl_active: n, cl_waiting: n, sv_active: n, sv_idle: 0, sv_used: 0, sv_tested: 0, sv_login: 0, maxwait: n, maxwait_us: 0, pool_mode: 'transaction' }],
      databases: [{ name: 'app', pool_size: n, max_connections: 0 }],
      users: [],
      config: [
        { key: 'max_client_conn', value: String(n) },
        { key: 'default_pool_size', value: String(n) },
        { key: 'query_wait_timeout', value: '0' },
        { key: 'idle_transaction_timeout', value: '0' },
      ],
      clients: Array.from({ length: n }, () => ({ database: 'app', user: 'api', state: 'waiting', application_name: 'w' })),
      servers: Array.from({ length: n }, (_, i) => ({ database: 'app', user: 'api', remote_pid: 100 + i, local_port: 4000 + i })),
    };
    const rows = Array.from({ length: n }, (_, i) => ({ pid: 100 + i, state: 'idle in transaction', application_name: 'w', client_port: 4000 + i, xact_age_ms: 1000, wait_event_type: null, wait_event: null, blocked_by: null }));
    const report = pgbouncerReport(facts, 'console', 'args');
    const join = joinPooler(facts, 'console', 'args', rows, 1, Math.max(1, n));
    const fleet = fleetReport(
      Array.from({ length: n }, (_, i) => ({ name: `t${i}`, ms: 1, report: { verdict: i === 0 ? 'critical' : 'ok' } as DiagnoseReport })),
      1,
      1,
    );
    expect([...strings({ report, join }), fleet.summary].flatMap(disagreements)).toEqual([]);
  });

  test('the question says plainly what happens', () => {
    expect(confirmQuestion(9, 9, 5000, 'X')).toBe('Cancel the queries of 9 sessions, then terminate those still running after 5s on X?');
    expect(confirmQuestion(1, 1, 5000, 'X')).toBe('Cancel the query of 1 session, then terminate it if still running after 5s on X?');
    expect(confirmQuestion(3, 0, 5000, 'X')).toBe('Terminate 3 sessions on X?');
    expect(confirmQuestion(1, 0, 5000, 'X')).toBe('Terminate 1 session on X?');
    expect(confirmQuestion(3, 1, 5000, 'X')).toBe('Terminate 2 sessions, and cancel the query of 1 session, then terminate it if still running after 5s, on X?');
  });
});
