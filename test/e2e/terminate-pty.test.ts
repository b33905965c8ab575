/**
 * The interactive flow end to end: the real binary in a real pseudo-terminal, the checkbox and
 * the confirmation driven by the test, against real sessions on a real server.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { runCli } from '../support/cli.js';
import { alive, dbdoctorSessionsLeft, idleInTransaction, sorted } from '../support/incidents.js';
import { KEY, runInPty } from '../support/pty.js';
import { useServer } from '../support/server.js';

const server = useServer();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbdoctor-terminate-pty-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function stateHome(): string {
  return join(dir, `state-${++n}`);
}


describe('terminate on a terminal', () => {
  test('a planned session that runs a new statement before the confirmation is reported as changed and survives', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 3, { app: 'pty-race', user: 'app_user' });
    const home = stateHome();
    const pty = runInPty(['terminate', '-d', s.url(), '--state', 'idle in transaction', '--app', 'pty-race'], { env: { XDG_STATE_HOME: home } });
    try {
      // The plan comes first, with every planned pid.
      const plan = await pty.waitFor(/Plan: terminate 3 sessions[\s\S]*Sessions to terminate/);
      for (const pid of leak.pids) expect(plan).toContain(String(pid));
      await pty.type(KEY.enter);
      await pty.waitFor(/Terminate 3 sessions on postgres:\/\/postgres@[^?]+\? \(y\/N\)/);
      // Between the plan and the confirmation, one session moves on.
      await leak.clients[0]!.query('SELECT 2');
      await pty.type(`y${KEY.enter}`);
      expect(await pty.exit).toBe(1);
      const screen = pty.text();
      expect(screen).toMatch(/WARNING\s+partly done: 2 of 3 planned sessions dealt with\s+\(2 terminated, 1 changed \(kept\)\)/);
      expect(screen).toMatch(new RegExp(`${leak.pids[0]}[\\s│]+pty-race[\\s│]+changed, kept`));
      expect(await alive(s, leak.pids)).toEqual([leak.pids[0]]);
      // Its transaction is intact.
      expect((await leak.clients[0]!.query('SELECT 3 AS x')).rows).toEqual([{ x: 3 }]);
      const lines = readFileSync(join(home, 'dbdoctor', 'audit.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toHaveLength(6);
      expect(lines.find((l) => l.event === 'outcome' && l.pid === leak.pids[0])).toMatchObject({ outcome: 'changed' });
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    } finally {
      pty.kill();
      await leak.release();
    }
  });

  test('space deselects a session, and Enter at the confirmation means No: nothing is terminated', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 2, { app: 'pty-no', user: 'app_user' });
    const pty = runInPty(['terminate', '-d', s.url(), '--app', 'pty-no'], { env: { XDG_STATE_HOME: stateHome() } });
    try {
      await pty.waitFor(/Sessions to terminate/);
      await pty.type(KEY.space);
      await pty.waitFor(/◯/);
      await pty.type(KEY.enter);
      // One left checked, so the question counts one.
      await pty.waitFor(new RegExp(`pid ${leak.pids[1]}[\\s\\S]*Terminate 1 session on [^?]+\\? \\(y/N\\)`));
      await pty.type(KEY.enter);
      expect(await pty.exit).toBe(5);
      expect(pty.text()).toMatch(/NOT CONFIRMED {2}nothing was terminated/);
      // Said once (the label), not again on stderr: stdout and stderr are the same terminal.
      expect(pty.text().match(/not confirmed/gi)).toHaveLength(1);
      expect(await alive(s, leak.pids)).toEqual(sorted(leak.pids));
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    } finally {
      pty.kill();
      await leak.release();
    }
  });

  test('Ctrl-C at the prompt: exit 130, nothing terminated, and the lock is released', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 1, { app: 'pty-ctrlc', user: 'app_user' });
    const home = stateHome();
    const pty = runInPty(['terminate', '-d', s.url(), '--app', 'pty-ctrlc'], { env: { XDG_STATE_HOME: home } });
    try {
      await pty.waitFor(/Sessions to terminate/);
      await pty.type(KEY.ctrlC);
      expect(await pty.exit).toBe(130);
      expect(await alive(s, leak.pids)).toEqual(leak.pids);
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
      const next = await runCli(['terminate', '-d', s.url(), '--app', 'pty-ctrlc', '--dry-run'], { env: { XDG_STATE_HOME: home } });
      expect(next.exitCode).toBe(0);
      const after = await runCli(['terminate', '-d', s.url(), '--app', 'pty-ctrlc', '--yes'], { env: { XDG_STATE_HOME: home } });
      expect(after.exitCode).toBe(0);
      expect(await alive(s, leak.pids)).toEqual([]);
    } finally {
      pty.kill();
      await leak.release();
    }
  });

  test('SIGTERM at the prompt (a prompt library re-sends a signal nobody else handles): exit 130, nothing terminated, the lock released', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 1, { app: 'pty-sigterm', user: 'app_user' });
    const home = stateHome();
    const pty = runInPty(['terminate', '-d', s.url(), '--app', 'pty-sigterm'], { env: { XDG_STATE_HOME: home } });
    try {
      await pty.waitFor(/Sessions to terminate/);
      // dbdoctor is script's child (script runs `exec node ...` in the terminal).
      const pid = Number(readFileSync(`/proc/${pty.child.pid}/task/${pty.child.pid}/children`, 'utf8').trim().split(' ')[0]);
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('terminate');
      process.kill(pid, 'SIGTERM');
      expect(await pty.exit).toBe(130);
      expect(await alive(s, leak.pids)).toEqual(leak.pids);
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
      expect(existsSync(join(home, 'dbdoctor', 'terminate.lock'))).toBe(false);
    } finally {
      pty.kill();
      await leak.release();
    }
  });

  test('two runs sharing a lock file: while one waits at its prompt, the other does nothing and exits 4', async () => {
    const s = server();
    const leak = await idleInTransaction(s, 2, { app: 'pty-lock', user: 'app_user' });
    const home = stateHome();
    const lockFile = join(dir, 'shared.lock');
    const audit = join(dir, 'shared-audit.jsonl');
    const args = ['terminate', '-d', s.url(), '--app', 'pty-lock', '--lock-file', lockFile, '--audit-log', audit];
    const pty = runInPty(args, { env: { XDG_STATE_HOME: home } });
    try {
      await pty.waitFor(/Sessions to terminate/);
      const cron = await runCli([...args, '--yes', '--json'], { env: { XDG_STATE_HOME: home } });
      expect(cron.exitCode).toBe(4);
      expect(cron.stderr).toMatch(/another dbdoctor terminate run holds the lock .*shared\.lock \(pid \d+ on .+\); nothing was done/);
      expect(JSON.parse(cron.stdout)).toMatchObject({ schema: 'dbdoctor.error', report: { cause: 'locked', exit_code: 4 } });
      expect(await alive(s, leak.pids)).toEqual(sorted(leak.pids));
      await pty.type(KEY.enter);
      await pty.waitFor(/Terminate 2 sessions/);
      await pty.type(`y${KEY.enter}`);
      expect(await pty.exit).toBe(0);
      expect(await alive(s, leak.pids)).toEqual([]);
      // Only the run that acted wrote to the audit log: two intents, two outcomes, one run.
      const lines = readFileSync(audit, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { run_id: string; event: string });
      expect(lines.map((l) => l.event)).toEqual(['intent', 'intent', 'outcome', 'outcome']);
      expect(new Set(lines.map((l) => l.run_id)).size).toBe(1);
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    } finally {
      pty.kill();
      await leak.release();
    }
  });
});
