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
// execa only on a terminal).
//
// dist/app/meta.json is esbuild's metafile (what went into the bundle, and how big).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

/**
 * An esbuild plugin that puts dbdoctor's module `ours` (src/db/<ours>.ts) in place of the package
 * module `theirs`, once `shape` (what callers use of it) says the same of both: the build fails
 * when the package changes under it. tsc's dist/ has already been built (npm run build).
 */
async function substitute(name, theirs, ours, shape) {
  const [a, b] = [shape(require(theirs)), shape(await import(`${ROOT}dist/db/${ours}.js`))];
  if (a !== b) throw new Error(`${theirs} (${a}) differs from src/db/${ours}.ts (${b}); update it`);
  const filter = new RegExp(`[\\\\/]${theirs.replace(/\//g, '[\\\\/]').replace(/\./g, '\\.')}$`);
  const contents = `module.exports = require(${JSON.stringify(`${ROOT}src/db/${ours}.ts`)});`;
  return { name, setup: (b) => b.onLoad({ filter }, () => ({ contents, loader: 'js' })) };
}
const exportNames = (m) => Object.keys(m).sort().join(', ');
const readerMethods = (m) => Object.getOwnPropertyNames(m.BufferReader.prototype).sort().join(', ');

// pg's SCRAM helpers use WebCrypto; src/db/pg-crypto.ts gives the same functions on node:crypto,
// ~1.6 ms less per connection.
const nodeCryptoForPg = await substitute('node-crypto-for-pg', 'pg/lib/crypto/utils.js', 'pg-crypto', exportNames);
// pg-protocol's reader reads every field's length and text through Buffer#readInt32BE and
// Buffer#toString; src/db/pg-buffer-reader.ts reads the same bytes directly, ~2 ms less per
// 1,500-session snapshot.
const fastReaderForPg = await substitute('fast-reader-for-pg', 'pg-protocol/dist/buffer-reader.js', 'pg-buffer-reader', readerMethods);

// commander requires node:child_process at load time, only to run executable subcommands, which
// dbdoctor has none of; Node compiles that module on first require (~2 ms on every command). The
// require moves to where commander spawns.
const COMMANDER_EAGER = "const childProcess = require('node:child_process');";
const lazyCommanderChildProcess = {
  name: 'lazy-commander-child-process',
  setup(b) {
    b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes(COMMANDER_EAGER)) throw new Error(`${args.path}: commander no longer requires child_process as expected; update scripts/bundle.js`);
      return { contents: text.replace(COMMANDER_EAGER, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: 'js' };
    });
  },
};
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
  plugins: [lazyCommanderChildProcess, nodeCryptoForPg, fastReaderForPg],
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
