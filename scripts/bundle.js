#!/usr/bin/env node
// `npm run build`, second step: bundles the CLI with every package it uses into one CommonJS file,
// dist/app/cli.cjs, which is what bin/dbdoctor.cjs runs, beside dist/app/compile-cache.cjs (Node's
// compile cache, turned on before the bundle loads: src/ui/compile-cache.ts), the two bundles a
// command loads only on demand (LAZY below) and dist/app/THIRD-PARTY-NOTICES.txt. dist/app is what
// the package ships (package.json "files"); tsc's per-file output in dist/ stays for the tests and
// scripts that import modules (dist/db/embedded.js, say), and dist/bundle-meta.json is esbuild's
// metafile (what went into the bundles, and how big).
//
// Why one file: start-up is a feature during an incident. Node 20 loads each ES module and each
// file of a package on its own; dbdoctor's ~70 files plus pg's ~40 cost tens of ms per command
// before the first byte reached the server (`npm run bench` measures it). Modules stay lazy inside
// the bundle: a command still runs only its own code (src/cli.ts loads commands on demand, pg is
// loaded when a session opens, the prompts and execa only on a terminal).
//
// Packages go in as they are published, through their public entry points: nothing of theirs is
// replaced or rewritten here.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { BUNDLE_OPTIONS, EXTERNAL } from './bundle-options.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = `${ROOT}dist/app`;
// What only a pager or a question on a terminal needs, each in a bundle of its own beside cli.cjs,
// which loads it (from a dynamic import in the source, a require() in the bundle: see supported
// below) by its file name, only when it is needed: Node reads and compiles
// the whole of a file it loads, fresh memory included, and these were 28% of cli.cjs' bytes (every
// command paid ~15 ms for them on Node 20, `npm run bench`'s host figures say why). One bundle per
// entry, so what entries share (@inquirer/core) is not loaded twice. The build fails when any of
// their code ends up in cli.cjs all the same (a static import, or an import from another module):
// it would be read and compiled by every command again.
const LAZY = [
  { importer: 'src/ui/pager.ts', specifier: 'execa', entry: 'execa', out: 'execa.cjs' },
  { importer: 'src/ui/prompts.ts', specifier: './inquirer.js', entry: 'src/ui/inquirer.ts', out: 'inquirer.cjs' },
];
// Their import() in the source names the bundle's file in cli.cjs; anything else of theirs that reaches cli.cjs
// is caught by the check of its inputs after the build.
const lazyImports = {
  name: 'lazy-bundles',
  setup(b) {
    b.onResolve({ filter: /^(execa|\.\/inquirer\.js)$/ }, (args) => {
      const lazy = LAZY.find((l) => l.specifier === args.path && args.importer === join(ROOT, l.importer));
      return lazy && args.kind === 'dynamic-import' ? { path: `./${lazy.out}`, external: true } : undefined;
    });
  },
};

