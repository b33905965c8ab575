#!/usr/bin/env node
// `npm run bench`: dbdoctor at incident scale, side by side with its floor (node -e 0 plus psql
// running the very SQL dbdoctor sends), Node with pg replaying that SQL (scripts/bench-pg-replay.cjs:
// what any Node tool on pg pays, so that dbdoctor's own share of the distance is seen),
// check_postgres and the seed runbook's pg_locks self-join.
//
//   npm run bench                       full scale: 1,500 sessions, 20,000 locks, 400 waiters, 7 runs
//   npm run bench -- --scale small      CI smoke test: 50 sessions, 500 locks, 20 waiters, 3 runs
//   npm run bench -- --scale 500,2750,5000   linearity: one incident per step (waiters 30% of the
//                                       sessions), all up at once, aged 35 s, then timed in
//                                       interleaved rounds (41 runs): wall, server time, RSS, output
//                                       and per-session cost, each with a bootstrap interval
//   options: --runs N, --explain (EXPLAIN ANALYZE each statement of dbdoctor's SQL, in a fresh
//            backend), --cpu-prof (profile each dbdoctor command once), --strict (exit 1 when a
//            target is missed at full scale), --terminate N (sessions for the terminate throughput
//            subject; default 1,000 at full scale, 20 small, 0 to skip), --alt-bin PATH (time another
//            build of bin/dbdoctor.cjs side by side, e.g. a prototype)
//
// It starts a throwaway server (dist/db/embedded.js), builds the incident with real sessions
// (scripts/bench-incident.js), captures dbdoctor's SQL, connections, server-side time and rows from
// the server log and pg_stat_statements (scripts/bench-log.js), times every subject in interleaved
// rounds, prints a table with the targets of issue 8 and writes bench-results/bench-<time>.json.
// Peers that are not installed (psql, check_postgres) and dbdoctor commands that do not exist yet
// are skipped with a note. Everything listens on 127.0.0.1 and is torn down at the end, on errors
// and on Ctrl-C: the servers this script started are stopped by their handles, child runs by their pid.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build as esbuild } from 'esbuild';
import pg from 'pg';
import { BUNDLE_OPTIONS, EXTERNAL } from './bundle-options.js';
import { buildIncident, inParallel, planIncident, releaseClients, SEED_SELF_JOIN } from './bench-incident.js';
import { connectionsIn, inlineParams, LOG_LINE_PREFIX, LogReader, parseEntries, statementsIn } from './bench-log.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'dbdoctor.cjs');
const MODULE_HOOK = join(ROOT, 'scripts', 'bench-module-hook.js');
const PG_REPLAY = join(ROOT, 'scripts', 'bench-pg-replay.cjs');
const NODE = process.execPath;

const SCALES = {
  full: { sessions: 1500, locks: 20_000, waiters: 400, runs: 7, serverRuns: 5, maxConnections: 2000, concurrency: 16, subjectTimeoutMs: 120_000, budgetMs: 25 * 60_000 },
  small: { sessions: 50, locks: 500, waiters: 20, runs: 3, serverRuns: 1, maxConnections: 200, concurrency: 8, subjectTimeoutMs: 30_000, budgetMs: 3 * 60_000 },
};

// check_postgres's equivalent of `diagnose` for a connection incident: one process per action.
const CHECK_POSTGRES_ACTIONS = [
  ['backends'],
  ['txn_idle', '--warning=30 seconds', '--critical=5 minutes'],
  ['query_time', '--warning=30 seconds', '--critical=5 minutes'],
  ['txn_time', '--warning=30 seconds', '--critical=5 minutes'],
  ['locks'],
  ['connection'],
];

// dbdoctor commands measured, when they exist in this build.
const DBDOCTOR_COMMANDS = [
  { id: 'diagnose', args: ['diagnose', '--json'] },
  { id: 'locks', args: ['locks', '--json'] },
  { id: 'connections', args: ['connections', '--json'] },
  { id: 'queries', args: ['queries', '--json'] },
  { id: 'check', args: ['check', '--json'] },
];

const HEAVY_MODULES = /^(pg|pg-[\w-]+|pgpass|@inquirer\/[\w-]+|inquirer|execa)$/;

// ---------------------------------------------------------------------------------------------
// small utilities

const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());
const say = (msg) => process.stderr.write(`bench: ${msg}\n`);

function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A seeded generator of numbers in [0, 1) (mulberry32): a results file's intervals come out the same when computed again. */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The 90% bootstrap interval of a statistic: `stat` of the samples, each resampled with
 * replacement on its own, 2,000 times. A resample the statistic has no value for (null: a ratio
 * over an interval that came out zero or negative) counts as +Infinity, so that an upper bound
 * of Infinity says these samples do not bound it.
 */
function bootstrap(samples, stat, { times = 2000, seed = 22 } = {}) {
  if (samples.some((xs) => xs.length === 0)) return null;
  const rnd = seeded(seed);
  const out = [];
  for (let i = 0; i < times; i++) {
    const v = stat(samples.map((xs) => xs.map(() => xs[Math.floor(rnd() * xs.length)])));
    out.push(v === null || Number.isNaN(v) ? Number.POSITIVE_INFINITY : v);
  }
  out.sort((a, b) => a - b);
  return [out[Math.floor(times * 0.05)], out[Math.floor(times * 0.95)]];
}

/** A subject's steps: psql sending `sql`, one -c each, in one session, stopping at an error. */
function psqlReplaySteps(psql, sql) {
  return [{ cmd: psql, args: ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...sql.flatMap((q) => ['-c', q])] }];
}

function findExecutable(names) {
  for (const name of names) {
    for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
      const p = join(dir, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function versionOf(cmd, args = ['--version']) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0];
  } catch {
    return null;
  }
}

function fdLimit() {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -n; ulimit -Hn'], { encoding: 'utf8' }).trim().split('\n');
    const n = (s) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
    return { soft: n(out[0]), hard: n(out[1]) };
  } catch {
    return { soft: Number.NaN, hard: Number.NaN };
  }
}

