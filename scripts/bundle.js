#!/usr/bin/env node
// `npm run build`, second step: bundles the CLI with every package it uses into one CommonJS file,
// dist/app/cli.cjs, which is what bin/dbdoctor.cjs runs. tsc's per-file output in dist/ stays for
// the tests and scripts that import modules (dist/db/embedded.js, say).
//
// Why: start-up is a feature during an incident. Node 20 loads each ES module and each file of a
// package on its own, and its ES module loader alone costs ~5 ms before the first line runs;
// dbdoctor's ~70 files plus pg's ~40 cost 40-50 ms per command before the first byte reached the
// server (measured by `npm run bench`). In one CommonJS file, bin/ can also hand V8 a code cache
// (see bin/dbdoctor.cjs). Modules stay lazy inside the bundle: a command still runs only its own
// code (src/cli.ts loads commands on demand, pg is loaded when a session opens, the prompts and
// execa only on a terminal). Packages go in as they are published, through their public entry
// points: nothing of theirs is replaced or rewritten here.
//
// dist/app/meta.json is esbuild's metafile (what went into the bundle, and how big).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = `${ROOT}dist/app`;

rmSync(OUT, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ['src/cli.ts'],
  outfile: `${OUT}/cli.cjs`,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // pg's optional native binding is never used.
  external: ['pg-native'],
  // import.meta.url in CommonJS: the bundle's own file URL (src/package-files.ts finds package.json from it).
  define: { 'import.meta.url': '__dbdoctorBundleUrl' },
  banner: { js: "const __dbdoctorBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  minifyWhitespace: true,
  minifySyntax: true,
  charset: 'ascii',
  metafile: true,
  logLevel: 'warning',
});
writeFileSync(`${OUT}/meta.json`, JSON.stringify(result.metafile));
// bin/dbdoctor.cjs reads the bundle as latin1, which is exact only for ASCII (charset above).
const bytes = readFileSync(`${OUT}/cli.cjs`);
const wide = bytes.findIndex((b) => b > 0x7f);
if (wide >= 0) throw new Error(`dist/app/cli.cjs is not ASCII at byte ${wide}; bin/dbdoctor.cjs reads it as latin1`);
