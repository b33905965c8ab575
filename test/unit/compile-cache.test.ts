import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, closeSync, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { cacheKey, compileCacheCandidates, preparePrivateDir, readWrapped } from '../../src/ui/compile-cache.js';

const uid = process.geteuid!();
const isRoot = uid === 0;
const nobody = () => ({ uid: Number(spawnSync('id', ['-u', 'nobody']).stdout.toString().trim()), gid: Number(spawnSync('id', ['-g', 'nobody']).stdout.toString().trim()) });
const base = mkdtempSync(join(tmpdir(), 'dbdoctor-cc-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(base, `t${++n}`);
  mkdirSync(d, { mode: 0o700 });
  return d;
};
const mode = (p: string) => lstatSync(p).mode & 0o7777;

describe('where the cache may live', () => {
  test('$XDG_CACHE_HOME/dbdoctor (absolute only), else ~/.cache/dbdoctor, then <tmpdir>/dbdoctor-<uid>', () => {
    expect(compileCacheCandidates({ XDG_CACHE_HOME: '/x/cache' }, 7, '/home/a', '/tmp')).toEqual(['/x/cache/dbdoctor', '/tmp/dbdoctor-7']);
    expect(compileCacheCandidates({ XDG_CACHE_HOME: 'relative' }, 7, '/home/a', '/tmp')).toEqual(['/home/a/.cache/dbdoctor', '/tmp/dbdoctor-7']);
    expect(compileCacheCandidates({}, 0, '', '/var/tmp')).toEqual(['/var/tmp/dbdoctor-0']);
  });

  test('a missing directory is created 0700, with its missing parents, and used', () => {
    const d = join(fresh(), 'cache', 'dbdoctor');
    expect(preparePrivateDir(d, uid)).toBe(true);
    expect(mode(d)).toBe(0o700);
    expect(mode(join(d, '..'))).toBe(0o700);
    // and again, as it is now
    expect(preparePrivateDir(d, uid)).toBe(true);
  });

  test('one that others may read or write is not used, and never chmod-ed', () => {
    const d = join(fresh(), 'dbdoctor');
    mkdirSync(d, { mode: 0o755 });
    chmodSync(d, 0o755);
    expect(preparePrivateDir(d, uid)).toBe(false);
    expect(mode(d)).toBe(0o755);
  });

  test('a symbolic link, a file or a FIFO at the path is never followed, used or changed', () => {
    const parent = fresh();
    const target = join(parent, 'elsewhere');
    mkdirSync(target, { mode: 0o700 });
    const link = join(parent, 'link');
    symlinkSync(target, link);
    expect(preparePrivateDir(link, uid)).toBe(false);
    expect(readlinkSync(link)).toBe(target);
    expect(readdirSync(target)).toEqual([]);
    const file = join(parent, 'file');
    writeFileSync(file, 'x');
    expect(preparePrivateDir(file, uid)).toBe(false);
    const fifo = join(parent, 'fifo');
    spawnSync('mkfifo', [fifo]);
    expect(preparePrivateDir(fifo, uid)).toBe(false);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });

  test('under a directory others may write into: only if it is sticky (as /tmp)', () => {
    const open = fresh();
    chmodSync(open, 0o777);
    expect(preparePrivateDir(join(open, 'dbdoctor'), uid)).toBe(false);
    expect(readdirSync(open)).toEqual([]);
    const sticky = fresh();
    chmodSync(sticky, 0o1777);
    expect(preparePrivateDir(join(sticky, 'dbdoctor'), uid)).toBe(true);
  });

  (isRoot ? test : test.skip)('as root: nothing under another user\'s directory, and not their entry in a sticky one', () => {
    const theirs = fresh();
    chownSync(theirs, nobody().uid, nobody().gid);
    expect(preparePrivateDir(join(theirs, '.cache', 'dbdoctor'), uid)).toBe(false);
    expect(readdirSync(theirs)).toEqual([]);
    const sticky = fresh();
    chmodSync(sticky, 0o1777);
    const planted = join(sticky, 'dbdoctor');
    mkdirSync(planted, { mode: 0o700 });
    chownSync(planted, nobody().uid, nobody().gid);
    expect(preparePrivateDir(planted, uid)).toBe(false);
    expect(lstatSync(planted).uid).toBe(nobody().uid);
  });
});

describe('the code cache\'s key', () => {
  // (the cache itself, in processes of their own: test/e2e/code-cache.test.ts)
  test('the key: the command (the first word that is not an option) and whether a machine reads it', () => {
    expect(cacheKey([])).toBe('none');
    expect(cacheKey(['--debug', 'diagnose', '-h', 'db1'])).toBe('diagnose');
    expect(cacheKey(['diagnose', '--format', 'nagios'])).toBe('diagnose-machine');
    expect(cacheKey(['locks', '--json'])).toBe('locks-machine');
    expect(cacheKey(['locks', '--json', '--help'])).toBe('locks');
    expect(cacheKey(['../../etc/passwd'])).toBe('other');
    expect(cacheKey(['diagnsoe', '--json'])).toBe('other-machine');
  });
});

describe('the bundle\'s text, read inside require()\'s wrapper', () => {
  const HEAD = '(function (exports, require, module, __filename, __dirname) { ';
  /** readWrapped() of a file as stat'd, after `change` ran between the stat and the read. */
  const readAfter = (text: string, change: (path: string) => void = () => {}) => {
    const path = join(base, `wrapped-${Math.random().toString(36).slice(2)}.cjs`);
    writeFileSync(path, text);
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      change(path);
      return readWrapped(fd, size);
    } finally {
      closeSync(fd);
    }
  };

  test('the whole file, UTF-8 as it is (a BOM kept, as before), between the two ends; an empty file too', () => {
    expect(readAfter("exports.a = 'na\u00efve \u2713';\n")).toBe(`${HEAD}exports.a = 'na\u00efve \u2713';\n\n})`);
    expect(readAfter('\ufeffexports.b = 1;')).toBe(`${HEAD}\ufeffexports.b = 1;\n})`);
    expect(readAfter('')).toBe(`${HEAD}\n})`);
  });

  test('a file that grew or shrank since it was stat\'d: nothing (the bundle is then required as it is)', () => {
    expect(readAfter('exports.a = 1;', (p) => appendFileSync(p, '\nexports.b = 2;'))).toBeUndefined();
    expect(readAfter('exports.a = 1;', (p) => truncateSync(p, 5))).toBeUndefined();
    expect(readAfter('exports.a = 1;', (p) => truncateSync(p, 0))).toBeUndefined();
  });
});
