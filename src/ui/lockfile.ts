/**
 * The lock file that keeps two terminate runs (say, overlapping cron jobs) from acting at once.
 *
 * A lock is a regular file owned by dbdoctor's user and holding one record {pid, host, started_at,
 * token}. It appears whole: the record is written and fsync'd to a new file beside it, which is
 * then hard-linked to the lock's path (link() fails when anything is there, so one run wins).
 * Anything else at the path (another file, a symbolic link, a directory, a device, a FIFO) was not
 * written by dbdoctor: it is refused as a usage error before anything happens, and never removed.
 *
 * A lock whose holder is a dead process on this host, written by this user, is stale and taken
 * over, and so is one whose pid now names a process that started after the lock was written (a
 * reboot or a crash, then the pid given to another process; Linux tells a process's start, other
 * systems keep such a lock held as before): renamed aside (atomic: one of several runs wins it), checked to be the very file judged
 * stale, removed, and the lock taken afresh. Any other lock is held. Release removes the lock
 * only while the path still holds this run's own file.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { DbdoctorError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { effectiveUid, errorCode, FileProblem, openRegular, readCapped, unlinkQuietly, writeWhole } from './files.js';

export interface LockInfo {
  pid: number;
  host: string;
  started_at: string;
  token: string;
}

export interface HeldLock {
  readonly path: string;
  readonly info: LockInfo;
  /** Took over a stale lock? Says whose. */
  readonly tookOverFrom: LockInfo | null;
  release(): void;
}

export interface LockDeps {
  pid?: number;
  host?: string;
  now?: () => Date;
  /** Whether a process with this pid exists on this host. */
  isAlive?: (pid: number) => boolean;
  /** When the process with this pid started, or null where that cannot be told. */
  startedAt?: (pid: number) => Date | null;
}

export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it just belongs to someone else.
    return errorCode(err) === 'EPERM';
  }
}

/**
 * When the process with this pid started, on Linux: its start in clock ticks since boot
 * (/proc/<pid>/stat, field 22; USER_HZ, 100 a second on every architecture Node runs on) after the
 * boot time (/proc/stat's btime, whole seconds). Null elsewhere, or when the process is gone or its
 * entry cannot be read.
 */
export function processStartedAt(pid: number): Date | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    return Number.isFinite(ticks) && Number.isFinite(btime) && btime > 0 ? new Date(btime * 1000 + ticks * 10) : null;
  } catch {
    return null;
  }
}

/**
 * How much later than its lock's record a process may seem to have started and still be the
 * lock's writer: the start is known to a second (btime), and a wall clock stepped forward since
 * the lock was written moves the start read now by as much.
 */
const REUSE_SLACK_MS = 60_000;

/** The lock's pid names a process that started after the lock was written: not its writer. */
function pidReused(lock: LockInfo, startedAt: (pid: number) => Date | null): boolean {
  const written = Date.parse(lock.started_at);
  const started = startedAt(lock.pid);
  return started !== null && Number.isFinite(written) && started.getTime() > written + REUSE_SLACK_MS;
}

/** A lock record is small; a bigger file is not one. */
const RECORD_MAX_BYTES = 4096;
const NOT_A_RECORD = 'a file that does not hold a dbdoctor lock record';

interface FoundLock {
  info: LockInfo;
  dev: number;
  ino: number;
  uid: number;
}

/** Exactly the record acquireLock writes (these four fields, nothing else), or null. */
function parseRecord(text: string): LockInfo | null {
  try {
    const v = JSON.parse(text) as LockInfo;
    const shape = Object.keys(v).sort().join() === 'host,pid,started_at,token';
    const valid = Number.isSafeInteger(v.pid) && v.pid > 0 && typeof v.started_at === 'string' && [v.host, v.token].every((x) => typeof x === 'string' && x !== '');
    return shape && valid ? { pid: v.pid, host: v.host, started_at: v.started_at, token: v.token } : null;
  } catch {
    return null; // not JSON, or null
  }
}

function lockedError(path: string, holder: LockInfo | null, note = ''): DbdoctorError {
  const who = holder ? `pid ${holder.pid} on ${holder.host}, since ${holder.started_at}` : 'another run is taking it over right now';
  return new DbdoctorError(`another dbdoctor terminate run holds the lock ${path} (${who}${note}); nothing was done`, {
    exitCode: ExitCode.LOCKED,
    hint: holder
      ? `wait for it to finish; if no dbdoctor runs as pid ${holder.pid} on ${holder.host}, remove ${path}`
      : `try again in a moment; if it persists, look at ${path}`,
    cause: 'locked',
  });
}

function notALock(path: string, what: string): DbdoctorError {
  return new DbdoctorError(`--lock-file ${path} is ${what}, not a dbdoctor lock; nothing was done`, {
    exitCode: ExitCode.USAGE,
    hint: 'dbdoctor only ever removes or replaces its own lock records: give --lock-file a path of its own (default $XDG_STATE_HOME/dbdoctor/terminate.lock)',
    cause: 'lock_file',
  });
}

