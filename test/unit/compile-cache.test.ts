import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from '@jest/globals';
import { cacheKey, compileCacheCandidates, preparePrivateDir } from '../../src/ui/compile-cache.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

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

describe('the code cache', () => {
  const BUNDLE = [
    "const other = require('./other.cjs');",
    'exports.answer = () => 6 * 7;',
    'exports.file = __filename;',
    'exports.dir = __dirname;',
    'exports.other = other;',
    "exports.later = () => require('./later.cjs');",
    'exports.lazy = function lazy() { return [1, 2, 3].map((x) => x * 2); };',
  ].join('\n');
  const setUp = () => {
    const home = fresh();
    const app = join(home, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'b.cjs'), BUNDLE);
    writeFileSync(join(app, 'other.cjs'), 'module.exports = "other";');
    writeFileSync(join(app, 'later.cjs'), 'module.exports = "later";');
    const env = { XDG_CACHE_HOME: join(home, 'c') };
    const code = join(home, 'c', 'dbdoctor', 'code');
    return { home, app, env, code, file: join(app, 'b.cjs'), tmp: join(home, 'tmp') };
  };
  // Each load in a process of its own, as bin/ runs it: within one process V8 serves a source it
  // compiled before from its own memory, whatever cache it is given. The built module
  // (dist/app/compile-cache.cjs, as bin/ loads it; npm test builds first).
  const MODULE = join(ROOT, 'dist', 'app', 'compile-cache.cjs');
  const load = (file: string, args: string[], env: Record<string, string>, tmp: string, expr = 'b.exports.answer()', save = true): { cache: string; value: unknown } => {
    const script = `const b = require(${JSON.stringify(MODULE)}).loadBundle(${JSON.stringify(file)}, ${JSON.stringify(args)}, ${JSON.stringify(env)}, ${JSON.stringify(tmp)});
      Promise.resolve(${expr}).then((value) => { ${save ? 'b.save();' : ''} process.stdout.write(JSON.stringify({ cache: b.cache, value })); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as { cache: string; value: unknown };
  };
  const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

  test('the bundle runs as require() would run it: its require() (at load and later), __filename and __dirname', () => {
    const { app, env, file, tmp } = setUp();
    const expr = '[b.exports.answer(), b.exports.file, b.exports.dir, b.exports.other, b.exports.later()]';
    expect(load(file, ['check'], env, tmp, expr)).toEqual({ cache: 'none', value: [42, file, app, 'other', 'later'] });
    expect(load(file, ['check'], env, tmp, expr)).toEqual({ cache: 'used', value: [42, file, app, 'other', 'later'] });
  });

  test('kept after the run (0600, in a 0700 directory of the user\'s), one file per command and audience, and used by the next run', () => {
    const { env, code, file, tmp } = setUp();
    expect(load(file, ['diagnose', '-h', 'db1'], env, tmp, 'b.exports.lazy()', false)).toEqual({ cache: 'none', value: [2, 4, 6] });
    expect(files(code)).toEqual([]);
    load(file, ['diagnose', '-h', 'db1'], env, tmp, 'b.exports.lazy()');
    const kept = files(code);
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatch(new RegExp(`^b\\.cjs-[0-9a-f]{8}-${process.version.replace(/\./g, '\\.')}-${process.arch}-.*-diagnose\\.v8$`));
    expect(mode(join(code, kept[0]!))).toBe(0o600);
    expect(mode(code)).toBe(0o700);
    expect(load(file, ['diagnose', '-h', 'db2'], env, tmp, 'b.exports.lazy()')).toEqual({ cache: 'used', value: [2, 4, 6] });
    expect(files(code)).toEqual(kept);
    // For a machine, the same command runs other code: a file of its own.
    expect(load(file, ['diagnose', '--json'], env, tmp).cache).toBe('none');
    expect(files(code)).toEqual([...kept, kept[0]!.replace(/-diagnose\.v8$/, '-diagnose-machine.v8')].sort());
  });

  test('a cache V8 refuses is compiled without and written again; one of an earlier bundle is removed', () => {
    const { env, code, file, tmp } = setUp();
    load(file, ['locks'], env, tmp);
    const [name] = files(code);
    writeFileSync(join(code, name!), Buffer.alloc(lstatSync(join(code, name!)).size, 7), { mode: 0o600 });
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'refused', value: 42 });
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'used', value: 42 });
    // A new bundle (another build, an upgrade): its own file, and the old one goes.
    writeFileSync(file, `${BUNDLE}\nexports.answer = () => 43;`);
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'none', value: 43 });
    expect(files(code)).toHaveLength(1);
    expect(files(code)[0]).not.toBe(name);
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'used', value: 43 });
    // A copy of the bundle elsewhere (another install, the bench's other build) has its own, and
    // neither removes the other's; a file not written for 30 days goes when another is written.
    const copy = join(dirname(file), 'copy');
    mkdirSync(copy);
    for (const f of ['b.cjs', 'other.cjs', 'later.cjs']) copyFileSync(join(dirname(file), f), join(copy, f));
    expect(load(join(copy, 'b.cjs'), ['locks'], env, tmp)).toEqual({ cache: 'none', value: 43 });
    expect(files(code)).toHaveLength(2);
    expect(load(file, ['locks'], env, tmp).cache).toBe('used');
    expect(load(join(copy, 'b.cjs'), ['locks'], env, tmp).cache).toBe('used');
    const stale = join(code, 'b.cjs-00000000-v0-x-stale.v8');
    writeFileSync(stale, 'x', { mode: 0o600 });
    const month = (Date.now() - 31 * 24 * 3_600_000) / 1000;
    utimesSync(stale, month, month);
    expect(load(file, ['locks', '--json'], env, tmp).cache).toBe('none');
    expect(files(code)).toHaveLength(3);
    expect(existsSync(stale)).toBe(false);
  });

  test('a cache file that is a link, has a second name, or is a FIFO is never read: the bundle runs without a cache', () => {
    const { home, env, code, file, tmp } = setUp();
    load(file, ['check'], env, tmp);
    const [name] = files(code);
    const path = join(code, name!);
    const elsewhere = join(home, 'elsewhere.v8');
    renameSync(path, elsewhere);
    symlinkSync(elsewhere, path);
    expect(load(file, ['check'], env, tmp)).toEqual({ cache: 'off', value: 42 });
    expect(lstatSync(path).isSymbolicLink()).toBe(true);
    rmSync(path);
    linkSync(elsewhere, path);
    expect(load(file, ['check'], env, tmp).cache).toBe('off');
    expect(lstatSync(path).nlink).toBe(2);
    rmSync(path);
    spawnSync('mkfifo', [path]);
    expect(load(file, ['check'], env, tmp).cache).toBe('off');
    expect(lstatSync(path).isFIFO()).toBe(true);
  });

  test('NODE_DISABLE_COMPILE_CACHE, or no directory of the user\'s own: require() itself, and nothing written', () => {
    const { home, env, file, tmp } = setUp();
    expect(load(file, ['check'], { ...env, NODE_DISABLE_COMPILE_CACHE: '1' }, tmp)).toEqual({ cache: 'off', value: 42 });
    expect(existsSync(join(home, 'c'))).toBe(false);
    const open = join(home, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    expect(load(file, ['check'], { XDG_CACHE_HOME: open }, open)).toEqual({ cache: 'off', value: 42 });
    expect(readdirSync(open)).toEqual([]);
  });

  test('the key: the command (the first word that is not an option) and whether a machine reads it', () => {
    expect(cacheKey([])).toBe('none');
    expect(cacheKey(['--debug', 'diagnose', '-h', 'db1'])).toBe('diagnose');
    expect(cacheKey(['diagnose', '--format', 'nagios'])).toBe('diagnose-machine');
    expect(cacheKey(['locks', '--json'])).toBe('locks-machine');
    expect(cacheKey(['locks', '--json', '--help'])).toBe('locks');
    expect(cacheKey(['../../etc/passwd'])).toBe('other');
  });
});
