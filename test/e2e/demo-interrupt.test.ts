/**
 * The demo always tears its server down: Ctrl-C as a terminal sends it (SIGINT to the whole
 * foreground process group, the server included), Ctrl-C pressed twice (the second one exits at
 * once: the synchronous exit handler must still kill the server and remove its directory), and
 * SIGTERM. Each run is interrupted while the incident is being built or is ageing, when the server
 * holds 20 client sessions.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { BIN, cleanEnv } from '../support/cli.js';
import { running } from '../support/processes.js';

interface Started {
  child: ChildProcess;
  pid: number;
  dir: string;
  /** The postmaster and every process it had forked when the demo was interrupted. */
  serverProcesses: number[];
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Starts `dbdoctor demo` without a TTY, in its own process group, and waits for the server line. */
async function startDemo(waitFor: RegExp): Promise<Started> {
  const child = spawn('node', [BIN, 'demo'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 60_000;
  while (!waitFor.test(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the demo did not get there:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = /\(pid (\d+)\), max_connections/.exec(out);
  const d = /data\s+(\/\S+)/.exec(out);
  if (!m || !d) throw new Error(`no server line in:\n${out}`);
  const pid = Number(m[1]);
  return { child, pid, dir: d[1]!, serverProcesses: [pid, ...childrenOf(pid)], output: () => out, exit };
}

async function expectTornDown(s: Started): Promise<void> {
  // Orphaned zombies are reaped by init in its own time; they run nothing and hold no port.
  const deadline = Date.now() + 10_000;
  while (s.serverProcesses.some(running) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(s.serverProcesses.filter(running)).toEqual([]);
  expect(existsSync(s.dir)).toBe(false);
}

describe('dbdoctor demo: Ctrl-C and signals leave no server behind', () => {
  test('Ctrl-C from a terminal (SIGINT to the process group, the server included) while the incident ages: exit 130, server gone, directory removed', async () => {
    const s = await startDemo(/The incident, recreated/);
    expect(s.serverProcesses.length).toBeGreaterThan(10);
    process.kill(-s.child.pid!, 'SIGINT');
    const r = await s.exit;
    expect(r.code).toBe(130);
    expect(s.output()).toMatch(/dbdoctor: interrupted/);
    expect(s.output()).not.toMatch(/\n\s+at .+:\d+:\d+/);
    await expectTornDown(s);
  });

  test('Ctrl-C to dbdoctor alone while the incident is being built: exit 130, server gone, directory removed', async () => {
    const s = await startDemo(/\(pid \d+\), max_connections/);
    s.child.kill('SIGINT');
    const r = await s.exit;
    expect(r.code).toBe(130);
    await expectTornDown(s);
  });

  test('Ctrl-C twice (the second exits at once): the exit handler still kills the server and removes its directory', async () => {
    const s = await startDemo(/The incident, recreated/);
    s.child.kill('SIGINT');
    s.child.kill('SIGINT');
    const r = await s.exit;
    expect(r.code).toBe(130);
    await expectTornDown(s);
  });

  test('SIGTERM: the server is stopped and its directory removed, then dbdoctor dies of the signal', async () => {
    const s = await startDemo(/The incident, recreated/);
    s.child.kill('SIGTERM');
    const r = await s.exit;
    expect(r.signal).toBe('SIGTERM');
    await expectTornDown(s);
  });
});
