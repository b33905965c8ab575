/** The lock file and the audit log, on a real file system (temporary directories). */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { DbdoctorError } from '../../src/core/errors.js';
import { ExitCode } from '../../src/core/exit-codes.js';
import { openAuditLog } from '../../src/ui/audit.js';
import { acquireLock, processStartedAt } from '../../src/ui/lockfile.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbdoctor-files-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function deadPid(): number {
  // A process that has exited: its pid names nobody (reuse within the test is not a concern).
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(String(r.stdout));
}

function lockedCode(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof DbdoctorError) return err.exitCode;
    throw err;
  }
  return undefined;
}

describe('lock file', () => {
  test('a second holder is refused with LOCKED while the first holds it, and may take it after', () => {
    const path = join(dir, 'state', 'terminate.lock');
    const first = acquireLock(path);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid, token: first.info.token });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(lockedCode(() => acquireLock(path))).toBe(ExitCode.LOCKED);
    try {
      acquireLock(path);
    } catch (err) {
      expect((err as Error).message).toContain(`pid ${process.pid}`);
      expect((err as DbdoctorError).hint).toContain(path);
    }
    first.release();
    const second = acquireLock(path);
    expect(second.tookOverFrom).toBeNull();
    second.release();
  });

  test('a lock left by a dead process on this host is taken over', () => {
    const path = join(dir, 'terminate.lock');
    const pid = deadPid();
    const stale = acquireLock(path, { pid, isAlive: () => true });
    // The stale holder never released it; now its pid is dead.
    const lock = acquireLock(path);
    expect(lock.tookOverFrom).toMatchObject({ pid, token: stale.info.token });
    expect(JSON.parse(readFileSync(path, 'utf8')).token).toBe(lock.info.token);
    // The old holder releasing late must not remove the new holder's lock.
    stale.release();
    expect(JSON.parse(readFileSync(path, 'utf8')).token).toBe(lock.info.token);
    lock.release();
  });

  test("the start of a process is read from the system on Linux (dbdoctor's own, to the second), and is null elsewhere or for no process", () => {
    const started = processStartedAt(process.pid);
    if (process.platform === 'linux') {
      expect(started).not.toBeNull();
      expect(Math.abs(started!.getTime() - (Date.now() - process.uptime() * 1000))).toBeLessThan(2000);
    } else {
      expect(started).toBeNull();
    }
    expect(processStartedAt(deadPid())).toBeNull();
  });

  test('a lock whose pid now names a process started after the lock was written (a reboot, a crash) is taken over on Linux; held elsewhere', () => {
    const path = join(dir, 'terminate.lock');
    // A live process that started now, named by a lock written an hour ago.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      const pid = other.pid!;
      const record = { pid, host: hostname(), started_at: new Date(Date.now() - 3_600_000).toISOString(), token: 'before-the-reboot' };
      writeFileSync(path, JSON.stringify(record), { mode: 0o600 });
      if (process.platform === 'linux') {
        const lock = acquireLock(path);
        expect(lock.tookOverFrom).toEqual(record);
        lock.release();
      } else {
        expect(lockedCode(() => acquireLock(path))).toBe(ExitCode.LOCKED);
      }
      // Written after that process started: it may be its writer, so the lock is held.
      writeFileSync(path, JSON.stringify({ ...record, started_at: new Date().toISOString(), token: 'now' }), { mode: 0o600 });
      expect(lockedCode(() => acquireLock(path))).toBe(ExitCode.LOCKED);
      // Within the slack (the start is known to a second, the clock may have been stepped): held.
      writeFileSync(path, JSON.stringify({ ...record, started_at: new Date(Date.now() - 30_000).toISOString(), token: 'slack' }), { mode: 0o600 });
      expect(lockedCode(() => acquireLock(path))).toBe(ExitCode.LOCKED);
    } finally {
      other.kill();
    }
  });

  test("a lock from another host is held (its pid cannot be checked from here)", () => {
    const path = join(dir, 'terminate.lock');
    writeFileSync(path, JSON.stringify({ pid: deadPid(), host: 'some-other-host', started_at: 'x', token: 't' }));
    expect(lockedCode(() => acquireLock(path))).toBe(ExitCode.LOCKED);
  });

  test('a file that is not a lock record is refused (usage), however old, and left as it was', () => {
    const path = join(dir, 'terminate.lock');
    for (const content of ['', '{ half a rec', JSON.stringify({ pid: 1, host: 'h', started_at: 'x', token: 't', extra: 1 }), 'x'.repeat(10_000)]) {
      writeFileSync(path, content);
      expect(lockedCode(() => acquireLock(path, { now: () => new Date(Date.now() + 3_600_000) }))).toBe(ExitCode.USAGE);
      expect(readFileSync(path, 'utf8')).toBe(content);
    }
    expect(readdirSync(dir)).toEqual(['terminate.lock']);
  });

  test('the lock appears whole (a temporary file hard-linked into place) and leaves nothing beside it', () => {
    const path = join(dir, 'terminate.lock');
    const lock = acquireLock(path);
    expect(statSync(path).nlink).toBe(1);
    expect(readdirSync(dir)).toEqual(['terminate.lock']);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('audit log', () => {
  test('appends one JSON line per record, mode 0600, in a 0700 directory', () => {
    const path = join(dir, 'deep', 'dbdoctor', 'audit.jsonl');
    const log = openAuditLog(path);
    log.append({ event: 'intent', pid: 1 });
    log.append({ event: 'outcome', pid: 1, outcome: 'terminated' });
    log.close();
    const again = openAuditLog(path);
    again.append({ event: 'intent', pid: 2 });
    again.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual([{ event: 'intent', pid: 1 }, { event: 'outcome', pid: 1, outcome: 'terminated' }, { event: 'intent', pid: 2 }]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'deep', 'dbdoctor')).mode & 0o777).toBe(0o700);
  });

  test("other clients' text is written inert (C1 and hidden characters as JSON escapes: the log is read with cat) and reads back as it was", () => {
    const path = join(dir, 'inert', 'audit.jsonl');
    const log = openAuditLog(path);
    const query = 'SELECT 1 /* \u202eevil \u009b2J \u009d0;T\u009c \u200b */';
    log.append({ event: 'intent', pid: 1, query });
    log.appendAll?.([{ event: 'outcome', pid: 1, app: 'a\u2066b' }]);
    log.close();
    const text = readFileSync(path, 'utf8');
    expect(text).not.toMatch(/[\u0080-\u009f\u200b\u202e\u2066]/);
    expect(text).toContain('\\u202eevil \\u009b2J');
    expect(text.trimEnd().split('\n').map((l) => JSON.parse(l))).toEqual([{ event: 'intent', pid: 1, query }, { event: 'outcome', pid: 1, app: 'a\u2066b' }]);
  });

  test('an existing audit file is used as it is: never chmod\'ed', () => {
    const path = join(dir, 'loose.jsonl');
    writeFileSync(path, '', { mode: 0o644 });
    chmodSync(path, 0o644);
    const log = openAuditLog(path);
    log.close();
    expect(statSync(path).mode & 0o777).toBe(0o644);
  });

  test('after a torn last line (an earlier short write), the next record starts on its own line', () => {
    const path = join(dir, 'audit.jsonl');
    writeFileSync(path, '{"event":"intent","pid":1}\n{"event":"int');
    const log = openAuditLog(path);
    log.append({ event: 'intent', pid: 2 });
    log.close();
    expect(readFileSync(path, 'utf8')).toBe('{"event":"intent","pid":1}\n{"event":"int\n{"event":"intent","pid":2}\n');
  });

  test('an unwritable place is a clear error, before anything is done', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    expect(() => openAuditLog(join(file, 'audit.jsonl'))).toThrow(/cannot write the audit log .* nothing was terminated/);
  });
});
