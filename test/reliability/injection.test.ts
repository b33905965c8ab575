/**
 * The reproductions of the trust-boundary issue (#14), through the built binary, on PostgreSQL 14
 * and 18: names that other clients control (role names, database names, prepared-transaction gids)
 * crafted to turn what dbdoctor prints into something else when pasted.
 *
 * - A gid ending in an escape character before a quote made `locks` and `diagnose` print a ROLLBACK
 *   PREPARED that, pasted into psql as a superuser, created a superuser.
 * - Role names did the same through the ALTER ROLE ... SET advice.
 * - Database names made the printed `terminate --db` command select another database than its argv.
 *
 * Every printed statement is run here, as printed, as a superuser: it must act on exactly its object.
 * Every printed command is read back by a real `sh`: it must give exactly its JSON argv, and run as
 * printed it must end exactly the sessions it names.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import type { DiagnoseReport } from '../../src/core/diagnose.js';
import type { LocksReport } from '../../src/core/locks.js';
import type { NextStep } from '../../src/core/printed.js';
import { showable } from '../../src/core/text.js';
import { parseJson, runCli } from '../support/cli.js';
import { alive, idleInTransaction, type Incident, waitForState } from '../support/incidents.js';
import { shellWords } from '../support/output.js';
import { expectInert } from '../support/reliability.js';
import { ROLE_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

const GID = "gid\u001b'; CREATE ROLE pwned_gid SUPERUSER; --";
/** A role name that cannot be shown (an escape character), and one a shell and SQL must quote but a terminal shows. */
const ROLE_HIDDEN = 'r\u001b"; ALTER ROLE app_user SUPERUSER; --';
const ROLE_SHOWN = `o'brien "x" $HOME \`id\``;
const DB_HIDDEN = "d\u001b'; --\u202e";
const DB_SHOWN = `db "x"  $(id) it's`;

type Envelope<T> = { report: T };

/** Runs what dbdoctor printed, as printed: one statement (extended protocol), or the \gexec query and what it wrote. */
async function runPrinted(c: pg.Client, sql: string): Promise<void> {
  const one = async (text: string) => (await c.query({ text, queryMode: 'extended' } as pg.QueryConfig)).rows;
  if (!sql.endsWith(' \\gexec')) {
    await one(sql);
    return;
  }
  const rows = await one(sql.slice(0, -' \\gexec'.length));
  const written = rows.flatMap((r) => Object.values(r as Record<string, string>));
  expect(written).toHaveLength(1);
  for (const w of written) await one(w);
}

function expectCommandExact(step: NextStep): void {
  expect(shellWords(step.command!)).toEqual(['dbdoctor', ...step.argv!]);
  expect(step.argv!.every(showable)).toBe(true);
}

/** The dbdoctor commands a text view printed (rejoined where broken with " \"), after their label. */
function printedCommands(text: string): string[] {
  const joined = text.replace(/ \\\n +/g, ' ');
  return [...joined.matchAll(/^ {2}(?:next {6}| {10})(dbdoctor .*)$/gm)].map((m) => m[1]!);
}