/** A path that cannot name a file (a parent is a file, a loop) is a usage error; the rest is the system's. */
function ioError(path: string, err: unknown): DbdoctorError {
  if (err instanceof FileProblem) return notALock(path, err.what);
  const code = errorCode(err);
  const badPath = ['ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EISDIR'].includes(code);
  return new DbdoctorError(`cannot use the lock file ${path} (${code}); nothing was done`, {
    exitCode: badPath ? ExitCode.USAGE : ExitCode.UNKNOWN,
    hint: badPath ? 'give --lock-file a path to a file in an existing directory' : 'fix the permissions of its directory or free space, or choose another file with --lock-file',
    cause: 'lock_file',
  });
}

/** The lock at the path; null when nothing is there; anything but a lock record is refused. */
function readLock(path: string): FoundLock | null {
  let f: ReturnType<typeof openRegular>;
  try {
    f = openRegular(path);
  } catch (err) {
    throw ioError(path, err);
  }
  if (!f) return null;
  try {
    const info = parseRecord(readCapped(f, RECORD_MAX_BYTES, NOT_A_RECORD).toString('utf8'));
    if (!info) throw new FileProblem(NOT_A_RECORD);
    return { info, dev: f.stats.dev, ino: f.stats.ino, uid: f.stats.uid };
  } catch (err) {
    throw ioError(path, err);
  } finally {
    closeSync(f.fd);
  }
}

/** The record, whole and on disk, in a new file beside the lock's path. */
function writeRecord(path: string, info: LockInfo): string {
  const tmp = `${path}.new-${info.token}`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const f = openRegular(tmp, { append: true, createMode: 0o600 });
    if (!f?.created) throw new FileProblem('taken by another file');
    try {
      writeWhole(f.fd, `${JSON.stringify(info)}\n`);
    } finally {
      closeSync(f.fd);
    }
    return tmp;
  } catch (err) {
    unlinkQuietly(tmp);
    throw ioError(path, err);
  }
}

/** Moves the stale lock out of the way, or throws LOCKED when the path no longer holds it. */
function takeOver(path: string, stale: FoundLock, token: string): void {
  const aside = `${path}.stale-${token}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return; // released meanwhile
    throw ioError(path, err);
  }
  let moved: FoundLock | null = null;
  try {
    moved = readLock(aside);
  } catch {
    // not a lock: put back below
  }
  // The same file: inode numbers are reused at once, so the token must match too.
  if (moved?.info.token === stale.info.token && moved.dev === stale.dev && moved.ino === stale.ino) {
    unlinkQuietly(aside);
    return;
  }
  // What was moved is not the stale lock (a fresh one, or a file put there meanwhile): put it
  // back untouched. If a third run took the path meanwhile, the moved file stays beside it.
  try {
    linkSync(aside, path);
    unlinkSync(aside);
  } catch {
    throw lockedError(path, null, `; what was there is now ${aside}`);
  }
  throw lockedError(path, moved?.info ?? null);
}

/** Takes the lock, or throws LOCKED (held) or USAGE (not a lock). Bounded: a few attempts, no waiting. */
export function acquireLock(path: string, deps: LockDeps = {}): HeldLock {
  const info: LockInfo = {
    pid: deps.pid ?? process.pid,
    host: deps.host ?? hostname(),
    started_at: (deps.now?.() ?? new Date()).toISOString(),
    token: randomUUID(),
  };
  const alive = deps.isAlive ?? processIsAlive;
  const startedAt = deps.startedAt ?? processStartedAt;
  let mine: string | null = null;
  let tookOverFrom: LockInfo | null = null;
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      const found = readLock(path);
      if (found) {
        if (found.info.host !== info.host || (alive(found.info.pid) && !pidReused(found.info, startedAt))) throw lockedError(path, found.info);
        if (found.uid !== effectiveUid()) throw lockedError(path, found.info, `, no longer running, but the lock belongs to uid ${found.uid}`);
        takeOver(path, found, info.token);
        tookOverFrom = found.info;
        continue;
      }
      mine ??= writeRecord(path, info);
      try {
        linkSync(mine, path);
        return holding(path, info, tookOverFrom);
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw ioError(path, err);
      }
    }
    throw lockedError(path, null);
  } finally {
    if (mine) unlinkQuietly(mine);
  }
}

function holding(path: string, info: LockInfo, tookOverFrom: LockInfo | null): HeldLock {
  let released = false;
  return {
    path,
    info,
    tookOverFrom,
    release() {
      if (released) return;
      released = true;
      try {
        // Only while it is this run's own lock: one taken over meanwhile is another run's.
        if (readLock(path)?.info.token === info.token) unlinkSync(path);
      } catch {
        // gone already, or no longer a lock: not ours to remove
      }
    },
  };
}
