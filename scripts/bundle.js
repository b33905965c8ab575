#!/usr/bin/env node
// `npm run build`, second step: bundles the CLI into dist/app/ with esbuild, which is what
// bin/dbdoctor.js runs. tsc's per-file output in dist/ stays for the tests and scripts that import
// modules (dist/db/embedded.js, say).
//
// Why: start-up is a feature during an incident. Node 20 loads each ES module and each file of a
// CommonJS package on its own; dbdoctor's ~70 files plus pg's ~40 cost 20-25 ms per command
// before the first byte reaches the server (measured by `npm run bench`). The bundle is split at
// every dynamic import, so a command still loads only its own code (src/cli.ts loads commands
// lazily, and pg only when a session opens). Interactive-only packages (@inquirer/prompts, execa)
// stay outside: they are loaded on a terminal, where a few ms do not matter.
//
// dist/app/meta.json is esbuild's metafile: which sources each chunk holds (the start-up test
// reads it to tell which packages a run loaded).
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = `${ROOT}dist/app`;

rmSync(OUT, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ['src/cli.ts'],
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['@inquirer/prompts', 'execa', 'pg-native'],
  // Bundled CommonJS packages (pg, commander, cli-table3) call require() for Node's built-ins.
  banner: { js: "import { createRequire as __dbdoctorRequire } from 'node:module'; const require = __dbdoctorRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning',
});
writeFileSync(`${OUT}/meta.json`, JSON.stringify(result.metafile));