describe.each([14, 18])('PostgreSQL %i', (major) => {
  let s: TestServer;
  let su: pg.Client;
  let owner: pg.Client;
  let waiter: pg.Client;
  let waiting: Promise<unknown>;
  const incidents: Incident[] = [];
  let hidden: Incident;
  let shown: Incident;

  beforeAll(async () => {
    s = await startTestServer({ major, settings: { max_prepared_transactions: 5, max_connections: 40 } });
    su = await s.client();
    for (const r of [ROLE_HIDDEN, ROLE_SHOWN]) await su.query(`CREATE ROLE ${su.escapeIdentifier(r)} LOGIN PASSWORD ${su.escapeLiteral(ROLE_PASSWORD)}`);
    for (const d of [DB_HIDDEN, DB_SHOWN]) await su.query(`CREATE DATABASE ${su.escapeIdentifier(d)}`);
    hidden = await idleInTransaction(s, 2, { app: 'inj-hidden', user: ROLE_HIDDEN, dbname: DB_HIDDEN });
    shown = await idleInTransaction(s, 2, { app: 'inj-shown', user: ROLE_SHOWN, dbname: DB_SHOWN });
    incidents.push(hidden, shown);
    // A prepared transaction holding a row lock, and a session waiting for it: root pid 0.
    await su.query('CREATE TABLE inj_t (id int PRIMARY KEY, v int); INSERT INTO inj_t VALUES (1, 0)');
    owner = await s.client({ application_name: 'inj-owner' });
    await owner.query('BEGIN');
    await owner.query('UPDATE inj_t SET v = 1 WHERE id = 1');
    await owner.query(`PREPARE TRANSACTION ${owner.escapeLiteral(GID)}`);
    waiter = await s.client({ application_name: 'inj-waiter' });
    waiting = waiter.query('UPDATE inj_t SET v = 2 WHERE id = 1').catch(() => undefined);
    await waitForState(s, [(waiter as unknown as { processID: number }).processID], 'active', 'Lock');
    await new Promise((r) => setTimeout(r, 1100)); // past the 1s thresholds below
  }, 90_000);

  afterAll(async () => {
    await su?.query(`ROLLBACK PREPARED ${su.escapeLiteral(GID)}`).catch(() => undefined);
    await waiting;
    for (const i of incidents) await i.release();
    await Promise.all([owner, waiter, su].map((c) => c?.end().catch(() => undefined)));
    await s?.stop();
    rmSync(state, { recursive: true, force: true });
  }, 60_000);

  const LOW = ['--idle-in-transaction', '1s', '--lock-wait', '1s'];
  const state = mkdtempSync(join(tmpdir(), 'dbdoctor-inj-'));

  test('diagnose: every printed statement acts on exactly its object; every command reads back as its argv', async () => {
    const json = await runCli(['diagnose', '-d', s.url(), '--json', ...LOW]);
    const text = await runCli(['diagnose', '--verbose', '-d', s.url(), ...LOW], { env: { COLUMNS: '80' } });
    expectInert(text.stdout, 'diagnose text');
    // The default (short) text: inert too, and each command it prints is one the JSON has.
    const short = await runCli(['diagnose', '-d', s.url(), ...LOW], { env: { COLUMNS: '80' } });
    expectInert(short.stdout, 'diagnose short text');
    const r = parseJson<Envelope<DiagnoseReport>>(json).report;
    const steps = r.findings.flatMap((f) => f.next);
    const sqls = steps.map((n) => n.sql).filter((x): x is string => x !== null);
    const commands = steps.filter((n) => n.command !== null);
    expect(commands.length).toBeGreaterThan(3);
    for (const n of commands) expectCommandExact(n);
    // What the text view prints is exactly what the JSON says.
    const printed = printedCommands(text.stdout);
    expect(printed.length).toBeGreaterThan(3);
    for (const c of printed) expect(commands.map((n) => n.command)).toContain(c);
    for (const c of printedCommands(short.stdout)) expect(commands.map((n) => n.command)).toContain(c);
    // Names that cannot be shown are never inlined: the statement selects them from the catalog.
    for (const sql of sqls) for (const bad of [ROLE_HIDDEN, DB_HIDDEN, GID]) expect(sql.includes(bad)).toBe(false);

    const oids = Object.fromEntries(
      ((await su.query('SELECT rolname::text AS n, oid::int8::text AS oid FROM pg_roles')).rows as Array<{ n: string; oid: string }>).map((x) => [x.n, Number(x.oid)]),
    );
    // The idle-in-transaction guard, for the roles of the two leaks (lock_timeout advice names the waiter's role too).
    const alters = sqls.filter((x) => /^(ALTER ROLE|SELECT format\('ALTER ROLE)/.test(x) && x.includes('idle_in_transaction_session_timeout'));
    expect(alters.some((x) => x.endsWith('\\gexec'))).toBe(true);
    // The text view prints them as they are in the JSON, whole.
    for (const sql of alters) expect(text.stdout).toContain(sql);
    expect(alters.some((x) => x.includes(`"${ROLE_SHOWN.replace(/"/g, '""')}"`))).toBe(true);
    try {
      for (const sql of alters) await runPrinted(su, sql);
      const settings = (await su.query('SELECT setrole::int8::text AS r FROM pg_db_role_setting WHERE setrole <> 0')).rows.map((x) => Number(x.r));
      // Only the roles of the incident got a setting; nothing else changed.
      expect(new Set(settings)).toEqual(new Set([oids[ROLE_HIDDEN], oids[ROLE_SHOWN]]));
      expect((await su.query("SELECT rolsuper FROM pg_roles WHERE rolname = 'app_user'")).rows[0].rolsuper).toBe(false);
    } finally {
      await su.query(`ALTER ROLE ${su.escapeIdentifier(ROLE_HIDDEN)} RESET ALL; ALTER ROLE ${su.escapeIdentifier(ROLE_SHOWN)} RESET ALL`);
      await su.query(`ALTER DATABASE ${su.escapeIdentifier(DB_HIDDEN)} RESET ALL; ALTER DATABASE ${su.escapeIdentifier(DB_SHOWN)} RESET ALL`);
    }
  });

  test('terminate --db: the printed command selects the database its argv names, and run as printed ends exactly those sessions', async () => {
    const r = parseJson<Envelope<DiagnoseReport>>(await runCli(['diagnose', '-d', s.url(), '--json', ...LOW])).report;
    const iit = r.findings.find((f) => f.id === 'idle-in-transaction')!;
    const terminates = iit.next.filter((n) => n.argv?.[0] === 'terminate');
    const forShown = terminates.find((n) => n.argv!.includes(DB_SHOWN))!;
    expect(forShown.argv).toEqual(expect.arrayContaining(['--all-databases', '--db', DB_SHOWN]));
    expect(shellWords(forShown.command!)).toEqual(['dbdoctor', ...forShown.argv!]);
    // The database that cannot be shown is never named: its sessions are selected by pid.
    const forHidden = terminates.find((n) => hidden.pids.every((p) => n.command!.includes(String(p))))!;
    expect(forHidden.argv).toContain('--pid');
    expect(forHidden.command!.includes(DB_HIDDEN)).toBe(false);

    // Run both exactly as printed (the argv a shell reads from the command), non-interactively.
    for (const step of [forShown, forHidden]) {
      const argv = shellWords(step.command!).slice(1);
      const res = await runCli([...argv, '-d', s.url(), '--yes', '--json'], { env: { XDG_STATE_HOME: state } });
      expect(res.exitCode).toBe(0);
    }
    expect(await alive(s, [...shown.pids, ...hidden.pids])).toEqual([]);
  });

  test('locks: the prepared transaction root prints its COMMIT/ROLLBACK PREPARED by xid; run as printed it ends only that transaction', async () => {
    const json = parseJson<Envelope<LocksReport>>(await runCli(['locks', '-d', s.url(), '--json'])).report;
    const text = await runCli(['locks', '-d', s.url()], { env: { COLUMNS: '80' } });
    expectInert(text.stdout, 'locks text');
    const root = json.roots.find((x) => x.pid === 0)!;
    const [commit, rollback] = root.next;
    const [p] = (await su.query('SELECT transaction::text AS xid FROM pg_prepared_xacts')).rows as Array<{ xid: string }>;
    expect(rollback!.sql).toBe(`SELECT format('ROLLBACK PREPARED %L', (SELECT gid FROM pg_prepared_xacts WHERE transaction = '${p!.xid}'::xid)) \\gexec`);
    expect(commit!.sql).toContain('COMMIT PREPARED %L');
    for (const n of root.next) expect(text.stdout).toContain(n.sql!);
    await runPrinted(su, rollback!.sql!);
    expect((await su.query('SELECT count(*)::int AS n FROM pg_prepared_xacts')).rows[0].n).toBe(0);
    expect((await su.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'pwned_gid'")).rows[0].n).toBe(0);
  });
});
