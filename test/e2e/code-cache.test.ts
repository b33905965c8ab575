/**
 * V8's code cache for the bundle (src/ui/compile-cache.ts, built as dist/app/compile-cache.cjs,
 * which bin/ loads): each load in a process of its own, as bin/ runs it (within one process V8
 * serves a source it compiled before from its own memory, whatever cache it is given), and then
 * the real CLI, cold and warm.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from '@jest/globals';
import { parseJson, runCli } from '../support/cli.js';
import { useServer } from '../support/server.js';

const MODULE = fileURLToPath(new URL('../../dist/app/compile-cache.cjs', import.meta.url));
const base = mkdtempSync(join(tmpdir(), 'dbdoctor-code-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const mode = (p: string) => lstatSync(p).mode & 0o7777;
const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);
const minutesAgo = (path: string, minutes: number) => {
  const t = (Date.now() - minutes * 60_000) / 1000;
  utimesSync(path, t, t);
};

// A bundle with a module required at load, one required later, and a function large enough that
// its code, compiled on its first call, shows in the cache's size.
const BIG = Array.from({ length: 300 }, (_, i) => `  const f${i} = (x) => x.map((y) => y + ${i}).filter((y) => y % 7 !== ${i % 7});`).join('\n');
const BUNDLE = [
  "const other = require('./other.cjs');",
  'exports.answer = () => 6 * 7;',
  'exports.self = function () { return this; }.call(this);',
  'exports.file = __filename;',
  'exports.dir = __dirname;',
  'exports.other = other;',
  "exports.later = () => require('./later.cjs');",
  `exports.big = function big() {\n${BIG}\n  return f0([1, 2, 3]).length + f299([4]).length;\n};`,
  // text that is not ASCII (read as UTF-8), and the line a stack trace names: the file's own (its last)
  "exports.text = 'na\u00efve \u2713';",
  'exports.line = () => Number(/b\\.cjs:(\\d+):/.exec(new Error().stack)[1]);',
].join('\n');

function setUp() {
  const home = join(base, `t${++n}`);
  const app = join(home, 'app');
  mkdirSync(app, { recursive: true, mode: 0o700 });
  writeFileSync(join(app, 'b.cjs'), BUNDLE);
  writeFileSync(join(app, 'other.cjs'), 'module.exports = "other";');
  writeFileSync(join(app, 'later.cjs'), 'module.exports = "later";');
  return { home, app, env: { XDG_CACHE_HOME: join(home, 'c') }, code: join(home, 'c', 'dbdoctor', 'code'), file: join(app, 'b.cjs'), tmp: join(home, 'tmp') };
}

/** Loads the bundle in a process of its own, evaluates expr, saves, and says what became of the cache. */
function load(file: string, args: string[], env: Record<string, string>, tmp: string, expr = 'b.exports.answer()', save = true): { cache: string; value: unknown } {
  const script = `const b = require(${JSON.stringify(MODULE)}).loadBundle(${JSON.stringify(file)}, ${JSON.stringify(args)}, ${JSON.stringify(env)}, ${JSON.stringify(tmp)});
    const value = ${expr};
    ${save ? 'b.save();' : ''}
    process.stdout.write(JSON.stringify({ cache: b.cache, value }));`;
  // from a file: `node -e` would put the script itself in process.execArgv, which names the file
  const runner = join(base, `load-${++n}.cjs`);
  writeFileSync(runner, script);
  const r = spawnSync(process.execPath, [runner], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...(env.NODE_OPTIONS ? { NODE_OPTIONS: env.NODE_OPTIONS } : {}) } });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { cache: string; value: unknown };
}

