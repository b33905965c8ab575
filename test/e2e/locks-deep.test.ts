/**
 * A 2,000-deep lock chain (each session waits for the one before it: advisory locks), through the
 * built binary: `locks --json` lists every session once (under 5 MB), its peak RSS stays under
 * 150 MB, jq 1.6 reads it with the README's example (a nested tree broke jq's depth limit at 130),
 * and the text view stays bounded and within the terminal.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execa } from 'execa';
import type pg from 'pg';
import type { LocksReport } from '../../src/core/locks.js';
import { BIN, cleanEnv, parseJson, runCli } from '../support/cli.js';
import { waitFor } from '../support/incidents.js';
import { expectValidLocksDoc } from '../support/schemas.js';
import { startTestServer, type TestServer } from '../support/server.js';

const DEPTH = 2000;

describe('a 2,000-deep lock chain', () => {
  let s: TestServer;
  const clients: pg.Client[] = [];

  beforeAll(async () => {
    // deadlock_timeout far away: a waiter that reaches it runs the deadlock check, walking the
    // chain under every lock partition, and pg_stat_activity shows it active with no wait event
    // meanwhile (WaitLatch has returned). 1,999 such checks, one at a time, took long enough on a
    // loaded PostgreSQL 14 for locks to see a waiter mid-check, and the chain cut in two.
    s = await startTestServer({ settings: { max_connections: DEPTH + 40, shared_buffers: '32MB', deadlock_timeout: '10min' } });
    // Opened in bounded batches; each session takes its own advisory lock.
    for (let i = 0; i < DEPTH; i += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, DEPTH - i) }, () => s.client({ application_name: 'deep-chain' })));
      await Promise.all(batch.map((c, j) => c.query('SELECT pg_advisory_lock($1)', [i + j])));
      clients.push(...batch);
    }
    // Then each waits for the lock of the one before it: session i behind i-1, down to session 0.
    for (let i = 1; i < DEPTH; i++) clients[i]!.query('SELECT pg_advisory_lock($1)', [i - 1]).catch(() => undefined);
    await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`, [], (rows) => rows[0]?.n === DEPTH - 1, 120_000);
  }, 300_000);

  afterAll(async () => {
    for (let i = 0; i < clients.length; i += 100) await Promise.all(clients.slice(i, i + 100).map((c) => c.end().catch(() => undefined)));
    await s?.stop();
  }, 300_000);

  test('locks --json: every session once, under 5 MB and 150 MB of memory, read by jq', async () => {
    const r = await execa('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, BIN, 'locks', '-d', s.url(), '--json'], { env: cleanEnv(), extendEnv: false, reject: false, timeout: 120_000 });
    expect(r.exitCode).toBe(1);
    const bytes = Buffer.byteLength(String(r.stdout));
    expect(bytes).toBeLessThan(5 * 1024 * 1024);
    const rssKb = Number(/maxrss=(\d+)/.exec(String(r.stderr))?.[1]);
    expect(rssKb).toBeGreaterThan(0);
    expect(rssKb).toBeLessThan(150 * 1024);
    const doc = parseJson<{ schema_version: number; report: LocksReport }>({ exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) });
    expectValidLocksDoc(doc);
    expect(doc.schema_version).toBe(2);
    const report = doc.report;
    expect(report.roots).toHaveLength(1);
    expect(report.roots[0]!.blocks_total).toBe(DEPTH - 1);
    expect(report.nodes).toHaveLength(DEPTH);
    expect(new Set(report.nodes.map((n) => n.pid)).size).toBe(DEPTH);
    expect(Math.max(...report.nodes.map((n) => n.depth ?? 0))).toBe(DEPTH - 1);
    // Every waiter is a queue head but the last: each has the rest of the chain behind it.
    expect(report.nodes.filter((n) => n.queue_head)).toHaveLength(DEPTH - 2);

    const jq = await execa('jq', ['-c', '.report.roots[] | {pid, blocks_total, action}'], { input: String(r.stdout), reject: false });
    expect(jq.exitCode).toBe(0);
    expect(JSON.parse(String(jq.stdout))).toMatchObject({ blocks_total: DEPTH - 1 });
  });

  test('locks as text: bounded, within the terminal, the deep part counted', async () => {
    const r = await runCli(['locks', '-d', s.url()], { env: { COLUMNS: '80' }, timeoutMs: 120_000 });
    expect(r.exitCode).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.length).toBeLessThan(80);
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(80);
    expect(r.stdout).toMatch(/… \d+ more behind pid \d+$/m);
  });

  test('diagnose --json: the chain is one root blocking 1,999, with at most 200 pids listed', async () => {
    const r = await runCli(['diagnose', '-d', s.url(), '--json'], { timeoutMs: 120_000 });
    const f = parseJson<{ report: { findings: Array<{ id: string; evidence: { pids: number[]; groups: Array<{ count: number }> } }> } }>(r).report.findings.find((x) => x.id === 'blocking')!;
    expect(f.evidence.groups[0]!.count).toBe(DEPTH - 1);
    expect(f.evidence.pids.length).toBeLessThanOrEqual(200);
  });
});
