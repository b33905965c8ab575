/**
 * The lock file that keeps two terminate runs (say, overlapping cron jobs) from acting at once.
 *
 * A lock is a regular file owned by dbdoctor's user and holding one record {pid, host, started_at,
 * token}, with the writer's boot_id and start_ticks where the system tells them. It appears
 * whole: the record is written and fsync'd to a new file beside it, which is then hard-linked to
 * the lock's path (link() fails when anything is there, so one run wins). Anything else at the
 * path (another file, a symbolic link, a directory, a device, a FIFO) was not written by dbdoctor:
 * it is refused as a usage error before anything happens, and never removed.
 *
 * A lock whose holder is a dead process on this host, written by this user, is stale and taken
 * over, and so is one whose writer is gone though its pid is alive: where /proc shows this
 * process's own pid namespace (Linux), a record of another boot, or whose pid now names a process
 * that started at another tick, was left by a run that ended (killed, or the machine rebooted)
 * and its pid given to another process. Neither reading depends on the wall clock. Elsewhere, and
 * for a record without them, a live pid holds the lock as before. A stale lock is renamed aside
 * (atomic: one of several runs wins it), checked to be the very file judged stale, removed, and
 * the lock taken afresh. Any other lock is held. Release removes the lock only while the path
 * still holds this run's own file.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, readFileSync, readlinkSync, renameSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { DbdoctorError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { effectiveUid, errorCode, FileProblem, openRegular, readCapped, unlinkQuietly, writeWhole } from './files.js';

export interface LockInfo extends Partial<ProcessIdentity> {
  pid: number;
  host: string;
  started_at: string;
  token: string;
}

/** What tells a process apart from a later one given the same pid: its boot, and its start within it. */
export interface ProcessIdentity {
  /** /proc/sys/kernel/random/boot_id: new at every boot. */
  boot_id: string;
  /** /proc/<pid>/stat's start time (field 22): clock ticks since boot, the same for the life of the process. */
  start_ticks: number;
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
  /** The identity of the process with this pid, or null where it cannot be told. */
  identity?: (pid: number) => ProcessIdentity | null;
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
 * The identity of the process with this pid (Linux), or null: where /proc is not there, where it
 * shows another pid namespace than this process's (a pid there would name another process; seen
 * under `unshare --pid`), where it hides other users' processes, or when the process is gone.
 */
export function processIdentity(pid: number): ProcessIdentity | null {
  try {
    if (readlinkSync('/proc/self') !== String(process.pid)) return null;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return Number.isSafeInteger(ticks) && ticks > 0 && bootId !== '' ? { boot_id: bootId, start_ticks: ticks } : null;
  } catch {
    return null;
  }
}

/**
 * Whether the lock's writer is gone though its pid is alive: the record was written in another
 * boot, or its pid now names a process that started at another tick. False when the record or
 * this system cannot tell.
 */
function pidReused(lock: LockInfo, identity: (pid: number) => ProcessIdentity | null): boolean {
  if (lock.boot_id === undefined || lock.start_ticks === undefined) return false;
  const now = identity(lock.pid);
  return now !== null && (now.boot_id !== lock.boot_id || now.start_ticks !== lock.start_ticks);
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

/**
 * Exactly a record acquireLock writes (these four fields, and the writer's identity where it could
 * tell it: nothing else), or null.
 */
function parseRecord(text: string): LockInfo | null {
  try {
    const v = JSON.parse(text) as LockInfo;
    const keys = Object.keys(v).sort().join();
    const base = Number.isSafeInteger(v.pid) && v.pid > 0 && typeof v.started_at === 'string' && [v.host, v.token].every((x) => typeof x === 'string' && x !== '');
    const info = { pid: v.pid, host: v.host, started_at: v.started_at, token: v.token };
    if (keys === 'host,pid,started_at,token') return base ? info : null;
    const identified = typeof v.boot_id === 'string' && v.boot_id !== '' && Number.isSafeInteger(v.start_ticks) && (v.start_ticks ?? 0) > 0;
    return keys === 'boot_id,host,pid,start_ticks,started_at,token' && base && identified ? { ...info, boot_id: v.boot_id, start_ticks: v.start_ticks } : null;
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
  const pid = deps.pid ?? process.pid;
  const identity = deps.identity ?? processIdentity;
  const info: LockInfo = {
    pid,
    host: deps.host ?? hostname(),
    started_at: (deps.now?.() ?? new Date()).toISOString(),
    token: randomUUID(),
    ...identity(pid),
  };
  const alive = deps.isAlive ?? processIsAlive;
  let mine: string | null = null;
  let tookOverFrom: LockInfo | null = null;
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      const found = readLock(path);
      if (found) {
        if (found.info.host !== info.host) throw lockedError(path, found.info);
        const gone = !alive(found.info.pid) ? 'no longer running' : pidReused(found.info, identity) ? 'ended: its pid now names another process' : null;
        if (gone === null) throw lockedError(path, found.info);
        if (found.uid !== effectiveUid()) throw lockedError(path, found.info, `, ${gone}, but the lock belongs to uid ${found.uid}`);
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
