/**
 * `dbdoctor watch --json` with the built binary on real incidents that move while it watches: a
 * leak (one more idle-in-transaction session from `worker` every 2 s) is growth naming `worker`
 * with a forecast within 10 samples; a large stable pool is no growth; a connection storm is
 * churn; a blocker appearing and clearing is logged with its times. One connection for the whole
 * watch; every line validated against schema/watch.schema.json; the exit code is the worst verdict
 * seen; a recording read back by `diagnose --from` carries the trend findings.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import type { DiagnoseReport, Finding } from '../../src/core/diagnose.js';
import type { WatchEvent, WatchSample } from '../../src/core/watch.js';
import { type CliResult, expectNoStackTrace, runCli } from '../support/cli.js';
import { expectValidDiagnoseDoc } from '../support/diagnose.js';
import { dbdoctorSessionsLeft, type Incident, idleInTransaction, idleSessions, type LockChain, lockChain } from '../support/incidents.js';
import { startCli } from '../support/faults.js';
import { expectValidSnapshotDoc, expectValidWatchDoc } from '../support/schemas.js';
import { connectionsOpenedBy, LOG_CONNECTIONS, useServer } from '../support/server.js';

const server = useServer({ settings: { ...LOG_CONNECTIONS, max_connections: 60 } });
const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-watch-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Line {
  schema: string;
  report: { sample: WatchSample; events: WatchEvent[]; trends: Finding[]; trends_seen: Array<{ id: string; first_at: string }>; worst_verdict: string; facts: unknown };
}

function linesOf(r: CliResult): Line[] {
  expectNoStackTrace(r);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  return lines.map((l) => {
    const doc = JSON.parse(l) as Line;
    expectValidWatchDoc(doc);
    expect(doc.schema).toBe('dbdoctor.watch');
    // the facts kept on a line are a snapshot's report
    if (doc.report.facts !== null) expectValidSnapshotDoc({ schema: 'dbdoctor.snapshot', schema_version: 1, dbdoctor_version: '0', generated_at: '', report: doc.report.facts });
    return doc;
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watch --json on incidents that move', () => {
  test('a leak from worker, +1 idle in transaction every 2 s: growth naming worker and a forecast within 10 samples', async () => {
    const s = server();
    const leaked: Incident[] = [];
    let stop = false;
    // bounded: at most 14 sessions, stops when the watch is done
    const leak = (async () => {
      for (let i = 0; i < 14 && !stop; i++) {
        leaked.push(await idleInTransaction(s, 1, { app: 'worker' }));
        await pause(2000);
      }
    })();
    try {
      const r = await runCli(['watch', '-d', s.url(), '--json', '--interval', '2s', '--count', '10'], { timeoutMs: 60_000 });
      stop = true;
      const lines = linesOf(r);
      // one connection for the whole watch: its own session is the same on the first and the last sample
      const selfPid = (l: Line) => (l.report.facts as { activity: { rows: Array<{ pid: number; is_self: boolean; backend_start: string }> } }).activity.rows
          .filter((x) => x.is_self)
          .map((x) => `${x.pid}@${x.backend_start}`);
      expect(selfPid(lines[0]!)).toEqual(selfPid(lines[9]!));
      expect(lines).toHaveLength(10);
      const grown = lines.find((l) => l.report.trends.some((f) => f.id === 'growth' && f.evidence.applications.includes('worker')));
      expect(grown).toBeDefined();
      // kept as seen so far, with when it was first seen
      const seen = lines[9]!.report.trends_seen.find((t) => t.id === 'growth');
      expect(seen?.first_at).toBe(grown!.report.sample.at);
      const forecast = lines.find((l) => l.report.trends.some((f) => f.id === 'exhaustion-forecast'));
      expect(forecast).toBeDefined();
      expect(forecast!.report.trends.find((f) => f.id === 'exhaustion-forecast')!.title).toMatch(/exhausted in about .* at \+.*\/min, mostly worker/);
      expect(r.exitCode).toBeGreaterThanOrEqual(1);
      expect(r.exitCode).toBe({ ok: 0, info: 0, warning: 1, critical: 2, unknown: 3 }[lines[lines.length - 1]!.report.worst_verdict]);
      // samples timed, facts kept on the first and the last line
      for (const l of lines) expect(l.report.sample.server_ms).toBeGreaterThanOrEqual(0);
      expect(lines[0]!.report.facts).not.toBeNull();
      expect(lines[9]!.report.facts).not.toBeNull();
      expect(await dbdoctorSessionsLeft(s)).toBe(0);

      // the recording, read back: diagnose adds the trend findings
      const file = join(dir, 'leak.jsonl');
      writeFileSync(file, r.stdout);
      const d = await runCli(['diagnose', '--from', file, '--json']);
      expectNoStackTrace(d);
      const doc = JSON.parse(d.stdout) as { report: DiagnoseReport };
      expectValidDiagnoseDoc(doc);
      expect(doc.report.findings.map((f) => f.id)).toEqual(expect.arrayContaining(['growth', 'exhaustion-forecast']));
      expect(doc.report.findings.find((f) => f.id === 'growth')!.runbook).toBe('runbooks/trends.md#growth');
    } finally {
      stop = true;
      await leak;
      for (const i of leaked) await i.release();
    }
  }, 90_000);

  test('a large stable pool: no growth, no forecast, no churn', async () => {
    const s = server();
    const pool = await idleSessions(s, 40, { app: 'stable-pool' });
    try {
      let r!: CliResult;
      const opened = await connectionsOpenedBy(s, async () => {
        r = await runCli(['watch', '-d', s.url(), '--json', '--interval', '500ms', '--count', '8', '--trend-window', '4']);
      });
      // one connection for the whole watch
      expect(opened).toBe(1);
      const lines = linesOf(r);
      expect(lines).toHaveLength(8);
      for (const l of lines) expect(l.report.trends).toEqual([]);
      expect(lines[7]!.report.sample.by_app.find((a) => a.app === 'stable-pool')?.total).toBe(40);
      expect(r.exitCode).toBe(0);
    } finally {
      await pool.release();
    }
  }, 60_000);

  test('a bounded connection storm: churn', async () => {
    const s = server();
    let stop = false;
    let opened = 0;
    const deadline = Date.now() + 8000;
    // bounded in count (4 x 100) and time; four at once, so a loaded machine still storms
    const storm = Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 100 && !stop && Date.now() < deadline; i++) {
          const c = await s.client({ application_name: 'storm' });
          await c.query('SELECT 1');
          await c.end();
          opened++;
        }
      }),
    );
    try {
      const r = await runCli(['watch', '-d', s.url(), '--json', '--interval', '1s', '--count', '5', '--trend-window', '3']);
      stop = true;
      await storm;
      const lines = linesOf(r);
      expect(opened).toBeGreaterThan(20);
      const churn = lines.flatMap((l) => l.report.trends).find((f) => f.id === 'churn');
      expect(churn).toBeDefined();
      expect(churn!.title).toMatch(/new sessions\/s/);
    } finally {
      stop = true;
      await storm;
    }
  }, 60_000);

  test('a blocker appearing and clearing is logged with its times', async () => {
    const s = server();
    let chain: LockChain | undefined;
    let blocker = -1;
    // Driven by the watch's own lines, not by sleeps: the blocker is made once the watch has
    // printed a line, released once a line logs it, and the watch is interrupted once a line logs
    // it cleared. Bounded by --count (60 x 500 ms) and the timeout.
    const { child, done } = startCli(['watch', '-d', s.url(), '--json', '--interval', '500ms', '--count', '60'], { timeoutMs: 80_000 });
    const seen: Line[] = [];
    const waiting: Array<{ want: (l: Line) => boolean; resolve: () => void }> = [];
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line === '') continue;
        const doc = JSON.parse(line) as Line;
        seen.push(doc);
        for (const w of waiting.filter((x) => x.want(doc))) w.resolve();
      }
    });
    const lineWhere = (want: (l: Line) => boolean) =>
      new Promise<void>((resolve) => {
        if (seen.some(want)) return resolve();
        waiting.push({ want, resolve });
        void done.finally(resolve);
      });
    const logs = (change: WatchEvent['change']) => (l: Line) => l.report.events.some((e) => e.id === 'blocking' && e.change === change);
    try {
      await lineWhere(() => true);
      chain = await lockChain(s, { app: 'locker' });
      blocker = chain.blocker;
      await lineWhere(logs('appeared'));
      await chain.release();
      chain = undefined;
      await lineWhere(logs('cleared'));
      child.kill('SIGINT');
      const lines = linesOf(await done);
      const events = lines.flatMap((l) => l.report.events).filter((e) => e.id === 'blocking');
      const appeared = events.find((e) => e.change === 'appeared');
      const cleared = events.find((e) => e.change === 'cleared');
      expect(appeared).toBeDefined();
      expect(cleared).toBeDefined();
      expect(Date.parse(cleared!.at)).toBeGreaterThan(Date.parse(appeared!.at));
      // the pids of the moment: the blocker the suite made
      expect(appeared!.pids).toContain(blocker);
      // the line where it appeared keeps the facts of that moment
      expect(lines.find((l) => l.report.sample.seq === appeared!.seq)!.report.facts).not.toBeNull();
    } finally {
      await chain?.release();
      child.kill('SIGINT');
      await done;
    }
  }, 90_000);
});
