/**
 * Selections exactly as written (issue #14, item 5), on real servers (PostgreSQL 14 and 18) and
 * through the built binary:
 *
 * - an empty value for any filter (`--app "$APP"` with APP unset) is a usage error, before any
 *   connection, and nothing is terminated; before, `--app ""` selected every session without an
 *   application name;
 * - a --client range is read as PostgreSQL's `cidr` type reads it: bits set past the prefix are
 *   refused; an IPv4-mapped prefix shorter than /96 (`::ffff:10.1.2.0/24`, which matched every
 *   IPv4 client) is refused with the IPv4 range to write instead; an IPv4 range and its mapped twin
 *   (`::ffff:a.b.c.d/(96+n)`) select the same clients. Clients from several loopback addresses
 *   come through small forwarders that bind their outgoing side to 127.1.2.x / 127.1.3.x;
 * - `terminate --blockers` re-checks, in the statement that signals, that the root still blocks
 *   someone: a root whose waiter went away between the plan and the signal is not touched. The
 *   server is changed between the plan and the act at the confirmation prompt (in-process, with
 *   the test's prompter, and in a real pseudo-terminal), never by a sleep.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { runTerminate, type TerminateOptions } from '../../src/commands/terminate.js';
import { emptyFilters, type TerminateFilters, type TerminateReport } from '../../src/core/terminate.js';
import { resolveConnectionTarget } from '../../src/db/target.js';
import type { Prompter } from '../../src/ui/prompts.js';
import { type CliResult, parseJson, runCli } from '../support/cli.js';
import { alive, dbdoctorSessionsLeft, idleInTransaction, type Incident, lockChain, sorted, waitFor } from '../support/incidents.js';
import { KEY, runInPty } from '../support/pty.js';
import { expectNoStack, stderrLines } from '../support/reliability.js';
import { ROLE_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-selections-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
let runs = 0;
const stateHome = () => join(dir, `state-${++runs}`);

/** A usage error: exit 64, one `dbdoctor:` line and a hint, nothing else (with --json: the error document). */
function expectUsage(r: CliResult, message: RegExp | string, hint?: RegExp | string): void {
  expectNoStack(r);
  const lines = stderrLines(r);
  expect({ exitCode: r.exitCode, lines }).toMatchObject({ exitCode: 64 });
  expect(lines).toHaveLength(2);
  if (typeof message === 'string') expect(lines[0]).toBe(`dbdoctor: ${message}`);
  else expect(lines[0]).toMatch(message);
  expect(lines[1]).toMatch(/^hint: /);
  if (hint !== undefined) {
    if (typeof hint === 'string') expect(lines[1]).toBe(`hint: ${hint}`);
    else expect(lines[1]).toMatch(hint);
  }
}

/**
 * A TCP forwarder to the server whose outgoing side binds `localAddress`: the server sees its
 * clients come from that address (Linux routes all of 127.0.0.0/8 to the loopback interface).
 */
