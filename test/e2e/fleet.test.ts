/**
 * Fleets and monitoring engines: several real servers (one with an incident), closed ports and a
 * silent peer diagnosed in one run; the Prometheus exposition checked by promtool; the Icinga
 * bodies; the exporter's /metrics, /probe and /healthz, scraped by a real Prometheus (Debian's
 * `prometheus`, which .ci/run installs when missing), whose own query API must see every target.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { FleetReport } from '../../src/core/fleet.js';
import { freePort } from '../../src/db/embedded.js';
import { BIN, cleanEnv, parseJson, runCli } from '../support/cli.js';
import { expectValidFleetDoc } from '../support/schemas.js';
import { idleInTransaction, type Incident } from '../support/incidents.js';
import { startTestServer, type TestServer, useServer } from '../support/server.js';
import { scaled } from '../support/timing.js';

const shared = useServer();
const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-fleet-'));
let s2: TestServer;
let s3: TestServer;
let incident: Incident;
let silent: Server;
const silentSockets: Socket[] = [];
let silentPort = 0;
let closed: number[] = [];

beforeAll(async () => {
  [s2, s3] = await Promise.all([startTestServer({ forceEmbedded: true }), startTestServer({ forceEmbedded: true })]);
  incident = await idleInTransaction(s3, 3, { app: 'billing' });
  closed = [await freePort(), await freePort()];
  // a peer that accepts and never answers
  silent = createServer((sock) => {
    silentSockets.push(sock);
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  silentPort = (silent.address() as { port: number }).port;
}, scaled(90_000));

afterAll(async () => {
  await incident?.release();
  for (const s of silentSockets) s.destroy();
  await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()));
  await Promise.all([s2?.stop(), s3?.stop()]);
  rmSync(dir, { recursive: true, force: true });
}, scaled(60_000));

function targetsFile(name: string, lines: string[]): string {
  const f = join(dir, name);
  writeFileSync(f, `# the fleet\n${lines.join('\n')}\n`, { mode: 0o600 });
  return f;
}

const url = (s: TestServer) => s.url();
const six = () => [
  `@db1 ${url(shared())}`,
  `@db2 ${url(s2)}`,
  `@db3 ${url(s3)}`,
  `@closed1 host=127.0.0.1 port=${closed[0]} user=postgres dbname=postgres`,
  `@closed2 host=127.0.0.1 port=${closed[1]} user=postgres dbname=postgres`,
  `@silent host=127.0.0.1 port=${silentPort} user=postgres dbname=postgres sslmode=disable`,
];
const passwords = () => [shared().password, s2.password, s3.password];

describe('diagnose --targets: many servers in one run', () => {
  test('3 servers (one with an incident), 2 closed ports and a silent peer: each reported, worst first, exit 2, side by side', async () => {
    const f = targetsFile('six', six());
    const r = await runCli(['diagnose', '--targets', f, '--connect-timeout', '2s', '--idle-in-transaction', '100ms', '--json'], { timeoutMs: 60_000 });
    expect(r.exitCode).toBe(2);
    const doc = parseJson<{ schema: string; report: FleetReport }>(r);
    expectValidFleetDoc(doc);
    expect(doc.schema).toBe('dbdoctor.fleet');
    const by = Object.fromEntries(doc.report.targets.map((t) => [t.name, t.report]));
    expect(Object.keys(by).sort()).toEqual(['closed1', 'closed2', 'db1', 'db2', 'db3', 'silent']);
    expect(by.db1!.connected && by.db2!.connected && by.db3!.connected).toBe(true);
    expect(by.db3!.findings.map((x) => x.id)).toContain('idle-in-transaction');
    expect(by.db2!.verdict).toBe('ok');
    expect(by.closed1!.summary).toMatch(/nothing listens/);
    expect(by.silent!.summary).toMatch(/no answer from 127.0.0.1:\d+ within 2000 ms/);
    for (const n of ['closed1', 'closed2', 'silent']) expect([n, by[n]!.verdict, by[n]!.connected]).toEqual([n, 'critical', false]);
    // worst first
    const rank = { critical: 0, unknown: 1, warning: 2, info: 3, ok: 4 } as const;
    const order = doc.report.targets.map((t) => rank[t.report.verdict]);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    // side by side: the run took less than its targets one after another (the silent peer alone costs its connect timeout)
    const sum = doc.report.targets.reduce((n, t) => n + t.ms, 0);
    expect(doc.report.ms).toBeLessThan(sum);
    for (const pw of passwords()) expect(r.stdout + r.stderr).not.toContain(pw);
    const text = await runCli(['diagnose', '--targets', f, '--connect-timeout', '2s', '--idle-in-transaction', '100ms'], { timeoutMs: 60_000 });
    expect(text.exitCode).toBe(2);
    expect(text.stdout).toMatch(/6 targets: 3 critical, .*2 ok/);
    for (const pw of passwords()) expect(text.stdout + text.stderr).not.toContain(pw);
  });

  test('a target that cannot even be tried (its root certificate file is missing) is UNKNOWN in the fleet, the others still run', async () => {
    const f = targetsFile('badcert', [`@badcert host=127.0.0.1 port=${s2.port} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${join(dir, 'no-such-ca.crt')}`, `@db2 ${url(s2)}`]);
    const r = await runCli(['diagnose', '--targets', f, '--json'], { timeoutMs: 60_000 });
    const doc = parseJson<{ report: FleetReport }>(r);
    expectValidFleetDoc(doc);
    expect(doc.report.targets.map((t) => [t.name, t.report.verdict])).toEqual([
      ['badcert', 'unknown'],
      ['db2', 'ok'],
    ]);
    expect(doc.report.targets[0]!.report.summary).toMatch(/root certificate file/);
    expect(r.exitCode).toBe(3);
  });

  test('a targets file that is not a regular file (a FIFO) is refused at once, never waited on (exit 64)', async () => {
    const fifo = join(dir, 'targets.fifo');
    execFileSync('mkfifo', [fifo]);
    const r = await runCli(['diagnose', '--targets', fifo]);
    expect(r.exitCode).toBe(64);
    expect(r.stderr).toMatch(/^dbdoctor: cannot read the targets file .*: it is a FIFO/);
  });

  test('--format prometheus passes promtool check metrics; labels are bounded; dbdoctor_up per target', async () => {
    const f = targetsFile('six-prom', six());
    const r = await runCli(['diagnose', '--targets', f, '--connect-timeout', '2s', '--idle-in-transaction', '100ms', '--format', 'prometheus'], { timeoutMs: 60_000 });
    expect(r.exitCode).toBe(2);
    // (execa drops the last newline of stdout; the exposition dbdoctor writes ends with one)
    const lint = execFileSync('promtool', ['check', 'metrics'], { input: `${r.stdout}\n`, encoding: 'utf8' });
    expect(lint).toBe('');
    for (const [name, up] of [['db1', 1], ['db2', 1], ['db3', 1], ['closed1', 0], ['closed2', 0], ['silent', 0]] as const) {
      expect(r.stdout).toContain(`dbdoctor_up{target="${name}"} ${up}`);
    }
    expect(r.stdout).toMatch(/dbdoctor_finding\{target="db3",finding="idle-in-transaction",severity="(warning|critical)"\} 1/);
    expect(r.stdout).toMatch(/dbdoctor_application_sessions\{target="db3",application="billing"\} 3/);
    // never a pid, a query or a client port as a label
    const labelNames = new Set([...r.stdout.matchAll(/[{,]([a-z_]+)="/g)].map((m) => m[1]));
    expect([...labelNames].sort()).toEqual(['application', 'finding', 'severity', 'target', 'verdict']);
    for (const pw of passwords()) expect(r.stdout).not.toContain(pw);
    const om = await runCli(['diagnose', '--targets', f, '--connect-timeout', '2s', '--format', 'openmetrics'], { timeoutMs: 60_000 });
    expect(om.stdout.trimEnd().endsWith('# EOF')).toBe(true);
    expect(om.stdout).toMatch(/^# UNIT dbdoctor_diagnose_duration_seconds seconds$/m);
  });

  test('--format icinga: one process-check-result body a target', async () => {
    const f = targetsFile('two-icinga', six().slice(2, 4));
    const r = await runCli(['diagnose', '--targets', f, '--connect-timeout', '2s', '--idle-in-transaction', '100ms', '--format', 'icinga', '--ttl', '10m'], { timeoutMs: 60_000 });
    const bodies = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(bodies.map((b) => b.target)).toEqual(['closed1', 'db3']);
    for (const b of bodies) {
      expect(Object.keys(b).sort()).toEqual(['check_source', 'exit_status', 'performance_data', 'plugin_output', 'target', 'ttl']);
      expect(b.ttl).toBe(600);
    }
    expect(bodies[0]).toMatchObject({ exit_status: 2, plugin_output: expect.stringMatching(/^DBDOCTOR CRITICAL: /) });
    expect((bodies[1]!.performance_data as string[]).some((p) => /^idle_in_transaction=3;/.test(p))).toBe(true);
  });

  test('100 targets (real servers and closed ports) all reported, 16 at a time', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 30; i++) lines.push(`@real${i} ${url([shared(), s2, s3][i % 3]!)}`);
    for (let i = 0; i < 70; i++) lines.push(`@closed${i} host=127.0.0.1 port=${closed[i % 2]} user=postgres dbname=postgres`);
    const f = targetsFile('hundred', lines);
    const r = await runCli(['diagnose', '--targets', f, '--connect-timeout', '2s', '--json'], { timeoutMs: 120_000 });
    const doc = parseJson<{ report: FleetReport }>(r);
    expectValidFleetDoc(doc);
    expect(doc.report.targets).toHaveLength(100);
    expect(doc.report.concurrency).toBe(16);
    expect(doc.report.targets.filter((t) => t.report.connected)).toHaveLength(30);
    expect(r.exitCode).toBe(2);
  }, scaled(180_000));
});

/** Waits (bounded) for the exporter's "listening" line. */
async function startExporter(args: string[]): Promise<{ child: ChildProcess; base: string; log: () => string }> {
  const port = await freePort();
  const child = spawn('node', [BIN, 'exporter', '--listen', `127.0.0.1:${port}`, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + scaled(15_000);
  while (!/listening on/.test(log)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the exporter did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, base: `http://127.0.0.1:${port}`, log: () => log };
}

describe('dbdoctor exporter, scraped by a real Prometheus', () => {
  let exporter: Awaited<ReturnType<typeof startExporter>>;
  let prometheus: ChildProcess | undefined;
  const promDir = mkdtempSync(join(tmpdir(), 'dbdoctor-prom-'));
  beforeAll(async () => {
    exporter = await startExporter(['--targets', targetsFile('exporter', six()), '--connect-timeout', '2s', '--scrape-timeout', '3s']);
  }, scaled(30_000));
  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    if (exporter && exporter.child.exitCode === null) exporter.child.kill('SIGKILL');
    rmSync(promDir, { recursive: true, force: true });
  });

  test('/healthz, /probe of a configured target, and a target not in the configuration refused with 400', async () => {
    expect((await fetch(`${exporter.base}/healthz`)).status).toBe(200);
    const probe = await fetch(`${exporter.base}/probe?target=db2`);
    expect(probe.status).toBe(200);
    expect(await probe.text()).toMatch(/^dbdoctor_up\{target="db2"\} 1$/m);
    for (const bad of ['nowhere', `host=127.0.0.1 port=${s2.port}`, url(s2)]) {
      const r = await fetch(`${exporter.base}/probe?target=${encodeURIComponent(bad)}`);
      expect([bad, r.status]).toEqual([bad, 400]);
    }
    expect((await fetch(`${exporter.base}/probe`)).status).toBe(400);
    expect((await fetch(`${exporter.base}/nope`)).status).toBe(404);
  });

  test('Prometheus scrapes /metrics and its query API sees dbdoctor_up for every target', async () => {
    const port = await freePort();
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      ['global:', '  scrape_interval: 5s', '  scrape_timeout: 4500ms', 'scrape_configs:', '  - job_name: dbdoctor', '    static_configs:', `      - targets: ['${new URL(exporter.base).host}']`, ''].join('\n'),
    );
    prometheus = spawn('prometheus', [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    const deadline = Date.now() + scaled(60_000);
    let seen: Array<{ metric: { target: string }; value: [number, string] }> = [];
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=dbdoctor_up`);
        if (r.ok) {
          seen = ((await r.json()) as { data: { result: typeof seen } }).data.result;
          if (seen.length === 6) break;
        }
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(Object.fromEntries(seen.map((s) => [s.metric.target, s.value[1]]))).toEqual({ db1: '1', db2: '1', db3: '1', closed1: '0', closed2: '0', silent: '0' });
  }, scaled(90_000));

  test('SIGTERM stops it cleanly (exit 0)', async () => {
    const exit = new Promise<number | null>((r) => exporter.child.once('exit', (code) => r(code)));
    exporter.child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(exporter.log()).toMatch(/exporter: stopping/);
  });
});

describe('the example alert rules (monitoring/alerts.yml)', () => {
  const monitoring = new URL('../../monitoring/', import.meta.url).pathname;
  test('promtool check rules, and promtool test rules against monitoring/alerts.test.yml', () => {
    expect(execFileSync('promtool', ['check', 'rules', 'alerts.yml'], { cwd: monitoring, encoding: 'utf8' })).toMatch(/SUCCESS: 5 rules found/);
    expect(execFileSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: monitoring, encoding: 'utf8' })).toMatch(/SUCCESS/);
  });
});