describe('loading the bundle', () => {
  test('as require() would: its this, require() (at load and later), __filename and __dirname', () => {
    const { app, env, file, tmp } = setUp();
    const expr = '[b.exports.answer(), b.exports.self === b.exports, b.exports.file, b.exports.dir, b.exports.other, b.exports.later(), b.exports.text, b.exports.line()]';
    const value = [42, true, file, app, 'other', 'later', 'na\u00efve \u2713', BUNDLE.split('\n').length];
    expect(load(file, ['check'], env, tmp, expr)).toEqual({ cache: 'none', value });
    expect(load(file, ['check'], env, tmp, expr)).toEqual({ cache: 'used', value });
  });

  test('kept after the run, with what it compiled on first calls (0600, in a 0700 directory), one file per command and audience, and used by the next run', () => {
    const { env, code, file, tmp } = setUp();
    expect(load(file, ['diagnose', '-h', 'db1'], env, tmp, 'b.exports.big()', false)).toEqual({ cache: 'none', value: 4 });
    expect(files(code)).toEqual([]);
    load(file, ['diagnose', '-h', 'db1'], env, tmp, 'b.exports.big()');
    const kept = files(code);
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatch(new RegExp(`^b\\.cjs-[0-9a-f]{8}-${process.version.replace(/\./g, '\\.')}-${process.arch}-[0-9a-f]{8}-(\\d+-){5}diagnose\\.v8$`));
    expect(mode(join(code, kept[0]!))).toBe(0o600);
    expect(mode(code)).toBe(0o700);
    // `dbdoctor-code-2`, the data's length and four zero bytes: the data starts 8-byte aligned,
    // so V8 reads it where it is read into instead of copying it first
    const head = readFileSync(join(code, kept[0]!));
    expect(head.subarray(0, 16).toString('latin1')).toBe('dbdoctor-code-2\n');
    expect(head.readUInt32BE(16)).toBe(head.length - 24);
    expect(head.readUInt32BE(20)).toBe(0);
    const { ino } = lstatSync(join(code, kept[0]!));
    expect(load(file, ['diagnose', '-h', 'db2'], env, tmp, 'b.exports.big()')).toEqual({ cache: 'used', value: 4 });
    // used, not written again
    expect(files(code)).toEqual(kept);
    expect(lstatSync(join(code, kept[0]!)).ino).toBe(ino);
    // For a machine, the same command runs other code: a file of its own; this run never called
    // big(), so its file does not hold big()'s code, which the other holds (taken after the run).
    expect(load(file, ['diagnose', '--json'], env, tmp).cache).toBe('none');
    const machine = kept[0]!.replace(/-diagnose\.v8$/, '-diagnose-machine.v8');
    expect(files(code)).toEqual([...kept, machine].sort());
    expect(lstatSync(join(code, kept[0]!)).size).toBeGreaterThan(lstatSync(join(code, machine)).size + 10_000);
  });

  test('refused by V8, cut short, or 10 minutes old: written again; an earlier bundle\'s file is removed, a copy elsewhere keeps its own', () => {
    const { env, code, file, tmp } = setUp();
    load(file, ['locks'], env, tmp);
    const [name] = files(code);
    const path = join(code, name!);
    // the header's length holds, V8's data is garbage: V8 refuses it
    const good = readFileSync(path);
    const garbage = Buffer.alloc(good.length, 7);
    good.copy(garbage, 0, 0, 24);
    writeFileSync(path, garbage, { mode: 0o600 });
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'refused', value: 42 });
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'used', value: 42 });
    // the previous format (`dbdoctor-code-1`, a 20-byte header) at the same name: not read, and written again
    const length = Buffer.alloc(4);
    length.writeUInt32BE(good.length - 24);
    writeFileSync(path, Buffer.concat([Buffer.from('dbdoctor-code-1\n', 'latin1'), length, good.subarray(24)]), { mode: 0o600 });
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'none', value: 42 });
    expect(readFileSync(path).subarray(0, 16).toString('latin1')).toBe('dbdoctor-code-2\n');
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'used', value: 42 });
    // cut short (a file torn by a crash would be): not used, and written again
    truncateSync(path, lstatSync(path).size - 1);
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'none', value: 42 });
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'used', value: 42 });
    // 10 minutes old: used, and written again with what this run compiled
    minutesAgo(path, 11);
    const before = lstatSync(path).ino;
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'used', value: 42 });
    expect(lstatSync(path).ino).not.toBe(before);
    // A new bundle (another build, an upgrade): its own file, and the old one goes.
    writeFileSync(file, `${BUNDLE}\nexports.answer = () => 43;`);
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'none', value: 43 });
    expect(files(code)).toHaveLength(1);
    expect(files(code)[0]).not.toBe(name);
    expect(load(file, ['locks'], env, tmp)).toEqual({ cache: 'used', value: 43 });
    // A copy of the bundle elsewhere (another install, the bench's other build) has its own, and
    // neither removes the other's.
    const copy = join(dirname(file), 'copy');
    mkdirSync(copy);
    for (const f of ['b.cjs', 'other.cjs', 'later.cjs']) copyFileSync(join(dirname(file), f), join(copy, f));
    expect(load(join(copy, 'b.cjs'), ['locks'], env, tmp)).toEqual({ cache: 'none', value: 43 });
    expect(files(code)).toHaveLength(2);
    expect(load(file, ['locks'], env, tmp).cache).toBe('used');
    expect(load(join(copy, 'b.cjs'), ['locks'], env, tmp).cache).toBe('used');
    // Other V8 options (NODE_OPTIONS): a file of their own, not one replaced at every turn.
    expect(load(file, ['locks'], { ...env, NODE_OPTIONS: '--max-old-space-size=200' }, tmp).cache).toBe('none');
    expect(load(file, ['locks'], { ...env, NODE_OPTIONS: '--max-old-space-size=200' }, tmp).cache).toBe('used');
    expect(load(file, ['locks'], env, tmp).cache).toBe('used');
    expect(files(code)).toHaveLength(3);
  });

  test('only dbdoctor\'s own files are removed: 30 days unwritten, or a part left by a killed run; anything else stays', () => {
    const { env, code, file, tmp } = setUp();
    load(file, ['check'], env, tmp);
    const [name] = files(code);
    const stale = name!.replace(/^b\.cjs-[0-9a-f]{8}/, 'b.cjs-00000000');
    const part = `${name}.123.abc.part`;
    const freshPart = `${name}.124.abd.part`;
    const theirs = 'notes.txt';
    for (const f of [stale, part, freshPart, theirs]) writeFileSync(join(code, f), 'x', { mode: 0o600 });
    minutesAgo(join(code, stale), 31 * 24 * 60);
    minutesAgo(join(code, theirs), 31 * 24 * 60);
    minutesAgo(join(code, part), 11);
    expect(load(file, ['check', '--json'], env, tmp).cache).toBe('none');
    expect(files(code)).toEqual([name, freshPart, theirs, name!.replace(/-check\.v8$/, '-check-machine.v8')].sort());
  });

  test('a cache file that is a link, has a second name, is a FIFO or is another user\'s is never read or followed, and the next write replaces the name', () => {
    const { home, env, code, file, tmp } = setUp();
    load(file, ['check'], env, tmp);
    const [name] = files(code);
    const path = join(code, name!);
    const elsewhere = join(home, 'elsewhere.v8');
    renameSync(path, elsewhere);
    const target = readFileSync(elsewhere);
    symlinkSync(elsewhere, path);
    expect(load(file, ['check'], env, tmp, 'b.exports.answer()', false)).toEqual({ cache: 'none', value: 42 });
    expect(lstatSync(path).isSymbolicLink()).toBe(true);
    expect(load(file, ['check'], env, tmp)).toEqual({ cache: 'none', value: 42 });
    expect(lstatSync(path).isFile()).toBe(true);
    expect(readFileSync(elsewhere).equals(target)).toBe(true);
    rmSync(path);
    linkSync(elsewhere, path);
    expect(load(file, ['check'], env, tmp).cache).toBe('none');
    expect(lstatSync(path).nlink).toBe(1);
    expect(lstatSync(elsewhere).nlink).toBe(1);
    expect(readFileSync(elsewhere).equals(target)).toBe(true);
    rmSync(path);
    spawnSync('mkfifo', [path]);
    expect(load(file, ['check'], env, tmp, 'b.exports.answer()', false).cache).toBe('none');
    expect(lstatSync(path).isFIFO()).toBe(true);
    expect(load(file, ['check'], env, tmp).cache).toBe('none');
    expect(load(file, ['check'], env, tmp).cache).toBe('used');
    // (as root) another user's file at the name: not read, replaced
    if (process.geteuid?.() === 0) {
      const nobody = Number(spawnSync('id', ['-u', 'nobody']).stdout.toString().trim());
      chownSync(path, nobody, nobody);
      expect(load(file, ['check'], env, tmp).cache).toBe('none');
      expect(lstatSync(path).uid).toBe(0);
      expect(load(file, ['check'], env, tmp).cache).toBe('used');
    }
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
});

