#!/usr/bin/env node
// Benchmark helper: summarizes a V8 .cpuprofile (from `node --cpu-prof`, or `npm run bench --
// --cpu-prof`) by self time: per package or dbdoctor file, and the top functions.
//   node scripts/bench-profile.js <file.cpuprofile> [--top 15]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** { total_ms, by_group: [[group, ms]], top: [[function @ place, ms]] } for one profile. */
export function summarizeProfile(file, top = 15) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const { samples = [], timeDeltas = [] } = prof;
  for (let i = 0; i < samples.length; i++) {
    const dt = (timeDeltas[i + 1] ?? timeDeltas[i] ?? 0) / 1000;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  const group = (url) => {
    if (!url) return '(native/V8)';
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m) return `pkg ${m[1]}`;
    if (url.startsWith('node:')) return 'node internals';
    const d = /\/(dist|bin|scripts)\/(.*)$/.exec(url);
    return d ? `${d[1]}/${d[2]}` : url;
  };
  const byGroup = new Map();
  const byFn = new Map();
  let total = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    const cf = n?.callFrame ?? {};
    total += ms;
    const g = group(cf.url);
    byGroup.set(g, (byGroup.get(g) ?? 0) + ms);
    const name = `${cf.functionName || '(anonymous)'} @ ${g}:${(cf.lineNumber ?? 0) + 1}`;
    byFn.set(name, (byFn.get(name) ?? 0) + ms);
  }
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round(v * 10) / 10]);
  return { total_ms: Math.round(total * 10) / 10, by_group: sorted(byGroup).slice(0, top), top: sorted(byFn).slice(0, top) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '15' } }, allowPositionals: true });
  for (const file of positionals) {
    const s = summarizeProfile(file, Number(values.top));
    process.stdout.write(`${file}: ${s.total_ms} ms sampled\n  by package / file (self time):\n`);
    for (const [g, ms] of s.by_group) process.stdout.write(`    ${String(ms).padStart(7)} ms  ${g}\n`);
    process.stdout.write('  top functions (self time):\n');
    for (const [f, ms] of s.top) process.stdout.write(`    ${String(ms).padStart(7)} ms  ${f}\n`);
  }
}
