/**
 * The guided walk, end to end: the built binary in a real pseudo-terminal, driven key by key.
 * Against a test server with an incident whose pids the test knows: pick the finding, run the
 * clean-up it suggests (terminate's own plan, checkbox and confirmation), diagnose again, quit.
 * Also: `dbdoctor` alone on a terminal asks where to connect (and for the password), Ctrl-C at a
 * prompt exits 130, and without a terminal the walk refuses with the usage code.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { freePort } from '../../src/db/embedded.js';
import { expectNoStackTrace, runCli } from '../support/cli.js';
import { dbdoctorSessionsLeft, idleInTransaction, idleSessions } from '../support/incidents.js';
import { KEY, runInPty } from '../support/pty.js';
import { useServer } from '../support/server.js';

const server = useServer({ settings: { max_connections: 40 } });

let home: string;
/** A config dir whose thresholds see a seconds-old incident, and a state dir for the audit log. */
function env(): Record<string, string> {
  return { XDG_CONFIG_HOME: join(home, 'config'), XDG_STATE_HOME: join(home, 'state') };
}

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'dbdoctor-guide-test-'));
  mkdirSync(join(home, 'config', 'dbdoctor'), { recursive: true });
  writeFileSync(join(home, 'config', 'dbdoctor', 'config.json'), JSON.stringify({ thresholds: { idle_in_transaction: '1s' } }));
});

afterAll(() => {
  rmSync(home, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function alive(pids: number[]): Promise<number[]> {
  const rows = await server().sql<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids]);
  return rows.map((r) => r.pid).sort((a, b) => a - b);
}

describe('dbdoctor guide on a terminal', () => {
  test('pick the finding, run the suggested terminate, confirm, diagnose again, quit', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 3, { app: 'guide-worker', user: 'app_user' });
    const pool = await idleSessions(s, 2, { app: 'guide-api', user: 'app_user' });
    await sleep(1200); // past the 1s idle-in-transaction threshold of the config file
    const pty = runInPty(['guide', '-d', s.url()], { env: env(), cwd: home });
    try {
      const first = await pty.choose(/Pick a finding to see its next steps/, /WARNING .*guide-worker.*idle in transaction/);
      expect(pty.text()).toMatch(/^WARNING {2}.*guide-worker/m);
      expect(first).toMatch(/Diagnose again[\s\S]*Quit/);
      const menu = await pty.choose(/Next step for:/, /Clean up: dbdoctor terminate --state "idle in transaction" --app guide-worker/);
      expect(menu).toMatch(/Inspect: dbdoctor connections/);

      // terminate's own plan, checkbox and confirmation (default No), then its report.
      const plan = await pty.waitFor(/Sessions to terminate/);
      for (const pid of leak.pids) expect(plan).toContain(String(pid));
      for (const pid of pool.pids) expect(plan).not.toContain(` ${pid} `);
      await pty.type(KEY.enter);
      await pty.waitFor(/Terminate 3 sessions on [^?]+\? \(y\/N\)/);
      await pty.type(`y${KEY.enter}`);
      await pty.waitFor(/done: 3 of 3 planned sessions/);

      // Diagnose again is the default after a clean-up.
      await pty.waitFor(/Next step for:[^\n]*\n[\s\S]*?❯ Diagnose again/);
      await pty.type(KEY.enter);
      await pty.choose(/(Pick a finding to see its next steps|What next\?)/, /Quit/);
      expect(await pty.exit).toBe(0);
      // The second diagnosis, after the last step menu: OK, and the leak is gone from it.
      const all = pty.text();
      const after = all.slice(all.lastIndexOf('Next step for:'));
      expect(after).toMatch(/OK {2,}no problems found/);
      expect(after.slice(after.search(/OK {2,}no problems found/))).not.toMatch(/guide-worker/);
      // Ground truth: exactly the leak is gone; the idle pool is untouched.
      expect(await alive(leak.pids)).toEqual([]);
      expect(await alive(pool.pids)).toEqual([...pool.pids].sort((a, b) => a - b));
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
      expect(pty.text()).not.toContain(s.password);
    } finally {
      pty.kill();
      await leak.release();
      await pool.release();
    }
  });

  test('Ctrl-C at a prompt exits 130 cleanly, nothing done', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 2, { app: 'guide-ctrlc', user: 'app_user' });
    await sleep(1200);
    const pty = runInPty(['guide', '-d', s.url()], { env: env(), cwd: home });
    try {
      await pty.choose(/Pick a finding to see its next steps/, /guide-ctrlc/);
      await pty.waitFor(/Next step for:[^\n]*\n[\s\S]*?navigate/);
      await pty.type(KEY.ctrlC);
      expect(await pty.exit).toBe(130);
      expect(pty.text()).toMatch(/dbdoctor: interrupted/);
      expect(pty.text()).not.toMatch(/\n\s+at .+:\d+:\d+/);
      expect(await alive(leak.pids)).toEqual([...leak.pids].sort((a, b) => a - b));
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    } finally {
      pty.kill();
      await leak.release();
    }
  });

  test('`dbdoctor` alone on a terminal starts the walk and asks where to connect, and for the password', async () => {
    const s = server();
    const pty = runInPty([], { env: env(), cwd: home });
    try {
      await pty.waitFor(/Server \(host, host:port/);
      await pty.type(`${s.host}:${s.port}${KEY.enter}`);
      await pty.waitFor(/Role to connect as/);
      // Clear the suggested default (the OS user), then type the role.
      await pty.type(`${'\u007f'.repeat(20)}postgres${KEY.enter}`);
      await pty.waitFor(/Database/);
      await pty.type(KEY.enter);
      await pty.waitFor(/Password for role "postgres"/);
      await pty.type(`${s.password}${KEY.enter}`);
      await pty.waitFor(/postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres · PostgreSQL/);
      await pty.choose(/(Pick a finding to see its next steps|What next\?)/, /Quit/);
      expect(await pty.exit).toBe(0);
    } finally {
      pty.kill();
    }
    expect(pty.text()).not.toContain(s.password);
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });
});