describe('the CLI', () => {
  const server = useServer();

  test('cold, then warm: the same answers, the file written once and then used (help, check for a machine)', async () => {
    const cache = join(base, `cli${++n}`);
    const env = { XDG_CACHE_HOME: cache, PGPASSWORD: server().password };
    const url = `postgres://postgres@${server().host}:${server().port}/postgres`;
    const code = join(cache, 'dbdoctor', 'code');
    const runs = [];
    for (let i = 0; i < 2; i++) {
      const help = await runCli(['--help'], { env });
      const check = await runCli(['check', '--json', '-d', url], { env });
      runs.push({ help: [help.exitCode, help.stdout.split('\n')[0]], check: [check.exitCode, (parseJson(check) as { report: { status: string } }).report.status] });
      if (i === 0) {
        expect(files(code).map((f) => f.replace(/^cli\.cjs-.*-\d+-([a-z]+(-machine)?)\.v8$/, '$1'))).toEqual(['check-machine', 'none']);
        runs.push(files(code).map((f) => lstatSync(join(code, f)).ino));
      }
    }
    expect(runs[0]).toEqual({ help: [0, expect.stringMatching(/^Usage: dbdoctor/)], check: [0, 'ok'] });
    expect(runs[2]).toEqual(runs[0]);
    // the second runs used the files the first wrote
    expect(files(code).map((f) => lstatSync(join(code, f)).ino)).toEqual(runs[1]);
  });
});
