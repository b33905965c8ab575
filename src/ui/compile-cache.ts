/**
 * Node's own compile cache for the bundle (`module.enableCompileCache`, Node 22.1+): later runs
 * skip most of the parsing and compiling of dist/app/cli.cjs. bin/dbdoctor.cjs calls this before it
 * loads the bundle (scripts/bundle.js builds this module as dist/app/compile-cache.cjs).
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
 * - otherwise there is no cache, and the command runs exactly as without one.
 * Node 20 (no compile cache), Windows (no uids to check), NODE_DISABLE_COMPILE_CACHE and a cache the
 * user set up with NODE_COMPILE_CACHE are left alone.
 */
import { mkdirSync, statSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { effectiveUid, errorCode, lstatOrNull } from './files.js';

/** What Node 22.1+ adds to node:module (@types/node 20 does not know it). */
interface CompileCacheApi {
  enableCompileCache?: (directory?: string) => { status: number; message?: string; directory?: string };
  getCompileCacheDir?: () => string | undefined;
}

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

/** Turns Node's compile cache on in the first safe directory; returns it, or undefined when none. */
export function enableCompileCache(env: NodeJS.ProcessEnv = process.env, api: CompileCacheApi = nodeModule as CompileCacheApi, tmp = tmpdir()): string | undefined {
  try {
    if (typeof api.enableCompileCache !== 'function' || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
    const already = api.getCompileCacheDir?.();
    if (already) return already;
    const uid = effectiveUid();
    if (uid === undefined) return undefined;
    for (const dir of compileCacheCandidates(env, uid, env.HOME || homedir(), tmp)) {
      if (!preparePrivateDir(dir, uid)) continue;
      const result = api.enableCompileCache(join(dir, 'compile'));
      return result.directory;
    }
  } catch {
    // a cache is only ever a saving: without one the command runs as it would have
  }
  return undefined;
}
