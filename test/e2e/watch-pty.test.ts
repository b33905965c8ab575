/**
 * `dbdoctor watch`'s live view in a real pseudo-terminal, on a real incident: it renders and fits
 * 80x24 and 120x40, follows a resize, answers every key (? s / p d t q), and gives the terminal
 * back (normal screen, cursor) on q, Ctrl-C, SIGTERM and a killed server, checked on the raw bytes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { displayWidth } from '../../src/render/width.js';
import { type Incident, idleInTransaction } from '../support/incidents.js';
import { KEY, type PtyRun, runInPty, stripAnsi } from '../support/pty.js';
import { startTestServer, useServer } from '../support/server.js';

const server = useServer();
const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-watch-pty-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ENTER = '\u001b[?1049h';
const LEAVE = '\u001b[?1049l';
const CURSOR_ON = '\u001b[?25h';
const FRAME = '\u001b[H\u001b[2J';

/** The last whole frame drawn, as text lines. */
function lastFrame(raw: string): string[] {
  const whole = raw
    .split(FRAME)
    .map((f) => stripAnsi(f.split(LEAVE)[0]!))
    .filter((f) => /q quit|any key returns/.test(f));
  return (whole[whole.length - 1] ?? '').split('\n');
}

/** Every frame fits the terminal. */
function expectFits(raw: string, cols: number, rows: number): void {
  const frames = raw.split(FRAME).slice(1);
  expect(frames.length).toBeGreaterThan(0);
  for (const f of frames) {
    const lines = stripAnsi(f.split(LEAVE)[0]!).replace(/\n$/, '').split('\n');
    expect(lines.length).toBeLessThanOrEqual(rows);
    for (const l of lines) expect(displayWidth(l)).toBeLessThanOrEqual(cols);
  }
}

/** The terminal was given back: after the last time the alternate screen went on, it went off and the cursor came back. */
function expectRestored(raw: string): void {
  const on = raw.lastIndexOf(ENTER);
  expect(on).toBeGreaterThanOrEqual(0);
  const off = raw.lastIndexOf(LEAVE);
  expect(off).toBeGreaterThan(on);
  expect(raw.lastIndexOf(CURSOR_ON)).toBeGreaterThan(on);
  // nothing is drawn on the alternate screen after it is left
  expect(raw.slice(off).includes(FRAME)).toBe(false);
}

/** The exit code, waited for at most 20 s (then the screen, to say where it stood). */
async function exitOf(pty: PtyRun): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`dbdoctor did not exit; the last bytes:\n${JSON.stringify(pty.raw().slice(-1500))}`)), 20_000);
  });
  try {
    return await Promise.race([pty.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** dbdoctor's own process (script's child) and its terminal. */
function nodeOf(pty: PtyRun): { pid: number; tty: string } {
  const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pty.child.pid)], { encoding: 'utf8' });
  const pid = Number(out.trim().split(/\s+/)[0]);
  return { pid, tty: readlinkSync(`/proc/${pid}/fd/0`) };
}

