/**
 * Every dbdoctor command, as the reliability suite drives it: how a normal run looks, whether it
 * connects, whether it speaks JSON. `test/reliability/coverage.test.ts` fails when a command is
 * registered in src/cli.ts but missing here, so every new command gets the whole suite.
 */
import { execFileSync } from 'node:child_process';
import { BIN, cleanEnv } from './cli.js';

export type CommandKind =
  /** Reads the server through one connection. */
  | 'read'
  /** Reads, then (with --yes) signals sessions. */
  | 'terminate'
  /** Never connects (runbook). */
  | 'offline'
  /** Starts its own throwaway server (demo). */
  | 'own-server'
  /** Needs a terminal (guide). */
  | 'tty'
  /** Reads a PgBouncer admin console, not a server (pools: test/e2e/pgbouncer.test.ts drives it against a real one). */
  | 'pooler'
  /** Serves until stopped (exporter: test/e2e/fleet.test.ts drives it with a real Prometheus). */
  | 'server'
  /**
   * Reads the server through one connection and writes the facts as they are, with no verdict and
   * no human view (snapshot; watch --json): test/e2e/snapshot.test.ts and test/e2e/watch.test.ts
   * drive them on real incidents; their bad input is checked here like a read's.
   */
  | 'recorder';

export interface CommandSpec {
  name: string;
  kind: CommandKind;
  /** Arguments that make a normal, harmless run (besides connection options and --json). */
  args: string[];
  /** Views that print client-controlled text differently (e.g. connections --list). */
  variants: string[][];
  json: boolean;
}

/** A filter that matches nothing real, so a terminate run is harmless unless a test says otherwise. */
export const TERMINATE_NOTHING = ['--app', 'reliability-matches-nothing'];

export const COMMANDS: CommandSpec[] = [
  { name: 'check', kind: 'read', args: [], variants: [[]], json: true },
  { name: 'connections', kind: 'read', args: [], variants: [[], ['--list'], ['--by', 'user,db,client']], json: true },
  { name: 'locks', kind: 'read', args: [], variants: [[]], json: true },
  { name: 'queries', kind: 'read', args: ['--min-duration', '0s'], variants: [[], ['--group']], json: true },
  { name: 'diagnose', kind: 'read', args: [], variants: [[], ['--format', 'nagios']], json: true },
  { name: 'terminate', kind: 'terminate', args: [...TERMINATE_NOTHING, '--dry-run'], variants: [[]], json: true },
  { name: 'pools', kind: 'pooler', args: [], variants: [[]], json: true },
  { name: 'exporter', kind: 'server', args: [], variants: [[]], json: false },
  { name: 'watch', kind: 'recorder', args: ['--count', '1'], variants: [[]], json: true },
  { name: 'snapshot', kind: 'recorder', args: [], variants: [[]], json: true },
  { name: 'runbook', kind: 'offline', args: [], variants: [[]], json: false },
  { name: 'demo', kind: 'own-server', args: [], variants: [[]], json: false },
  { name: 'guide', kind: 'tty', args: [], variants: [[]], json: false },
];

/** Commands that connect to the server named by the connection options. */
export const CONNECTING = COMMANDS.filter((c) => c.kind === 'read' || c.kind === 'terminate');

export function spec(name: string): CommandSpec {
  const s = COMMANDS.find((c) => c.name === name);
  if (!s) throw new Error(`no command spec for ${name}`);
  return s;
}

/** The commands the built binary registers (from `dbdoctor --help`), without commander's `help`. */
export function registeredCommands(): string[] {
  const help = execFileSync('node', [BIN, '--help'], { encoding: 'utf8', env: cleanEnv() });
  const section = help.split(/^Commands:$/m)[1]?.split(/^\S/m)[0] ?? '';
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
}

let registered: Set<string> | undefined;

/** The specs of commands the built binary has now (the others are still being written). */
export function landed(specs: CommandSpec[] = COMMANDS): CommandSpec[] {
  registered ??= new Set(registeredCommands());
  return specs.filter((c) => registered!.has(c.name));
}
