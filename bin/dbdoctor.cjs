#!/usr/bin/env node
// The shim that runs the CLI: dist/app/cli.cjs, one CommonJS bundle (scripts/bundle.js; what only a
// pager or a prompt needs is in bundles of their own beside it, which it loads when it needs them).
// - `dbdoctor --version` alone is answered here, from package.json, without loading the CLI;
// - where Node has a compile cache of its own (22.1+), it is turned on before the bundle loads, in
//   a directory of the user's own (dist/app/compile-cache.cjs, from src/ui/compile-cache.ts), so
//   later runs skip most of the bundle's parsing and compiling. Nothing is ever written into the
//   installed package. Node 20 has none: it runs without a cache.
'use strict';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${require('../package.json').version}\n`);
} else {
  if (typeof require('node:module').enableCompileCache === 'function') require('../dist/app/compile-cache.cjs').enableCompileCache();
  require('../dist/app/cli.cjs').main(process.argv);
}
