/**
 * Files that are safe as root (issue #14, items 3 and 6), through the built binary, on PostgreSQL
 * 14 and 18 with real sessions to act on:
 * - nothing at --lock-file but a dbdoctor lock record is removed or replaced: anything else there
 *   (the old unparsable file, a symbolic link, a dangling one, a directory, /dev/null, a
 *   FIFO) is one line and exit 64, before connecting, and left exactly as it was;
 * - the audit log is never followed through a link, never chmod'ed, never a FIFO, a device or
 *   another user's file; every line is whole before its signal (real short writes, from a
 *   file-size limit), and a run whose outcome line is lost says which session it signalled;
 * - a config file never stalls a monitor: FIFOs, devices, directories, dangling links and files
 *   over 1 MB are one line and exit 64; a BOM is accepted; environments are own keys only.
 * After every refused run: the thing at the path is unchanged (kind, content, mode, inode, link
 * target), no connection was opened, and no session was signalled.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execa } from 'execa';
import { BIN, type CliResult, cleanEnv, parseJson, runCli } from '../support/cli.js';
import { runTerminate } from '../../src/commands/terminate.js';
import { emptyFilters } from '../../src/core/terminate.js';
import { ownPrivateDir } from '../../src/db/embedded.js';
import { resolveConnectionTarget } from '../../src/db/target.js';
import type { AuditLog } from '../../src/ui/audit.js';
import { alive, idleInTransaction, type Incident, longQueries, sorted } from '../support/incidents.js';
import { expectNoStack, stderrLines } from '../support/reliability.js';
import { connectionsOpenedBy, LOG_CONNECTIONS, startTestServer, type TestServer } from '../support/server.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-files-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** A fresh directory of its own for each case. */
function fresh(): string {
  const d = join(root, `case-${++n}`);
  mkdirSync(d);
  return d;
}