function fmtMs(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

function fmtRatio(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  if (Number.isInteger(x)) return String(x);
  // five significant digits (1.3002, not 1.3 as two places printed it); within 0.00005 of its line
  // a ratio still prints as the line, and the status beside it is judged on the exact value
  return String(Number(x.toPrecision(5)));
}

// ---------------------------------------------------------------------------------------------
// options

const { values: opts } = parseArgs({
  options: {
    scale: { type: 'string' },
    runs: { type: 'string' },
    explain: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    'alt-bin': { type: 'string' },
    terminate: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opts.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 14).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const scaleName = opts.scale ?? process.env.BENCH_SCALE ?? 'full';
// A list of session counts (`--scale 500,1500,3000`): the linearity steps.
/** How long a step's incident ages after it is built, before it is measured (see mainScaling). */
const STEP_SETTLE_MS = 35_000;
const STEPS = /^\d+(,\d+)*$/.test(scaleName) ? scaleName.split(',').map(Number) : null;
if (STEPS?.some((n) => n < 100 || n > 10_000) || (STEPS && new Set(STEPS).size !== STEPS.length)) {
  say('--scale steps must be different session counts from 100 to 10000, e.g. --scale 500,1500,3000');
  process.exit(64);
}
if (!STEPS && !(scaleName in SCALES)) {
  say(`unknown --scale ${scaleName}: use full, small or a list of session counts (500,1500,3000)`);
  process.exit(64);
}
// The steps' incidents are all up at once (they are timed side by side), so the descriptors needed
// are their sum.
const SCALE = STEPS
  ? // 41 rounds: with 7, the wall a session adds between two steps moved by 2x from run to run on
    // a busy host (the spread of one step's runs is larger than what 1,000 sessions add); with 21,
    // builds sending the same SQL still read 0.77x-1.52x (README, "Benchmark"). The steps'
    // incidents no longer age out of their findings (SCALE_THRESHOLDS), so only the budget bounds
    // the rounds.
    { ...SCALES.full, sessions: STEPS.reduce((a, b) => a + b, 0), runs: 41, budgetMs: 50 * 60_000 }
  : { ...SCALES[scaleName] };
const MAX_RUNS = STEPS ? 120 : 50;
if (opts.runs !== undefined) {
  const n = Number(opts.runs);
  if (!Number.isInteger(n) || n < 1 || n > MAX_RUNS) {
    say(`--runs must be an integer from 1 to ${MAX_RUNS}`);
    process.exit(64);
  }
  SCALE.runs = n;
}
const FULL = scaleName === 'full';
const TERMINATE_N = opts.terminate !== undefined ? Number(opts.terminate) : FULL ? 1000 : 20;
if (!Number.isInteger(TERMINATE_N) || TERMINATE_N < 0 || TERMINATE_N > 5000) {
  say('--terminate must be a number of sessions from 0 to 5000');
  process.exit(64);
}

// 1,500+ client sockets from this one process (plus the server's backends, which inherit this
// limit): make sure the descriptor limit allows it, raising the soft limit by re-running under
// `ulimit -n` when the hard limit permits.
{
  const need = SCALE.sessions + TERMINATE_N + 256;
  const lim = fdLimit();
  if (lim.soft < need) {
    if (process.env.BENCH_FD_RAISED || lim.hard < need) {
      say(`open-file limit is ${lim.soft} (hard ${lim.hard}); ${need} are needed for ${SCALE.sessions} sessions: raise it (ulimit -n ${need}) or use --scale small`);
      process.exit(1);
    }
    say(`raising the open-file limit from ${lim.soft} to ${need}`);
    const child = spawn('sh', ['-c', `ulimit -n ${need} && exec "$0" "$@"`, NODE, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_FD_RAISED: '1' },
    });
    const forward = (sig) => () => child.kill(sig);
    process.on('SIGINT', forward('SIGINT'));
    process.on('SIGTERM', forward('SIGTERM'));
    child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)));
    await new Promise(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// teardown: everything this script started, by handle or pid; runs once

// servers and controls: the --scale steps' (one each); server and control: the one incident's otherwise.
const state = { server: undefined, control: undefined, servers: [], controls: [], clients: [], child: undefined, tmp: undefined, teardown: undefined };
const controller = new AbortController();

function teardown() {
  state.teardown ??= (async () => {
    if (state.child && state.child.exitCode === null) {
      try {
        process.kill(state.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const controls = [state.control, ...state.controls].filter(Boolean);
    await Promise.all(controls.map((c) => Promise.race([c.end().catch(() => undefined), sleep(2000)])));
    const servers = [state.server, ...state.servers].filter(Boolean);
    if (servers.length > 0) say(servers.length === 1 ? 'stopping the server' : `stopping the ${servers.length} servers`);
    for (const server of servers) await server.stop('fast').catch((e) => say(`could not stop the server cleanly: ${e.message}`));
    await releaseClients(state.clients);
    if (state.tmp) rmSync(state.tmp, { recursive: true, force: true });
  })();
  return state.teardown;
}

let interrupted = false;
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    controller.abort();
    say(`${sig}: tearing down`);
    teardown().finally(() => process.exit(code));
  });
}

// ---------------------------------------------------------------------------------------------
// running one process, timed

// BENCH_NO_TIME=1 forces the /proc polling fallback (what runs where the `time` package is missing).
// GNU time only: macOS's /usr/bin/time has no -f/-o (and no /proc to poll: peak RSS is "not measured").
const TIME_BIN = process.platform === 'linux' && existsSync('/usr/bin/time') && !process.env.BENCH_NO_TIME ? '/usr/bin/time' : undefined;

/** Spawns cmd, drains its output, returns wall time (spawn to exit) and what it printed. */
function runProcess(cmd, args, { env, timeoutMs = SCALE.subjectTimeoutMs, keepStdout = false, pollRss = false }) {
  return new Promise((resolve) => {
    // Once interrupted, nothing more is started: teardown ends only the child running when it began.
    if (controller.signal.aborted) {
      resolve({ ms: 0, code: null, signal: 'SIGINT', timedOut: false, stdoutBytes: 0, stdout: keepStdout ? '' : undefined, stderr: 'not started: interrupted', hwmKb: null });
      return;
    }
    const t0 = process.hrtime.bigint();
    let exitMs;
    let bytes = 0;
    const chunks = [];
    let stderr = '';
    let timedOut = false;
    const child = spawn(cmd, args, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    state.child = child;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    // Without /usr/bin/time: the peak RSS (VmHWM) polled from /proc every 5 ms while it runs.
    let hwmKb = null;
    const poll = pollRss
      ? setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (m) hwmKb = Math.max(hwmKb ?? 0, Number(m[1]));
          } catch {
            // exited
          }
        }, 5)
      : undefined;
    child.stdout.on('data', (d) => {
      bytes += d.length;
      if (keepStdout) chunks.push(d);
    });
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    child.on('error', (e) => {
      stderr += `\n${e.message}`;
    });
    child.on('exit', () => {
      exitMs = Number(process.hrtime.bigint() - t0) / 1e6;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      if (state.child === child) state.child = undefined;
      resolve({
        ms: exitMs ?? Number(process.hrtime.bigint() - t0) / 1e6,
        code,
        signal,
        timedOut,
        stdoutBytes: bytes,
        stdout: keepStdout ? Buffer.concat(chunks).toString('utf8') : undefined,
        stderr,
        hwmKb,
      });
    });
  });
}

/**
 * A subject is a list of steps run one after the other; its time is their sum. With `rss`, each
 * step runs under /usr/bin/time and the peak RSS (KiB) is the largest of the steps.
 */
