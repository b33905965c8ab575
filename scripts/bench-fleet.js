#!/usr/bin/env node
// `npm run bench:fleet`: `dbdoctor diagnose --targets` over fleets of growing size, to see that the
// run grows with targets / concurrency and not with targets alone. It starts 3 throwaway servers
// (dist/db/embedded.js) and one silent peer (accepts, never answers) on 127.0.0.1; every fleet is
// the 3 servers named over and over, closed ports, and one silent peer in ten targets. Each size
// runs once per concurrency (bounded: at most 200 targets, 3 concurrencies); everything this script
// started is stopped at the end, by its handle.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startServer } from '../dist/db/embedded.js';

const BIN = fileURLToPath(new URL('../bin/dbdoctor.cjs', import.meta.url));
const SIZES = [25, 50, 100, 200];
const CONCURRENCY = [4, 16, 64];
const CONNECT_TIMEOUT_S = 2;

const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-bench-fleet-'));
const servers = [];
const sockets = [];
const silent = createServer((s) => {
  sockets.push(s);
  s.on('error', () => undefined);
});
try {
  for (let i = 0; i < 3; i++) servers.push(await startServer({}));
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = silent.address().port;
  const closedPort = await freePort();
  console.log(`fleet bench: 3 servers, closed port ${closedPort}, silent peer ${silentPort}, connect timeout ${CONNECT_TIMEOUT_S}s`);
  console.log('targets  concurrency  silent  wall s  ms/target  wall/(ceil(targets/concurrency))');
  for (const n of SIZES) {
    const lines = [];
    for (let i = 0; i < n; i++) {
      if (i % 10 === 9) lines.push(`@silent${i} host=127.0.0.1 port=${silentPort} user=postgres dbname=postgres sslmode=disable`);
      else if (i % 10 >= 6) lines.push(`@closed${i} host=127.0.0.1 port=${closedPort} user=postgres dbname=postgres`);
      else lines.push(`@db${i} ${servers[i % 3].url()}`);
    }
    const file = join(dir, `fleet-${n}.txt`);
    writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    for (const c of CONCURRENCY) {
      const started = process.hrtime.bigint();
      await new Promise((resolve) => {
        execFile('node', [BIN, 'diagnose', '--targets', file, '--concurrency', String(c), '--connect-timeout', `${CONNECT_TIMEOUT_S}s`, '--json'], { maxBuffer: 256 * 1024 * 1024, timeout: 300_000 }, () => resolve());
      });
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      const rounds = Math.ceil(n / c);
      console.log(`${String(n).padStart(7)}  ${String(c).padStart(11)}  ${String(Math.floor(n / 10)).padStart(6)}  ${wall.toFixed(2).padStart(6)}  ${((wall * 1000) / n).toFixed(1).padStart(9)}  ${(wall / rounds).toFixed(3).padStart(8)}`);
    }
  }
} finally {
  for (const s of sockets) s.destroy();
  silent.close();
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
}
