#!/usr/bin/env node
// `npm run bench:watch`: the memory a long `dbdoctor watch` keeps. One hour at 2s (1,800 samples)
// of a server with 1,500 client sessions (a recorded incident, test/unit/fixtures/diagnose/
// seeds-000.json, its sessions copied with new pids, and one more idle-in-transaction session each
// sample), through what watch does with each sample (dist/): diagnose, summarize, the ring buffer,
// the trends, the events. Prints the heap after a full GC every 300 samples (run with
// --expose-gc, as the npm script does). Bounded: 1,800 samples, nothing else started.
import { readFileSync } from 'node:fs';
import { diagnose } from '../dist/core/diagnose.js';
import { DEFAULT_TREND_OPTIONS } from '../dist/core/diagnose/trends.js';
import { eventsBetween, identities, Ring, summarize, trends } from '../dist/core/watch.js';

const SESSIONS = 1500;
const SAMPLES = 1800;
const base = JSON.parse(readFileSync(new URL('../test/unit/fixtures/diagnose/seeds-000.json', import.meta.url), 'utf8'));
const clients = base.activity.rows.filter((r) => !r.is_self && r.backend_type === 'client backend');
const self = base.activity.rows.find((r) => r.is_self);

function factsAt(i) {
  const rows = [self];
  for (let k = 0; k < SESSIONS; k++) {
    const r = clients[k % clients.length];
    rows.push({ ...r, pid: 100_000 + k, backend_start: `2026-01-01 00:00:00.${String(k).padStart(6, '0')}+00` });
  }
  for (let k = 0; k < i; k++) rows.push({ ...clients[0], pid: 200_000 + k, application_name: 'worker', state: 'idle in transaction', backend_start: `2026-01-02 00:00:00.${String(k).padStart(6, '0')}+00` });
  return { ...base, activity: { ...base.activity, rows } };
}

const gc = globalThis.gc;
if (!gc) throw new Error('run with node --expose-gc');
gc();
const start = process.memoryUsage().heapUsed;
const ring = new Ring(SAMPLES);
let prev = null;
let prevIds = null;
const t0 = Date.now();
console.log(`watch memory bench: ${SESSIONS} sessions, ${SAMPLES} samples at 2s (one hour), heap after a full GC`);
console.log('samples  heap MB  (over the start)');
for (let i = 1; i <= SAMPLES; i++) {
  // a few more each sample, capped, so the leak stays within the server's slots
  const facts = factsAt(Math.min(i, 50));
  const report = diagnose(facts);
  const sample = summarize(facts, report, prevIds, null, { seq: i, at_ms: t0 + i * 2000, server_ms: 5, interval_ms: 2000, backed_off: false });
  if (prev) for (const a of prev.by_app) a.pids_iit = [];
  ring.push(sample);
  trends(ring.all(), DEFAULT_TREND_OPTIONS);
  eventsBetween(prev, sample);
  prev = sample;
  prevIds = identities(facts);
  if (i % 300 === 0) {
    gc();
    const mb = process.memoryUsage().heapUsed / 1024 / 1024;
    console.log(`${String(i).padStart(7)}  ${mb.toFixed(1).padStart(7)}  (+${((process.memoryUsage().heapUsed - start) / 1024 / 1024).toFixed(1)})`);
  }
}
console.log(`rss ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MB; ${((Date.now() - t0) / SAMPLES).toFixed(1)} ms of deciding per sample`);