describe('the live view', () => {
  let leak: Incident | undefined;
  afterAll(async () => {
    await leak?.release();
  });

  test('80x24: renders the incident, every key, q gives the terminal back', async () => {
    const s = server();
    leak ??= await idleInTransaction(s, 3, { app: 'worker', user: 'app_user' });
    const pty = runInPty(['watch', '-d', s.url(), '--interval', '500ms'], { cols: 80, rows: 24 });
    try {
      await pty.waitFor(/dbdoctor watch[\s\S]*worker[\s\S]*q quit/, 8_000);
      await pty.type('?');
      await pty.waitFor(/pause or resume sampling[\s\S]*any key returns/, 8_000);
      await pty.type('x');
      await pty.type('s');
      await pty.waitFor(/sort: idle in transaction/, 8_000);
      await pty.type('/');
      await pty.waitFor(/filter by application: _/, 8_000);
      await pty.type('work', 50);
      await pty.type(KEY.enter);
      await pty.waitFor(/filter: work/, 8_000);
      await pty.type('p');
      await pty.waitFor(/PAUSED/, 8_000);
      await pty.type('p');
      await pty.type('d');
      await pty.waitFor(/idle in transaction[\s\S]*any key returns/, 8_000);
      await pty.type('x');
      await pty.waitFor(/q quit/, 8_000);
      await pty.type('q');
      expect(await exitOf(pty)).toBe(0);
      expectFits(pty.raw(), 80, 24);
      expectRestored(pty.raw());
    } finally {
      pty.kill();
    }
  }, 60_000);

  test('120x40: fits, follows a resize to 100x30, Ctrl-C exits 130 and gives the terminal back', async () => {
    const s = server();
    leak ??= await idleInTransaction(s, 3, { app: 'worker', user: 'app_user' });
    const pty = runInPty(['watch', '-d', s.url(), '--interval', '500ms'], { cols: 120, rows: 40 });
    try {
      await pty.waitFor(/dbdoctor watch[\s\S]*q quit/, 8_000);
      expect(lastFrame(pty.raw()).length).toBe(40);
      const { tty } = nodeOf(pty);
      execFileSync('stty', ['-F', tty, 'cols', '100', 'rows', '30']);
      const deadline = Date.now() + 10_000;
      while (lastFrame(pty.raw()).length !== 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(lastFrame(pty.raw()).length).toBe(30);
      for (const l of lastFrame(pty.raw())) expect(displayWidth(l)).toBeLessThanOrEqual(100);
      await pty.type(KEY.ctrlC);
      expect(await exitOf(pty)).toBe(130);
      expectRestored(pty.raw());
    } finally {
      pty.kill();
    }
  }, 60_000);

  test('SIGTERM gives the terminal back; NO_COLOR: no colour', async () => {
    const s = server();
    const pty = runInPty(['watch', '-d', s.url(), '--interval', '500ms'], { cols: 80, rows: 24, env: { NO_COLOR: '1' } });
    try {
      await pty.waitFor(/q quit/, 8_000);
      process.kill(nodeOf(pty).pid, 'SIGTERM');
      expect(await exitOf(pty)).toBe(130);
      expectRestored(pty.raw());
      // no colour in any frame (the reset in the restore sequence is not a colour)
      for (const f of pty.raw().split(FRAME).slice(1)) expect(f.split(LEAVE)[0]).not.toMatch(/\u001b\[[0-9;]*[1-9][0-9;]*m/);
    } finally {
      pty.kill();
    }
  }, 60_000);

  test('t hands over to terminate: its plan, checkbox and confirmation, unchanged', async () => {
    const s = server();
    leak ??= await idleInTransaction(s, 3, { app: 'worker', user: 'app_user' });
    const pty = runInPty(['watch', '-d', s.url(), '--interval', '500ms'], { cols: 100, rows: 30, env: { XDG_STATE_HOME: join(dir, 'state') } });
    try {
      await pty.waitFor(/worker[\s\S]*q quit/, 8_000);
      await pty.type('t');
      await pty.waitFor(/dbdoctor terminate --app worker --state "idle in transaction"/, 8_000);
      await pty.waitFor(/Plan: terminate 3 sessions[\s\S]*Sessions to terminate/, 8_000);
      await pty.type(KEY.enter);
      await pty.waitFor(/\(y\/N\)/, 8_000);
      await pty.type(`n${KEY.enter}`);
      expect(await exitOf(pty)).toBe(5);
      expectRestored(pty.raw());
    } finally {
      pty.kill();
    }
  }, 60_000);
});

describe('a killed server', () => {
  test('the watch ends with one line and the terminal given back', async () => {
    const s = await startTestServer({ forceEmbedded: true });
    const pty = runInPty(['watch', '-d', s.url(), '--interval', '300ms'], { cols: 80, rows: 24 });
    try {
      await pty.waitFor(/q quit/, 8_000);
      // a crash: the postmaster and its backends go at once (SIGQUIT)
      await s.embedded!.stop('immediate');
      const code = await exitOf(pty);
      expect([2, 3]).toContain(code);
      expectRestored(pty.raw());
      const after = stripAnsi(pty.raw().slice(pty.raw().lastIndexOf(LEAVE)));
      expect(after).toMatch(/dbdoctor: /);
      expect(after).not.toMatch(/\n\s+at .*:\d+:\d+/);
    } finally {
      pty.kill();
      await s.stop().catch(() => undefined);
    }
  }, 90_000);
});
