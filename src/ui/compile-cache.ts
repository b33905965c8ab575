/**
 * V8's code cache for the bundle: bin/dbdoctor.cjs loads dist/app/cli.cjs through loadBundle()
 * (scripts/bundle.js builds this module as dist/app/compile-cache.cjs), which compiles it with the
 * code V8 kept from an earlier run of the same command, so later runs skip parsing and compiling
 * what they run. The cache is taken after the command ran (vm.Script's createCachedData), so it
 * holds every function that run compiled on its first call too: deciding over a large incident
 * calls ~340 of them, ~14 ms of compiling (Node's own compile cache, 22.1+, keeps only what was
 * compiled with the file itself, and Node 20 has none). One file per command and audience
 * (`diagnose` for people, `diagnose` for a machine: cacheKey()), so each run reads back only the
 * code of its kind; a word that names no command is 'other'. A file's name holds the bundle's path
 * (a hash), Node's version, architecture and V8 options (V8 refuses a cache from another V8 or other
 * flags all the same, and CI alternates Node majors on one machine), and the bundle's inode, size
 * and times: when a file is written, dbdoctor's files of an earlier bundle at the same path (another
 * build, an upgrade in place) are removed, and any of its files not written for 30 days (a copy
 * since removed, a Node no longer used). The directory of Node's own compile cache that earlier
 * versions used (`compile/` beside `code/`) is left as it is.
 *
 * The cache lives in a directory of the user's own, never in the installed package (which may be
 * read-only, global, or shared by every user of the machine): `$XDG_CACHE_HOME/dbdoctor` (an
 * absolute path, per the XDG spec), else `~/.cache/dbdoctor`, else `<tmpdir>/dbdoctor-<uid>`. V8
 * runs what a cache file holds, so dbdoctor (often root) uses a directory only when no other user
 * can write into it or swap it for something else:
 * - every component of the path that exists is a directory (or a link) belonging to root or to
 *   dbdoctor's effective user; a directory that others may write into must be sticky (/tmp), so
 *   they cannot move dbdoctor's entry aside;
 * - the directory itself is dbdoctor's user's, is a directory (a symbolic link is never followed
 *   there), and no one else may read, write or enter it (mode 0700): dbdoctor creates it so (and any
 *   missing parents, one at a time, 0700) and never chmods one it finds;
 * - a cache file is read only when it is a regular file of the user's with one name (no link is
 *   followed; anything else at the name is replaced by the next write, never followed or changed),
 *   and whole (its header gives the length of V8's data);
 * - it is written into a new file of its own (O_EXCL, O_NOFOLLOW, 0600), fsync'd, and renamed over
 *   the name: a file torn by a crash is never in place;
 * - only files named as dbdoctor names its own are ever removed from the directory;
 * - otherwise there is no cache, and the command runs exactly as without one (so it does with
 *   NODE_DISABLE_COMPILE_CACHE set, and on Windows, which has no uids to check).
 * V8 checks a cache's version, flags and source length, not its bytes (a release build keeps no
 * checksum): one changed on purpose needs the user's own rights, which can change what runs anyway.
 */