rmSync(OUT, { recursive: true, force: true });
const common = { ...BUNDLE_OPTIONS, absWorkingDir: ROOT, metafile: true };
const cli = await build({
  ...common,
  entryPoints: ['src/cli.ts'],
  outfile: `${OUT}/cli.cjs`,
  external: EXTERNAL,
  plugins: [lazyImports],
  // import() becomes require() (of the lazy bundles, of node:tls): bin loads cli.cjs through
  // vm.Script with V8's code cache (src/ui/compile-cache.ts), and there Node 20 loses import()'s
  // loader once the code comes from the cache (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), while
  // Node 22+ warns that the option that gives it one is experimental.
  supported: { 'dynamic-import': false },
  // import.meta.url in CommonJS: the bundle's own file URL (src/package-files.ts finds package.json from it).
  define: { 'import.meta.url': '__dbdoctorBundleUrl' },
  banner: { js: "const __dbdoctorBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
const inCli = Object.keys(cli.metafile.outputs['dist/app/cli.cjs'].inputs).filter((input) => /node_modules\/(execa|@inquirer)\//.test(input) || LAZY.some((l) => input === l.entry));
if (/[^\w$.]import\(/.test(readFileSync(`${OUT}/cli.cjs`, 'utf8'))) throw new Error('dist/app/cli.cjs holds an import(): it must require() (see supported above)');
if (inCli.length > 0) throw new Error(`dist/app/cli.cjs holds what only its own bundles should (scripts/bundle.js LAZY): ${inCli.slice(0, 5).join(', ')}`);
const lazy = await Promise.all(LAZY.map((l) => build({ ...common, entryPoints: [l.entry], outfile: `${OUT}/${l.out}`, external: EXTERNAL })));
// Small and on its own: bin/ loads it first, and it loads cli.cjs with V8's code cache.
const cache = await build({ ...common, entryPoints: ['src/ui/compile-cache.ts'], outfile: `${OUT}/compile-cache.cjs` });
const builds = [cli, ...lazy, cache];
const result = { metafile: { inputs: Object.assign({}, ...builds.map((b) => b.metafile.inputs)), outputs: Object.assign({}, ...builds.map((b) => b.metafile.outputs)) } };
writeFileSync(`${ROOT}dist/bundle-meta.json`, JSON.stringify(result.metafile));

// What the bundles still require at run time must come with Node: the package has no runtime
// dependencies (package.json lists everything it bundles as devDependencies).
const builtins = new Set(builtinModules);
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  for (const imp of output.imports) {
    if (!imp.external) continue;
    const name = imp.path.replace(/^node:/, '');
    const ownBundle = LAZY.some((l) => imp.path === `./${l.out}`);
    if (!builtins.has(name) && !builtins.has(name.split('/')[0]) && !EXTERNAL.includes(imp.path) && !ownBundle) {
      throw new Error(`${file} requires ${imp.path} at run time: bundle it, or it must become a dependency of the package`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// THIRD-PARTY-NOTICES.txt: every package the metafile says went into a bundle, with its licence
// text as the package ships it (a LICENSE, LICENCE, COPYING or NOTICE file; else the licence
// section of its README). The build fails for a package that ships neither.

const LICENSE_FILE = /^(licen[cs]e|copying|notice)(\b|[-_.]|$)/i;

/** The package directory (…/node_modules/<name> or …/node_modules/@scope/<name>) of a bundled input. */
function packageDirOf(input) {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m ? m[1] : null;
}

/** The README's licence section: from a "License" heading to the next heading of its level or above. */
function readmeLicense(dir) {
  const readme = readdirSync(dir).find((f) => /^readme(\.md|\.markdown|\.txt)?$/i.test(f));
  if (!readme) return null;
  const lines = readFileSync(join(dir, readme), 'utf8').split(/\r?\n/);
  const start = lines.findIndex((l) => /^#{1,6}\s*licen[cs]e\b/i.test(l));
  if (start < 0) return null;
  const level = /^#+/.exec(lines[start])[0].length;
  let end = start + 1;
  while (end < lines.length && !(/^#+\s/.test(lines[end]) && /^#+/.exec(lines[end])[0].length <= level)) end++;
  const text = lines.slice(start + 1, end).join('\n').trim();
  return text ? { from: `${readme}, section "${lines[start].replace(/^#+\s*/, '')}"`, text } : null;
}

function noticeOf(dir) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const files = readdirSync(dir)
    .filter((f) => LICENSE_FILE.test(f))
    .sort();
  const texts = files.map((f) => ({ from: f, text: readFileSync(join(dir, f), 'utf8').trim() }));
  if (texts.length === 0) {
    const section = readmeLicense(dir);
    if (section) texts.push(section);
  }
  const license = typeof pkg.license === 'string' ? pkg.license : (pkg.license?.type ?? null);
  if (texts.length === 0) throw new Error(`${relative(ROOT, dir)} (bundled) ships no licence text: no LICENSE/COPYING/NOTICE file and no licence section in its README`);
  return { name: pkg.name, version: pkg.version, license, texts };
}

const dirs = new Set();
for (const output of Object.values(result.metafile.outputs)) {
  for (const input of Object.keys(output.inputs)) {
    const dir = packageDirOf(input);
    if (dir) dirs.add(join(ROOT, dir));
  }
}
const notices = [...dirs]
  .filter((d) => existsSync(join(d, 'package.json')))
  .map(noticeOf)
  .sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version) : a.name < b.name ? -1 : 1));
const seen = new Set();
const sections = [];
for (const n of notices) {
  const key = `${n.name}@${n.version}`;
  if (seen.has(key)) continue;
  seen.add(key);
  const body = n.texts.map((t) => `(${t.from})\n\n${t.text}`).join('\n\n');
  sections.push(`${'-'.repeat(78)}\n${key}${n.license ? ` (${n.license})` : ''}\n\n${body}\n`);
}
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8'));
writeFileSync(
  `${OUT}/THIRD-PARTY-NOTICES.txt`,
  `${pkg.name} ${pkg.version}: third-party software\n\n` +
    `dist/app/*.cjs contain the following ${sections.length} packages, as published, bundled by esbuild\n` +
    `(this file is generated by scripts/bundle.js from the build's metafile). Each is listed with\n` +
    `its version, its declared licence and its licence text as the package ships it.\n\n${sections.join('\n')}`,
);
