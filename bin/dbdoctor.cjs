#!/usr/bin/env node
// The shim that runs the CLI: dist/app/cli.cjs, one CommonJS bundle (scripts/bundle.js).
// Start-up is a feature during an incident, so:
// - `dbdoctor --version` alone is answered here, from package.json, without loading the CLI;
// - the bundle is compiled with a V8 code cache kept beside it, so later runs skip most of the
//   parsing and compiling (Node 20 has no compile cache of its own for this). There is one cache
//   per command (each compiles different code), named after the bundle's size and mtime so a
//   rebuilt bundle never meets an old cache (npm run build also deletes them). A cache is written
//   once, after the first run of its command or when V8 rejects it (another Node), through a
//   temporary file and a rename; one that cannot be written (a read-only install) is not used.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const COMMANDS = new Set(['check', 'connections', 'locks', 'queries', 'diagnose', 'terminate', 'runbook', 'guide', 'demo']);

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${require('../package.json').version}\n`);
} else {
  const vm = require('node:vm');
  const { createRequire, wrap } = require('node:module');
  const file = path.join(__dirname, '..', 'dist', 'app', 'cli.cjs');
  // The bundle is ASCII (scripts/bundle.js checks), so latin1 reads it exactly, without the
  // UTF-8 decoding of 1.4 MB.
  const source = fs.readFileSync(file, 'latin1');
  const stat = fs.statSync(file);
  // `<command> --help` runs none of the command's code: it must not write the command's cache.
  const command = COMMANDS.has(args[0]) && !args.includes('--help') ? args[0] : 'other';
  const cacheFile = `${file}.${command}.${stat.size}-${Math.trunc(stat.mtimeMs)}.cache`;
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // not cached yet
  }
  const script = new vm.Script(wrap(source), { filename: file, cachedData });
  const saveCache = () => {
    if (cachedData && !script.cachedDataRejected) return;
    try {
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    } catch {
      // read-only install, full disk: run without a cache
    }
  };
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(file), mod, file, path.dirname(file));
  mod.exports.main(process.argv).then(saveCache);
}