import { type BigIntStats, closeSync, constants, fstatSync, mkdirSync, openSync, readdirSync, renameSync, type Stats, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import * as vm from 'node:vm';
import { COMMAND_NAMES, forMachinesOnly } from '../commands/formats.js';
import { effectiveUid, errorCode, lstatOrNull, openRegular, readCapped, readUpTo, unlinkQuietly, writeWhole } from './files.js';

const ROOT_UID = 0;

/** The directories tried, in order: the user's cache directory, then one of their own in tmpdir. */
export function compileCacheCandidates(env: NodeJS.ProcessEnv, uid: number, home = env.HOME || homedir(), tmp = tmpdir()): string[] {
  const xdg = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : home && isAbsolute(home) ? join(home, '.cache') : undefined;
  return [...(xdg ? [join(xdg, 'dbdoctor')] : []), join(tmp, `dbdoctor-${uid}`)].map((p) => resolve(p));
}

/**
 * Makes `dir` ready under the rules above and says whether it may be used: checks every existing
 * component from the root down, creates the missing ones (0700), then checks `dir` itself.
 */
export function preparePrivateDir(dir: string, uid: number): boolean {
  const chain: string[] = [];
  for (let p = dir; ; p = dirname(p)) {
    chain.unshift(p);
    if (dirname(p) === p) break;
  }
  for (let i = 0; i < chain.length; i++) {
    const path = chain[i]!;
    let st = lstatOrNull(path);
    if (st === null) {
      try {
        mkdirSync(path, { mode: 0o700 });
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') return false;
      }
      st = lstatOrNull(path);
      if (st === null) return false;
    }
    if (i === chain.length - 1) return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0;
    if (st.uid !== uid && st.uid !== ROOT_UID) return false;
    // A link of root's or the user's own (macOS: /var, /tmp) is followed; what it points to is
    // held to the same rules.
    if (st.isSymbolicLink()) st = statSync(path);
    if (!st.isDirectory() || (st.uid !== uid && st.uid !== ROOT_UID)) return false;
    // Others may write here: only a sticky directory keeps them from moving the next entry aside,
    // and only when that entry is the user's own.
    if ((st.mode & 0o022) !== 0) {
      if ((st.mode & 0o1000) === 0) return false;
      const next = lstatOrNull(chain[i + 1]!);
      if (next !== null && next.uid !== uid) return false;
    }
  }
  return false;
}

/** The first directory of the user's own that may hold the cache (see above); undefined when none. */
export function cacheDirectory(env: NodeJS.ProcessEnv = process.env, tmp = tmpdir()): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  const uid = effectiveUid();
  if (uid === undefined) return undefined;
  for (const dir of compileCacheCandidates(env, uid, env.HOME || homedir(), tmp)) {
    const code = join(dir, 'code');
    try {
      if (preparePrivateDir(code, uid)) return code;
    } catch {
      // a path dbdoctor may not look into (EACCES): the next candidate
    }
  }
  return undefined;
}

/**
 * What a run's code is kept under: its command (the first word that is not an option: the root's
 * options take no values; a word that names no command is 'other') and whether it is for a
 * machine, whose runs print through other code.
 */
export function cacheKey(args: readonly string[]): string {
  const first = args.find((a) => !a.startsWith('-'));
  const command = first === undefined ? 'none' : (COMMAND_NAMES as readonly string[]).includes(first) ? first : 'other';
  return forMachinesOnly(args) ? `${command}-machine` : command;
}

/** FNV-1a of a text, 8 hex digits: names a path, or V8's options, in a cache file's name. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/**
 * What every cache file of this bundle's path under this Node begins with: the path, Node's version
 * and architecture, and the options V8 runs with (execArgv, NODE_OPTIONS: V8 refuses a cache made
 * under other flags, and runs under two sets would otherwise keep replacing each other's file).
 */
function prefix(file: string, env: NodeJS.ProcessEnv): string {
  return `${basename(file)}-${fnv1a(file)}-${process.version}-${process.arch}-${fnv1a(`${process.execArgv.join(' ')}\n${env.NODE_OPTIONS ?? ''}`)}-`;
}

/** The bundle as it is on disk now (another build or an upgrade in place: another stamp). */
function stamp(own: string, st: BigIntStats): string {
  return `${own}${st.dev}-${st.ino}-${st.size}-${st.mtimeNs}-${st.ctimeNs}`;
}

/** dbdoctor's cache files, and those being written: nothing else in the directory is ever removed. */
const OWN_FILE = /^[\w.-]+-[0-9a-f]{8}-v\d+\.\d+\.\d+-\w+-[0-9a-f]{8}-\d+-\d+-\d+-\d+-\d+-[a-z]+(-machine)?\.v8(\.\d+\.[0-9a-z]+\.part)?$/;
/**
 * A cache file begins with this (16 bytes), then the length of V8's data (uint32, big-endian) and
 * four zero bytes (not checked), then the data: 24 bytes, so the data read back starts on an
 * 8-byte boundary. V8 copies cached data that does not (AlignedCachedData) before it deserializes
 * it, and at 20 bytes (`dbdoctor-code-1`) every run copied its ~700 KB into fresh memory (~175
 * page faults).
 */
