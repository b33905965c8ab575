/**
 * V8's code cache for the bundle: bin/dbdoctor.cjs loads dist/app/cli.cjs through loadBundle()
 * (scripts/bundle.js builds this module as dist/app/compile-cache.cjs), which compiles it with the
 * code V8 kept from an earlier run of the same command, so later runs skip parsing and compiling
 * what they run. The cache is taken after the command ran (vm.Script's createCachedData), so it
 * holds every function that run compiled on its first call too: deciding over a large incident
 * calls ~340 of them, ~14 ms of compiling (Node's own compile cache, 22.1+, keeps only what was
 * compiled with the file itself, and Node 20 has none). One file per command and audience
 * (`diagnose` for people, `diagnose` for a machine: cacheKey()), so each run reads back only the
 * code of its kind. A file's name holds the bundle's path (a hash), Node's version and architecture
 * (V8 refuses a cache from another V8 or other flags all the same, and CI alternates Node majors on
 * one machine), and the bundle's inode, size and times: when a new file is written, those of an
 * earlier bundle at the same path (another build, an upgrade) are removed, and any file not
 * written for 30 days (a copy since removed).
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
 *   followed), and written whole (0600, fsync'd) under a name of its own, then renamed into place;
 * - otherwise there is no cache, and the command runs exactly as without one (so it does with
 *   NODE_DISABLE_COMPILE_CACHE set, and on Windows, which has no uids to check).
 * V8 checks a cache's version, flags and source length, not its bytes: a file torn by a crash is
 * never in place (rename), and one changed on purpose needs the user's own rights.
 */
import { type BigIntStats, closeSync, fsyncSync, mkdirSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import * as vm from 'node:vm';
import { forMachinesOnly } from '../commands/formats.js';
import { effectiveUid, errorCode, lstatOrNull, openRegular } from './files.js';

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
    if (preparePrivateDir(code, uid)) return code;
  }
  return undefined;
}

/**
 * What a run's code is kept under: its command (the first word that is not an option: the root's
 * options take no values) and whether it is for a machine, whose runs print through other code.
 */
export function cacheKey(args: readonly string[]): string {
  const first = args.find((a) => !a.startsWith('-'));
  const command = first === undefined ? 'none' : /^[a-z]{1,20}$/.test(first) ? first : 'other';
  return forMachinesOnly(args) ? `${command}-machine` : command;
}

/** FNV-1a of a text, 8 hex digits: names a bundle's path in its cache files' names. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** What every cache file of this bundle's path under this Node begins with. */
function prefix(file: string): string {
  return `${basename(file)}-${fnv1a(file)}-${process.version}-${process.arch}-`;
}

/** The bundle as it is on disk now (another build or an upgrade in place: another stamp). */
function stamp(file: string, st: BigIntStats): string {
  return `${prefix(file)}${st.dev}-${st.ino}-${st.size}-${st.mtimeNs}-${st.ctimeNs}`;
}

const MAX_CACHE_BYTES = 64 * 1024 * 1024;
/** A cache this old is written again after a run: what that run compiled is added to it. */
const REFRESH_MS = 10 * 60_000;
/** A cache file not written for this long is removed when another is written (an uninstalled copy's). */
const FORGET_MS = 30 * 24 * 3_600_000;

/** A cache file's bytes and age, or undefined when there is none (or none dbdoctor may use). */
function readCache(path: string, uid: number): { data: Buffer; ageMs: number } | undefined {
  const f = openRegular(path, { owner: uid, oneLink: true });
  if (!f) return undefined;
  try {
    const size = Number(f.stats.size);
    if (size === 0 || size > MAX_CACHE_BYTES) return undefined;
    const data = Buffer.allocUnsafe(size);
    let total = 0;
    while (total < size) {
      const n = readSync(f.fd, data, total, size - total, null);
      if (n === 0) return undefined;
      total += n;
    }
    return { data, ageMs: Date.now() - f.stats.mtimeMs };
  } finally {
    closeSync(f.fd);
  }
}

/**
 * Writes the cache under a name of its own, fsyncs it, renames it into place, and removes the
 * files of an earlier bundle at the same path, and any not written for FORGET_MS.
 */
function writeCache(path: string, data: Buffer, ownPrefix: string, current: string): void {
  const part = `${path}.${process.pid}.part`;
  const f = openRegular(part, { append: true, createMode: 0o600 });
  if (!f) return;
  try {
    try {
      if (writeSync(f.fd, data, 0, data.length) !== data.length) throw new Error('short write');
      fsyncSync(f.fd);
    } finally {
      closeSync(f.fd);
    }
    renameSync(part, path);
  } catch {
    unlinkQuietly(part);
    return;
  }
  const dir = dirname(path);
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    const other = join(dir, name);
    if ((name.startsWith(ownPrefix) && !name.startsWith(current)) || now - (lstatOrNull(other)?.mtimeMs ?? now) > FORGET_MS) unlinkQuietly(other);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

export interface LoadedBundle<T> {
  exports: T;
  /** What became of the cache: none usable (off), none yet (none), compiled with (used), refused by V8 (refused). */
  cache: 'off' | 'none' | 'used' | 'refused';
  /** After the command ran: keeps what V8 compiled for it, when there was no cache yet, V8 refused it, or it is old. */
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
  let dir: string | undefined;
  let path: string | undefined;
  let cached: { data: Buffer; ageMs: number } | undefined;
  let st: BigIntStats | undefined;
  try {
    dir = cacheDirectory(env, tmp);
    if (dir) {
      st = statSync(file, { bigint: true });
      path = join(dir, `${stamp(file, st)}-${cacheKey(args)}.v8`);
      cached = readCache(path, effectiveUid()!);
    }
  } catch {
    dir = undefined;
  }
  if (!dir || !path || !st) return { exports: req(file) as T, cache: 'off', save: () => {} };
  const source = readFileSync(file, 'utf8');
  // require()'s own wrapper, on the file's first line (so lines in stack traces are the file's).
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, {
    filename: file,
    cachedData: cached?.data,
  });
  const module = { exports: {} as T };
  (script.runInThisContext() as (e: T, r: NodeJS.Require, m: { exports: T }, f: string, d: string) => void)(module.exports, req, module, file, dirname(file));
  const target = path;
  const bundle = st;
  return {
    exports: module.exports,
    cache: !cached ? 'none' : script.cachedDataRejected ? 'refused' : 'used',
    save: () => {
      if (cached && !script.cachedDataRejected && cached.ageMs < REFRESH_MS) return;
      try {
        writeCache(target, script.createCachedData(), prefix(file), stamp(file, bundle));
      } catch {
        // a cache is only ever a saving: the next run compiles as this one did
      }
    },
  };
}