async function runSubject(subject, { env, rss = false, keepStdout = false, nodeFlags = [], extraEnv = {} }) {
  let ms = 0;
  const codes = [];
  let peakKb = null;
  let minorFaults = null;
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  for (const step of subject.steps) {
    let cmd = step.cmd;
    let args = step.cmd === NODE ? [...nodeFlags, ...step.args] : step.args;
    const rssFile = rss && TIME_BIN ? join(state.tmp, `rss-${randomBytes(4).toString('hex')}`) : undefined;
    if (rssFile) {
      // peak RSS (KiB) and minor page faults: what a fresh page costs on this host times the faults
      // is the part of a subject's time its memory costs (the host line prints that cost)
      args = ['-f', '%M %R', '-o', rssFile, cmd, ...args];
      cmd = TIME_BIN;
    }
    const r = await runProcess(cmd, args, { env: { ...env, ...extraEnv }, keepStdout, pollRss: rss && !TIME_BIN });
    if (r.hwmKb !== null) peakKb = Math.max(peakKb ?? 0, r.hwmKb);
    ms += r.ms;
    codes.push(r.timedOut ? 'timeout' : (r.code ?? r.signal));
    timedOut ||= r.timedOut;
    if (keepStdout) stdout += r.stdout;
    if (r.stderr) stderr = r.stderr;
    if (rssFile && existsSync(rssFile)) {
      const [kb, faults] = readFileSync(rssFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
      if (Number.isFinite(kb)) peakKb = Math.max(peakKb ?? 0, kb);
      if (Number.isFinite(faults)) minorFaults = (minorFaults ?? 0) + faults;
    }
    if (controller.signal.aborted) break;
  }
  return { ms, codes, peakKb, minorFaults, stdout, stderr, timedOut };
}

// ---------------------------------------------------------------------------------------------
// host figures: what every ratio here depends on, measured on this host in this run

// One byte written per 4 KiB page of a fresh buffer: the cost of faulting in a new page
// (a VM with expensive page faults makes every fresh process and backend slower).
// 256 MiB at full scale, 32 MiB for the CI smoke test (where a slow host would spend seconds on it).
const pageProbe = (mib) =>
  `const n=${mib}*1024*1024;const t0=process.hrtime.bigint();const b=Buffer.allocUnsafeSlow(n);for(let i=0;i<n;i+=4096)b[i]=1;process.stdout.write(String(Number(process.hrtime.bigint()-t0)/(n/4096)/1000))`;

async function hostFigures(env, psql) {
  const node = [];
  const select1 = [];
  const page = [];
  for (let i = 0; i < 5; i++) {
    node.push((await runProcess(NODE, ['-e', '0'], { env })).ms);
    if (psql) select1.push((await runProcess(psql, ['-X', '-q', '-A', '-t', '-c', 'select 1'], { env })).ms);
    if (i < 3) {
      const r = await runProcess(NODE, ['-e', pageProbe(FULL ? 256 : 32)], { env, keepStdout: true });
      const us = Number(r.stdout);
      if (Number.isFinite(us)) page.push(us);
    }
  }
  const load = (() => {
    try {
      return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
    } catch {
      return null;
    }
  })();
  return { node_ms: median(node), psql_select1_ms: median(select1), fresh_page_us: median(page), loadavg: load };
}

function hostLine(h) {
  if (!h) return 'host: not measured';
  return `host: node -e 0 ${fmtMs(h.node_ms)} ms, psql select 1 ${fmtMs(h.psql_select1_ms)} ms, a fresh 4 KiB page ${h.fresh_page_us === null ? '-' : h.fresh_page_us.toFixed(2)} µs${h.loadavg ? `, load average ${h.loadavg.join(' ')}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// --explain: each statement of a captured text (dbdoctor sends reads that go together as one
// simple-protocol text, statements joined by ';\n'), in a fresh backend each

function splitStatements(text) {
  return text
    .split(/;\s*\n/)
    .map((q) => q.trim().replace(/;$/, ''))
    .filter((q) => q.length > 0);
}

async function explainFresh(conn, sql) {
  const c = new pg.Client({ ...conn, application_name: 'bench-explain' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query('SET statement_timeout = 120000');
    const { rows } = await c.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`);
    const plan = rows[0]['QUERY PLAN'][0];
    return { sql: sql.replace(/\s+/g, ' ').slice(0, 120), execution_ms: plan['Execution Time'], planning_ms: plan['Planning Time'], plan: plan.Plan };
  } finally {
    await c.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// terminate throughput: N idle-in-transaction sessions, one `dbdoctor terminate --yes` run

async function terminateThroughput({ control, conn, env, n }) {
  const clients = [];
  try {
    const t0 = Date.now();
    await inParallel(n, 16, async () => {
      const c = new pg.Client({ ...conn, application_name: 'bench-victim', options: '-c idle_in_transaction_session_timeout=600000' });
      c.on('error', () => undefined);
      clients.push(c);
      await c.connect();
      await c.query('BEGIN');
      await c.query('SELECT 1');
    }, controller.signal);
    const ready = (await control.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'bench-victim' AND state = 'idle in transaction'")).rows[0].n;
    say(`terminate subject: ${ready} idle-in-transaction sessions opened in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const audit = join(state.tmp, `audit-${randomBytes(4).toString('hex')}.jsonl`);
    const r = await runSubject(
      { steps: [{ cmd: NODE, args: [BIN, 'terminate', '--app', 'bench-victim', '--state', 'idle in transaction', '--yes', '--json', '--max', String(n), '--audit-log', audit, '--lock-file', join(state.tmp, 'terminate.lock')] }] },
      { env, rss: true, keepStdout: true },
    );
    let counts = null;
    try {
      counts = JSON.parse(r.stdout).report.counts;
    } catch {
      note(`terminate did not print one JSON document (exit ${r.codes.join(',')}): ${r.stderr.trim().split('\n').slice(-2).join(' / ')}`);
    }
    const lines = existsSync(audit) ? readFileSync(audit, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
    const left = (await control.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'bench-victim'")).rows[0].n;
    return {
      sessions: ready,
      ms: Math.round(r.ms),
      per_session_ms: ready ? Math.round((r.ms / ready) * 100) / 100 : null,
      sessions_per_s: r.ms ? Math.round((ready / r.ms) * 1000) : null,
      exit_codes: r.codes,
      counts,
      audit_intents: lines.filter((l) => l.event === 'intent').length,
      audit_outcomes: lines.filter((l) => l.event === 'outcome').length,
      left_after: left,
      peak_rss_kb: r.peakKb,
    };
  } finally {
    await releaseClients(clients);
  }
}

// ---------------------------------------------------------------------------------------------
// the benchmark

const results = {
  tool: 'dbdoctor bench',
  scale: scaleName,
  started_at: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? null, mem_gb: Math.round(totalmem() / 2 ** 30), node: process.version },
  versions: {},
  incident: null,
  subjects: {},
  targets: [],
  startup_modules: {},
  notes: [],
};
const note = (text) => {
  results.notes.push(text);
  say(`note: ${text}`);
};

async function main() {
  const t0 = Date.now();
  const budgetEnd = t0 + SCALE.budgetMs;
  state.tmp = mkdtempSync(join(tmpdir(), 'dbdoctor-bench-'));
  const home = join(state.tmp, 'home');
  mkdirSync(home);
  // The node+pg floor runs as one bundle, as dbdoctor does (pg from ~40 files cost ~18 ms more
  // here); built before the incident, so a failure costs no incident.
  const pgReplay = join(state.tmp, 'pg-replay.cjs');
  await esbuild({ ...BUNDLE_OPTIONS, entryPoints: [PG_REPLAY], outfile: pgReplay, external: EXTERNAL });

  const { startServer, findPgBinaries } = await import('../dist/db/embedded.js');
  const bins = findPgBinaries();
  const hasPgss = bins ? existsSync(join(bins.binDir, '..', 'lib', 'postgresql', 'pg_stat_statements.so')) || existsSync(join(bins.binDir, '..', 'lib', 'pg_stat_statements.so')) : false;

  // The shared lock table holds max_locks_per_transaction x (max_connections + ...) entries;
  // the incident needs `locks` + one per waiter + headroom.
  const maxLocksPerTx = Math.max(64, Math.ceil((SCALE.locks + 2 * SCALE.waiters + 5000) / SCALE.maxConnections));
  const settings = {
    max_connections: SCALE.maxConnections,
    max_locks_per_transaction: maxLocksPerTx,
    shared_buffers: '64MB',
    log_connections: 'on',
    log_line_prefix: LOG_LINE_PREFIX,
    lc_messages: 'C',
    ...(hasPgss ? { shared_preload_libraries: 'pg_stat_statements' } : {}),
  };
  say(`scale ${scaleName}: ${SCALE.sessions} sessions, ${SCALE.locks} advisory locks, ${SCALE.waiters} waiters, ${SCALE.runs} runs`);
  const server = await startServer({ settings, onProgress: (s) => say(s) });
  state.server = server;
  results.versions.server_major = server.major;
  results.server_settings = settings;
  if (!hasPgss) note('pg_stat_statements is not available with these server binaries: rows fetched are not recorded');

  const control = new pg.Client({ host: server.host, port: server.port, user: 'postgres', password: server.password, database: 'postgres', application_name: 'bench-control' });
  control.on('error', () => undefined);
  await control.connect();
  state.control = control;
  await control.query('SET statement_timeout = 120000');
  results.versions.server = (await control.query('SELECT version() AS v')).rows[0].v;
  if (hasPgss) await control.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const appPassword = randomBytes(12).toString('hex');
  await control.query(`CREATE ROLE bench_app LOGIN PASSWORD '${appPassword}'`);

  // --- the incident
  const plan = planIncident(SCALE);
  const lifetimeMs = SCALE.budgetMs + 5 * 60_000;
  const tBuild = Date.now();
  const built = await buildIncident({
    conn: { host: server.host, port: server.port, user: 'bench_app', password: appPassword, database: 'postgres' },
    control,
    plan,
    lifetimeMs,
    concurrency: SCALE.concurrency,
    signal: controller.signal,
    onProgress: (s) => say(s),
    clients: state.clients,
  });
  results.incident = { ...built.summary, build_s: Math.round((Date.now() - tBuild) / 100) / 10 };
  say(`incident ready in ${results.incident.build_s} s: ${JSON.stringify(built.summary.sessions_by_state)}, pg_locks ${JSON.stringify(built.summary.pg_locks)}`);

  // --- subjects
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    TMPDIR: state.tmp,
    LANG: 'C',
    LC_ALL: 'C',
    NO_COLOR: '1',
    PGHOST: server.host,
    PGPORT: String(server.port),
    PGUSER: 'postgres',
    PGPASSWORD: server.password,
    PGDATABASE: 'postgres',
  };
  const psql = findExecutable(['psql']);
  const checkPostgres = findExecutable(['check_postgres.pl', 'check_postgres']);
  results.versions.node = process.version;
  results.versions.psql = psql ? versionOf(psql) : null;
  results.versions.check_postgres = checkPostgres ? versionOf(checkPostgres) : null;
  if (!psql) note('psql not found: the floor (node -e 0 + psql running the same SQL) and the seed self-join are skipped (apt-get install postgresql-client)');
  if (!checkPostgres) note('check_postgres not found: the check_postgres comparison is skipped (apt-get install check-postgres)');
  results.host = await hostFigures(env, psql);
  say(hostLine(results.host));

  const help = await runProcess(NODE, [BIN, '--help'], { env, keepStdout: true });
  const available = new Set();
  let inCommands = false;
  for (const line of (help.stdout ?? '').split('\n')) {
    if (/^Commands:/.test(line)) inCommands = true;
    else if (inCommands && /^\S/.test(line)) inCommands = false;
    else if (inCommands) {
      const m = /^ {2}([a-z][\w-]*)/.exec(line);
      if (m) available.add(m[1]);
    }
  }
  const commands = DBDOCTOR_COMMANDS.filter((c) => available.has(c.id));
  for (const c of DBDOCTOR_COMMANDS) {
    if (!available.has(c.id)) note(`dbdoctor ${c.id} does not exist in this build yet: skipped`);
  }

  const subjects = [
    { id: 'node', label: 'node -e 0', kind: 'floor', steps: [{ cmd: NODE, args: ['-e', '0'] }] },
    { id: 'version', label: 'dbdoctor --version', kind: 'dbdoctor', steps: [{ cmd: NODE, args: [BIN, '--version'] }] },
    ...commands.map((c) => ({ id: c.id, label: `dbdoctor ${c.args.join(' ')}`, kind: 'dbdoctor', command: c.id, steps: [{ cmd: NODE, args: [BIN, ...c.args] }] })),
  ];
  if (opts['alt-bin']) {
    const alt = opts['alt-bin'];
    if (!existsSync(alt)) throw new Error(`--alt-bin ${alt} does not exist`);
    for (const s of subjects.filter((x) => x.kind === 'dbdoctor')) {
      subjects.push({ ...s, id: `alt_${s.id}`, label: `alt: ${s.label.replace(/^dbdoctor /, '')}`, kind: 'alt', command: undefined, steps: [{ cmd: NODE, args: [alt, ...s.steps[0].args.slice(1)] }] });
    }
    results.alt_bin = alt;
  }
  for (const s of subjects) results.subjects[s.id] = { label: s.label, kind: s.kind };

  // --- capture pass: statement logging on, one run of each dbdoctor command
  const log = new LogReader(server.logFile);
  const setLogging = async (on) => {
    await control.query(on ? 'ALTER SYSTEM SET log_min_duration_statement = 0' : 'ALTER SYSTEM RESET log_min_duration_statement');
    await control.query('SELECT pg_reload_conf()');
    await sleep(300);
  };
  const pgssRows = async () => {
    if (!hasPgss) return null;
    const { rows } = await control.query(
      `SELECT left(query, 200) AS query, calls::int AS calls, rows::float8 AS rows,
              total_exec_time::float8 AS exec_ms, total_plan_time::float8 AS plan_ms
         FROM pg_stat_statements
        WHERE query NOT ILIKE '%pg_stat_statements%' AND query NOT ILIKE '%pg_reload_conf%'
        ORDER BY total_exec_time DESC`,
    );
    return rows;
  };
  const capture = async (subject, { acceptApp, rss = true } = {}) => {
    if (hasPgss) await control.query('SELECT pg_stat_statements_reset()');
    const off = log.size();
    const r = await runSubject(subject, { env, rss, keepStdout: true });
    await sleep(100);
    const entries = parseEntries(log.readFrom(off));
    const accept = (e) => e.app !== 'bench-control' && (!acceptApp || e.app === acceptApp);
    const st = statementsIn(entries, accept);
    const conns = connectionsIn(entries);
    const pgssList = await pgssRows();
    // Server time: the median of this run and SCALE.serverRuns - 1 more (each in a backend of its
    // own), not one run's: on a shared host one reading moves by half (diagnose's 104 to 160 ms for
    // the same SQL in one run), enough to flip a target either way. A run that ends otherwise than
    // the first (another exit code, a timeout) is left out, with a note. The statements' own times
    // (statement_ms) stay the first run's.
    const serverRuns = [st.serverMs];
    for (let i = 1; i < SCALE.serverRuns && st.statements.length > 0 && !controller.signal.aborted; i++) {
      const again = log.size();
      const rerun = await runSubject(subject, { env });
      await sleep(100);
      if (rerun.timedOut || rerun.codes.join() !== r.codes.join()) {
        note(`${subject.label}: logged run ${i + 1} ended ${rerun.codes.join(',')} (the first ${r.codes.join(',')}): left out of its server time`);
        continue;
      }
      serverRuns.push(statementsIn(parseEntries(log.readFrom(again)), accept).serverMs);
    }
    const out = results.subjects[subject.id];
    out.capture = {
      ms: r.ms,
      exit_codes: r.codes,
      stdout_bytes: Buffer.byteLength(r.stdout),
      stderr_tail: r.stderr ? r.stderr.slice(-600) : null,
      connections_received: conns.received,
      sessions_authorized: conns.authorized.length,
      session_apps: conns.authorized,
      server_ms: Math.round(median(serverRuns) * 100) / 100,
      // the median's runs; statement_ms below is the first run's
      server_ms_runs: serverRuns.map((ms) => Math.round(ms * 100) / 100),
      statements: st.statements.length,
      statement_ms: st.statements.map((x) => ({ ms: Math.round(x.ms * 100) / 100, sql: x.sql.replace(/\s+/g, ' ').slice(0, 80) })),
      server_errors: st.errors,
      rows_fetched: pgssList ? pgssList.reduce((a, x) => a + x.rows, 0) : null,
      pg_stat_statements: pgssList,
    };
    if (r.peakKb !== null) out.peak_rss_kb = r.peakKb;
    if (r.minorFaults !== null) out.minor_faults = r.minorFaults;
    if (subject.kind === 'dbdoctor' && subject.command) {
      try {
        const doc = JSON.parse(r.stdout);
        out.capture.json = { ok: true, kind: doc.kind ?? null, keys: Object.keys(doc.report ?? doc).slice(0, 20) };
      } catch {
        out.capture.json = { ok: false };
        note(`dbdoctor ${subject.command} --json did not print one JSON document (exit ${r.codes.join(',')}): ${r.stderr.trim().split('\n').slice(-2).join(' / ')}`);
      }
    }
    return { r, st, conns };
  };

  say('capture pass: logging every statement');
  await setLogging(true);
  // dbdoctor first: its statements become the psql replays.
  const replays = [];
  for (const s of subjects) {
    if (controller.signal.aborted) return;
    const { st } = await capture(s, s.command ? { acceptApp: 'dbdoctor' } : {});
    if (s.command) {
      const sql = st.statements.map((x) => inlineParams(x));
      results.subjects[s.id].sql = sql;
      if (psql && sql.length > 0) {
        replays.push({
          id: `psql_${s.id}`,
          label: `psql: ${s.id}'s SQL`,
          kind: 'psql',
          of: s.id,
          steps: psqlReplaySteps(psql, sql),
        });
      }
      if (sql.length > 0) {
        // the same SQL from Node with pg: what a Node tool pays before it decides anything (scripts/bench-pg-replay.cjs)
        const file = join(state.tmp, `replay-${s.id}.json`);
        writeFileSync(file, JSON.stringify(sql));
        replays.push({ id: `pg_${s.id}`, label: `node+pg: ${s.id}'s SQL`, kind: 'pg', of: s.id, steps: [{ cmd: NODE, args: [pgReplay, file] }] });
      }
    }
  }
  const peers = [...replays];
  if (psql) peers.push({ id: 'selfjoin', label: 'psql: seed pg_locks self-join', kind: 'peer', steps: [{ cmd: psql, args: ['-X', '-q', '-A', '-t', '-c', SEED_SELF_JOIN] }] });
  if (checkPostgres) {
    peers.push({
      id: 'check_postgres',
      label: `check_postgres x${CHECK_POSTGRES_ACTIONS.length} actions`,
      kind: 'peer',
      steps: CHECK_POSTGRES_ACTIONS.map(([action, ...rest]) => ({
        cmd: checkPostgres,
        args: [`--action=${action}`, `--host=${server.host}`, `--port=${server.port}`, '--dbuser=postgres', '--dbname=postgres', ...rest],
      })),
    });
  }
  for (const s of peers) {
    if (controller.signal.aborted) return;
    results.subjects[s.id] = { label: s.label, kind: s.kind };
    await capture(s);
  }
  if (results.subjects.check_postgres?.capture) {
    const codes = results.subjects.check_postgres.capture.exit_codes;
    if (codes.some((c) => c !== 0 && c !== 1 && c !== 2)) note(`check_postgres exit codes ${codes.join(',')}: an action failed (${results.subjects.check_postgres.capture.stderr_tail ?? ''})`);
  }

  if (opts.explain) {
    await setLogging(false);
    const conn = { host: server.host, port: server.port, user: 'postgres', password: server.password, database: 'postgres' };
    for (const s of subjects.filter((x) => x.command)) {
      const plans = [];
      for (const text of results.subjects[s.id].sql ?? []) {
        for (const q of splitStatements(text)) {
          if (!/^(SELECT|WITH)\b/i.test(q)) continue;
          try {
            plans.push(await explainFresh(conn, q));
          } catch (e) {
            plans.push({ sql: q.replace(/\s+/g, ' ').slice(0, 120), error: e.message });
          }
        }
      }
      results.subjects[s.id].explain = plans;
      say(`explain ${s.id}: ${plans.map((x) => (x.error ? `error (${x.error})` : `${x.execution_ms.toFixed(1)} ms`)).join(' + ') || 'no statement'}`);
    }
  }
  await setLogging(false);

  // --- which modules each dbdoctor entry point loads (startup cost)
  for (const s of subjects.filter((x) => x.kind === 'dbdoctor')) {
    const file = join(state.tmp, `modules-${s.id}.txt`);
    await runSubject(s, { env, nodeFlags: ['--import', MODULE_HOOK], extraEnv: { BENCH_MODULE_LOG: file } });
    const urls = existsSync(file) ? [...new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean))] : [];
    const packages = new Set();
    for (const u of urls) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
      if (m) packages.add(m[1]);
    }
    results.startup_modules[s.id] = {
      modules: urls.length,
      own_files: urls.filter((u) => u.includes('/dist/')).length,
      packages: [...packages].sort(),
      heavy: [...packages].filter((p) => HEAVY_MODULES.test(p)).sort(),
    };
  }
  if (results.startup_modules.version?.heavy.length) note(`dbdoctor --version loads heavy modules: ${results.startup_modules.version.heavy.join(', ')}`);

  // --- optional CPU profiles
  if (opts['cpu-prof']) {
    const dir = join(ROOT, 'bench-results', `profiles-${results.started_at.replace(/[:.]/g, '-')}`);
    mkdirSync(dir, { recursive: true });
    for (const s of subjects.filter((x) => x.kind === 'dbdoctor')) {
      const sub = join(dir, s.id);
      await runSubject(s, { env, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${sub}`] });
      results.subjects[s.id].cpu_profile = existsSync(sub) ? readdirSync(sub).map((f) => join(sub, f)) : [];
    }
    say(`CPU profiles in ${dir}`);
  }

  // --- timed runs: interleaved rounds, the order rotated each round
  const timed = [...subjects, ...peers];
  for (const s of timed) Object.assign(results.subjects[s.id], { runs_ms: [], exit_codes: [], connections_received: [], sessions_authorized: [] });
  say(`timing: ${SCALE.runs} interleaved rounds of ${timed.length} subjects`);
  for (let round = 0; round < SCALE.runs; round++) {
    if (Date.now() > budgetEnd) {
      note(`time budget reached after ${round} rounds`);
      break;
    }
    const k = round % timed.length;
    const order = [...timed.slice(k), ...timed.slice(0, k)];
    for (const s of order) {
      if (controller.signal.aborted) return;
      const off = log.size();
      const r = await runSubject(s, { env });
      const conns = connectionsIn(parseEntries(log.readFrom(off)));
      const out = results.subjects[s.id];
      out.runs_ms.push(Math.round(r.ms * 100) / 100);
      out.exit_codes.push(r.codes.length === 1 ? r.codes[0] : r.codes);
      out.connections_received.push(conns.received);
      out.sessions_authorized.push(conns.authorized.length);
    }
    say(`round ${round + 1}/${SCALE.runs} done`);
  }
  for (const s of timed) {
    const out = results.subjects[s.id];
    out.median_ms = median(out.runs_ms);
    out.min_ms = out.runs_ms.length ? Math.min(...out.runs_ms) : null;
    out.max_ms = out.runs_ms.length ? Math.max(...out.runs_ms) : null;
  }
  // --- terminate throughput (destructive, so last): the incident's own sessions are ended first
  // (they are this script's), then N idle-in-transaction sessions, then one `terminate --yes`.
  if (TERMINATE_N > 0 && !controller.signal.aborted) {
    await control.query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'bench-%' AND application_name NOT IN ('bench-control') AND pid <> pg_backend_pid()");
    for (let i = 0; i < 100; i++) {
      const { rows } = await control.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'bench-%' AND application_name <> 'bench-control'");
      if (rows[0].n === 0) break;
      await sleep(100);
    }
    results.terminate = await terminateThroughput({ control, conn: { host: server.host, port: server.port, user: 'bench_app', password: appPassword, database: 'postgres' }, env, n: TERMINATE_N });
    say(`terminate: ${results.terminate.sessions} sessions in ${results.terminate.ms} ms (${results.terminate.sessions_per_s}/s), ${JSON.stringify(results.terminate.counts)}`);
  }
  results.duration_s = Math.round((Date.now() - t0) / 1000);
  evaluateTargets(commands.map((c) => c.id));
}

// ---------------------------------------------------------------------------------------------
// --scale 500,1500,3000: linearity. One incident per step (waiters 30% of the sessions, advisory
// locks 13x), each on a server of its own, and all of them up at once: diagnose and locks are
// captured once per step (server time from the log, output size), then timed in interleaved rounds
// across the steps (SCALE.runs, the order rotated each round), so that a host drifting over the
// minutes of a run moves every step alike. Timed one step after another, each step met the host in
// another state, and the cost of a session between steps moved by more than 2x from run to run.
// Peak RSS and faults: medians over the capture and the timed runs; per-session (and per-waiter) costs.

/**
 * Server time is read two ways per step: from dbdoctor's own runs, and from psql replaying the
 * statements dbdoctor sent (captured once per step), one replay per round. The server logs a
 * statement's duration when its last row is sent, so a client still busy with the rows (node
 * starting up, parsing 5,000 of them) adds its own pace to the first (at 5,000 sessions, in 9
 * alternating pairs measured by hand: locks' set-up statement and read together 108-193 ms, median
 * 122, in dbdoctor's runs; the read alone 107-128 ms, median 113, from psql; in `npm run bench` at
 * full scale, diagnose' SQL 86.9 ms in dbdoctor's runs, 74.6 from node+pg, 61.6 from psql). psql
 * reads as fast as the server sends, so the replays measure the server's work alone, which is what
 * the linearity target asks of it; the fastest replay is shown too, the figure a shared host's
 * noise (which only ever adds) disturbs least.
 */
const REPLAY_APP = 'bench-replay';

/**
 * The least any tool pays the server to see every session and who blocks each lock waiter without
 * the lock table: pg_stat_activity's function and pg_blocking_pids() of each Lock waiter, nothing
 * else (the view's joins are removed: no column of pg_database or pg_authid is used), one psql
 * replay per step per round. PostgreSQL's own cost here grows faster than the sessions: for each
 * backend it reports, pg_stat_get_activity() finds the backend's PGPROC with BackendPidGetProc(), a scan of the process array
 * (src/backend/utils/adt/pgstatfuncs.c, src/backend/storage/ipc/procarray.c), and so does
 * pg_blocking_pids() for its waiter (GetBlockerStatusData() in src/backend/storage/lmgr/lock.c):
 * quadratic in the backends (the count alone, fresh backends, idle sessions, medians of 9: 10.7,
 * 26.0 and 88.0 ms at 500, 1,500 and 5,000 backends, against 9.6, 22.9 and 60.7 ms for a count
 * over pg_stat_get_backend_idset(), which reads the same status entries without that lookup).
 * Its growth is printed beside dbdoctor's, and dbdoctor's server time beyond it.
 */
const SESSION_READ_ID = 'session-read';
const SESSION_READ_SQL = "SELECT count(*), count(pg_blocking_pids(pid)) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity";
const SESSION_READ = (psql) => ({ steps: psqlReplaySteps(psql, [SESSION_READ_SQL]) });

/**
 * diagnose's thresholds that a step's sessions would cross while it is timed (critical idle
 * transactions, client waits and long queries at 5 min, the idle pool's 10 min), moved past the
 * budget in a config file of the bench's own HOME ($HOME/.config/dbdoctor/config.json), so that
 * every step shows the same findings however many rounds run. The findings the steps are measured
 * with are those of the defaults up to 5 min: warnings past 30 s, lock waits critical past 30 s.
 * Until 2026-12-07 the rounds were bounded instead (the oldest sessions had to stay under 5 min),
 * which left 21 rounds: too few to resolve a session's cost (README, "Benchmark").
 */
const SCALE_THRESHOLDS = { idle_in_transaction_crit: '3h', client_wait_crit: '3h', long_query_crit: '3h', idle: '3h' };
/** The oldest sessions of a step must still be short of SCALE_THRESHOLDS when the last run ends. */
const STEP_MAX_AGE_MS = 3 * 3_600_000 - 10_000;

async function mainScaling() {
  const t0 = Date.now();
  state.tmp = mkdtempSync(join(tmpdir(), 'dbdoctor-bench-'));
  const home = join(state.tmp, 'home');
  mkdirSync(join(home, '.config', 'dbdoctor'), { recursive: true });
  writeFileSync(join(home, '.config', 'dbdoctor', 'config.json'), JSON.stringify({ thresholds: SCALE_THRESHOLDS }));
  const { startServer } = await import('../dist/db/embedded.js');
  const psql = findExecutable(['psql']);
  const steps = [];
  // Largest first: it takes longest to build, and the smallest, built last, still ages before any
  // step is timed.
  for (const n of [...STEPS].sort((a, b) => b - a)) {
    if (controller.signal.aborted || Date.now() > t0 + SCALE.budgetMs) break;
    const plan = planIncident({ sessions: n, locks: Math.round((n * 40) / 3), waiters: Math.round(n * 0.3) });
    const maxConnections = n + 300;
    const settings = {
      max_connections: maxConnections,
      max_locks_per_transaction: Math.max(64, Math.ceil((plan.locks + 2 * plan.waiters + 5000) / maxConnections)),
      shared_buffers: '64MB',
      log_connections: 'on',
      log_min_duration_statement: 0,
      log_line_prefix: LOG_LINE_PREFIX,
      lc_messages: 'C',
    };
    say(`step ${n}: ${plan.waiters} waiters, ${plan.locks} advisory locks`);
    const server = await startServer({ settings, onProgress: (x) => say(x) });
    state.servers.push(server);
    results.versions.server_major = server.major;
    const control = new pg.Client({ host: server.host, port: server.port, user: 'postgres', password: server.password, database: 'postgres', application_name: 'bench-control' });
    control.on('error', () => undefined);
    await control.connect();
    state.controls.push(control);
    const appPassword = randomBytes(12).toString('hex');
    await control.query(`CREATE ROLE bench_app LOGIN PASSWORD '${appPassword}'`);
    const started = Date.now();
    const built = await buildIncident({
      conn: { host: server.host, port: server.port, user: 'bench_app', password: appPassword, database: 'postgres' },
      control,
      plan,
      lifetimeMs: SCALE.budgetMs + 5 * 60_000,
      concurrency: SCALE.concurrency,
      signal: controller.signal,
      onProgress: (x) => say(x),
      clients: state.clients,
    });
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TMPDIR: state.tmp, LANG: 'C', LC_ALL: 'C', NO_COLOR: '1', PGHOST: server.host, PGPORT: String(server.port), PGUSER: 'postgres', PGPASSWORD: server.password, PGDATABASE: 'postgres' };
    steps.push({ n, plan, built, started, env, log: new LogReader(server.logFile), timed: [], replayFailed: [], commands: {} });
  }
  if (controller.signal.aborted) return;
  if (steps.length < STEPS.length) throw new Error(`the incidents of ${STEPS.join(', ')} sessions were not all built within the budget (${SCALE.budgetMs / 60_000} min)`);
  // Every step is measured when its whole incident is past diagnose's 30 s thresholds (lock waits'
  // critical one included), and its sessions stay short of the later ones (SCALE_THRESHOLDS), so
  // each step shows the same findings: measured as soon as it was built, a 500-session incident
  // (built in ~10 s) had no idle-in-transaction or long-query finding and a 5,000-session one
  // (~100 s) had both, which made diagnose's output look as if it grew faster than the sessions.
  say(`letting the incidents age ${STEP_SETTLE_MS / 1000} s`);
  await sleep(STEP_SETTLE_MS);
  const smallest = steps[steps.length - 1];
  results.host = await hostFigures(smallest.env, psql);
  say(hostLine(results.host));

  const commands = ['diagnose', 'locks'];
  const subjectOf = (cmd) => ({ steps: [{ cmd: NODE, args: [BIN, cmd, '--json'] }] });
  /** diagnose and locks exit 0, 1 or 2 with a report; anything else (a timeout's code is 'timeout') is a failed run. */
  const reported = (r) => r.codes.every((c) => c === 0 || c === 1 || c === 2);
  for (const st of steps) {
    for (const cmd of commands) {
      if (controller.signal.aborted) return;
      const off = st.log.size();
      const cap = await runSubject(subjectOf(cmd), { env: st.env, rss: true, keepStdout: true });
      await sleep(100);
      const captured = statementsIn(parseEntries(st.log.readFrom(off)), (e) => e.app === 'dbdoctor');
      if (!reported(cap)) throw new Error(`step ${st.n}: dbdoctor ${cmd} --json failed (exit ${cap.codes.join(',')}): ${cap.stderr.trim().split('\n').pop() ?? ''}`);
      // The same SQL replayed by psql, a reader that never makes the server wait (REPLAY_APP).
      const sql = captured.statements.map((x) => inlineParams(x));
      const replay = psql && sql.length > 0 ? { steps: psqlReplaySteps(psql, sql) } : null;
      st.commands[cmd] = { cap, captured_ms: captured.serverMs, replay, replayMs: [], runs: [], byRound: [], peaks: [cap.peakKb], faults: [cap.minorFaults], failed: [] };
    }
    st.offRuns = st.log.size();
  }
  // Every run has its memory measured (under /usr/bin/time where there is one: the same constant on
  // every step): peak RSS and page faults are the medians of all the runs, since one run's peak
  // moves by a megabyte or two with when the collector happens to run, more than what a few hundred
  // sessions add.
  const order = steps.flatMap((st) => commands.map((cmd) => ({ st, cmd })));
  // A psql replay that psql itself reports failed (an exit code, a timeout) is counted here; one
  // the server logged an error for, when the logs are read. Both are left out, with one note.
  const replayed = (st, id, r) => {
    if (r.timedOut || r.codes.some((c) => c !== 0)) st.replayFailed.push(`${id}: exit ${r.codes.join(',')}`);
  };
  const nodeRuns = [];
  say(`timing: ${SCALE.runs} interleaved rounds of ${order.length} runs (${steps.map((st) => st.n).join(', ')} sessions) and node -e 0`);
  for (let round = 0; round < SCALE.runs && !controller.signal.aborted; round++) {
    const k = round % order.length;
    for (const { st, cmd } of [...order.slice(k), ...order.slice(0, k)]) {
      if (controller.signal.aborted) return;
      const r = await runSubject(subjectOf(cmd), { env: st.env, rss: true });
      const c = st.commands[cmd];
      // A failed run still had its backend (or none): it keeps its place in the order of the
      // server's sessions, and is left out of the figures.
      st.timed.push(reported(r) ? cmd : null);
      c.byRound.push(reported(r) ? r.ms : null);
      if (!reported(r)) {
        c.failed.push(r.codes.join(','));
        continue;
      }
      c.runs.push(r.ms);
      c.peaks.push(r.peakKb);
      c.faults.push(r.minorFaults);
    }
    // The psql replays, in the same rotated order, each in a backend of its own under an
    // application_name naming its command; their server time is read from the logs at the end.
    for (const { st, cmd } of [...order.slice(k), ...order.slice(0, k)]) {
      const c = st.commands[cmd];
      if (controller.signal.aborted) return;
      if (c.replay) replayed(st, cmd, await runSubject(c.replay, { env: { ...st.env, PGAPPNAME: `${REPLAY_APP}-${cmd}` } }));
    }
    if (psql) for (const st of steps) replayed(st, SESSION_READ_ID, await runSubject(SESSION_READ(psql), { env: { ...st.env, PGAPPNAME: `${REPLAY_APP}-${SESSION_READ_ID}` } }));
    nodeRuns.push((await runProcess(NODE, ['-e', '0'], { env: smallest.env })).ms);
    say(`round ${round + 1}/${SCALE.runs} done`);
  }
  if (controller.signal.aborted) return;
  const oldest = Date.now() - Math.min(...steps.map((st) => st.started));
  if (oldest > STEP_MAX_AGE_MS) note(`the oldest sessions were ${Math.round(oldest / 1000)} s old when the last run ended: past the thresholds the bench moved (SCALE_THRESHOLDS), so the largest step may show findings the others do not (fewer --runs)`);
  await sleep(100);
  const nodeMs = median(nodeRuns);
  const medianOf = (xs) => (xs.some((x) => x === null) ? null : median(xs));
  results.steps = [];
  results.session_read_sql = psql ? SESSION_READ_SQL : null;
  for (const st of [...steps].sort((a, b) => a.n - b.n)) {
    // Server time: the median over the captured run and the timed ones (one backend each), not one
    // run's: a single reading moves by more than a step's difference on a shared host. A server's
    // runs never overlap, so its dbdoctor backends, in the order the log first names them, are its
    // timed runs in the order they ran.
    const byPid = new Map();
    const replayByPid = new Map();
    for (const e of parseEntries(st.log.readFrom(st.offRuns))) {
      if (e.app === 'dbdoctor') byPid.set(e.pid, [...(byPid.get(e.pid) ?? []), e]);
      else if (e.app.startsWith(`${REPLAY_APP}-`)) replayByPid.set(e.pid, [...(replayByPid.get(e.pid) ?? []), e]);
    }
    const sessionReadMs = [];
    const failedReplays = [...st.replayFailed];
    for (const es of replayByPid.values()) {
      const id = es[0].app.slice(REPLAY_APP.length + 1);
      const { serverMs, errors } = statementsIn(es);
      if (errors.length > 0) failedReplays.push(`${id}: ${errors[0]}`);
      else if (id === SESSION_READ_ID) sessionReadMs.push(serverMs);
      else st.commands[id]?.replayMs.push(serverMs);
    }
    if (failedReplays.length > 0) note(`step ${st.n}: ${failedReplays.length} psql replays failed and are left out (first: ${failedReplays[0]})`);
    const fewer = [[SESSION_READ_ID, sessionReadMs.length], ...commands.map((cmd) => [cmd, st.commands[cmd].replay ? st.commands[cmd].replayMs.length : SCALE.runs])].filter(([, n]) => psql && n < SCALE.runs);
    if (fewer.length > 0) note(`step ${st.n}: fewer psql replays logged than rounds (${fewer.map(([id, n]) => `${id} ${n} of ${SCALE.runs}`).join(', ')})`);
    const backends = [...byPid.values()];
    if (backends.length !== st.timed.length) note(`step ${st.n}: ${backends.length} dbdoctor sessions in the server's log for ${st.timed.length} timed runs: server time from the captured runs only`);
    const step = {
      sessions: st.built.summary.client_sessions,
      waiters: st.plan.waiters,
      pg_locks: st.built.summary.pg_locks.total,
      node_ms: nodeMs,
      // PostgreSQL's own read of every session (SESSION_READ): median and fastest, null without psql
      session_read_ms: sessionReadMs.length > 0 ? Math.round(median(sessionReadMs) * 10) / 10 : null,
      session_read_min_ms: sessionReadMs.length > 0 ? Math.round(Math.min(...sessionReadMs) * 10) / 10 : null,
      session_read_ms_runs: sessionReadMs.map((ms) => Math.round(ms * 10) / 10),
      commands: {},
    };
    for (const cmd of commands) {
      const c = st.commands[cmd];
      if (c.failed.length > 0) note(`step ${st.n}: ${c.failed.length} of ${SCALE.runs} timed runs of ${cmd} failed (${c.failed.join('; ')}) and are left out`);
      if (c.runs.length === 0) throw new Error(`step ${st.n}: every timed run of ${cmd} failed`);
      const timedMs = backends.length === st.timed.length ? backends.filter((_, i) => st.timed[i] === cmd).map((es) => statementsIn(es).serverMs) : [];
      const serverMs = median([c.captured_ms, ...timedMs]);
      const wall = median(c.runs);
      const out = Buffer.byteLength(c.cap.stdout);
      step.commands[cmd] = {
        wall_ms: Math.round(wall * 10) / 10,
        wall_ms_runs: c.runs.map((ms) => Math.round(ms * 10) / 10),
        // round by round (null: that run failed), for the paired differences between steps
        wall_ms_by_round: c.byRound.map((ms) => (ms === null ? null : Math.round(ms * 10) / 10)),
        server_ms: Math.round(serverMs * 10) / 10,
        server_ms_runs: [c.captured_ms, ...timedMs].map((ms) => Math.round(ms * 10) / 10),
        // the same SQL replayed by psql: median and fastest of SCALE.runs replays (null without psql)
        replay_server_ms: c.replayMs.length > 0 ? Math.round(median(c.replayMs) * 10) / 10 : null,
        replay_server_min_ms: c.replayMs.length > 0 ? Math.round(Math.min(...c.replayMs) * 10) / 10 : null,
        replay_server_ms_runs: c.replayMs.map((ms) => Math.round(ms * 10) / 10),
        peak_rss_kb: medianOf(c.peaks),
        peak_rss_kb_runs: c.peaks,
        minor_faults: medianOf(c.faults),
        out_bytes: out,
        exit_codes: c.cap.codes,
        failed_runs: c.failed,
        per_session_us: Math.round(((wall - nodeMs) / step.sessions) * 1000),
        server_per_session_us: Math.round((serverMs / step.sessions) * 1000),
        out_per_session_bytes: Math.round(out / step.sessions),
        per_waiter_us: Math.round(((wall - nodeMs) / step.waiters) * 1000),
      };
      say(`step ${st.n} ${cmd}: ${JSON.stringify(step.commands[cmd])}`);
    }
    results.steps.push(step);
  }
  results.duration_s = Math.round((Date.now() - t0) / 1000);
}

function printScaling(file) {
  // Marginal costs: what one more session (or waiter) adds between this step and the one before;
  // the fixed costs (node, the bundle, the connection) cancel out, so these are what must stay flat.
  const rows = [['sessions', 'waiters', 'command', 'wall ms', 'server ms', 'replay ms', 'RSS MB', 'out KB', 'Δwall µs/session', 'Δserver µs/session', 'Δreplay µs/session', 'ΔRSS KB/session', 'Δout B/session', 'Δwall µs/waiter']];
  const d = (a, b, n) => (a === null || a === undefined || b === null || b === undefined || n === 0 ? '-' : String(Math.round(((a - b) / n) * 10) / 10));
  let prev = null;
  for (const st of results.steps) {
    for (const [cmd, c] of Object.entries(st.commands)) {
      const p = prev?.commands[cmd];
      const dn = prev ? st.sessions - prev.sessions : 0;
      const dw = prev ? st.waiters - prev.waiters : 0;
      const us = (a, b, n) => (p ? d(a * 1000, b * 1000, n) : '-');
      const replay = c.replay_server_ms === null ? '-' : fmtMs(c.replay_server_ms);
      const dReplay = c.replay_server_ms === null || p?.replay_server_ms === null || p?.replay_server_ms === undefined ? '-' : us(c.replay_server_ms, p.replay_server_ms, dn);
      rows.push([String(st.sessions), String(st.waiters), cmd, fmtMs(c.wall_ms), fmtMs(c.server_ms), replay, c.peak_rss_kb ? (c.peak_rss_kb / 1024).toFixed(0) : '-', (c.out_bytes / 1024).toFixed(0), us(c.wall_ms, p?.wall_ms, dn), us(c.server_ms, p?.server_ms, dn), dReplay, p ? d(c.peak_rss_kb, p.peak_rss_kb, dn) : '-', p ? d(c.out_bytes, p.out_bytes, dn) : '-', us(c.wall_ms, p?.wall_ms, dw)]);
    }
    prev = st;
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = ['', `dbdoctor bench, scale steps ${STEPS.join(', ')} (PostgreSQL ${results.versions.server_major}, node ${process.version}, ${results.machine.cpus} CPUs)`, hostLine(results.host), '', line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line), ''];
  out.push('per-session and per-waiter costs should stay within ±30% across steps when the work grows linearly');
  // Each later interval's cost per session against the first interval's (1.00 is linear).
  if (results.steps.length >= 3) {
    const fields = [
      ['wall', 'wall_ms'],
      ['server', 'server_ms'],
      ['server replayed by psql (median)', 'replay_server_ms'],
      ['(fastest)', 'replay_server_min_ms'],
      ['RSS', 'peak_rss_kb'],
      ['out', 'out_bytes'],
    ];
    const sessions = results.steps.map((st) => st.sessions);
    // What one more session adds between step i - 1 and step i, times 1000 (µs for a figure in ms;
    // of the others only the ratios are printed).
    const interval = (get, i) => {
      const [a, b] = [get(results.steps[i]), get(results.steps[i - 1])];
      const n = results.steps[i].sessions - results.steps[i - 1].sessions;
      return typeof a === 'number' && typeof b === 'number' && n > 0 ? ((a - b) / n) * 1000 : null;
    };
    const intervals = (get) => results.steps.slice(1).map((_, j) => interval(get, j + 1));
    // Each later interval against the first; '-' where a figure is missing or the first interval's
    // cost is not positive (a noisy host can make it so): no ratio means anything then.
    const laterVsFirst = (xs) => xs.slice(1).map((x) => (xs[0] !== null && x !== null && xs[0] > 0 ? `${(x / xs[0]).toFixed(2)}x` : '-'));
    for (const cmd of Object.keys(results.steps[0].commands)) {
      const parts = fields.map(([label, f]) => `${label} ${laterVsFirst(intervals((st) => st.commands[cmd]?.[f])).join(', ')}`);
      out.push(`${cmd}: cost per session of each later interval against the first: ${parts.join('; ')}`);
    }
    // PostgreSQL's own read of every session, and dbdoctor's replayed server time beyond it.
    const growth = (get) => {
      const us = intervals(get);
      return `${us.map((x) => (x === null ? '-' : x.toFixed(1))).join(', ')} µs a session; each later interval against the first: ${laterVsFirst(us).join(', ')}`;
    };
    if (results.steps.every((st) => st.session_read_ms !== null)) {
      out.push(`PostgreSQL's own read of every session and each lock waiter's blockers (psql: ${SESSION_READ_SQL}; median ${results.steps.map((st) => fmtMs(st.session_read_ms)).join(', ')} ms): ${growth((st) => st.session_read_ms)}; fastest: ${growth((st) => st.session_read_min_ms)}`);
      for (const cmd of Object.keys(results.steps[0].commands)) {
        const beyond = (key, readKey) => (st) => (typeof st.commands[cmd]?.[key] === 'number' ? st.commands[cmd][key] - st[readKey] : null);
        out.push(`${cmd}: server time replayed by psql beyond that read: ${growth(beyond('replay_server_ms', 'session_read_ms'))}; fastest replay less fastest read: ${growth(beyond('replay_server_min_ms', 'session_read_min_ms'))}`);
      }
    }
    // How far the same measurement could have read otherwise: each ratio's 90% bootstrap interval
    // (every step's runs resampled), and the verdict on the target (a later interval's cost a
    // session at most 1.3x the first's): it holds when the interval's top is within it, is missed
    // when its bottom is past it, and is not resolved by these runs otherwise.
    const judged = [
      ['wall', 'wall_ms_runs'],
      ['server in its runs', 'server_ms_runs'],
      ['server replayed by psql', 'replay_server_ms_runs'],
      ['RSS', 'peak_rss_kb_runs'],
    ];
    const verdicts = [];
    for (const cmd of Object.keys(results.steps[0].commands)) {
      const parts = judged.map(([label, f]) => {
        const runs = results.steps.map((st) => st.commands[cmd]?.[f] ?? []);
        return `${label} ${later(runs).map((j) => judge(runs, j, `${cmd} ${label}`)).join(', ')}`;
      });
      out.push(`${cmd}: each later interval against the first, median [90% bootstrap interval]: ${parts.join('; ')}`);
      // The output is the same from run to run: one capture a step, no interval.
      const outBytes = results.steps.map((st) => [st.commands[cmd]?.out_bytes ?? 0]);
      for (const j of later(outBytes)) {
        const r = ratioOf(outBytes, j);
        verdicts.push(`${cmd} output ${r !== null && r <= 1.3 ? 'holds' : 'MISSED'} (${r === null ? '-' : `${r.toFixed(2)}x`})`);
      }
    }
    if (results.steps.every((st) => st.session_read_ms_runs?.length > 0)) {
      const runs = results.steps.map((st) => st.session_read_ms_runs);
      out.push(`PostgreSQL's own read of every session, the same: ${later(runs).map((j) => judge(runs, j, null)).join(', ')}`);
    }
    out.push(`linearity (a later interval's cost a session <= 1.3x the first's, 90% bootstrap interval): ${verdicts.join('; ')}`);
    results.linearity = verdicts;

    function later(runs) {
      return runs.slice(2).map((_, j) => j + 2);
    }
    /** The cost a session of interval j (steps j - 1 to j) against the first's, from the medians of `runs`. */
    function ratioOf(runs, j) {
      const cost = (i) => (median(runs[i]) - median(runs[i - 1])) / (sessions[i] - sessions[i - 1]);
      const first = cost(1);
      return first > 0 ? cost(j) / first : null;
    }
    function judge(runs, j, name) {
      if (runs.some((xs) => xs.length === 0)) return '-';
      const r = ratioOf(runs, j);
      const ci = bootstrap(runs, (rs) => ratioOf(rs, j));
      const x = (v) => (v === null ? '-' : Number.isFinite(v) ? `${v.toFixed(2)}x` : 'inf');
      if (name !== null && ci !== null) verdicts.push(`${name} ${ci[1] <= 1.3 ? 'holds' : ci[0] > 1.3 ? 'MISSED' : 'not resolved'} (${x(r)} [${x(ci[0])}-${x(ci[1])}])`);
      return `${x(r)} [${ci === null ? '-' : `${x(ci[0])}-${x(ci[1])}`}]`;
    }
    // The same for wall time from paired runs: a round runs every step within seconds, so the
    // difference between two steps within one round leaves out what the host was doing in that
    // round; its median over the rounds moves less from run to run than the difference of medians.
    for (const cmd of Object.keys(results.steps[0].commands)) {
      const paired = (i) => {
        const [a, b] = [results.steps[i].commands[cmd]?.wall_ms_by_round, results.steps[i - 1].commands[cmd]?.wall_ms_by_round];
        const n = results.steps[i].sessions - results.steps[i - 1].sessions;
        const diffs = (a ?? []).flatMap((ms, r) => (ms === null || b?.[r] === null || b?.[r] === undefined ? [] : [ms - b[r]]));
        return diffs.length > 0 && n > 0 ? (median(diffs) / n) * 1000 : null;
      };
      const first = paired(1);
      const later = results.steps.slice(2).map((_, j) => paired(j + 2));
      const ratios = later.map((x) => (first !== null && x !== null && first > 0 ? `${(x / first).toFixed(2)}x` : '-'));
      const us = [first, ...later].map((x) => (x === null ? '-' : x.toFixed(1))).join(', ');
      out.push(`${cmd}: wall paired by round (median of each round's difference): ${us} µs a session; each later interval against the first: ${ratios.join(', ')}`);
    }
  }
  out.push(`results: ${file}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// targets (issue 8)

function evaluateTargets(commandIds) {
  const S = results.subjects;
  const med = (id) => S[id]?.median_ms ?? null;
  const judged = FULL;
  const add = (t) => results.targets.push({ ...t, status: t.value === null ? 'skipped' : t.ok ? 'holds' : judged ? 'MISSED' : 'missed (small scale: not judged)' });
  // Judged unrounded (0.0507 is over 1/20 though it prints as 0.05 to two places), printed to five
  // significant digits.
  const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);

  const srv = (id) => S[id]?.capture?.server_ms ?? null;
  // The memory side of a floor ratio: dbdoctor's page faults against node's and psql's, and what a
  // fresh page costs on this host (a fault that maps a page of a file already in memory costs less).
  const faults = (id) => S[id]?.minor_faults ?? null;
  const faultDetail = (id) =>
    faults(id) === null || faults('node') === null || faults(`psql_${id}`) === null
      ? ''
      : `; minor page faults ${faults(id)} vs ${faults('node')} + ${faults(`psql_${id}`)} (a fresh page ${results.host?.fresh_page_us?.toFixed(1) ?? '-'} µs here)`;
  const floorOf = (id) => (med('node') !== null && med(`psql_${id}`) !== null ? med('node') + med(`psql_${id}`) : null);
  for (const id of ['diagnose', 'locks']) {
    const floor = floorOf(id);
    const r = ratio(med(id), floor);
    // Where the distance lies: Node with pg replaying the same SQL (its JSON of the rows included)
    // is what any Node tool pays here; dbdoctor's time beyond it is dbdoctor's own.
    const viaPg = med(`pg_${id}`);
    const beyond = med(id) === null || viaPg === null ? null : med(id) - viaPg;
    const pgDetail = beyond === null || floor === null ? '' : `; node+pg replaying it ${fmtMs(viaPg)} ms (${fmtRatio(ratio(viaPg, floor))}x the floor), dbdoctor ${fmtMs(Math.abs(beyond))} ms ${beyond >= 0 ? 'beyond' : 'under'} that`;
    add({ id: `${id}_vs_floor`, target: `${id} <= 1.3 x its floor (node -e 0 + psql replaying its SQL)`, value: r, ok: r !== null && r <= 1.3, detail: `${fmtMs(med(id))} ms vs ${fmtMs(med('node'))} + ${fmtMs(med(`psql_${id}`))} ms${pgDetail}${faultDetail(id)}`, why_skipped: med(id) === null ? `no ${id} command` : floor === null ? 'no psql' : null });
  }
  const rl = ratio(srv('locks'), srv('selfjoin'));
  add({ id: 'locks_server_vs_selfjoin', target: "locks' server time <= 1/20 of the seed self-join's", value: rl, ok: rl !== null && rl <= 0.05, detail: `server ${fmtMs(srv('locks'))} vs ${fmtMs(srv('selfjoin'))} ms; wall ${fmtMs(med('locks'))} vs ${fmtMs(med('selfjoin'))} ms (${fmtMs(ratio(med('selfjoin'), med('locks')))}x)`, why_skipped: srv('selfjoin') === null ? 'no psql' : null });
  const rd = ratio(srv('diagnose'), srv('check_postgres'));
  add({ id: 'diagnose_server_vs_check_postgres', target: "diagnose's server time <= 1/2 of check_postgres' six actions'", value: rd, ok: rd !== null && rd <= 0.5, detail: `server ${fmtMs(srv('diagnose'))} vs ${fmtMs(srv('check_postgres'))} ms; wall ${fmtMs(med('diagnose'))} vs ${fmtMs(med('check_postgres'))} ms (${fmtMs(ratio(med('check_postgres'), med('diagnose')))}x)`, why_skipped: srv('check_postgres') === null ? 'check_postgres not installed' : null });
  const t = results.terminate;
  if (t) {
    const done = t.counts?.terminated ?? null;
    add({ id: 'terminate_throughput', target: `terminate ${TERMINATE_N} idle-in-transaction sessions in <= ${(15 * Math.max(1000, TERMINATE_N)) / 1000} s, all terminated and audited`, value: t.ms / 1000, ok: done === t.sessions && t.audit_intents === t.sessions && t.audit_outcomes === t.sessions && t.left_after === 0 && t.ms <= 15 * Math.max(1000, TERMINATE_N), detail: `${t.sessions} sessions in ${t.ms} ms (${t.per_session_ms} ms each), ${done} terminated, ${t.audit_intents} intents and ${t.audit_outcomes} outcomes in the audit log, ${t.left_after} left` });
  }
  const r4 = ratio(med('version'), med('node'));
  add({ id: 'version_vs_node', target: '--version <= 1.3 x node -e 0', value: r4, ok: r4 !== null && r4 <= 1.3, detail: `${fmtMs(med('version'))} ms vs ${fmtMs(med('node'))} ms` });
  const extraTcp = [];
  for (const id of commandIds) {
    const c = S[id];
    const sessions = Math.max(...c.sessions_authorized, c.capture?.sessions_authorized ?? 0);
    const tcp = Math.max(...c.connections_received, c.capture?.connections_received ?? 0);
    add({ id: `one_connection_${id}`, target: `${id}: one server connection`, value: sessions, ok: sessions === 1, detail: `${sessions} session(s), ${tcp} TCP connection(s) accepted per run` });
    if (tcp > sessions) extraTcp.push(id);
  }
  if (extraTcp.length) {
    note(
      `${extraTcp.join(', ')}: one session each, but ${Math.max(...extraTcp.map((id) => Math.max(...S[id].connections_received)))} TCP connections per run: with the default sslmode=prefer against a server without TLS, node-postgres gives up on the socket after the server's 'N' and dbdoctor reconnects without TLS (libpq, and so psql, carries on over the same socket); the extra connection forks a backend that never authenticates and holds no slot`,
    );
  }
  for (const id of ['version', ...commandIds]) {
    const kb = S[id]?.peak_rss_kb ?? null;
    add({ id: `rss_${id}`, target: `${id}: peak RSS <= 100 MB`, value: kb === null ? null : Math.round(kb / 1024), ok: kb !== null && kb <= 100 * 1024, detail: kb === null ? 'not measured' : `${(kb / 1024).toFixed(1)} MB${TIME_BIN ? '' : ' (polled VmHWM)'}`, why_skipped: kb === null ? 'not measured' : null });
  }
}

// ---------------------------------------------------------------------------------------------
// report

function printReport(file) {
  const S = results.subjects;
  const rows = [['subject', 'median ms', 'min-max', 'conns', 'server ms', 'rows', 'out KB', 'RSS MB', 'faults', 'exit']];
  for (const [id, s] of Object.entries(S)) {
    const cap = s.capture ?? {};
    const conns = s.sessions_authorized?.length ? `${Math.max(...s.sessions_authorized)}/${Math.max(...s.connections_received)}` : '-';
    const codes = [...new Set((s.exit_codes ?? []).flat().map(String))].sort().join(',');
    rows.push([
      s.label ?? id,
      fmtMs(s.median_ms),
      s.min_ms === null || s.min_ms === undefined ? '-' : `${fmtMs(s.min_ms)}-${fmtMs(s.max_ms)}`,
      conns,
      cap.server_ms === undefined ? '-' : fmtMs(cap.server_ms),
      cap.rows_fetched === null || cap.rows_fetched === undefined ? '-' : String(cap.rows_fetched),
      cap.stdout_bytes === undefined ? '-' : (cap.stdout_bytes / 1024).toFixed(0),
      s.peak_rss_kb ? (s.peak_rss_kb / 1024).toFixed(0) : '-',
      s.minor_faults === undefined ? '-' : String(s.minor_faults),
      codes || '-',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const inc = results.incident;
  const out = [];
  out.push('');
  out.push(`dbdoctor bench, scale ${results.scale}: ${inc ? `${inc.client_sessions} client sessions ${JSON.stringify(inc.sessions_by_state)}, ${inc.pg_locks.total} rows in pg_locks (${inc.pg_locks.waiting} waiting)` : 'no incident'}`);
  out.push(`PostgreSQL ${results.versions.server_major}, node ${results.versions.node}, ${results.machine.cpus} CPUs; ${Math.max(0, ...Object.values(S).map((s) => s.runs_ms?.length ?? 0))} interleaved runs, medians`);
  out.push(hostLine(results.host));
  out.push('');
  out.push(line(rows[0]));
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) out.push(line(r));
  out.push('');
  out.push(`conns = sessions authorized / TCP connections accepted per run (max); server ms (parse+bind+execute, from the log)`);
  out.push(`the median of ${SCALE.serverRuns} logged run${SCALE.serverRuns === 1 ? '' : 's'}; rows (pg_stat_statements), out KB (stdout), RSS (peak: /usr/bin/time, else VmHWM`);
  out.push('polled) and faults (minor page faults, /usr/bin/time only: each costs about what the host line says a fresh page does)');
  out.push('from the first logged run');
  out.push('');
  out.push('targets (issue 22; ratios beside the host figures above):');
  for (const t of results.targets) {
    const v = t.value === null ? '' : ` = ${fmtRatio(t.value)}`;
    out.push(`  ${t.status.padEnd(8)} ${t.target}${v}${t.value === null ? ` (${t.why_skipped ?? 'not measured'})` : `  [${t.detail}]`}`);
  }
  const mods = results.startup_modules.version;
  if (mods) out.push(`  startup: --version loads ${mods.modules} modules, packages ${mods.packages.join(', ') || 'none'}; heavy: ${mods.heavy.join(', ') || 'none'}`);
  if (results.notes.length) {
    out.push('');
    out.push('notes:');
    for (const n of results.notes) out.push(`  - ${n}`);
  }
  out.push('');
  out.push(`results: ${file}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

let failed = false;
try {
  await (STEPS ? mainScaling() : main());
} catch (err) {
  failed = true;
  say(`failed: ${err?.stack ?? err}`);
  results.error = String(err?.message ?? err);
} finally {
  await teardown();
}
if (!interrupted) {
  const dir = join(ROOT, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${results.started_at.replace(/[:.]/g, '-')}${FULL ? '' : `-${STEPS ? `steps-${STEPS.join('-')}` : scaleName}`}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  if (!failed) (STEPS ? printScaling : printReport)(file);
  else say(`partial results: ${file}`);
  const missed = results.targets.some((t) => t.status === 'MISSED');
  process.exit(failed ? 1 : opts.strict && missed ? 1 : 0);
}