const isRoot = process.getuid?.() === 0;
const nobody = () => ({ uid: Number(spawnSync('id', ['-u', 'nobody']).stdout.toString().trim()), gid: Number(spawnSync('id', ['-g', 'nobody']).stdout.toString().trim()) });

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`);
}

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(String(r.stdout));
}

/** Everything about what is at a path that a careless run could change. */
function look(path: string): Record<string, unknown> | null {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return null;
  }
  const base = { mode: st.mode, ino: st.ino, dev: st.dev, rdev: st.rdev, uid: st.uid, nlink: st.nlink };
  if (st.isSymbolicLink()) return { ...base, link: readlinkSync(path) };
  if (st.isDirectory()) return { ...base, entries: readdirSync(path).sort() };
  // A device's timestamps move with every other user of it; a FIFO has no content to read.
  if (!st.isFile()) return base;
  return { ...base, size: st.size, mtimeMs: st.mtimeMs, content: readFileSync(path).toString('base64') };
}

function looks(paths: string[]): Array<Record<string, unknown> | null> {
  return paths.map(look);
}

/** Exactly one dbdoctor line (and its hint) on stderr, no stack. */
function expectOneLine(r: CliResult, re: RegExp): void {
  expectNoStack(r);
  const lines = stderrLines(r);
  expect(lines.filter((l) => l.startsWith('dbdoctor: '))).toHaveLength(1);
  expect(lines[0]).toMatch(re);
  expect(lines.length).toBeLessThanOrEqual(2);
}

/** The audit log's lines; a torn line (a short write) is kept as the string it is. */
function auditLines(path: string): Array<Record<string, unknown> | string> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return l;
      }
    });
}

/** The built binary under a file-size limit (RLIMIT_FSIZE, in bytes): writes past it fail or come up short. */
async function runLimited(bytes: number, args: string[]): Promise<CliResult & { signal: string | undefined }> {
  const r = await execa('prlimit', [`--fsize=${bytes}`, 'node', BIN, ...args], { env: cleanEnv(), extendEnv: false, reject: false, timeout: 30_000, stdin: 'ignore' });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), signal: r.signal ?? undefined };
}

/** The built binary in a working directory of its own (for ./dbdoctor.json). */
async function runIn(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await execa('node', [BIN, ...args], { cwd, env: cleanEnv(env), extendEnv: false, reject: false, timeout: 20_000, stdin: 'ignore' });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

interface TerminateDoc {
  report: {
    status: string;
    exit_code: number;
    summary: string;
    results: Array<{ pid: number; outcome: string; detail: string }>;
    audit_failure: { message: string; unrecorded: Array<{ pid: number; action: string; outcome: string }> } | null;
  };
}

test('Node ignores SIGXFSZ: past a file-size limit, write() comes up short, then fails with EFBIG, and the process lives', async () => {
  const file = join(fresh(), 'x');
  const script = `const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(file)}, 'a'); const out = [];
    try { out.push(fs.writeSync(fd, 'x'.repeat(1000))); out.push(fs.writeSync(fd, 'y')); } catch (e) { out.push(e.code); }
    process.stdout.write(JSON.stringify(out));`;
  const r = await execa('prlimit', ['--fsize=100', 'node', '-e', script], { reject: false });
  expect(r.signal).toBeUndefined();
  expect(r.exitCode).toBe(0);
  expect(JSON.parse(String(r.stdout))).toEqual([100, 'EFBIG']);
  expect(statSync(file).size).toBe(100);
});

describe("the demo server's shared binary cache ($TMPDIR/dbdoctor-pgbin, used as root)", () => {
  test('is created 0755, or trusted only when it is a real directory of this user that no one else can write; nothing else is chmod\'ed', () => {
    const d = fresh();
    const made = join(d, 'made');
    const umask = process.umask(0o077);
    try {
      expect(ownPrivateDir(made)).toBe(true);
    } finally {
      process.umask(umask);
    }
    expect(lstatSync(made).mode & 0o777).toBe(0o755);
    expect(ownPrivateDir(made)).toBe(true);

    const elsewhere = join(d, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    const link = join(d, 'link');
    symlinkSync(elsewhere, link);
    const open = join(d, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const file = join(d, 'file');
    writeFileSync(file, 'x', { mode: 0o600 });
    const watched = [elsewhere, link, open, file];
    const before = looks(watched);
    for (const p of [link, open, file]) expect(ownPrivateDir(p)).toBe(false);
    expect(looks(watched)).toEqual(before);
    if (isRoot) {
      const theirs = join(d, 'theirs');
      mkdirSync(theirs, { mode: 0o755 });
      chownSync(theirs, nobody().uid, nobody().gid);
      expect(ownPrivateDir(theirs)).toBe(false);
    }
  });
});

describe.each([14, 18])('PostgreSQL %i', (major) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ major, settings: LOG_CONNECTIONS });
    // Where Node has a compile cache (22.1+), the bundle's is written once, here (in the user's cache
    // directory), not under a file-size limit.
    await runCli(['terminate', '--app', 'warm-up', '--dry-run', '-d', s.url()]);
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  }, 60_000);

  let k = 0;
  /** One session idle in transaction, of an application of its own. */
  async function victim(): Promise<{ app: string; leak: Incident }> {
    const app = `files-${major}-${++k}`;
    return { app, leak: await idleInTransaction(s, 1, { app, user: 'app_user' }) };
  }

  /**
   * A terminate run that must be refused before anything happens: one line, exit 64, no
   * connection, nothing signalled, nothing at the watched paths changed, nothing added beside.
   */
  async function expectRefused(args: (app: string) => string[], watched: string[], dirs: string[], re: RegExp): Promise<CliResult> {
    const { app, leak } = await victim();
    try {
      const before = looks(watched);
      const entries = dirs.map((d) => readdirSync(d).sort());
      let r: CliResult | undefined;
      const opened = await connectionsOpenedBy(s, async () => {
        r = await runCli(['terminate', '--app', app, '--yes', '-d', s.url(), ...args(app)]);
      });
      expect(r!.exitCode).toBe(64);
      expectOneLine(r!, re);
      expect(opened).toBe(0);
      expect(await alive(s, leak.pids)).toEqual(leak.pids);
      expect(looks(watched)).toEqual(before);
      expect(dirs.map((d) => readdirSync(d).sort())).toEqual(entries);
      return r!;
    } finally {
      await leak.release();
    }
  }

  describe('--lock-file: only a dbdoctor lock record is ever removed or replaced', () => {
    const notALock = (what: RegExp) => new RegExp(`^dbdoctor: --lock-file .* is ${what.source}, not a dbdoctor lock; nothing was done$`);
    const cases: Array<[string, (d: string) => { path: string; watch: string[] }, RegExp]> = [
      [
        'an unparsable file older than 60 s (the issue: it was deleted, exit 0)',
        (d) => {
          const path = join(d, 'cron-output.log');
          writeFileSync(path, 'nightly report: 42 rows\n');
          const old = new Date(Date.now() - 2 * 3600_000);
          utimesSync(path, old, old);
          return { path, watch: [path] };
        },
        /a file that does not hold a dbdoctor lock record/,
      ],
      [
        'a JSON file dbdoctor did not write',
        (d) => {
          const path = join(d, 'audit.jsonl');
          writeFileSync(path, `${JSON.stringify({ event: 'intent', pid: 1, host: hostname(), token: 'x' })}\n`);
          return { path, watch: [path] };
        },
        /a file that does not hold a dbdoctor lock record/,
      ],
      [
        'an empty file',
        (d) => {
          const path = join(d, 'empty');
          writeFileSync(path, '');
          return { path, watch: [path] };
        },
        /a file that does not hold a dbdoctor lock record/,
      ],
      [
        'a symbolic link, even to a stale lock record (following it would delete the target)',
        (d) => {
          const target = join(d, 'elsewhere.lock');
          writeFileSync(target, JSON.stringify({ pid: deadPid(), host: hostname(), started_at: 'x', token: 'stale' }));
          const path = join(d, 'terminate.lock');
          symlinkSync(target, path);
          return { path, watch: [path, target] };
        },
        /a symbolic link/,
      ],
      [
        'a dangling symbolic link (it was exit 4 forever)',
        (d) => {
          const path = join(d, 'terminate.lock');
          symlinkSync(join(d, 'nowhere', 'x.lock'), path);
          return { path, watch: [path, join(d, 'nowhere')] };
        },
        /a symbolic link/,
      ],
      [
        'a directory (it was an internal error)',
        (d) => {
          const path = join(d, 'terminate.lock');
          mkdirSync(path);
          writeFileSync(join(path, 'keep'), 'x');
          return { path, watch: [path, join(path, 'keep')] };
        },
        /a directory/,
      ],
      ['a FIFO (it must not block)', (d) => {
        const path = join(d, 'terminate.lock');
        mkfifo(path);
        return { path, watch: [path] };
      }, /a FIFO \(named pipe\)/],
      ['a device: /dev/null', () => ({ path: '/dev/null', watch: ['/dev/null'] }), /a character device/],
    ];
    test.each(cases)('%s: exit 64 before connecting, left as it was', async (_name, make, what) => {
      const d = fresh();
      const { path, watch } = make(d);
      const devBefore = readdirSync('/dev').filter((e) => e.startsWith('null.'));
      await expectRefused(() => ['--lock-file', path, '--audit-log', join(d, 'audit-of-run.jsonl')], watch, [d], notALock(what));
      expect(readdirSync('/dev').filter((e) => e.startsWith('null.'))).toEqual(devBefore);
    });

    test('with --json the refusal is a dbdoctor.error document (usage, lock_file)', async () => {
      const d = fresh();
      const path = join(d, 'x.lock');
      writeFileSync(path, 'not a lock');
      const r = await expectRefused(() => ['--json', '--lock-file', path, '--audit-log', join(d, 'a.jsonl')], [path], [d], notALock(/a file that does not hold a dbdoctor lock record/));
      expect(parseJson<{ schema: string; report: Record<string, unknown> }>(r)).toMatchObject({ schema: 'dbdoctor.error', report: { status: 'usage', cause: 'lock_file', exit_code: 64 } });
    });

    (isRoot ? test : test.skip)("a stale lock record of another user is not taken over (exit 4) and left as it was", async () => {
      const { app, leak } = await victim();
      try {
        const d = fresh();
        const path = join(d, 'terminate.lock');
        writeFileSync(path, JSON.stringify({ pid: deadPid(), host: hostname(), started_at: 'x', token: 'theirs' }));
        chownSync(path, nobody().uid, nobody().gid);
        const before = look(path);
        const r = await runCli(['terminate', '--app', app, '--yes', '-d', s.url(), '--lock-file', path, '--audit-log', join(d, 'a.jsonl')]);
        expect(r.exitCode).toBe(4);
        expectOneLine(r, /holds the lock .* no longer running, but the lock belongs to uid \d+\); nothing was done$/);
        expect(look(path)).toEqual(before);
        expect(await alive(s, leak.pids)).toEqual(leak.pids);
      } finally {
        await leak.release();
      }
    });

    test('a stale lock record of this user on this host is still taken over, and the run acts', async () => {
      const { app, leak } = await victim();
      try {
        const d = fresh();
        const path = join(d, 'terminate.lock');
        writeFileSync(path, JSON.stringify({ pid: deadPid(), host: hostname(), started_at: 'x', token: 'stale' }));
        const r = await runCli(['terminate', '--app', app, '--yes', '--json', '-d', s.url(), '--lock-file', path, '--audit-log', join(d, 'a.jsonl')]);
        expect(r.exitCode).toBe(0);
        expect(parseJson<TerminateDoc>(r).report.status).toBe('done');
        expect(await alive(s, leak.pids)).toEqual([]);
        expect(readdirSync(d).sort()).toEqual(['a.jsonl']);
      } finally {
        await leak.release();
      }
    });
  });

  describe('--audit-log: a regular file of this user, never followed, never chmod\'ed', () => {
    const refused = (what: RegExp) => new RegExp(`^dbdoctor: --audit-log .* is ${what.source}; nothing was terminated$`);
    const cases: Array<[string, (d: string) => { path: string; watch: string[] }, RegExp]> = [
      [
        'a symbolic link to a file (it was followed and its target chmod\'ed)',
        (d) => {
          const target = join(d, 'shadow-like');
          writeFileSync(target, 'secret: 1\n', { mode: 0o644 });
          const path = join(d, 'audit.jsonl');
          symlinkSync(target, path);
          return { path, watch: [path, target] };
        },
        /a symbolic link/,
      ],
      [
        'a dangling symbolic link (the target is not created)',
        (d) => {
          const path = join(d, 'audit.jsonl');
          symlinkSync(join(d, 'created-through-link'), path);
          return { path, watch: [path, join(d, 'created-through-link')] };
        },
        /a symbolic link/,
      ],
      [
        'a FIFO (it must not block)',
        (d) => {
          const path = join(d, 'audit.jsonl');
          mkfifo(path);
          return { path, watch: [path] };
        },
        /a FIFO \(named pipe\)/,
      ],
      ['a device: /dev/null', () => ({ path: '/dev/null', watch: ['/dev/null'] }), /a character device/],
      [
        'a directory',
        (d) => {
          const path = join(d, 'audit.jsonl');
          mkdirSync(path);
          return { path, watch: [path] };
        },
        /a directory/,
      ],
      [
        'a second name (hard link) of another file',
        (d) => {
          const target = join(d, 'crontab-like');
          writeFileSync(target, '* * * * * true\n', { mode: 0o644 });
          const path = join(d, 'audit.jsonl');
          linkSync(target, path);
          return { path, watch: [path, target] };
        },
        /a file with 2 hard links/,
      ],
    ];
    test.each(cases)('%s: exit 64 before connecting, left as it was', async (_name, make, what) => {
      const d = fresh();
      const { path, watch } = make(d);
      await expectRefused(() => ['--audit-log', path, '--lock-file', join(d, 'run.lock')], watch, [d], refused(what));
    });

    (isRoot ? test : test.skip)("another user's file: exit 64 before connecting, left as it was", async () => {
      const d = fresh();
      const path = join(d, 'audit.jsonl');
      writeFileSync(path, '{"theirs":true}\n', { mode: 0o666 });
      chownSync(path, nobody().uid, nobody().gid);
      await expectRefused(() => ['--audit-log', path, '--lock-file', join(d, 'run.lock')], [path], [d], refused(/owned by uid \d+, not by dbdoctor's user \(uid 0\)/));
    });

    test('an existing audit log of this user is appended to, its mode kept', async () => {
      const { app, leak } = await victim();
      try {
        const d = fresh();
        const path = join(d, 'audit.jsonl');
        writeFileSync(path, '{"earlier":true}\n', { mode: 0o640 });
        const r = await runCli(['terminate', '--app', app, '--yes', '-d', s.url(), '--audit-log', path, '--lock-file', join(d, 'run.lock')]);
        expect(r.exitCode).toBe(0);
        expect(statSync(path).mode & 0o777).toBe(0o640);
        expect(auditLines(path).map((l) => (typeof l === 'string' ? l : (l.event ?? 'earlier')))).toEqual(['earlier', 'intent', 'outcome']);
      } finally {
        await leak.release();
      }
    });
  });

  describe('every audit line whole before its signal (real short writes under a file-size limit)', () => {
    const PREFIX = `${JSON.stringify({ earlier: 'run', note: 'x'.repeat(300) })}\n`;

    test('an intent line cut short: the session is not signalled, the run says so (exit 2), and the next run starts on a fresh line', async () => {
      const { app, leak } = await victim();
      try {
        const d = fresh();
        const audit = join(d, 'audit.jsonl');
        const lock = join(d, 'run.lock');
        writeFileSync(audit, PREFIX);
        const args = ['terminate', '--app', app, '--yes', '--json', '-d', s.url(), '--audit-log', audit, '--lock-file', lock];
        // Room for 50 more bytes: the intent line (~700 bytes) is cut; the lock record (its own file) fits.
        const r = await runLimited(PREFIX.length + 50, args);
        expect(r.signal).toBeUndefined();
        expectNoStack(r);
        expect(r.exitCode).toBe(2);
        const doc = parseJson<TerminateDoc>(r).report;
        expect(doc).toMatchObject({ status: 'not_done', exit_code: 2, audit_failure: { unrecorded: [] } });
        expect(doc.audit_failure!.message).toMatch(/only 50 of \d+ bytes were written/);
        expect(doc.results).toEqual([expect.objectContaining({ pid: leak.pids[0], outcome: 'not_attempted' })]);
        expect(doc.summary).toMatch(/^nothing done: 0 of 1 planned session dealt with \(1 not attempted\); the audit log failed, so nothing more was signalled: cannot write the audit log .*: only 50 of \d+ bytes were written/);
        // Ground truth: not signalled.
        expect(await alive(s, leak.pids)).toEqual(leak.pids);
        const text = readFileSync(audit, 'utf8');
        expect(text.startsWith(PREFIX)).toBe(true);
        expect(text.length).toBe(PREFIX.length + 50);
        expect(readdirSync(d).sort()).toEqual(['audit.jsonl']);

        // Without the limit: done, and its lines start on a line of their own after the torn one.
        const again = await runCli(args);
        expect(again.exitCode).toBe(0);
        expect(await alive(s, leak.pids)).toEqual([]);
        const lines = auditLines(audit);
        expect(lines).toHaveLength(4);
        expect(typeof lines[1]).toBe('string');
        expect(lines.slice(2)).toEqual([expect.objectContaining({ event: 'intent', pid: leak.pids[0] }), expect.objectContaining({ event: 'outcome', outcome: 'terminated' })]);
      } finally {
        await leak.release();
      }
    });

    test.each(['--json', 'text'])(
      'an outcome line cut short (%s): the run exits 1, never "done", and names the session it signalled',
      async (mode) => {
        const d = fresh();
        const audit = join(d, 'audit.jsonl');
        const lock = join(d, 'run.lock');
        const args = (app: string) => ['terminate', '--app', app, '--yes', ...(mode === '--json' ? ['--json'] : []), '-d', s.url(), '--audit-log', audit, '--lock-file', lock];
        // A first run on a session just like it measures the intent line (its length varies by a few bytes).
        const first = await victim();
        let intentBytes: number;
        try {
          expect((await runCli(args(first.app))).exitCode).toBe(0);
          intentBytes = Buffer.byteLength(readFileSync(audit, 'utf8').split('\n')[0]!) + 1;
        } finally {
          await first.leak.release();
        }
        const { app, leak } = await victim();
        try {
          const size = statSync(audit).size;
          const before = readFileSync(audit);
          // Room for the intent line and 40 bytes more: the outcome line (~200 bytes) is cut.
          const r = await runLimited(size + intentBytes + 40, args(app));
          expect(r.signal).toBeUndefined();
          expectNoStack(r);
          expect(r.exitCode).toBe(1);
          const pid = leak.pids[0]!;
          // Ground truth: it was signalled (terminated).
          expect(await alive(s, leak.pids)).toEqual([]);
          const said = new RegExp(`the audit log failed, so it has no outcome for the signal sent to pid ${pid} \\(terminate: terminated\\): cannot write the audit log .*: only \\d+ of \\d+ bytes were written`);
          if (mode === '--json') {
            const doc = parseJson<TerminateDoc>(r).report;
            expect(doc).toMatchObject({ status: 'partly_done', exit_code: 1, audit_failure: { unrecorded: [{ pid, action: 'terminate', outcome: 'terminated' }] } });
            expect(doc.results).toEqual([expect.objectContaining({ pid, outcome: 'terminated' })]);
            expect(doc.summary).toMatch(said);
          } else {
            // The text report wraps its summary line: read it unwrapped.
            expect(r.stdout.replace(/\n\s*/g, ' ')).toMatch(said);
          }
          expect(r.stderr).toMatch(said);
          // The log: what was there, the whole intent line, then the torn outcome line.
          const after = readFileSync(audit);
          expect(after.subarray(0, size).equals(before)).toBe(true);
          const added = after.subarray(size).toString('utf8').split('\n');
          expect(JSON.parse(added[0]!)).toMatchObject({ event: 'intent', pid });
          expect(added).toHaveLength(2);
          expect(() => JSON.parse(added[1]!)).toThrow();
          expect(readdirSync(d).sort()).toEqual(['audit.jsonl']);
        } finally {
          await leak.release();
        }
      },
    );
    test('--cancel-first: a cancel sent whose outcome line is lost is reported as sent, the session is not terminated, the rest not attempted', async () => {
      const app = `files-${major}-cancel`;
      const busy = await longQueries(s, 1, { app, user: 'app_user' });
      const idle = await idleInTransaction(s, 1, { app, user: 'app_user' });
      try {
        const d = fresh();
        let appended = 0;
        // The fault is injected here (not a file-size limit): the line after the cancel's intent fails.
        const failing = (path: string): AuditLog => ({
          path,
          append(record) {
            if (++appended === 2) throw new Error(`cannot write the audit log ${path}: ENOSPC`);
            void record;
          },
          close() {},
        });
        const r = await runTerminate(
          {
            target: resolveConnectionTarget({ dbname: s.url() }, {}),
            session: {},
            filters: { ...emptyFilters(), apps: [app] },
            allDatabases: false,
            includeSuperusers: false,
            dryRun: false,
            yes: true,
            max: 10,
            cancelFirst: true,
            graceMs: 100,
            lockFile: join(d, 'run.lock'),
            auditLog: join(d, 'audit.jsonl'),
          },
          { prompter: null, openAuditLog: failing },
        );
        const [busyPid, idlePid] = [busy.pids[0]!, idle.pids[0]!];
        expect(r).toMatchObject({ status: 'not_done', exit_code: 2, audit_failure: { unrecorded: [{ pid: busyPid, action: 'cancel', outcome: 'signalled' }] } });
        expect(r.summary).toContain(`no outcome for the signal sent to pid ${busyPid} (cancel: sent): cannot write the audit log`);
        const byPid = new Map(r.results.map((x) => [x.pid, x]));
        expect(byPid.get(busyPid)).toMatchObject({ outcome: 'failed', detail: expect.stringMatching(/^cancel sent, but its outcome line is not in the audit log: .*ENOSPC/) });
        expect(byPid.get(idlePid)).toMatchObject({ outcome: 'not_attempted' });
        // Ground truth: both sessions live (the query was cancelled, the session not terminated).
        expect(await alive(s, [busyPid, idlePid])).toEqual(sorted([busyPid, idlePid]));
      } finally {
        await busy.release();
        await idle.release();
      }
    });
  });

  describe('config files never stall a monitor', () => {
    const nagios = ['diagnose', '--format', 'nagios'];
    const refusedConfig = (what: RegExp) => new RegExp(`^dbdoctor: the config file .* is ${what.source}; nothing was read from it$`);

    /** A refused config: one line, exit 64, no connection, the thing at the path unchanged. */
    async function expectConfigRefused(cwd: string, args: string[], watch: string[], re: RegExp, env: Record<string, string> = {}): Promise<void> {
      const before = looks(watch);
      let r: CliResult | undefined;
      const opened = await connectionsOpenedBy(s, async () => {
        r = await runIn(cwd, [...nagios, '-d', s.url(), ...args], { HOME: cwd, ...env });
      });
      expect(r!.exitCode).toBe(64);
      expectOneLine(r!, re);
      expect(opened).toBe(0);
      expect(looks(watch)).toEqual(before);
    }

    test('./dbdoctor.json as a FIFO (it hung forever): exit 64 at once', async () => {
      const d = fresh();
      mkfifo(join(d, 'dbdoctor.json'));
      await expectConfigRefused(d, [], [join(d, 'dbdoctor.json')], refusedConfig(/a FIFO \(named pipe\)/));
    });

    test('./dbdoctor.json as a link to /dev/zero (it hung forever), and --config /dev/zero: exit 64 at once', async () => {
      const d = fresh();
      symlinkSync('/dev/zero', join(d, 'dbdoctor.json'));
      await expectConfigRefused(d, [], [join(d, 'dbdoctor.json')], refusedConfig(/a character device/));
      await expectConfigRefused(fresh(), ['--config', '/dev/zero'], [], refusedConfig(/a character device/));
    });

    test('$XDG_CONFIG_HOME/dbdoctor/config.json as a FIFO, ./dbdoctor.json as a directory or a dangling link: exit 64', async () => {
      const xdg = fresh();
      mkdirSync(join(xdg, 'dbdoctor'));
      mkfifo(join(xdg, 'dbdoctor', 'config.json'));
      await expectConfigRefused(fresh(), [], [join(xdg, 'dbdoctor', 'config.json')], refusedConfig(/a FIFO \(named pipe\)/), { XDG_CONFIG_HOME: xdg });
      const dir = fresh();
      mkdirSync(join(dir, 'dbdoctor.json'));
      await expectConfigRefused(dir, [], [join(dir, 'dbdoctor.json')], refusedConfig(/a directory/));
      const dangling = fresh();
      symlinkSync(join(dangling, 'gone.json'), join(dangling, 'dbdoctor.json'));
      await expectConfigRefused(dangling, [], [join(dangling, 'dbdoctor.json')], refusedConfig(/a symbolic link to a file that does not exist/));
    });

    test('a config file over 1 MB: exit 64', async () => {
      const d = fresh();
      writeFileSync(join(d, 'dbdoctor.json'), `{"comment":"${'x'.repeat(1024 * 1024)}"}`);
      await expectConfigRefused(d, [], [join(d, 'dbdoctor.json')], refusedConfig(/larger than 1 MB/));
    });

    test('a UTF-8 BOM is accepted, and a link to a regular config file is followed', async () => {
      const d = fresh();
      writeFileSync(join(d, 'real.json'), `\ufeff${JSON.stringify({ thresholds: { idle_in_transaction: '7s' } })}`);
      symlinkSync(join(d, 'real.json'), join(d, 'dbdoctor.json'));
      const r = await runIn(d, ['diagnose', '--json', '-d', s.url()], { HOME: d });
      expectNoStack(r);
      expect([0, 1, 2]).toContain(r.exitCode);
      expect(parseJson<{ report: { config: { file: string }; thresholds: { idle_in_transaction_ms: number } } }>(r).report).toMatchObject({
        config: { file: join(d, 'dbdoctor.json') },
        thresholds: { idle_in_transaction_ms: 7000 },
      });
      const nag = await runIn(d, [...nagios, '-d', s.url()], { HOME: d });
      expect([0, 1, 2]).toContain(nag.exitCode);
      expect(nag.stdout.trim().split('\n')).toHaveLength(1);
    });

    test('other files a user can point dbdoctor at never stall it either: sslrootcert and the service file as a FIFO or /dev/zero', async () => {
      const d = fresh();
      const fifo = join(d, 'fifo');
      mkfifo(fifo);
      for (const cert of [fifo, '/dev/zero']) {
        const before = look(cert);
        const r = await runIn(d, ['check', '-d', `host=127.0.0.1 port=${s.port} user=postgres sslmode=verify-full sslrootcert=${cert}`], { HOME: d });
        expect(r.exitCode).toBe(3);
        expectOneLine(r, /^dbdoctor: cannot read the root certificate file .*: it is a (FIFO \(named pipe\)|character device)$/);
        expect(look(cert)).toEqual(before);
      }
      const svc = await runIn(d, ['check', '--service', 'prod'], { HOME: d, PGSERVICEFILE: fifo });
      expect(svc.exitCode).toBe(3);
      expectOneLine(svc, /^dbdoctor: cannot read the service file .*fifo: it is a FIFO \(named pipe\)$/);
    });

    test('environments are own keys only: __proto__, constructor, toString are "no such environment"', async () => {
      const d = fresh();
      writeFileSync(join(d, 'dbdoctor.json'), JSON.stringify({ environments: { batch: { thresholds: { long_query: '30m' } } } }));
      for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
        const r = await runIn(d, [...nagios, '-d', s.url(), '--environment', name], { HOME: d });
        expect(r.exitCode).toBe(64);
        expectOneLine(r, new RegExp(`^dbdoctor: .*dbdoctor.json: no environment "${name}"$`));
      }
      const viaEnv = await runIn(d, [...nagios, '-d', s.url()], { HOME: d, DBDOCTOR_ENV: '__proto__' });
      expect(viaEnv.exitCode).toBe(64);
      expectOneLine(viaEnv, /no environment "__proto__"/);
      // A file that does name an environment "__proto__" gets it.
      writeFileSync(join(d, 'dbdoctor.json'), '{"environments":{"__proto__":{"thresholds":{"idle":"9m"}}}}');
      const own = await runIn(d, ['diagnose', '--json', '-d', s.url(), '--environment', '__proto__'], { HOME: d });
      expect(parseJson<{ report: { thresholds: { idle_ms: number } } }>(own).report.thresholds.idle_ms).toBe(540_000);
    });
  });
});
