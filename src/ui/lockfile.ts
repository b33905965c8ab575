/**
 * The lock file that keeps two terminate runs (say, overlapping cron jobs) from acting at once.
 * Taken with O_CREAT|O_EXCL, holding {pid, host, started_at, token}. A lock whose holder is a
 * dead process on this host is stale and is taken over: it is first renamed aside (atomic, so
 * only one of several runs can win it) and checked to be the stale lock that was judged, then the
 * lock is taken afresh. A lock from another host, or one being written this very moment, is held.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { DbdoctorError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';

export interface LockInfo {
  pid: number;
  host: string;
  started_at: string;
  token: string;
}

export interface HeldLock {
  readonly path: string;
  readonly info: LockInfo;
  /** Takes over a stale lock? Says whose. */
  readonly tookOverFrom: LockInfo | null;
  release(): void;
}

export interface LockDeps {
  pid?: number;
  host?: string;
  now?: () => Date;
  /** Whether a process with this pid exists on this host. */
  isAlive?: (pid: number) => boolean;
}

export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it just belongs to someone else.
    return (err as { code?: string }).code === 'EPERM';
  }
}

function readInfo(path: string): LockInfo | null | 'missing' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return 'missing';
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.token === 'string') {
      return { pid: v.pid, host: v.host, started_at: String(v.started_at ?? ''), token: v.token };
    }
  } catch {
    // Fall through: unreadable content.
  }
  return null;
}

function lockedError(path: string, holder: LockInfo | null): DbdoctorError {
  const who = holder ? `pid ${holder.pid} on ${holder.host}, since ${holder.started_at}` : 'another run (the lock is being written)';
  return new DbdoctorError(`another dbdoctor terminate run holds the lock ${path} (${who}); nothing was done`, {
    exitCode: ExitCode.LOCKED,
    hint: holder
      ? `wait for it to finish; if no dbdoctor runs as pid ${holder.pid} on ${holder.host}, remove ${path}`
      : `try again in a moment; if it persists, remove ${path}`,
    cause: 'locked',
  });
}

function ioError(path: string, err: unknown): DbdoctorError {
  const code = (err as { code?: string }).code ?? 'error';
  return new DbdoctorError(`cannot use the lock file ${path} (${code}); nothing was done`, {
    exitCode: ExitCode.UNKNOWN,
    hint: 'fix the permissions of its directory, or choose another file with --lock-file',
    cause: 'lock_file',
  });
}

/** Takes the lock or throws DbdoctorError(LOCKED). Bounded: a few attempts, no waiting. */
export function acquireLock(path: string, deps: LockDeps = {}): HeldLock {
  const info: LockInfo = {
    pid: deps.pid ?? process.pid,
    host: deps.host ?? hostname(),
    started_at: (deps.now?.() ?? new Date()).toISOString(),
    token: randomUUID(),
  };
  const alive = deps.isAlive ?? processIsAlive;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw ioError(path, err);
  }
  let tookOverFrom: LockInfo | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw ioError(path, err);
      const holder = readInfo(path);
      if (holder === 'missing') continue; // released meanwhile: try again
      if (holder === null) {
        // Being written right now, or garbage: garbage older than a minute is stale.
        const age = (() => {
          try {
            return (deps.now?.() ?? new Date()).getTime() - statSync(path).mtimeMs;
          } catch {
            return 0;
          }
        })();
        if (age < 60_000) throw lockedError(path, null);
      } else if (holder.host !== info.host || alive(holder.pid)) {
        throw lockedError(path, holder);
      }
      // Stale: move it aside atomically; only one contender can win the rename.
      const aside = `${path}.stale-${info.token}`;
      try {
        renameSync(path, aside);
      } catch {
        continue; // someone else moved it first
      }
      const moved = readInfo(aside);
      const same = holder === null ? moved === null : moved !== null && moved !== 'missing' && moved.token === holder.token;
      if (!same) {
        // We moved a fresh lock someone took meanwhile: put it back and yield to it.
        try {
          linkSync(aside, path);
        } catch {
          // A third run took the lock; it holds it.
        }
        try {
          unlinkSync(aside);
        } catch {
          // nothing to clean
        }
        throw lockedError(path, moved === null || moved === 'missing' ? null : moved);
      }
      try {
        unlinkSync(aside);
      } catch {
        // nothing to clean
      }
      if (holder !== null) tookOverFrom = holder;
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(info)}\n`);
      fsyncSync(fd);
    } catch (err) {
      try {
        unlinkSync(path);
      } catch {
        // nothing to clean
      }
      throw ioError(path, err);
    } finally {
      closeSync(fd);
    }
    let released = false;
    return {
      path,
      info,
      tookOverFrom,
      release() {
        if (released) return;
        released = true;
        const now = readInfo(path);
        // Only remove the lock if it is still ours.
        if (now !== null && now !== 'missing' && now.token === info.token) {
          try {
            unlinkSync(path);
          } catch {
            // already gone
          }
        }
      },
    };
  }
  throw lockedError(path, null);
}
