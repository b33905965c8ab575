/**
 * Bad input, table-driven over every command and every flag the built binary declares (read from
 * each command's --help, so a new flag is covered the day it lands): malformed durations, numbers
 * out of range, unknown states, malformed URLs and conninfo strings, bad ports, conflicting and
 * unknown flags, bad environment variables. Each must be a usage error: exit 64, one
 * `dbdoctor:` line (and a hint), nothing on stdout, no stack trace, and no connection attempted.
 *
 * Every row points at a closed port: a command that tried to connect before validating would
 * exit 2, not 64.
 *
 * The table (hundreds of rows) runs in-process through `run(argv, output, env)`, the function the
 * binary's `main` calls, with the real terminal writer over buffers; one row per command, the
 * JSON rows and the hanging-peer rows also run as the built binary, for its exit path.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { freePort } from '../../src/db/embedded.js';
import { run } from '../../src/cli.js';
import { BIN, type CliResult, cleanEnv, parseJson, runCli } from '../support/cli.js';
import { captureOutput } from '../support/output.js';
import { expectNoStack } from '../support/reliability.js';
import { COMMANDS, landed } from '../support/commands.js';
import { fakePeer, type FakePeer } from '../support/faults.js';

interface Flag {
  long: string;
  placeholder: string | null;
}

const flagsByCommand = new Map<string, Flag[]>();

/** The flags a command declares, from its --help (option lines start with two spaces and a dash). */
function flagsOf(command: string): Flag[] {
  const known = flagsByCommand.get(command);
  if (known) return known;
  const help = execFileSync('node', [BIN, command, '--help'], { encoding: 'utf8', env: cleanEnv() });
  const out: Flag[] = [];
  for (const m of help.matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z-]*)(?: <([a-z]+)>)?/gm)) {
    if (m[1] !== '--help') out.push({ long: m[1]!, placeholder: m[2] ?? null });
  }
  flagsByCommand.set(command, out);
  return out;
}

/** One row in-process: the argv the binary would get, the same clean environment, the real writer. */
async function runInProcess(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const { output, out, err } = captureOutput();
  const exitCode = await run(['node', BIN, ...args], output, cleanEnv(env));
  return { exitCode, stdout: out.join(''), stderr: err.join('') };
}

const BAD_DURATIONS = ['5x', '-1m', '', '1e309', '1h30', '5 m', '99999999999999999999d'];
const BAD_NUMBERS = ['-1', 'abc', '1.5', '', '1e309', '99999999999999999999', '0x10'];
const BAD_PERCENTS = ['101', '-5', 'abc', '', '1e3', 'NaN'];
const BAD_PORTS = ['0', '70000', 'abc', '-1', '5432x', '1e3'];
const BAD_STATES = ['sleeping', 'idle in trans', '', 'ACTIVE; DROP TABLE x'];
const BAD_CLIENTS = ['300.1.1.1', '10.0.0.0/33', 'not-an-ip', '', '::1/129', '10.0.0.1/8/8'];
const BAD_PIDS = ['abc', '0', '-1', '', '1,x', '99999999999', '1.5'];
const BAD_URLS_AND_CONNINFO = [
  'postgres://u@127.0.0.1:abc/db',
  'postgres://u@127.0.0.1:70000/db',
  'postgres://u@127.0.0.1:0/db',
  'postgres://[::1/db',
  'postgres://u:%zz@127.0.0.1/db',
  'postgresql://u@127.0.0.1/db?sslmode=bogus',
  'postgres://u@127.0.0.1/db?connect_timeout=abc',
  "host=127.0.0.1 password='unterminated",
  'host=127.0.0.1 port=abc',
  'host=127.0.0.1 port=0',
  'host=127.0.0.1 port=70000',
  'host=127.0.0.1 sslmode=bogus',
  'host=127.0.0.1 dbname',
  'host=127.0.0.1 =value',
  'host=127.0.0.1 connect_timeout=soon',
];

/** Where libpq takes an empty value for "not set" (psql -h "" is the default host): connection options. */
const LIBPQ_FLAGS = new Set(['--host', '--port', '--username', '--dbname', '--service']);

/** Flags that take a comma-separated list: an empty item (a stray comma, an unset variable) is refused too. */
const LIST_FLAGS: Record<string, string[]> = {
  '--state': ['idle,', ',idle', 'idle,,active', 'idle, ,active'],
  '--user': ['app_user,', ',app_user', 'a,,b'],
  '--db': ['postgres,', ',postgres'],
  '--client': ['10.0.0.0/8,', ',local', '10.0.0.0/8,,::1'],
  '--pid': ['1,', ',1', '1,,2', '1, ,2'],
  '--by': ['app,', ',app', 'app,,user'],
};