async function forwarder(s: TestServer, localAddress: string): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((down) => {
    const up = connect({ host: '127.0.0.1', port: s.port, localAddress });
    for (const x of [down, up]) {
      sockets.add(x);
      x.on('error', () => undefined);
      x.on('close', () => {
        sockets.delete(x);
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const x of sockets) x.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An idle-in-transaction session of app_user, connected to host:port. */
async function sessionVia(host: string, port: number, app: string): Promise<{ client: pg.Client; pid: number }> {
  const client = new pg.Client({ host, port, user: 'app_user', password: ROLE_PASSWORD, database: 'postgres', application_name: app });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('BEGIN');
  await client.query('SELECT 1');
  return { client, pid: (client as unknown as { processID: number }).processID };
}

/** Retries a first connection until the server's reloaded pg_hba.conf lets it in (bounded). */
async function firstSession(host: string, port: number, app: string): Promise<{ client: pg.Client; pid: number }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await sessionVia(host, port, app);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

interface ListedSession {
  pid: number;
  client_addr: string | null;
  application_name: string;
}

const pidsIn = (rows: Array<{ pid: number }>, among: number[]) => sorted(rows.map((r) => r.pid).filter((p) => among.includes(p)));

/** The lock chains are the superuser's (its table): --include-superusers. */
function terminateOptions(s: TestServer, f: Partial<TerminateFilters>): TerminateOptions {
  const home = stateHome();
  return {
    target: resolveConnectionTarget({ dbname: s.url() }, {}),
    session: {},
    filters: { ...emptyFilters(), ...f },
    allDatabases: false,
    includeSuperusers: true,
    dryRun: false,
    yes: false,
    max: 10,
    cancelFirst: false,
    graceMs: 0,
    lockFile: join(home, 'terminate.lock'),
    auditLog: join(home, 'audit.jsonl'),
  };
}

/** The operator's answers; `meanwhile` runs while the plan is on the screen, before the checkbox is answered. */
function prompter(meanwhile: () => Promise<void>): Prompter {
  return {
    async checkbox<V>(_message: string, choices: Array<{ value: V; checked?: boolean }>) {
      await meanwhile();
      return choices.filter((c) => c.checked).map((c) => c.value);
    },
    async confirm() {
      return true;
    },
  };
}

/** Cancels the waiter's statement and waits (bounded) until it waits on no lock any more. */
async function cancelWaiter(s: TestServer, pid: number): Promise<void> {
  await s.sql('SELECT pg_cancel_backend($1::int)', [pid]);
  await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int AND wait_event_type = 'Lock'`, [pid], (rows) => rows[0]?.n === 0);
}

function auditLines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe.each([14, 18])('PostgreSQL %i', (major) => {
  let s: TestServer;
  beforeAll(async () => {
    // ::1 too, for an IPv6 client
    s = await startTestServer({ major, settings: { listen_addresses: '127.0.0.1,::1' } });
    expect(s.major).toBe(major);
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  }, 60_000);

  describe('an empty value for any filter is a usage error, and nothing is selected', () => {
    let unnamed: Incident;
    let named: Incident;
    beforeAll(async () => {
      // node-postgres sends no application_name unless told: the sessions `--app ""` selected
      unnamed = await idleInTransaction(s, 2, { app: '', user: 'app_user' });
      named = await idleInTransaction(s, 1, { app: 'sel-named', user: 'app_user' });
      const apps = await s.sql<{ application_name: string }>('SELECT application_name FROM pg_stat_activity WHERE pid = ANY($1::int[])', [unnamed.pids]);
      expect(apps.map((r) => r.application_name)).toEqual(['', '']);
    });
    afterAll(async () => {
      await Promise.all([unnamed?.release(), named?.release()]);
    });

    test('terminate --app "$APP" with APP unset: exit 64 before connecting, the sessions without an application name survive', async () => {
      const r = await runCli(['terminate', '-d', s.url(), '--app', '', '--state', 'idle in transaction', '--yes', '--json'], { env: { XDG_STATE_HOME: stateHome() } });
      expectNoStack(r);
      expect(r.exitCode).toBe(64);
      expect(parseJson<{ schema: string; report: { status: string; message: string; hint: string } }>(r)).toMatchObject({
        schema: 'dbdoctor.error',
        report: { status: 'usage', message: '--app has an empty value', hint: expect.stringContaining('--pid') },
      });
      expect(await alive(s, [...unnamed.pids, ...named.pids])).toEqual(sorted([...unnamed.pids, ...named.pids]));
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    });

    test('every terminate filter, and every empty item of a comma list, on a real server: exit 64, nothing terminated', async () => {
      const [pid] = unnamed.pids;
      const cases: Array<[string[], string]> = [
        [['--app', ''], '--app has an empty value'],
        [['--app', ' '], '--app has an empty value'],
        [['--app', 'sel-named', '--app', ''], '--app has an empty value'],
        [['--user', ''], '--user has an empty value'],
        [['--user', 'app_user,'], '--user has an empty value'],
        [['--user', ',app_user'], '--user has an empty value'],
        [['--db', ''], '--db has an empty value'],
        [['--db', 'postgres,,postgres'], '--db has an empty value'],
        [['--client', ''], '--client has an empty value'],
        [['--client', 'local,'], '--client has an empty value'],
        [['--state', 'idle in transaction,'], '--state has an empty value'],
        [['--pid', ''], '--pid has an empty value'],
        [['--pid', `${pid},`], '--pid has an empty value'],
        [['--pid', `${pid},,${pid}`], '--pid has an empty value'],
        [['--query', ''], '--query needs a pattern'],
        [['--older-than', ''], 'invalid --older-than ""'],
        [['--lock-file', ''], '--lock-file has an empty value'],
        [['--audit-log', ''], '--audit-log has an empty value'],
      ];
      const results = await Promise.all(
        cases.map(([args]) => runCli(['terminate', '-d', s.url(), '--state', 'idle in transaction', ...args, '--yes'], { env: { XDG_STATE_HOME: stateHome() } })),
      );
      for (const [i, r] of results.entries()) expectUsage(r, cases[i]![1]);
      expect(await alive(s, [...unnamed.pids, ...named.pids])).toEqual(sorted([...unnamed.pids, ...named.pids]));
    });

    test('connections and queries refuse an empty filter too; the same filters with values work', async () => {
      const cases: Array<[string, string[], string]> = [];
      for (const command of ['connections', 'queries']) {
        for (const flag of ['--app', '--user', '--db', '--state', '--client']) cases.push([command, [flag, ''], `${flag} has an empty value`]);
        cases.push([command, ['--app', 'sel-named', '--app', ''], '--app has an empty value']);
      }
      cases.push(['connections', ['--by', 'app,'], '--by has an empty value']);
      cases.push(['diagnose', ['--environment', ''], '--environment has an empty value']);
      cases.push(['diagnose', ['--config', ''], '--config has an empty value']);
      const results = await Promise.all(cases.map(([command, args]) => runCli([command, '-d', s.url(), ...args])));
      for (const [i, r] of results.entries()) expectUsage(r, cases[i]![2]);
      // control: the server answers, and the filters select as written
      const ok = await runCli(['connections', '-d', s.url(), '--list', '--json', '--app', 'sel-named', '--user', 'app_user', '--db', 'postgres', '--state', 'idle in transaction', '--client', '127.0.0.1']);
      expect(ok.exitCode).toBe(0);
      expect(parseJson<{ report: { sessions: ListedSession[] } }>(ok).report.sessions.map((x) => x.pid)).toEqual(named.pids);
    });

    test('the sessions without an application name can still be selected, by pid (as the hint says)', async () => {
      const r = await runCli(['terminate', '-d', s.url(), '--pid', unnamed.pids.join(','), '--dry-run', '--json'], { env: { XDG_STATE_HOME: stateHome() } });
      expect(r.exitCode).toBe(0);
      expect(sorted(parseJson<{ report: TerminateReport }>(r).report.planned.map((p) => p.pid))).toEqual(sorted(unnamed.pids));
    });
  });

  describe('--client ranges are read as the cidr type reads them', () => {
    const forwarders: Array<{ close(): Promise<void> }> = [];
    const clients: pg.Client[] = [];
    const at: Record<'a' | 'b' | 'c' | 'v6', number> = { a: 0, b: 0, c: 0, v6: 0 };
    let ours: number[];
    beforeAll(async () => {
      // the default pg_hba.conf admits 127.0.0.1/32 and ::1/128 only
      appendFileSync(join(s.embedded!.dir, 'data', 'pg_hba.conf'), '\nhost all all 127.0.0.0/8 scram-sha-256\n');
      await s.sql('SELECT pg_reload_conf()');
      const from = async (key: keyof typeof at, local: string) => {
        const f = await forwarder(s, local);
        forwarders.push(f);
        const c = await firstSession('127.0.0.1', f.port, `sel-cidr-${key}`);
        clients.push(c.client);
        at[key] = c.pid;
      };
      await from('a', '127.1.2.3');
      await from('b', '127.1.2.200');
      await from('c', '127.1.3.5');
      const v6 = await sessionVia('::1', s.port, 'sel-cidr-v6');
      clients.push(v6.client);
      at.v6 = v6.pid;
      ours = Object.values(at);
      const shown = await s.sql<{ pid: number; client_addr: string }>('SELECT pid, host(client_addr) AS client_addr FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY pid', [ours]);
      expect(Object.fromEntries(shown.map((r) => [r.pid, r.client_addr]))).toEqual({ [at.a]: '127.1.2.3', [at.b]: '127.1.2.200', [at.c]: '127.1.3.5', [at.v6]: '::1' });
    }, 60_000);
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await Promise.all(forwarders.map((f) => f.close()));
    });

    test('a range selects exactly its clients; an IPv4 range and its IPv4-mapped twin select the same ones', async () => {
      const expected: Array<[string, number[]]> = [
        ['127.1.2.0/24', [at.a, at.b]],
        ['::ffff:127.1.2.0/120', [at.a, at.b]],
        ['127.1.2.3', [at.a]],
        ['::ffff:127.1.2.3', [at.a]],
        ['::ffff:7f01:203/128', [at.a]],
        ['127.1.0.0/16', [at.a, at.b, at.c]],
        ['::ffff:127.1.0.0/112', [at.a, at.b, at.c]],
        ['127.1.3.0/24', [at.c]],
        ['::1', [at.v6]],
        ['fd00::/8', []],
        ['10.0.0.0/8', []],
      ];
      const results = await Promise.all(expected.map(([range]) => runCli(['connections', '-d', s.url(), '--list', '--json', '--client', range])));
      const got = results.map((r, i) => {
        expect({ range: expected[i]![0], exitCode: r.exitCode, stderr: r.stderr }).toMatchObject({ exitCode: 0 });
        return [expected[i]![0], pidsIn(parseJson<{ report: { sessions: ListedSession[] } }>(r).report.sessions, ours)];
      });
      expect(got).toEqual(expected.map(([range, pids]) => [range, sorted(pids)]));
    });

    test('::ffff:127.1.2.0/24 (every IPv4 client, before) is refused with the IPv4 range to write, by every command; terminate signals nobody', async () => {
      const hint = 'write the IPv4 range instead (127.1.2.0/24): an IPv4 range matches clients shown as a.b.c.d and as ::ffff:a.b.c.d alike';
      const message = 'invalid --client "::ffff:127.1.2.0/24": an IPv4-mapped prefix shorter than /96 reaches past IPv4 into IPv6 space';
      const results = await Promise.all([
        runCli(['connections', '-d', s.url(), '--client', '::ffff:127.1.2.0/24']),
        runCli(['queries', '-d', s.url(), '--client', '::ffff:127.1.2.0/24']),
        runCli(['terminate', '-d', s.url(), '--client', '::ffff:127.1.2.0/24', '--state', 'idle in transaction', '--yes'], { env: { XDG_STATE_HOME: stateHome() } }),
      ]);
      for (const r of results) expectUsage(r, message, hint);
      expect(await alive(s, ours)).toEqual(sorted(ours));
    });

    test('a range with bits set past its prefix is refused, naming the network that was meant', async () => {
      const cases: Array<[string, string, string]> = [
        ['127.1.2.3/24', 'invalid --client "127.1.2.3/24": bits are set past the /24 prefix', 'write the network 127.1.2.0/24, or the single address 127.1.2.3'],
        ['127.1.2.3/16', 'invalid --client "127.1.2.3/16": bits are set past the /16 prefix', 'write the network 127.1.0.0/16, or the single address 127.1.2.3'],
        ['::ffff:127.1.2.3/120', 'invalid --client "::ffff:127.1.2.3/120": bits are set past the /120 prefix', 'write the network ::ffff:127.1.2.0/120, or the single address ::ffff:127.1.2.3'],
        ['::1/64', 'invalid --client "::1/64": bits are set past the /64 prefix', 'write the network ::/64, or the single address ::1'],
      ];
      const results = await Promise.all(
        cases.map(([range]) => runCli(['terminate', '-d', s.url(), '--client', range, '--state', 'idle in transaction', '--yes'], { env: { XDG_STATE_HOME: stateHome() } })),
      );
      for (const [i, r] of results.entries()) expectUsage(r, cases[i]![1], cases[i]![2]);
      // PostgreSQL's own cidr type refuses the same values
      for (const [range] of cases) await expect(s.sql('SELECT $1::cidr', [range])).rejects.toThrow(/invalid cidr value/);
      expect(await alive(s, ours)).toEqual(sorted(ours));
    });

    test('zone ids are refused: PostgreSQL never shows one in client_addr (its inet type has none)', async () => {
      expectUsage(await runCli(['connections', '-d', s.url(), '--client', 'fe80::1%lo']), 'invalid --client "fe80::1%lo": PostgreSQL shows client addresses without a zone id', 'write it without the zone: fe80::1');
      await expect(s.sql(`SELECT 'fe80::1%lo'::inet`)).rejects.toThrow(/invalid input syntax for type inet/);
    });

    test('terminate --client 127.1.2.0/24 terminates exactly those two; the others are untouched', async () => {
      const r = await runCli(['terminate', '-d', s.url(), '--client', '127.1.2.0/24', '--state', 'idle in transaction', '--yes', '--json'], { env: { XDG_STATE_HOME: stateHome() } });
      expect({ exitCode: r.exitCode, stderr: r.stderr }).toMatchObject({ exitCode: 0 });
      const report = parseJson<{ report: TerminateReport }>(r).report;
      expect(sorted(report.planned.map((p) => p.pid))).toEqual(sorted([at.a, at.b]));
      expect(report.results.map((x) => x.outcome)).toEqual(['terminated', 'terminated']);
      expect(await alive(s, ours)).toEqual(sorted([at.c, at.v6]));
    });
  });

  describe('--blockers re-checks, in the statement that signals, that the root still blocks someone', () => {
    test('a root whose waiter went away between the plan and the signal is not touched (changed)', async () => {
      const chain = await lockChain(s, { app: 'sel-blk-gone' }, 1);
      try {
        const o = terminateOptions(s, { blockers: true, apps: ['sel-blk-gone'] });
        let plannedPids: number[] = [];
        const report = await runTerminate(o, {
          prompter: prompter(async () => {
            // the plan is made: the root blocked one waiter; now that waiter gives up
            await cancelWaiter(s, chain.direct[0]!);
          }),
          showPlan: (plan) => {
            plannedPids = plan.planned.map((p) => p.pid);
          },
          version: 'test',
        });
        expect(plannedPids).toEqual([chain.blocker]);
        expect(report.results).toEqual([expect.objectContaining({ pid: chain.blocker, outcome: 'changed', detail: 'the session no longer blocks anyone; not touched' })]);
        expect(report).toMatchObject({ status: 'not_done', exit_code: 2 });
        // alive, with its transaction (and its row lock) intact
        expect(await alive(s, [chain.blocker])).toEqual([chain.blocker]);
        expect((await chain.clients[0]!.query(`SELECT v FROM ${chain.table} WHERE id = 1`)).rows).toEqual([{ v: 1 }]);
        const lines = auditLines(o.auditLog);
        expect(lines.map((l) => [l.event, l.pid, l.outcome ?? null])).toEqual([
          ['intent', chain.blocker, null],
          ['outcome', chain.blocker, 'changed'],
        ]);
        expect(await dbdoctorSessionsLeft(s)).toBe(0);
      } finally {
        await chain.release();
      }
    });

    test('a root that started waiting for a lock since the plan, its statement unchanged, is not touched (changed)', async () => {
      const gate = `gate_${Math.random().toString(36).slice(2, 8)}`;
      await s.sql(`CREATE TABLE ${gate} (open boolean NOT NULL); INSERT INTO ${gate} VALUES (false)`);
      const [k1, k2] = [7101, 7102];
      const [h, r, w] = await Promise.all(['sel-blk-waits-h', 'sel-blk-waits', 'sel-blk-waits-w'].map((app) => s.client({ application_name: app })));
      const pid = async (c: pg.Client) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const [rPid, wPid] = [await pid(r!), await pid(w!)];
      const pending: Array<Promise<unknown>> = [];
      try {
        await h!.query('SELECT pg_advisory_lock($1::bigint)', [k2]);
        // One statement: take k1, sleep (no lock wait) until the gate opens, then ask for k2, which h holds.
        pending.push(
          r!.query(`DO $$ BEGIN PERFORM pg_advisory_xact_lock(${k1}); WHILE NOT (SELECT open FROM ${gate}) LOOP PERFORM pg_sleep(0.02); END LOOP; PERFORM pg_advisory_xact_lock(${k2}); END $$`).catch(() => undefined),
        );
        await waitFor(s, `SELECT count(*)::int AS n FROM pg_locks WHERE pid = $1::int AND locktype = 'advisory' AND granted`, [rPid], (rows) => rows[0]?.n === 1);
        pending.push(w!.query('SELECT pg_advisory_xact_lock($1::bigint)', [k1]).catch(() => undefined));
        await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int AND wait_event_type = 'Lock'`, [wPid], (rows) => rows[0]?.n === 1);
        const o = terminateOptions(s, { blockers: true, apps: ['sel-blk-waits'] });
        let plannedPids: number[] = [];
        const report = await runTerminate(o, {
          prompter: prompter(async () => {
            // the plan is made with r a root (w waits for it); now r, in the same statement, waits for h
            await s.sql(`UPDATE ${gate} SET open = true`);
            await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int AND wait_event_type = 'Lock'`, [rPid], (rows) => rows[0]?.n === 1);
          }),
          showPlan: (plan) => {
            plannedPids = plan.planned.map((p) => p.pid);
          },
          version: 'test',
        });
        expect(plannedPids).toEqual([rPid]);
        expect(report.results).toEqual([expect.objectContaining({ pid: rPid, outcome: 'changed', detail: 'the session now waits for a lock itself (no longer a root blocker); not touched' })]);
        expect(await alive(s, [rPid, wPid])).toEqual(sorted([rPid, wPid]));
        expect(await dbdoctorSessionsLeft(s)).toBe(0);
      } finally {
        await h!.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
        await Promise.race([Promise.all(pending), new Promise((done) => setTimeout(done, 3000).unref())]);
        await Promise.all([h, r, w].map((c) => c!.end().catch(() => undefined)));
        await s.sql(`DROP TABLE IF EXISTS ${gate}`).catch(() => undefined);
      }
    });

    test('a root whose planned waiter gave up while another session queued behind it is terminated (every waiter is asked then)', async () => {
      const chain = await lockChain(s, { app: 'sel-blk-new' }, 1);
      const late = await s.client({ application_name: 'sel-blk-new-late' });
      const latePid = (await late.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      let pending: Promise<unknown> = Promise.resolve();
      try {
        const o = terminateOptions(s, { blockers: true, apps: ['sel-blk-new'] });
        let planned: Array<{ pid: number; waiters: number[] }> = [];
        const report = await runTerminate(o, {
          prompter: prompter(async () => {
            // the plan is made: the root blocks its one waiter; another queues behind it, then the planned one gives up
            pending = late.query(`UPDATE ${chain.table} SET v = v + 1 WHERE id = 1`).catch(() => undefined);
            await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int AND wait_event_type = 'Lock'`, [latePid], (rows) => rows[0]?.n === 1);
            await cancelWaiter(s, chain.direct[0]!);
            // the late one now waits for the root's transaction itself
            await waitFor(s, 'SELECT count(*)::int AS n FROM pg_blocking_pids($1::int) AS b WHERE $2::int = ANY (b)', [latePid, chain.blocker], (rows) => rows[0]?.n === 1);
          }),
          showPlan: (plan) => {
            planned = plan.planned.map((p) => ({ pid: p.pid, waiters: p.waiters }));
          },
          version: 'test',
        });
        expect(planned).toEqual([{ pid: chain.blocker, waiters: [chain.direct[0]] }]);
        expect(report.results).toEqual([expect.objectContaining({ pid: chain.blocker, outcome: 'terminated' })]);
        expect(await alive(s, [chain.blocker])).toEqual([]);
        // the late one got the row
        await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int AND wait_event_type = 'Lock'`, [latePid], (rows) => rows[0]?.n === 0);
      } finally {
        await chain.release();
        await Promise.race([pending, new Promise((done) => setTimeout(done, 3000).unref())]);
        await late.end().catch(() => undefined);
      }
    });

    test('control: a root that still blocks its waiter when signalled is terminated, and the waiter goes on', async () => {
      const chain = await lockChain(s, { app: 'sel-blk-still' }, 1);
      try {
        const o = terminateOptions(s, { blockers: true, apps: ['sel-blk-still'] });
        const report = await runTerminate(o, { prompter: prompter(async () => undefined), version: 'test' });
        expect(report.results).toEqual([expect.objectContaining({ pid: chain.blocker, outcome: 'terminated' })]);
        expect(await alive(s, [chain.blocker])).toEqual([]);
        await waitFor(s, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int AND wait_event_type = 'Lock'`, [chain.direct[0]], (rows) => rows[0]?.n === 0);
      } finally {
        await chain.release();
      }
    });

    test('through the built binary on a terminal: the waiter is cancelled while the plan is shown; the root survives', async () => {
      const chain = await lockChain(s, { app: 'sel-blk-pty' }, 1);
      const home = stateHome();
      const pty = runInPty(['terminate', '-d', s.url(), '--blockers', '--app', 'sel-blk-pty', '--include-superusers'], { env: { XDG_STATE_HOME: home } });
      try {
        const plan = await pty.waitFor(/Plan: terminate 1 session[\s\S]*Sessions to terminate/);
        expect(plan).toContain(String(chain.blocker));
        await cancelWaiter(s, chain.direct[0]!);
        await pty.type(KEY.enter);
        await pty.waitFor(/Terminate 1 session on [^?]+\? \(y\/N\)/);
        await pty.type(`y${KEY.enter}`);
        expect(await pty.exit).toBe(2);
        // the table may wrap the detail: read it with the borders and line breaks taken out
        expect(pty.text().replace(/[\s│]+/g, ' ')).toContain('changed, kept the session no longer blocks anyone; not touched');
        expect(await alive(s, [chain.blocker])).toEqual([chain.blocker]);
        const lines = auditLines(join(home, 'dbdoctor', 'audit.jsonl'));
        expect(lines.find((l) => l.event === 'outcome')).toMatchObject({ pid: chain.blocker, outcome: 'changed', detail: 'the session no longer blocks anyone; not touched' });
      } finally {
        pty.kill();
        await chain.release();
      }
    });
  });
});