/** "1m 5s", "35s", "2h 3m" as seconds. */
function seconds(text: string): number {
  let n = 0;
  for (const m of text.matchAll(/(\d+)(h|m|s)/g)) n += Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
  return n;
}

describe('the guide shows fresh ages', () => {
  test('the plan it shows is read afresh: its ages are never older than the view above it', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 2, { app: 'guide-ages', user: 'app_user' });
    await sleep(1200);
    const pty = runInPty(['guide', '-d', s.url()], { env: env(), cwd: home });
    try {
      await pty.choose(/Pick a finding to see its next steps/, /WARNING .*guide-ages.*idle in transaction/);
      const header = await pty.waitFor(/(?=Next step for:)/);
      const above = seconds(/idle\s+in\s+transaction,\s+oldest\s+((?:\d+[hms] ?)+)/.exec(header)![1]!);
      // Time passes at the menu, as it does at 3 a.m.
      await sleep(2500);
      await pty.choose(/Next step for:/, /Clean up: dbdoctor terminate --state "idle in transaction" --app guide-ages/);
      const plan = await pty.waitFor(/Sessions to terminate/);
      const ages = leak.pids.map((pid) => {
        const row = new RegExp(`^${pid}\\*? .*?idle in xact ((?:\\d+[hms] ?)+)`, 'm').exec(plan);
        return seconds(row![1]!);
      });
      expect(Math.max(...ages)).toBeGreaterThanOrEqual(above + 2);
      await pty.type(KEY.ctrlC);
      expect(await pty.exit).toBe(130);
      expect(await alive(leak.pids)).toEqual([...leak.pids].sort((a, b) => a - b));
    } finally {
      pty.kill();
      await leak.release();
    }
  });
});

describe('dbdoctor guide when the server cannot be reached', () => {
  test('says why, offers to try again, elsewhere or quit; quit exits with the code check gives (2: refused)', async () => {
    const port = await freePort();
    const pty = runInPty(['guide', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'], { env: env(), cwd: home });
    try {
      await pty.choose(/Could not connect\. What now\?/, /Quit/);
      expect(await pty.exit).toBe(2);
      const text = pty.text();
      expect(text.match(/dbdoctor: nothing listens on 127\.0\.0\.1/g)).toHaveLength(1);
      expect(text).toMatch(/hint: /);
      expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);
    } finally {
      pty.kill();
    }
  });
});

describe('without a terminal', () => {
  test('`dbdoctor guide` refuses with the usage code and says what to run instead', async () => {
    const r = await runCli(['guide', '-d', server().url()]);
    expect(r.exitCode).toBe(64);
    expect(r.stderr).toMatch(/the guided walk needs a terminal/);
    expect(r.stderr).toMatch(/hint: .*dbdoctor diagnose/);
    expectNoStackTrace(r);
  });

  test('`dbdoctor` alone prints the help and exits with the usage code', async () => {
    const r = await runCli([]);
    expect(r.exitCode).toBe(64);
    expect(r.stderr).toMatch(/Usage: dbdoctor/);
    expect(r.stderr).toMatch(/guide/);
  });
});