/**
 * Every value-taking flag outside the connection options refuses an empty or blank value: an
 * unset shell variable must never widen a selection, select the sessions with an empty name, or
 * fall back to a default. A new flag is covered the day it lands.
 */
function badValues(command: string, f: Flag): string[] | undefined {
  const checked = checkedValues(f);
  if (f.placeholder === null || LIBPQ_FLAGS.has(f.long)) return checked;
  // connections and queries take a role or database name whole (it may hold a comma)
  const lists = command !== 'terminate' && (f.long === '--user' || f.long === '--db') ? [] : (LIST_FLAGS[f.long] ?? []);
  return [...new Set([...(checked ?? []), '', ' ', ...lists])];
}

/** Bad values per flag: by the flag's name first, then by its placeholder; undefined = free text. */
function checkedValues(f: Flag): string[] | undefined {
  switch (f.long) {
    case '--dbname':
      return BAD_URLS_AND_CONNINFO;
    case '--service':
      return ['no-such-service'];
    case '--config':
      return ['/nonexistent/dbdoctor.json'];
    case '--query':
      return [''];
    case '--format':
      return ['xml', '', 'NAGIOS2'];
    case '--by':
      return ['nope', '', 'app,bogus'];
    case '--statement-timeout':
      // past 2^31-1 ms PostgreSQL refuses it and a Node timer fires at once
      return [...BAD_DURATIONS, '50ms', '0', '25d', '30d'];
    case '--connect-timeout':
      return [...BAD_DURATIONS, '0', '25d'];
    case '--grace':
      return [...BAD_DURATIONS, '25d'];
    case '--max':
      return ['0', '-1', 'abc', '1.5', '', '1000000', '1e3'];
    default:
      break;
  }
  switch (f.placeholder) {
    case 'duration':
      return BAD_DURATIONS;
    case 'n':
      return BAD_NUMBERS;
    case 'percent':
      return BAD_PERCENTS;
    case 'port':
      return BAD_PORTS;
    case 'state':
      return BAD_STATES;
    case 'addr':
      return BAD_CLIENTS;
    case 'pids':
      return BAD_PIDS;
    default:
      return undefined;
  }
}

let closedPort = 0;
const CLOSED_PORT = '{closed-port}';
let silent: FakePeer;
beforeAll(async () => {
  // Load the command modules one by one first: jest's ESM loader can fail an import that two
  // concurrent dynamic imports share ("not in cache"), and the root help loads them all at once.
  for (const f of readdirSync(new URL('../../src/commands/', import.meta.url)).filter((x) => x.endsWith('.ts'))) {
    await import(`../../src/commands/${f.replace(/\.ts$/, '.js')}`);
  }
  closedPort = await freePort();
  // a peer that never answers: a run that connects before validating would hang here, not exit 64
  silent = await fakePeer();
});
afterAll(async () => {
  await silent.close();
});

/** Where a command is pointed, unless the row is about the target itself. */
function target(flag: string | null): string[] {
  if (flag === '--host' || flag === '--port' || flag === '--dbname' || flag === '--service') return ['-U', 'postgres'];
  // the rows are built when the file loads, before beforeAll picks the port: a placeholder
  return ['-h', '127.0.0.1', '-p', CLOSED_PORT, '-U', 'postgres'];
}

