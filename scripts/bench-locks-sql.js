#!/usr/bin/env node
// `node scripts/bench-locks-sql.js [--major 14,18] [--scale full|small] [--runs N] [--queue 50,500,1500]`: the server
// time of each candidate read behind `locks`, measured with EXPLAIN (ANALYZE) in a FRESH backend
// (a new connection per measurement: a backend that has never read the lock table or
// pg_stat_activity must fault all of it in, as dbdoctor's one-shot session does), on the bench's
// incident (scripts/bench-incident.js), for each PostgreSQL major given. Prints a table of median
// execution (and planning) times; needs `npm run build` first (the SQL comes from dist/).
// With --queue: instead of the incident, one lock queue per step (a holder of ACCESS EXCLUSIVE on
// a table and N sessions queued for it): `locks`' statement's server time, the pids
// pg_blocking_pids() returns (N^2/2), and `dbdoctor locks --json`'s wall time, output and edges.
//
// Every server is started by this script on 127.0.0.1 and stopped by its handle; the incident's
// sessions end with it (and by their own timeouts if the script is killed hard).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { buildIncident, inParallel, planIncident, releaseClients, SEED_SELF_JOIN } from './bench-incident.js';

const BIN = new URL('../bin/dbdoctor.cjs', import.meta.url).pathname;

const SCALES = {
  full: { sessions: 1500, locks: 20_000, waiters: 400, maxConnections: 2000 },
  small: { sessions: 50, locks: 500, waiters: 20, maxConnections: 200 },
};

const { values: opts } = parseArgs({ options: { major: { type: 'string', default: '14,18' }, scale: { type: 'string', default: 'full' }, runs: { type: 'string', default: '5' }, queue: { type: 'string' } } });
const SCALE = SCALES[opts.scale];
if (!SCALE) throw new Error(`unknown --scale ${opts.scale}`);
const RUNS = Math.max(1, Math.min(50, Number(opts.runs) || 5));
const majors = opts.major.split(',').map(Number);

const say = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};

const { activityRead } = await import('../dist/db/sql/activity.js');

function candidates(serverVersionNum) {
  const fake = { serverVersionNum, target: { dbname: 'postgres' } };
  const first = (o) => activityRead(fake, o).statements[0];
  return [
    { id: 'locks_default', label: '`locks` (targeted: no pg_locks for advisory/xid waits)', sql: first({ scope: 'blocking', queryChars: 1000, lockDetail: 'targeted' }) },
    { id: 'locks_detail', label: '`locks --detail` (pg_locks: who blocks whom from its rows)', sql: first({ scope: 'blocking', queryChars: 1000, lockDetail: 'full' }) },
    { id: 'pg_locks_waiting', label: 'pg_locks WHERE NOT granted, alone', sql: 'SELECT pid, locktype, mode, relation, waitstart FROM pg_locks WHERE NOT granted' },
    { id: 'blocking_pids', label: 'pg_blocking_pids() of the Lock waiters, alone', sql: "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'" },
    { id: 'diagnose_activity', label: "diagnose's activity read (every session; pg_locks only when a wait needs it)", sql: first({ withPrepared: true, lean: true, lockDetail: 'targeted', queryChars: 500 }) },
    { id: 'diagnose_activity_plain', label: 'the same without lock detail (pg_blocking_pids() always)', sql: first({ withPrepared: true, lean: true, queryChars: 500 }) },
    { id: 'selfjoin', label: 'seed pg_locks self-join', sql: SEED_SELF_JOIN },
  ];
}

