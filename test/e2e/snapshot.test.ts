/**
 * `dbdoctor snapshot` and `--from`, with the built binary on a real incident: the snapshot holds
 * everything diagnose reads (validated against schema/snapshot.schema.json), other clients'
 * secrets masked, and `diagnose --from` gives the live diagnosis's findings (ids, severities,
 * pids); `connections`, `locks` and `queries --from` give the live views' answers; a bad file is a
 * usage error before anything else.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import type { DiagnoseFacts, DiagnoseReport } from '../../src/core/diagnose.js';
import { type CliResult, expectNoStackTrace, parseJson, runCli } from '../support/cli.js';
import { expectValidDiagnoseDoc } from '../support/diagnose.js';
import { dbdoctorSessionsLeft, type Incident, idleInTransaction, idleSessions, lockChain, sorted, unreadCursor, waitFor } from '../support/incidents.js';
import { expectValidLocksDoc, expectValidSnapshotDoc } from '../support/schemas.js';
import { connectionsOpenedBy, LOG_CONNECTIONS, type TestServer, useServer } from '../support/server.js';

const server = useServer({ settings: { ...LOG_CONNECTIONS, max_connections: 50 } });

const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-snapshot-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CONFIG = join(dir, 'incident.json');
writeFileSync(CONFIG, JSON.stringify({ environments: { incident: { thresholds: { idle_in_transaction: '1s', client_wait: '1s', long_query: '1s' } } } }));
const ENV = { XDG_CONFIG_HOME: join(dir, 'no-config') };
const SECRET = 'Sekr1t-9q-snapshot';

async function aged(s: TestServer, pids: number[], ms = 1200): Promise<void> {
  await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND clock_timestamp() - state_change >= $2 * interval '1 millisecond'`, [pids, ms], (rows) => rows[0]?.n === pids.length);
}

/** What must be the same between two diagnoses of one incident. */
function essence(r: DiagnoseReport) {
  return { verdict: r.verdict, findings: r.findings.map((f) => ({ id: f.id, severity: f.severity, pids: sorted(f.evidence.pids) })) };
}

function diagnoseDoc(r: CliResult): DiagnoseReport {
  expectNoStackTrace(r);
  const d = parseJson<{ report: DiagnoseReport }>(r);
  expectValidDiagnoseDoc(d);
  expect(d.report.exit_code).toBe(r.exitCode);
  return d.report;
}

