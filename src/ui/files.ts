/**
 * The rules for every file dbdoctor opens at run time (it runs as root from cron, so a path a user
 * can point it at must not become a way to hurt the machine):
 * - regular files only: what is at the path is looked at (lstat, or stat where a link may be
 *   followed) before it is opened, so a device, a FIFO or a directory is never opened at all;
 * - opened with O_NONBLOCK and O_NOCTTY (a FIFO swapped in meanwhile cannot block), with
 *   O_NOFOLLOW for files dbdoctor writes, then fstat'd: still a regular file, still the same one;
 * - a file dbdoctor writes into must belong to its effective user; it is never chmod'ed, truncated
 *   or replaced, only created (O_EXCL) or appended to;
 * - every write is whole (the count write() returns is checked: a short write is a failure) and
 *   fsync'd before the caller goes on.
 * Problems with what is at a path are FileProblem (the caller words the error and picks its exit
 * code); errors from the system (EACCES, ENOSPC, EFBIG ...) are thrown as they come.
 */
import { closeSync, constants, fstatSync, fsyncSync, lstatSync, openSync, readSync, type Stats, statSync, unlinkSync, writeSync } from 'node:fs';

/** What is at a path that dbdoctor will not use; `what` completes "<path> is ...". */
export class FileProblem extends Error {
  constructor(readonly what: string) {
    super(what);
    this.name = 'FileProblem';
  }
}

/** A write that reached the file only in part (disk full, file-size limit). */
export class ShortWrite extends Error {
  readonly code = 'short write';
  constructor(
    readonly written: number,
    readonly wanted: number,
  ) {
    super(`only ${written} of ${wanted} bytes were written (disk full, or a file-size limit)`);
    this.name = 'ShortWrite';
  }
}

export function errorCode(err: unknown): string {
  return (err as { code?: string }).code ?? (err as Error).message ?? String(err);
}

/** "a FIFO", "a directory", ... as in "<path> is a FIFO". */
export function kindOf(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** What is at the path itself (a link is not followed); null when nothing is. */
export function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return null;
    throw err;
  }
}

/** What a link at the path points to; null when nothing is there; a dangling link is a problem. */
function statFollowing(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
    if (lstatOrNull(path) === null) return null;
    throw new FileProblem('a symbolic link to a file that does not exist');
  }
}

export function effectiveUid(): number | undefined {
  return typeof process.geteuid === 'function' ? process.geteuid() : undefined;
}

export interface OpenedFile {
  fd: number;
  stats: Stats;
  /** This call created the file (it did not exist). */
  created: boolean;
}

export interface OpenOptions {
  /** Open for appending (read-write, O_APPEND) instead of reading. */
  append?: boolean;
  /** Create it (O_EXCL, this mode) when nothing is at the path; else a missing file gives null. */
  createMode?: number;
  /** Follow a symbolic link at the path (only for files dbdoctor only reads). */
  follow?: boolean;
  /** The file must belong to this uid. */
  owner?: number;
  /** The file must have no other name (a hard link could make it any file of its owner's). */
  oneLink?: boolean;
}

/**
 * Opens a regular file without ever blocking or following a link it must not follow. Returns null
 * when nothing is at the path (and createMode is not given); throws FileProblem for anything that
 * is not a regular file (or not the owner's); system errors as they come.
 */
export function openRegular(path: string, o: OpenOptions = {}): OpenedFile | null {
  const seen = o.follow ? statFollowing(path) : lstatOrNull(path);
  if (seen && !seen.isFile()) throw new FileProblem(kindOf(seen));
  const flags =
    (o.append ? constants.O_RDWR | constants.O_APPEND : constants.O_RDONLY) | constants.O_NONBLOCK | constants.O_NOCTTY | (o.follow ? 0 : constants.O_NOFOLLOW);
  let fd: number;
  let created = false;
  try {
    if (seen) fd = openSync(path, flags);
    else if (o.createMode === undefined) return null;
    else {
      fd = openSync(path, flags | constants.O_CREAT | constants.O_EXCL, o.createMode);
      created = true;
    }
  } catch (err) {
    const code = errorCode(err);
    // Something was put at the path between the look and the open: the next look says what.
    if (code === 'ELOOP' || code === 'EEXIST' || (code === 'ENOENT' && seen)) throw new FileProblem('being replaced while dbdoctor opened it');
    if (code === 'ENOENT' && o.createMode === undefined) return null;
    throw err;
  }
  const stats = fstatSync(fd);
  const problem = !stats.isFile()
    ? kindOf(stats)
    : seen && (stats.ino !== seen.ino || stats.dev !== seen.dev)
      ? 'being replaced while dbdoctor opened it'
      : o.owner !== undefined && stats.uid !== o.owner
        ? `owned by uid ${stats.uid}, not by dbdoctor's user (uid ${o.owner})`
        : o.oneLink && stats.nlink !== 1
          ? `a file with ${stats.nlink} hard links`
          : null;
  if (problem) {
    closeSync(fd);
    throw new FileProblem(problem);
  }
  return { fd, stats, created };
}

/** Reads from an open file's position into buf from `at`, until `count` bytes or the end: the bytes read. */
export function readUpTo(fd: number, buf: Buffer, at: number, count: number): number {
  let total = 0;
  while (total < count) {
    const n = readSync(fd, buf, at + total, count - total, null);
    if (n === 0) break;
    total += n;
  }
  return total;
}

/** Reads an open regular file whole, refusing one larger than maxBytes (even one still growing). */
export function readCapped(f: OpenedFile, maxBytes: number, tooLarge: string): Buffer {
  if (f.stats.size > maxBytes) throw new FileProblem(tooLarge);
  const buf = Buffer.alloc(maxBytes + 1);
  const total = readUpTo(f.fd, buf, 0, buf.length);
  if (total > maxBytes) throw new FileProblem(tooLarge);
  return buf.subarray(0, total);
}

/** The text of a regular file (a link to one is followed), at most maxBytes; null when nothing is at the path. */
export function readRegularText(path: string, maxBytes: number): string | null {
  const f = openRegular(path, { follow: true });
  if (!f) return null;
  try {
    return readCapped(f, maxBytes, `larger than ${maxBytes} bytes`).toString('utf8');
  } finally {
    closeSync(f.fd);
  }
}

/** Writes all of text (or bytes) with one write() and fsyncs it; a short write throws ShortWrite. */
export function writeWhole(fd: number, text: string | Buffer): void {
  const buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const n = writeSync(fd, buf, 0, buf.length);
  if (n !== buf.length) throw new ShortWrite(n, buf.length);
  fsyncSync(fd);
}

/** Removes a file dbdoctor made, if it is still there. */
export function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing was pending (every write was fsync'd)
  }
}