const MAGIC = Buffer.from('dbdoctor-code-2\n', 'latin1');
const HEADER_BYTES = MAGIC.length + 8;
const MAX_CACHE_BYTES = 64 * 1024 * 1024;
/**
 * A cache this old is written again after a run, with what V8 holds then: the functions that run
 * compiled, besides those it read from the cache (in a long run, `watch`, V8 may have dropped the
 * code of functions it had not run for a while, so a file can also get smaller).
 */
const REFRESH_MS = 10 * 60_000;
/** A cache file not written for this long is removed when another is written (a removed copy's, an old Node's). */
const FORGET_MS = 30 * 24 * 3_600_000;

/** require()'s own wrapper, its head on the file's first line (so lines in stack traces are the file's). */
const WRAP_HEAD = Buffer.from('(function (exports, require, module, __filename, __dirname) { ', 'latin1');
const WRAP_TAIL = Buffer.from('\n})', 'latin1');

/**
 * The file's text inside require()'s wrapper as one flat string: read into one buffer between the
 * wrapper's two ends and decoded once. Joined as strings, the three made a string V8 flattened
 * into a copy of its own before compiling (~180 page faults a run for cli.cjs' 725 KB, on a host
 * where a fresh page costs ~15 µs: `npm run bench`). Undefined when the file is not `size` bytes
 * long (it changed since it was stat'd).
 */
export function readWrapped(fd: number, size: number): string | undefined {
  const start = WRAP_HEAD.length;
  // room for one byte more than the file should have, so a file grown since shows (the tail is
  // written over that byte)
  const buf = Buffer.allocUnsafe(start + size + 1 + WRAP_TAIL.length);
  WRAP_HEAD.copy(buf, 0);
  if (readUpTo(fd, buf, start, size + 1) !== size) return undefined;
  WRAP_TAIL.copy(buf, start + size);
  return buf.toString('utf8', 0, start + size + WRAP_TAIL.length);
}

/**
 * V8's data in a cache file, and its age; undefined when there is none, or none to use: not a
 * regular file of the user's with one name (never followed or read; the next write replaces the
 * name), or not whole (its header's length).
 */
function readCache(path: string, uid: number): { data: Buffer; ageMs: number } | undefined {
  try {
    const f = openRegular(path, { owner: uid, oneLink: true });
    if (!f) return undefined;
    try {
      const size = f.stats.size;
      if (size <= HEADER_BYTES || size > MAX_CACHE_BYTES) return undefined;
      const buf = readCapped(f, size, 'changing while dbdoctor read it');
      if (!buf.subarray(0, MAGIC.length).equals(MAGIC) || buf.readUInt32BE(MAGIC.length) !== buf.length - HEADER_BYTES) return undefined;
      // readCapped's buffer is one of its own (not a slice of Node's pool), so it starts aligned,
      // and the data HEADER_BYTES into it is too
      return { data: buf.subarray(HEADER_BYTES), ageMs: Date.now() - f.stats.mtimeMs };
    } finally {
      closeSync(f.fd);
    }
  } catch {
    return undefined;
  }
}

/**
 * Writes the cache into a new file of its own (O_EXCL, 0600, never through a link), fsyncs it,
 * renames it over the name (whatever was there: a link or a FIFO is replaced, not followed), then
 * removes dbdoctor's files of an earlier bundle at this path, parts left by a run that was killed,
 * and any of its files not written for FORGET_MS.
 */