describe('snapshot, then --from, on a real incident', () => {
  test('diagnose --from equals the live diagnose; the views agree; secrets are masked; one connection, none with --from', async () => {
    const s = server();
    const made: Incident[] = [];
    try {
      made.push(await idleSessions(s, 8, { app: 'web-pool' }));
      const iit = await idleInTransaction(s, 6, { app: 'worker' }, `SELECT 'host=db1 password=${SECRET}' AS dsn`);
      made.push(iit);
      const cursors = await unreadCursor(s, 3, { app: 'reports' });
      made.push(cursors);
      const chain = await lockChain(s, { app: 'locker' });
      made.push(chain);
      // every session past the thresholds of this run (1s, and diagnose's lock_wait 1s) before either run reads
      await aged(s, [...iit.pids, ...cursors.pids, ...chain.pids]);
      const conf = ['--config', CONFIG, '--environment', 'incident'];

      let snap!: CliResult;
      const opened = await connectionsOpenedBy(s, async () => {
        snap = await runCli(['snapshot', '-d', s.url(), ...conf], { env: ENV });
      });
      expect(opened).toBe(1);
      expectNoStackTrace(snap);
      expect(snap.exitCode).toBe(0);
      expect(snap.stdout + snap.stderr).not.toContain(SECRET);
      expect(snap.stdout + snap.stderr).not.toContain(s.password);
      const doc = parseJson<{ schema: string; report: DiagnoseFacts }>(snap);
      expectValidSnapshotDoc(doc);
      expect(doc.schema).toBe('dbdoctor.snapshot');
      const worker = doc.report.activity?.rows.filter((r) => r.application_name === 'worker') ?? [];
      expect(sorted(worker.map((r) => r.pid))).toEqual(sorted(iit.pids));
      for (const r of worker) expect(r.query).toContain('password=***');
      expect(doc.report.settings?.settings.length).toBeGreaterThan(0);
      expect(doc.report.server?.max_connections).toBe(50);
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
      const file = join(dir, 'incident.json.snapshot');
      writeFileSync(file, snap.stdout);

      const live = diagnoseDoc(await runCli(['diagnose', '-d', s.url(), ...conf, '--json'], { env: ENV }));
      let fromRun!: CliResult;
      const openedFrom = await connectionsOpenedBy(s, async () => {
        fromRun = await runCli(['diagnose', '--from', file, ...conf, '--json'], { env: ENV });
      });
      expect(openedFrom).toBe(0);
      const from = diagnoseDoc(fromRun);
      expect(essence(from)).toEqual(essence(live));
      expect(from.findings.map((f) => f.id)).toEqual(expect.arrayContaining(['idle-in-transaction', 'unread-results', 'blocking']));
      expect(from.findings.find((f) => f.id === 'idle-in-transaction')?.evidence.pids).toEqual(expect.arrayContaining(iit.pids));
      expect(fromRun.stdout).not.toContain(SECRET);
      // the text view, from the file
      const text = await runCli(['diagnose', '--from', file, ...conf], { env: ENV });
      expectNoStackTrace(text);
      expect(text.exitCode).toBe(live.exit_code);
      expect(text.stdout).toContain('worker');
      // --verbose from the file, as live: every finding in full, so nothing left for "--verbose adds"
      expect(text.stdout).toContain('--verbose adds');
      const verbose = await runCli(['diagnose', '--from', file, ...conf, '--verbose'], { env: ENV });
      expectNoStackTrace(verbose);
      expect(verbose.stdout).not.toContain('--verbose adds');
      expect(verbose.stdout.split('\n').length).toBeGreaterThan(text.stdout.split('\n').length);

      // locks: the same roots and waiters as the live view
      const locksLive = parseJson<{ report: { roots: Array<{ pid: number; blocks_all: number[] }> } }>(await runCli(['locks', '-d', s.url(), '--json'], { env: ENV }));
      const locksFromRun = await runCli(['locks', '--from', file, '--json'], { env: ENV });
      expectNoStackTrace(locksFromRun);
      const locksFrom = parseJson<{ report: { roots: Array<{ pid: number; blocks_all: number[] }>; status: string } }>(locksFromRun);
      expectValidLocksDoc(locksFrom);
      expect(locksFrom.report.roots.map((r) => [r.pid, sorted(r.blocks_all)])).toEqual(locksLive.report.roots.map((r) => [r.pid, sorted(r.blocks_all)]));
      expect(locksFrom.report.roots.map((r) => r.pid)).toContain(chain.blocker);

      // connections: the same groups (the live run counts its own session, as the snapshot did)
      type Conn = { report: { capacity: { client_backends: number }; groups: Array<{ app?: string; state?: string; count: number }> } };
      const shape = (c: Conn) => c.report.groups.map((g) => `${g.app}/${g.state}/${g.count}`).sort();
      const connLive = parseJson<Conn>(await runCli(['connections', '-d', s.url(), '--json'], { env: ENV }));
      const connFromRun = await runCli(['connections', '--from', file, '--json'], { env: ENV });
      expectNoStackTrace(connFromRun);
      const connFrom = parseJson<Conn>(connFromRun);
      expect(connFrom.report.capacity.client_backends).toBe(connLive.report.capacity.client_backends);
      expect(shape(connFrom)).toEqual(shape(connLive));
      expect(shape(connFrom)).toContain('worker/idle in transaction/6');

      // queries: the same idle-in-transaction sessions, filtered by application
      type Q = { report: Record<string, unknown> };
      const pidsIn = (q: Q) => JSON.stringify(q.report).match(/"pid":\d+/g)?.map((m) => Number(m.slice(6))) ?? [];
      const qFromRun = await runCli(['queries', '--from', file, '--app', 'worker', '--min-duration', '0s', '--json'], { env: ENV });
      expectNoStackTrace(qFromRun);
      expect(new Set(pidsIn(parseJson<Q>(qFromRun)))).toEqual(new Set(iit.pids));
      expect(qFromRun.stdout).not.toContain(SECRET);
    } finally {
      for (const m of made.reverse()) await m.release();
    }
  });
});

describe('--from: bad files and conflicts are usage errors', () => {
  const cases: Array<[string, string]> = [
    ['not json', '{"schema": '],
    ['another document', JSON.stringify({ schema: 'dbdoctor.diagnose', schema_version: 1, report: {} })],
    ['a newer version', JSON.stringify({ schema: 'dbdoctor.snapshot', schema_version: 99, report: {} })],
    ['a bad row', JSON.stringify({ schema: 'dbdoctor.snapshot', schema_version: 1, report: { target: 'x', connect: { ok: true, connect_ms: 1 }, server: null, limits: [], activity: { server_version_num: 170000, taken_at: 'x', database: 'd', rows: [{ pid: 'one' }], prepared: [] }, settings: null, statements: null, gather_error: null, unavailable: [], gather_ms: 1 } })],
  ];
  test.each(cases)('%s', async (_name, text) => {
    const file = join(dir, `bad-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, text);
    for (const cmd of ['diagnose', 'connections', 'locks', 'queries']) {
      const r = await runCli([cmd, '--from', file], { env: ENV });
      expectNoStackTrace(r);
      expect(r.exitCode).toBe(64);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^dbdoctor: .*\nhint: /);
    }
  });

  test('a missing file, a directory, and connection options with --from', async () => {
    for (const args of [['--from', join(dir, 'nope.json')], ['--from', dir], ['--from', join(dir, 'x'), '-h', 'db1']]) {
      const r = await runCli(['diagnose', ...args], { env: ENV });
      expectNoStackTrace(r);
      expect(r.exitCode).toBe(64);
      expect(r.stderr).toContain('hint: ');
    }
  });
});
