/**
 * `dbdoctor diagnose` as a user and a monitor run it: the built binary against real incidents,
 * in text, --json (validated against schema/diagnose.schema.json every time) and --format nagios,
 * with the documented exit codes; thresholds from a config file; the recommended clean-up run as
 * printed, then diagnose again; `dbdoctor runbook`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import type { DiagnoseReport } from '../../src/core/diagnose.js';
import { THRESHOLD_DEFS } from '../../src/core/thresholds.js';
import { freePort } from '../../src/db/embedded.js';
import { type CliResult, expectNoStackTrace, parseJson, runCli } from '../support/cli.js';
import { expectValidDiagnoseDoc, findingOf, mustFind } from '../support/diagnose.js';
import { busyWorkload, dbdoctorSessionsLeft, type Incident, idleInTransaction, idleSessions, longQueries, unreadCursor, waitFor } from '../support/incidents.js';
import { connectionsOpenedBy, LOG_CONNECTIONS, ROLE_PASSWORD, type TestServer, useServer } from '../support/server.js';

const server = useServer({ settings: { ...LOG_CONNECTIONS, max_connections: 40, superuser_reserved_connections: 3 } });

const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-diag-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CONFIG = join(dir, 'incident.json');
writeFileSync(CONFIG, JSON.stringify({ thresholds: { capacity_warn: 80 }, environments: { incident: { thresholds: { idle_in_transaction: '1s', client_wait: '1s', long_query: '1s' } } } }));
/** terminate keeps its audit log and lock in the state directory: a temporary one here. */
const ENV = { XDG_STATE_HOME: join(dir, 'state'), XDG_CONFIG_HOME: join(dir, 'no-config') };

interface Doc {
  schema: string;
  report: DiagnoseReport & { config: { file: string | null; environment: string | null } };
}

/** Parses and validates the one JSON document, and checks dbdoctor left no session behind. */
async function doc(r: CliResult, s?: TestServer): Promise<Doc> {
  expectNoStackTrace(r);
  const d = parseJson<Doc>(r);
  expectValidDiagnoseDoc(d);
  expect(d.report.exit_code).toBe(r.exitCode);
  if (s) expect(await dbdoctorSessionsLeft(s)).toBe(0);
  return d;
}

const NAGIOS = /^DBDOCTOR (OK|WARNING|CRITICAL|UNKNOWN): [^|\n]+ \| [a-z_]+=[^ ]+( [a-z_]+=[^ ]+)*\n?$/;

