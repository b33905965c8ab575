#!/usr/bin/env node
/**
 * Records the facts `diagnose` decides on (DiagnoseFacts, as src/db/diagnose.ts gathers them) from
 * real incidents on throwaway servers, into test/unit/fixtures/diagnose/*.json. The unit tests
 * replay the decision tree on these recorded snapshots.
 *
 *   npm run build && node scripts/record-diagnose-fixtures.mjs [name...]
 *
 * Every incident is bounded in time; every client and server started here is closed at the end.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { gatherFacts } from '../dist/db/diagnose.js';
import { startServer } from '../dist/db/embedded.js';
import { resolveConnectionTarget } from '../dist/db/target.js';
import { DEFAULT_THRESHOLDS } from '../dist/core/thresholds.js';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'unit', 'fixtures', 'diagnose');
const PW = 'Fixture-pw-1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function withServer(settings, major, fn) {
  const s = await startServer({ settings, major });
  const clients = [];
  const open = async (app, user = 'app_user') => {
    const c = new pg.Client({ connectionString: s.url(user === 'postgres' ? {} : { user, password: PW }), application_name: app });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  try {
    const su = await open('fixture-setup', 'postgres');
    await su.query(`CREATE ROLE app_user LOGIN PASSWORD '${PW}'; CREATE ROLE other_user LOGIN PASSWORD '${PW}'; CREATE ROLE monitor_user LOGIN PASSWORD '${PW}' IN ROLE pg_monitor;
      CREATE TABLE files (id int PRIMARY KEY, user_id int, name text); INSERT INTO files SELECT g, g % 50, md5(g::text) FROM generate_series(1, 20000) g;
      GRANT ALL ON files TO PUBLIC; ANALYZE files`);
    await su.end();
    clients.splice(clients.indexOf(su), 1);
    return await fn(s, open);
  } finally {
    for (const c of clients) {
      await Promise.race([c.end().catch(() => undefined), sleep(2000)]);
    }
    await s.stop('immediate');
  }
}

async function record(name, s, as = {}) {
  const target = resolveConnectionTarget({ dbname: s.url(as) }, {});
  const facts = await gatherFacts(target, {}, { thresholds: DEFAULT_THRESHOLDS });
  facts.target = facts.target.replace(/:\d+\//, ':5432/');
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, `${name}.json`), `${JSON.stringify(facts, null, 2)}\n`);
  console.log(`recorded ${name}: ${facts.activity?.rows.length ?? 0} rows`);
}

const INCIDENTS = {
  /** seeds/000: a pool of 25 full of unread cursors and sessions idle in transaction. */
  async 'seeds-000'(major = 18) {
    await withServer({ max_connections: 30, shared_preload_libraries: 'pg_stat_statements' }, major, async (s, open) => {
      const su = await open('fixture-setup', 'postgres');
      await su.query('CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset()');
      for (let i = 0; i < 15; i++) {
        const c = await open('cloudvault');
        const cur = c.query(new Cursor('SELECT id, user_id, name FROM files WHERE user_id = $1', [i]));
        await cur.read(5);
      }
      for (let i = 0; i < 10; i++) {
        const c = await open('cloudvault');
        await c.query('BEGIN');
        await c.query('SELECT COALESCE(MAX(id), 0) FROM files WHERE user_id = $1', [i]);
      }
      await su.end();
      await sleep(3000);
      await record(major === 18 ? 'seeds-000' : `seeds-000-pg${major}`, s);
    });
  },
  /** A blocking chain rooted in a session idle in transaction. */
  async 'lock-chain'() {
    await withServer({}, 18, async (s, open) => {
      const root = await open('billing');
      await root.query('BEGIN');
      await root.query('UPDATE files SET name = name WHERE id = 1');
      for (let i = 0; i < 3; i++) {
        const w = await open('billing-worker');
        w.query('UPDATE files SET name = name WHERE id = 1').catch(() => undefined);
        await sleep(200);
      }
      await sleep(2000);
      await record('lock-chain', s);
    });
  },
  /** seeds/004: 20 sessions running the same slow statement. */
  async 'same-statement'() {
    await withServer({ max_connections: 40 }, 18, async (s, open) => {
      for (let i = 0; i < 20; i++) {
        const c = await open('reports');
        c.query(`SELECT pg_sleep(30), 'report-${i}' AS dedup_key /* dedup check */`).catch(() => undefined);
      }
      await sleep(2500);
      await record('same-statement', s);
    });
  },
  /** seeds/001: 9 LISTEN sessions held by design, and a main pool at rest. */
  async listeners() {
    await withServer({}, 18, async (s, open) => {
      for (let i = 0; i < 9; i++) {
        const c = await open('outbox-listen');
        await c.query('LISTEN outbox_events');
      }
      for (let i = 0; i < 15; i++) {
        const c = await open('main');
        await c.query('SELECT 1');
      }
      await sleep(2500);
      await record('listeners', s);
    });
  },
  /** A healthy, busy server: short transactions from several clients while recording. */
  async 'healthy-busy'() {
    await withServer({}, 18, async (s, open) => {
      const cs = [];
      for (let i = 0; i < 6; i++) cs.push(await open(`web-${i % 3}`));
      let stop = false;
      const loops = cs.map(async (c, k) => {
        for (let i = 0; i < 5000 && !stop; i++) {
          const id = ((i * 7919 + k * 104729) % 1000) + 1;
          await c.query('BEGIN');
          await c.query('UPDATE files SET name = name WHERE id = $1', [id]);
          await c.query('COMMIT');
        }
      });
      await sleep(1000);
      await record('healthy-busy', s);
      stop = true;
      await Promise.all(loops);
    });
  },
  /** A role without monitoring privileges on a server with an incident of another role. */
  async unprivileged() {
    await withServer({}, 18, async (s, open) => {
      for (let i = 0; i < 5; i++) {
        const c = await open('worker', 'other_user');
        await c.query('BEGIN');
        await c.query('SELECT 1');
      }
      await sleep(2000);
      await record('unprivileged', s, { user: 'app_user', password: PW });
    });
  },
};

const wanted = process.argv.slice(2);
for (const [name, run] of Object.entries(INCIDENTS)) {
  if (wanted.length && !wanted.includes(name)) continue;
  await run();
}
if (!wanted.length || wanted.includes('seeds-000')) await INCIDENTS['seeds-000'](14);
process.exit(0);