function writeCache(dir: string, name: string, data: Buffer, own: string, current: string): void {
  const path = join(dir, name);
  const part = `${path}.${process.pid}.${Date.now().toString(36)}.part`;
  let fd: number;
  try {
    fd = openSync(part, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch {
    return;
  }
  try {
    try {
      const lengthAndPad = Buffer.alloc(HEADER_BYTES - MAGIC.length);
      lengthAndPad.writeUInt32BE(data.length);
      writeWhole(fd, Buffer.concat([MAGIC, lengthAndPad, data]));
    } finally {
      closeSync(fd);
    }
    renameSync(part, path);
  } catch {
    unlinkQuietly(part);
    return;
  }
  const now = Date.now();
  for (const entry of readdirSync(dir)) {
    if (!OWN_FILE.test(entry) || entry === name) continue;
    const age = now - (lstatOrNull(join(dir, entry))?.mtimeMs ?? now);
    const earlier = entry.startsWith(own) && !entry.startsWith(`${current}-`);
    if (earlier || age > FORGET_MS || (entry.endsWith('.part') && age > REFRESH_MS)) unlinkQuietly(join(dir, entry));
  }
}

export interface LoadedBundle<T> {
  exports: T;
  /** What became of the cache: none usable (off), none yet (none), compiled with (used), refused by V8 (refused). */
  cache: 'off' | 'none' | 'used' | 'refused';
  /**
   * After the command ran: keeps what V8 holds of the bundle's code, when there was no cache yet,
   * V8 refused it, or it is REFRESH_MS old. Synchronous (V8's serializing, a write and an fsync: a
   * few ms, on those runs only), and it never throws.
   */
  save(): void;
}

/**
 * Loads a CommonJS bundle (dist/app/cli.cjs) as require() would, compiled with V8's code cache for
 * this run's command when there is one. Without a usable cache directory it is require() itself.
 * The bundle must not use import(): a script of vm's has no loader for it (scripts/bundle.js turns
 * every import() of cli.cjs into a require()).
 */
export function loadBundle<T>(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, tmp = tmpdir()): LoadedBundle<T> {
  const req = createRequire(file);
  const plain = (): LoadedBundle<T> => ({ exports: req(file) as T, cache: 'off', save: () => {} });
  let dir: string | undefined;
  let dirStat: Stats | null = null;
  try {
    dir = cacheDirectory(env, tmp);
    if (dir) dirStat = lstatOrNull(dir);
  } catch {
    dir = undefined;
  }
  if (!dir || !dirStat) return plain();
  // The stamp and the source from one open file: a bundle replaced meanwhile cannot pair one
  // file's cache with another's text (V8 compares only the text's length).
  let source: string | undefined;
  let st: BigIntStats;
  try {
    const fd = openSync(file, constants.O_RDONLY);
    try {
      st = fstatSync(fd, { bigint: true });
      source = readWrapped(fd, Number(st.size));
    } finally {
      closeSync(fd);
    }
  } catch {
    return plain();
  }
  if (source === undefined) return plain();
  const own = prefix(file, env);
  const current = stamp(own, st);
  const name = `${current}-${cacheKey(args)}.v8`;
  const cached = readCache(join(dir, name), effectiveUid()!);
  const script = new vm.Script(source, { filename: file, cachedData: cached?.data });
  const module = { id: file, filename: file, loaded: false, exports: {} as T };
  (script.runInThisContext() as (this: T, e: T, r: NodeJS.Require, m: { exports: T }, f: string, d: string) => void).call(module.exports, module.exports, req, module, file, dirname(file));
  module.loaded = true;
  const keptIn = dir;
  const keptStat = dirStat;
  return {
    exports: module.exports,
    cache: !cached ? 'none' : script.cachedDataRejected ? 'refused' : 'used',
    save: () => {
      if (cached && !script.cachedDataRejected && cached.ageMs < REFRESH_MS) return;
      try {
        // still the directory that was checked when the run began
        const now = lstatOrNull(keptIn);
        if (!now || now.dev !== keptStat.dev || now.ino !== keptStat.ino) return;
        writeCache(keptIn, name, script.createCachedData(), own, current);
      } catch {
        // a cache is only ever a saving: the next run compiles as this one did
      }
    },
  };
}
