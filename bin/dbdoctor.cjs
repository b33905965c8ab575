#!/usr/bin/env node
// The shim that runs the CLI: dist/app/cli.cjs, one CommonJS bundle (scripts/bundle.js; what only a
// pager or a prompt needs is in bundles of their own beside it, which it loads when it needs them).
// - `dbdoctor --version` alone is answered here, from package.json, without loading the CLI;
// - otherwise the bundle is loaded through dist/app/compile-cache.cjs (src/ui/compile-cache.ts),
//   with V8's code from an earlier run of the same command, kept in a directory of the user's own,
//   so later runs skip most of the bundle's parsing and compiling; after the command ran, what V8
//   compiled is kept when there was no cache yet, V8 refused it, or it is 10 minutes old. Nothing is
//   ever written into the installed package.
'use strict';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${require('../package.json').version}\n`);
} else {
  const bundle = require('../dist/app/compile-cache.cjs').loadBundle(require.resolve('../dist/app/cli.cjs'), args);
  bundle.exports.main(process.argv).then(() => bundle.save());
}