async function aged(s: TestServer, pids: number[], ms = 1200): Promise<void> {
  await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND clock_timestamp() - state_change >= $2 * interval '1 millisecond'`, [pids, ms], (rows) => rows[0]?.n === pids.length);
}

describe("seeds/000's incident, end to end", () => {
  test('critical findings with the exact clean-up; running it as printed clears the incident', async () => {
    const s = server();
    const made: Incident[] = [];
    const make = async (i: Promise<Incident>) => {
      const x = await i;
      made.push(x);
      return x;
    };
    try {
      const filler = await make(idleSessions(s, 10, { app: 'other-service', user: 'other_user' }));
      const cursors = await make(unreadCursor(s, 15, { app: 'cloudvault', user: 'app_user' }));
      const iit = await make(idleInTransaction(s, 10, { app: 'cloudvault', user: 'app_user' }, 'SELECT count(*) FROM pg_class WHERE relkind = $$r$$'));
      await aged(s, [...cursors.pids, ...iit.pids]);
      const args = ['diagnose', '-d', s.url(), '--config', CONFIG, '--environment', 'incident'];

      let json!: CliResult;
      const opened = await connectionsOpenedBy(s, async () => {
        json = await runCli([...args, '--json'], { env: ENV });
      });
      expect(opened).toBe(1);
      expect(json.exitCode).toBe(2);
      const d = await doc(json, s);
      expect(d.schema).toBe('dbdoctor.diagnose');
      expect(d.report.config).toEqual({ file: CONFIG, environment: 'incident' });
      expect(d.report.thresholds.idle_in_transaction_ms).toBe(1000);
      expect(mustFind(d.report, 'capacity').severity).toBe('critical');
      const unread = mustFind(d.report, 'unread-results');
      expect(unread.evidence.pids).toEqual([...cursors.pids].sort((a, b) => a - b));
      const leak = mustFind(d.report, 'idle-in-transaction');
      expect(leak.evidence.pids).toEqual([...iit.pids].sort((a, b) => a - b));
      expect(json.stdout + json.stderr).not.toContain(s.password);

      const nagios = await runCli([...args, '--format', 'nagios'], { env: ENV });
      expect(nagios.exitCode).toBe(2);
      expect(nagios.stdout).toMatch(NAGIOS);
      expect(nagios.stdout).toMatch(/^DBDOCTOR CRITICAL: \d+\/37 slots used/);
      expect(nagios.stdout).toMatch(/ idle_in_transaction=10;;;0 oldest_idle_in_transaction=[\d.]+s;1;300;0 unread_results=15;;;0 /);

      const human = await runCli([...args], { env: ENV });
      expect(human.exitCode).toBe(2);
      const lines = human.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^CRITICAL {2}\d+\/37 slots used/);
      // Statements are printed whole (never broken inside a quoted name); everything else fits.
      for (const l of lines) expect([...l].length <= 80 || /^ {2}(next {6}| {10})(ALTER|GRANT|SELECT|COMMIT|ROLLBACK) /.test(l) ? '' : l).toBe('');
      expect(human.stdout).toContain('dbdoctor terminate --state "idle in transaction" --app cloudvault');

      // Run the clean-ups exactly as diagnose printed them (argv), then diagnose again.
      for (const f of [leak, unread]) {
        const argv = f.next.find((n) => n.argv?.[0] === 'terminate')!.argv!;
        const t = await runCli([...argv, '-d', s.url(), '--yes', '--json'], { env: ENV });
        expect([argv.join(' '), t.exitCode]).toEqual([argv.join(' '), 0]);
      }
      const after = await doc(await runCli([...args, '--json'], { env: ENV }), s);
      expect(findingOf(after.report, 'idle-in-transaction')).toBeUndefined();
      expect(findingOf(after.report, 'unread-results')).toBeUndefined();
      expect(mustFind(after.report, 'capacity').severity).toBe('ok');
      // The other service's sessions were not touched.
      const [alive] = await s.sql<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1)', [filler.pids]);
      expect(alive!.n).toBe(10);
    } finally {
      for (const x of made) await x.release();
    }
  });
});

describe('exit codes 0, 1, 2, 3 and the nagios line', () => {
  test('a healthy, busy server: 0, OK, no warning or critical finding', async () => {
    const s = server();
    const load = await busyWorkload(s, { app: 'web', user: 'app_user', clients: 5 });
    try {
      await waitFor(s, 'SELECT 1 AS one', [], () => load.committed() >= 100, 20_000);
      const r = await runCli(['diagnose', '--json', '-d', s.url()], { env: ENV });
      expect(r.exitCode).toBe(0);
      const d = await doc(r, s);
      expect(d.report.verdict).toBe('ok');
      expect(d.report.findings.filter((f) => ['warning', 'critical', 'unknown'].includes(f.severity))).toEqual([]);
      const n = await runCli(['diagnose', '--format', 'nagios', '-d', s.url()], { env: ENV });
      expect(n.exitCode).toBe(0);
      expect(n.stdout).toMatch(NAGIOS);
      expect(n.stdout).toMatch(/^DBDOCTOR OK: no problems found: \d+ of 37 ordinary slots in use/);
    } finally {
      await load.stop();
    }
  });

  test('a long query: 1, WARNING', async () => {
    const s = server();
    const q = await longQueries(s, 1, { app: 'report', user: 'app_user' });
    try {
      await aged(s, q.pids);
      const r = await runCli(['diagnose', '--json', '-d', s.url(), '--long-query', '1s'], { env: ENV });
      expect(r.exitCode).toBe(1);
      const d = await doc(r, s);
      expect(d.report.verdict).toBe('warning');
      expect(mustFind(d.report, 'long-queries').evidence.pids).toEqual(q.pids);
      const n = await runCli(['diagnose', '--format', 'nagios', '-d', s.url(), '--long-query', '1s'], { env: ENV });
      expect(n.exitCode).toBe(1);
      expect(n.stdout).toMatch(/^DBDOCTOR WARNING: 1 long query, longest \d+s/);
      expect(n.stdout).toMatch(NAGIOS);
    } finally {
      await q.release();
    }
  });

  test('a server that is down: 2, CRITICAL, with the cause, in --json and --format nagios', async () => {
    const port = String(await freePort());
    const j = await runCli(['diagnose', '--json', '-h', '127.0.0.1', '-p', port, '-U', 'postgres'], { env: ENV });
    expect(j.exitCode).toBe(2);
    const d = await doc(j);
    expect(d.report).toMatchObject({ verdict: 'critical', connected: false, server: null });
    expect(mustFind(d.report, 'connect')).toMatchObject({ severity: 'critical', runbook: 'runbooks/cannot-connect.md#refused' });
    const n = await runCli(['diagnose', '--format', 'nagios', '-h', '127.0.0.1', '-p', port, '-U', 'postgres'], { env: ENV });
    expect(n.exitCode).toBe(2);
    expect(n.stdout).toMatch(NAGIOS);
    expect(n.stdout).toMatch(new RegExp(`^DBDOCTOR CRITICAL: cannot connect: nothing listens on 127\\.0\\.0\\.1:${port}`));
    const h = await runCli(['diagnose', '-h', '127.0.0.1', '-p', port], { env: ENV });
    expect(h.exitCode).toBe(2);
    expect(h.stdout.split('\n')[0]).toMatch(/^CRITICAL {2}cannot connect: nothing listens/);
    expectNoStackTrace(h);
  });

  test("a wrong password: 3, UNKNOWN (dbdoctor's own credentials), and the password is never printed", async () => {
    const s = server();
    const wrong = 'Wrong-pw-42';
    const j = await runCli(['diagnose', '--json', '-d', s.url({ password: wrong })], { env: ENV });
    expect(j.exitCode).toBe(3);
    const d = await doc(j);
    expect(mustFind(d.report, 'connect')).toMatchObject({ severity: 'unknown', runbook: 'runbooks/cannot-connect.md#auth' });
    expect(d.report.summary).toMatch(/password authentication failed for user "postgres"/);
    const n = await runCli(['diagnose', '--format', 'nagios', '-h', s.host, '-p', String(s.port), '-U', 'postgres'], { env: { ...ENV, PGPASSWORD: wrong } });
    expect(n.exitCode).toBe(3);
    expect(n.stdout).toMatch(/^DBDOCTOR UNKNOWN: cannot connect: password authentication failed/);
    expect(n.stdout).toMatch(NAGIOS);
    for (const out of [j.stdout, j.stderr, n.stdout, n.stderr]) expect(out).not.toContain(wrong);
  });

  test('a role without monitoring privileges, on a server with an incident: 3, never OK', async () => {
    const s = server();
    const iit = await idleInTransaction(s, 4, { app: 'worker', user: 'other_user' });
    try {
      const url = s.url({ user: 'app_user', password: ROLE_PASSWORD });
      const j = await runCli(['diagnose', '--json', '-d', url], { env: ENV });
      expect(j.exitCode).toBe(3);
      const d = await doc(j, s);
      expect(mustFind(d.report, 'visibility').evidence.sessions).toBeGreaterThanOrEqual(4);
      const n = await runCli(['diagnose', '--format', 'nagios', '-d', url], { env: ENV });
      expect(n.exitCode).toBe(3);
      expect(n.stdout).toMatch(/^DBDOCTOR UNKNOWN: partial view, \d+ sessions hidden/);
      const h = await runCli(['diagnose', '-d', url], { env: ENV });
      expect(h.stdout).toContain('GRANT pg_monitor TO "app_user";');
      const v = await runCli(['diagnose', '--verbose', '-d', url], { env: ENV });
      expect(v.stdout).toContain('GRANT pg_monitor TO "app_user";');
      expect(v.stdout).toContain('dbdoctor diagnose -U postgres');
    } finally {
      await iit.release();
    }
  });
});

describe('usage', () => {
  test('bad flags and config files: 64 with one line and a hint, no stack trace', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"thresholds": {"idle_in_transactoin": "1m"}}');
    for (const [args, re] of [
      [['--format', 'xml'], /unknown --format "xml"/],
      [['--capacity-warn', '200'], /invalid --capacity-warn/],
      [['--config', join(dir, 'missing.json')], /cannot read the config file/],
      [['--config', bad], /unknown threshold "idle_in_transactoin"/],
      [['--environment', 'prod', '--config', CONFIG], /no environment "prod"/],
    ] as const) {
      const r = await runCli(['diagnose', ...args, '-h', '127.0.0.1'], { env: ENV });
      expect([args.join(' '), r.exitCode]).toEqual([args.join(' '), 64]);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).toMatch(/\nhint: /);
      expectNoStackTrace(r);
    }
  });

  test('--help documents every threshold with its default', async () => {
    const r = await runCli(['diagnose', '--help']);
    expect(r.exitCode).toBe(0);
    for (const d of THRESHOLD_DEFS) expect(r.stdout).toContain(d.flag);
    // Descriptions are wrapped at the terminal's width: read them with the wrapping undone.
    expect(r.stdout.replace(/\s+/g, ' ')).toContain('--idle-in-transaction <duration> sessions idle in transaction this long are a leak signature (warning) (default 30s)');
    expect(r.stdout).toMatch(/--format <format>/);
  });
});

describe('dbdoctor runbook', () => {
  test('lists the runbooks, prints a section for a node id, plain when stdout is not a terminal', async () => {
    const list = await runCli(['runbook']);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toMatch(/^Runbooks/);
    for (const id of ['cannot-connect', 'out-of-slots', 'leaks', 'blocking-locks', 'slow-queries', 'settings']) expect(list.stdout).toContain(`  ${id}`);
    const section = await runCli(['runbook', 'unread-results'], { env: { PAGER: '/nonexistent/pager' } });
    expect(section.exitCode).toBe(0);
    expect(section.stdout.split('\n')[0]).toBe('## Results never read to the end');
    expect(section.stdout).toContain('(from runbooks/leaks.md#unread-results; the whole runbook: dbdoctor runbook leaks)');
    const unknown = await runCli(['runbook', 'nope']);
    expect(unknown.exitCode).toBe(64);
    expect(unknown.stderr).toMatch(/no runbook or section "nope"/);
  });
});