function expectUsageError(r: CliResult, label: string, json = false): void {
  expectNoStack(r);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  const summary = { label, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  expect(summary).toMatchObject({ exitCode: 64 });
  if (json) {
    // with --json, the usage error is also the one document on stdout
    expect(parseJson<{ schema: string; report: { exit_code: number } }>(r)).toMatchObject({ schema: 'dbdoctor.error', report: { exit_code: 64 } });
  } else {
    expect(summary).toMatchObject({ stdout: '' });
  }
  // one error line, optionally followed by one hint line
  expect(lines.filter((l) => l.startsWith('dbdoctor:'))).toHaveLength(1);
  expect(lines[0]).toMatch(/^dbdoctor: /);
  expect(lines.length).toBeLessThanOrEqual(2);
  if (lines[1] !== undefined) expect(lines[1]).toMatch(/^hint: /);
  for (const l of lines) expect(l.length).toBeLessThan(300);
}

interface Row {
  label: string;
  args: string[];
  env?: Record<string, string>;
}

function rowsFor(command: string, kind: string): Row[] {
  const rows: Row[] = [];
  const connects = kind === 'read' || kind === 'terminate' || kind === 'tty' || kind === 'pooler' || kind === 'recorder';
  // terminate needs a selecting filter to get as far as a later flag's check
  const base = command === 'terminate' ? ['--app', 'x'] : [];
  for (const f of flagsOf(command)) {
    const values = badValues(command, f);
    if (!values) continue;
    for (const v of values) {
      // --grace is checked only with --cancel-first (alone it is a conflict, not a bad value)
      const needs = f.long === '--grace' ? ['--cancel-first'] : [];
      rows.push({ label: `${command} ${f.long} ${JSON.stringify(v)}`, args: [command, ...base, ...needs, ...(connects ? target(f.long) : []), `${f.long}`, v] });
    }
  }
  // unknown flags, a missing argument, a stray argument
  rows.push({ label: `${command} --bogus-flag`, args: [command, ...base, ...(connects ? target(null) : []), '--bogus-flag'] });
  rows.push({ label: `${command} -Z`, args: [command, ...base, ...(connects ? target(null) : []), '-Z'] });
  const valued = flagsOf(command).find((f) => f.placeholder !== null);
  if (valued) rows.push({ label: `${command} ${valued.long} (no value)`, args: [command, ...base, ...(connects ? target(null) : []), valued.long] });
  if (command !== 'runbook') rows.push({ label: `${command} stray positional`, args: [command, ...base, ...(connects ? target(null) : []), 'stray-argument'] });
  // the environment, as libpq reads it
  if (kind === 'read' || kind === 'terminate' || kind === 'pooler' || kind === 'recorder') {
    for (const [k, v] of [
      ['PGPORT', 'abc'],
      ['PGPORT', '70000'],
      ['PGPORT', '0'],
      ['PGSSLMODE', 'bogus'],
      ['PGCONNECT_TIMEOUT', 'soon'],
      ['PGCONNECT_TIMEOUT', '99999999'],
      ['DATABASE_URL', 'postgres://u@127.0.0.1:abc/db'],
      ['PGSERVICE', 'no-such-service'],
    ] as const) {
      rows.push({ label: `${command} with ${k}=${v}`, args: [command, ...base, '-U', 'postgres'], env: { [k]: v } });
    }
  }
  return rows;
}

/** Conflicting or incomplete combinations, per command. */
const CONFLICTS: Row[] = [
  { label: 'diagnose --json --format nagios', args: ['diagnose', '--json', '--format', 'nagios'] },
  { label: 'diagnose --format text --json', args: ['diagnose', '--format', 'text', '--json'] },
  { label: 'diagnose --pgbouncer ""', args: ['diagnose', '--pgbouncer', ''] },
  { label: 'diagnose --pgbouncer with an unknown keyword', args: ['diagnose', '--pgbouncer', 'host=pgb prot=6432'] },
  { label: 'terminate with no filter', args: ['terminate', '--yes'] },
  { label: 'terminate with only --dry-run', args: ['terminate', '--dry-run'] },
  { label: 'terminate --grace without --cancel-first', args: ['terminate', '--app', 'x', '--grace', '5s'] },
  { label: 'terminate --query ""', args: ['terminate', '--query', ''] },
  { label: 'terminate --pid "" only', args: ['terminate', '--pid', ''] },
  // an empty value from an unset shell variable must not silently widen a destructive selection
  { label: 'terminate --app x --user ""', args: ['terminate', '--app', 'x', '--user', ''] },
  { label: 'terminate --app x --db ""', args: ['terminate', '--app', 'x', '--db', ''] },
  { label: 'terminate --app x --state ""', args: ['terminate', '--app', 'x', '--state', ''] },
  { label: 'terminate --app x --client ""', args: ['terminate', '--app', 'x', '--client', ''] },
  { label: 'runbook with an unknown id', args: ['runbook', 'no-such-runbook'] },
  { label: 'runbook with two ids', args: ['runbook', 'leaks', 'settings'] },
  { label: 'an unknown command', args: ['no-such-command'] },
  { label: 'an unknown global flag', args: ['--bogus-global'] },
];

const commands = landed(COMMANDS);
const table = commands.flatMap((c) => rowsFor(c.name, c.kind));
const conflicts = CONFLICTS.filter((r) => commands.some((c) => c.name === r.args[0]) || r.args[0] === 'no-such-command' || r.args[0]!.startsWith('--'));

describe('bad input is a usage error (exit 64, one line, no stack trace, no connection)', () => {
  test('the table covers every landed command and every flag that takes a checked value', () => {
    for (const c of commands) expect(table.some((r) => r.args[0] === c.name)).toBe(true);
    expect(table.length).toBeGreaterThan(100);
  });

  const argsOf = (row: Row) => row.args.map((a) => (a === CLOSED_PORT ? String(closedPort) : a));

  test.each(table.map((r) => [r.label, r] as const))('%s', async (label, row) => {
    expect(closedPort).toBeGreaterThan(0);
    expectUsageError(await runInProcess(argsOf(row), row.env), label);
  });

  // The binary's own exit path: the first row of each command, and one with a bad environment.
  const spawned = [...commands.map((c) => table.find((r) => r.args[0] === c.name)!), table.find((r) => r.env !== undefined)!];
  test.concurrent.each(spawned.map((r) => [r.label, r] as const))('as the built binary: %s', async (label, row) => {
    expectUsageError(await runCli(argsOf(row), { env: row.env ?? {}, timeoutMs: 20_000 }), label);
  });

  const conflictArgs = (row: Row) => {
    const connects = !['runbook', 'no-such-command', '--bogus-global', 'demo'].includes(row.args[0]!);
    return [...row.args, ...(connects ? ['-h', '127.0.0.1', '-p', String(closedPort)] : [])];
  };
  test.each(conflicts.map((r) => [r.label, r] as const))('conflict: %s', async (label, row) => {
    expectUsageError(await runInProcess(conflictArgs(row)), label, row.args.includes('--json'));
  });

  test.concurrent.each(conflicts.slice(0, 2).map((r) => [r.label, r] as const))('conflict, as the built binary: %s', async (label, row) => {
    expectUsageError(await runCli(conflictArgs(row), { timeoutMs: 20_000 }), label, row.args.includes('--json'));
  });

  test.concurrent.each(commands.filter((c) => c.json).map((c) => [c.name] as const))('%s --json: a usage error is also one JSON document on stdout', async (name) => {
    const r = await runCli([name, '--json', '-h', '127.0.0.1', '-p', String(closedPort), '--statement-timeout', '5x']);
    expectNoStack(r);
    expect(r.exitCode).toBe(64);
    const doc = parseJson<{ schema: string; report: { status: string; exit_code: number } }>(r);
    expect(doc.schema).toBe('dbdoctor.error');
    expect(doc.report).toMatchObject({ status: 'usage', exit_code: 64 });
    expect(r.stderr.split('\n').filter((l) => l.startsWith('dbdoctor:'))).toHaveLength(1);
  });

  test.concurrent.each(landed(COMMANDS.filter((c) => c.kind === 'read' || c.kind === 'terminate' || c.kind === 'recorder')).map((c) => [c.name] as const))(
    '%s: a bad flag is refused before connecting, even to a peer that would hang',
    async (name) => {
      const filter = name === 'terminate' ? ['--app', 'x'] : [];
      const r = await runCli([name, ...filter, '-h', '127.0.0.1', '-p', String(silent.port), '--connect-timeout', '5s', '--statement-timeout', '-1m']);
      expectUsageError(r, name);
      expect(silent.accepted()).toBe(0);
    },
  );
});

describe('"Did you mean" names only flags the command has', () => {
  const commands = landed(COMMANDS);
  const allFlags = [...new Set(commands.flatMap((c) => flagsOf(c.name).map((f) => f.long)))];

  test('locks --list suggests nothing (--list is a flag of connections, and --host is no near miss)', async () => {
    const r = await runInProcess(['locks', '--list']);
    expect(r.exitCode).toBe(64);
    expect(r.stderr).toMatch(/unknown option '--list'/);
    expect(r.stderr).not.toMatch(/Did you mean/);
  });

  test('a typo of a flag of the command is suggested', async () => {
    const r = await runInProcess(['terminate', '--dryrun']);
    expect(r.stderr).toMatch(/\(Did you mean --dry-run\?\)/);
    expect((await runInProcess(['locks', '--jsn'])).stderr).toMatch(/\(Did you mean --json\?\)/);
  });

  test.each(commands.map((c) => [c.name] as const))('%s: every flag of another command, if answered with a suggestion, gets one of its own flags', async (name) => {
    const own = new Set([...flagsOf(name).map((f) => f.long), '--help']);
    for (const flag of allFlags.filter((f) => !own.has(f))) {
      const r = await runInProcess([name, flag]);
      const m = /Did you mean ([^?]+)\?/.exec(r.stderr);
      if (!m) continue;
      for (const s of m[1]!.split(' or ')) expect({ flag, suggested: s, own: own.has(s) }).toEqual({ flag, suggested: s, own: true });
    }
  });
});