async function explainOnce(conn, sql) {
  const c = new pg.Client({ ...conn, application_name: 'bench-explain' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query('SET statement_timeout = 120000');
    const { rows } = await c.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`);
    const plan = rows[0]['QUERY PLAN'][0];
    return { exec: plan['Execution Time'], plan: plan['Planning Time'] };
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function queueSteps(major, steps) {
  const { startServer } = await import('../dist/db/embedded.js');
  const max = Math.max(...steps);
  const server = await startServer({ major, settings: { max_connections: max + 50, shared_buffers: '64MB' }, onProgress: say });
  const conn = { host: server.host, port: server.port, user: 'postgres', password: server.password, database: 'postgres' };
  const clients = [];
  const rows = [];
  try {
    const control = new pg.Client({ ...conn, application_name: 'bench-control' });
    control.on('error', () => undefined);
    clients.push(control);
    await control.connect();
    const v = (await control.query("SELECT current_setting('server_version_num')::int AS v")).rows[0].v;
    const locksSql = activityRead({ serverVersionNum: v, target: { dbname: 'postgres' } }, { scope: 'blocking', queryChars: 1000, lockDetail: 'targeted' }).statements[0];
    const oldSql = "SELECT pid, array_to_string(pg_blocking_pids(pid), ',') AS blocked_by FROM pg_stat_activity WHERE wait_event_type = 'Lock'";
    for (const n of steps) {
      await control.query('DROP TABLE IF EXISTS q; CREATE TABLE q (id int)');
      const holder = new pg.Client({ ...conn, application_name: 'bench-holder' });
      holder.on('error', () => undefined);
      clients.push(holder);
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE q IN ACCESS EXCLUSIVE MODE');
      const waiters = [];
      await inParallel(n, 16, async () => {
        const c = new pg.Client({ ...conn, application_name: 'bench-queued', options: '-c statement_timeout=600000' });
        c.on('error', () => undefined);
        clients.push(c);
        waiters.push(c);
        await c.connect();
        c.query('BEGIN; LOCK TABLE q IN ACCESS EXCLUSIVE MODE').catch(() => undefined);
      });
      for (let i = 0; i < 600; i++) {
        const { rows: r } = await control.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'bench-queued' AND wait_event_type = 'Lock'");
        if (r[0].n === n) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      const runs = [];
      for (let i = 0; i < RUNS; i++) runs.push((await explainOnce(conn, locksSql)).exec);
      const { rows: got } = await control.query(oldSql);
      const pids = got.reduce((a, r) => a + (r.blocked_by ? String(r.blocked_by).split(',').length : 0), 0);
      // dbdoctor locks --json against the queue: wall, output, and the edges it reports
      const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', PGHOST: server.host, PGPORT: String(server.port), PGUSER: 'postgres', PGPASSWORD: server.password, PGDATABASE: 'postgres', NO_COLOR: '1' };
      const walls = [];
      let doc = null;
      let bytes = 0;
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        const r = spawnSync(process.execPath, [BIN, 'locks', '--json'], { env, encoding: 'utf8', maxBuffer: 1 << 30, timeout: 120_000 });
        walls.push(performance.now() - t0);
        bytes = Buffer.byteLength(r.stdout ?? '');
        doc = JSON.parse(r.stdout);
      }
      const edges = doc.report.nodes.reduce((a, nd) => a + nd.blockers.length, 0);
      // Peak RSS of one more run, by GNU time (Linux), when it is there.
      let rssKb = null;
      if (process.platform === 'linux' && existsSync('/usr/bin/time')) {
        const t = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, BIN, 'locks', '--json'], { env, encoding: 'utf8', maxBuffer: 1 << 30, timeout: 120_000 });
        rssKb = Number(String(t.stderr).trim().split('\n').pop()) || null;
      }
      const row = { major: server.major, waiters: n, exec_ms: median(runs), pids_read: pids, wall_ms: median(walls), rss_kb: rssKb, out_bytes: bytes, edges };
      rows.push(row);
      say(`  PG${server.major} queue ${n}: server ${row.exec_ms.toFixed(1)} ms, ${pids} pids read, locks --json ${row.wall_ms.toFixed(0)} ms, ${bytes} bytes, ${edges} edges in nodes[].blockers`);
      await control.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('bench-queued', 'bench-holder')");
      for (let i = 0; i < 100; i++) {
        const { rows: r } = await control.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name IN ('bench-queued', 'bench-holder')");
        if (r[0].n === 0) break;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  } finally {
    await server.stop('fast').catch(() => undefined);
    await releaseClients(clients);
  }
  return rows;
}

if (opts.queue) {
  const steps = opts.queue.split(',').map(Number);
  const all = [];
  for (const major of majors) all.push(...(await queueSteps(major, steps)));
  // Δ: what each extra waiter adds from the step before (fixed costs cancel); linear work keeps them flat.
  const lines = [
    '| PostgreSQL | waiters in one queue | server ms | pids pg_blocking_pids() returns | `locks --json` ms | peak RSS MB | output bytes | edges in nodes[].blockers | Δserver µs/waiter | Δwall µs/waiter | ΔRSS KB/waiter | Δout B/waiter |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const per = (a, b, n, k = 1) => (a === null || b === null || n <= 0 ? '-' : (((a - b) * k) / n).toFixed(0));
  all.forEach((r, i) => {
    const p = i > 0 && all[i - 1].major === r.major ? all[i - 1] : null;
    const n = p ? r.waiters - p.waiters : 0;
    const rss = r.rss_kb === null ? '-' : (r.rss_kb / 1024).toFixed(0);
    lines.push(`| ${r.major} | ${r.waiters} | ${r.exec_ms.toFixed(1)} | ${r.pids_read} | ${r.wall_ms.toFixed(0)} | ${rss} | ${r.out_bytes} | ${r.edges} | ${per(r.exec_ms, p?.exec_ms ?? null, n, 1000)} | ${per(r.wall_ms, p?.wall_ms ?? null, n, 1000)} | ${per(r.rss_kb, p?.rss_kb ?? null, n)} | ${per(r.out_bytes, p?.out_bytes ?? null, n)} |`);
  });
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exit(0);
}

const out = [];
for (const major of majors) {
  const { startServer } = await import('../dist/db/embedded.js');
  const maxLocksPerTx = Math.max(64, Math.ceil((SCALE.locks + 2 * SCALE.waiters + 5000) / SCALE.maxConnections));
  const server = await startServer({ major, settings: { max_connections: SCALE.maxConnections, max_locks_per_transaction: maxLocksPerTx, shared_buffers: '64MB' }, onProgress: say });
  const clients = [];
  const tmp = mkdtempSync(join(tmpdir(), 'dbdoctor-bench-sql-'));
  let control;
  try {
    const conn = { host: server.host, port: server.port, user: 'postgres', password: server.password, database: 'postgres' };
    control = new pg.Client({ ...conn, application_name: 'bench-control' });
    control.on('error', () => undefined);
    await control.connect();
    const built = await buildIncident({ conn, control, plan: planIncident(SCALE), lifetimeMs: 20 * 60_000, concurrency: 16, onProgress: say, clients });
    say(`PostgreSQL ${server.major}: ${built.summary.client_sessions} sessions, pg_locks ${JSON.stringify(built.summary.pg_locks)}`);
    const v = (await control.query("SELECT current_setting('server_version_num')::int AS v")).rows[0].v;
    for (const cand of candidates(v)) {
      const runs = [];
      for (let i = 0; i < RUNS; i++) runs.push(await explainOnce(conn, cand.sql));
      const row = { major: server.major, id: cand.id, label: cand.label, exec_ms: median(runs.map((r) => r.exec)), plan_ms: median(runs.map((r) => r.plan)), runs_ms: runs.map((r) => Math.round(r.exec * 10) / 10) };
      out.push(row);
      say(`  PG${server.major} ${cand.id}: ${row.exec_ms.toFixed(1)} ms (+${row.plan_ms.toFixed(1)} planning)  runs ${row.runs_ms.join(' ')}`);
    }
  } finally {
    await control?.end().catch(() => undefined);
    await server.stop('fast').catch((e) => say(`could not stop the server: ${e.message}`));
    await releaseClients(clients);
    rmSync(tmp, { recursive: true, force: true });
  }
}

const lines = ['| PostgreSQL | candidate | server ms (median) | planning ms |', '|---|---|---:|---:|'];
for (const r of out) lines.push(`| ${r.major} | ${r.label} | ${r.exec_ms.toFixed(1)} | ${r.plan_ms.toFixed(1)} |`);
process.stdout.write(`${lines.join('\n')}\n`);
