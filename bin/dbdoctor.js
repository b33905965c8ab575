#!/usr/bin/env node
// The shim that loads the built CLI. One shortcut: `dbdoctor --version` alone is answered here,
// from package.json, without loading the CLI at all (start-up is a feature during an incident).
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${version}\n`);
} else {
  const { main } = await import('../dist/app/cli.js');
  await main(process.argv);
}
