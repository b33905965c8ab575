/** The lock file and the audit log, on a real file system (temporary directories). */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { DbdoctorError } from '../../src/core/errors.js';
import { ExitCode } from '../../src/core/exit-codes.js';
import { openAuditLog } from '../../src/ui/audit.js';
import { acquireLock, processIdentity } from '../../src/ui/lockfile.js';

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

  const linux = process.platform === 'linux';
  const ticksNow = () => Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100);

  test("a process's identity is read from /proc on Linux (its boot, its start in ticks, a name with ') (' in it), and is null elsewhere or for no process", async () => {
    const own = processIdentity(process.pid);
    // A name that ends its field with ') (' inside: the start must still be field 22.
    const named = spawn(process.execPath, ['-e', "process.title = 'x) (y z) w'; setTimeout(() => {}, 30000)"], { stdio: 'ignore' });
    try {
      if (!linux) {
        expect(own).toBeNull();
        return;
      }
      expect(own).toEqual({ boot_id: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), start_ticks: expect.any(Number) });
      expect(processIdentity(process.pid)).toEqual(own);
      // between this process's start and now, to the tick
      expect(Math.abs(own!.start_ticks - (ticksNow() - Math.round(process.uptime() * 100)))).toBeLessThan(200);
      const deadline = Date.now() + 10_000;
      while (!readFileSync(`/proc/${named.pid}/comm`, 'utf8').includes(') (') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(readFileSync(`/proc/${named.pid}/comm`, 'utf8')).toContain(') (');
      const theirs = processIdentity(named.pid!);
      expect(theirs?.boot_id).toBe(own!.boot_id);
      expect(theirs!.start_ticks).toBeGreaterThanOrEqual(own!.start_ticks);
      expect(theirs!.start_ticks).toBeLessThanOrEqual(ticksNow() + 1);
    } finally {
      named.kill();
    }
    expect(processIdentity(deadPid())).toBeNull();
  });

  test('a lock records its writer\'s identity where it can tell it', () => {
    const path = join(dir, 'terminate.lock');
    const lock = acquireLock(path);
    const record = JSON.parse(readFileSync(path, 'utf8'));
    if (linux) expect(record).toMatchObject({ pid: process.pid, ...processIdentity(process.pid) });
    else expect(Object.keys(record).sort()).toEqual(['host', 'pid', 'started_at', 'token']);
    lock.release();
  });

  test('a lock whose live pid now names another process (another boot, another start) is taken over on Linux; one whose writer may still run is held', () => {
    const path = join(dir, 'terminate.lock');
    // A live process: the lock's pid, as after a reboot or a crash when the pid went to another process.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      const pid = other.pid!;
      const base = { pid, host: hostname(), started_at: new Date().toISOString() };
      const theirs = processIdentity(pid);
      const write = (record: object) => writeFileSync(path, JSON.stringify(record), { mode: 0o600 });
      const takenOver = (record: Record<string, unknown>) => {
        write(record);
        const lock = acquireLock(path);
        expect(lock.tookOverFrom).toEqual(record);
        lock.release();
      };
      if (linux) {
        expect(theirs).not.toBeNull();
        takenOver({ ...base, token: 'other-start', boot_id: theirs!.boot_id, start_ticks: theirs!.start_ticks - 1 });
        takenOver({ ...base, token: 'other-boot', boot_id: '00000000-0000-0000-0000-000000000000', start_ticks: theirs!.start_ticks });
        // Its writer, exactly: held.
        write({ ...base, token: 'same', ...theirs });
        expect(lockedCode(() => acquireLock(path))).toBe(ExitCode.LOCKED);
      }
      // A record without the writer's identity (older dbdoctor, or a system that cannot tell): a live pid holds it.
      write({ ...base, token: 'no-identity' });
      expect(lockedCode(() => acquireLock(path))).toBe(ExitCode.LOCKED);
      // Where this system cannot tell a process's identity, a live pid holds the lock whatever the record says.
      write({ ...base, token: 'cannot-tell', boot_id: 'b', start_ticks: 1 });
      expect(lockedCode(() => acquireLock(path, { identity: () => null }))).toBe(ExitCode.LOCKED);
      expect(other.exitCode).toBeNull();
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
    const malformed = [
      JSON.stringify({ pid: 1, host: 'h', started_at: 'x', token: 't', extra: 1 }),
      JSON.stringify({ pid: 1, host: 'h', started_at: 'x', token: 't', boot_id: '', start_ticks: 5 }),
      JSON.stringify({ pid: 1, host: 'h', started_at: 'x', token: 't', boot_id: 'b', start_ticks: 1.5 }),
      JSON.stringify({ pid: 1, host: 'h', started_at: 'x', token: 't', boot_id: 'b' }),
    ];
    for (const content of ['', '{ half a rec', ...malformed, 'x'.repeat(10_000)]) {
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
