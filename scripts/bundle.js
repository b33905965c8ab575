#!/usr/bin/env node
// `npm run build`, second step: bundles the CLI with every package it uses into one CommonJS file,
// dist/app/cli.cjs, which is what bin/dbdoctor.cjs runs, beside dist/app/compile-cache.cjs (Node's
// compile cache, turned on before the bundle loads: src/ui/compile-cache.ts). tsc's
// per-file output in dist/ stays for the tests and scripts that import modules (dist/db/embedded.js,
// say), and dist/bundle-meta.json is esbuild's metafile (what went into the bundle, and how big).
//
// Why one file: start-up is a feature during an incident. Node 20 loads each ES module and each
// file of a package on its own; dbdoctor's ~70 files plus pg's ~40 cost tens of ms per command
// before the first byte reached the server (`npm run bench` measures it). Modules stay lazy inside
// the bundle: a command still runs only its own code (src/cli.ts loads commands on demand, pg is
// loaded when a session opens, the prompts and execa only on a terminal).
//
// Packages go in as they are published, through their public entry points: nothing of theirs is
// replaced or rewritten here.
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = `${ROOT}dist/app`;
// The one module left out: pg's optional native binding, which dbdoctor never asks pg for.
const EXTERNAL = ['pg-native'];

rmSync(OUT, { recursive: true, force: true });
const common = { absWorkingDir: ROOT, bundle: true, format: 'cjs', platform: 'node', target: 'node20', minifyWhitespace: true, minifySyntax: true, charset: 'ascii', metafile: true, logLevel: 'warning' };
const cli = await build({
  ...common,
  entryPoints: ['src/cli.ts'],
  outfile: `${OUT}/cli.cjs`,
  external: EXTERNAL,
  // import.meta.url in CommonJS: the bundle's own file URL (src/package-files.ts finds package.json from it).
  define: { 'import.meta.url': '__dbdoctorBundleUrl' },
  banner: { js: "const __dbdoctorBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
// Small and on its own: bin/ loads it only where Node has a compile cache, before the bundle.
const cache = await build({ ...common, entryPoints: ['src/ui/compile-cache.ts'], outfile: `${OUT}/compile-cache.cjs` });
const result = { metafile: { inputs: { ...cli.metafile.inputs, ...cache.metafile.inputs }, outputs: { ...cli.metafile.outputs, ...cache.metafile.outputs } } };
writeFileSync(`${ROOT}dist/bundle-meta.json`, JSON.stringify(result.metafile));
