/**
 * Attacker-controlled text is data: a role name, a database name and query text holding ANSI
 * (CSI) and OSC escape sequences, a BEL and a newline print inert in every table of connections,
 * locks and queries, and survive intact in their JSON. (PostgreSQL itself replaces such characters
 * in application_name with '?', so the attack rides in names created as quoted identifiers and in
 * query text.)
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { type CliResult, expectNoStackTrace, parseJson, runCli } from '../support/cli.js';
import { dbdoctorSessionsLeft, waitForState } from '../support/incidents.js';
import { expectValidLocksDoc } from '../support/schemas.js';
import { ROLE_PASSWORD, useServer } from '../support/server.js';

const server = useServer();

const EVIL_ROLE = 'evil\u001b[31m\u001b]0;pwned\u0007\nrole';
const EVIL_DB = 'evil\u001b]8;;http://x.invalid\u001b\\db\u001b]8;;\u001b\\';
const EVIL_COMMENT = '/* \u001b[2J\u001b[H\u001b]0;owned\u0007\nDROP TABLE everything; \u009b31m */';
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

interface Session {
  pid: number;
  usename: string | null;
  datname: string | null;
  query: string | null;
}

/** No escape sequence or control character except newlines (and, with colour, our own SGR codes). */
function expectInert(text: string, colour = false): void {
  const stripped = colour ? text.replace(/\u001b\[[0-9;]*m/g, '') : text;
  expect(stripped).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  expect(stripped).not.toContain('pwned\u0007');
}

describe('hostile names and query text', () => {
  const clients: pg.Client[] = [];
  let blocker = 0;
  let waiter = 0;
  let sleeper = 0;
  let table = '';
  const sleepSql = `SELECT pg_sleep(3600) ${EVIL_COMMENT}`;
  const updateSql = (t: string) => `UPDATE ${t} SET v = v + 1 WHERE id = 1 ${EVIL_COMMENT}`;

  beforeAll(async () => {
    const s = server();
    await s.sql(`CREATE ROLE ${ident(EVIL_ROLE)} LOGIN PASSWORD '${ROLE_PASSWORD}'`);
    await s.sql(`CREATE DATABASE ${ident(EVIL_DB)}`);
    table = `hostile_${Math.random().toString(36).slice(2, 8)}`;
    // A config object, not a URL: pg's URL parser does not decode every escape in a database name.
    const connect = async (user: string, password: string, application_name: string) => {
      const c = new pg.Client({ host: s.host, port: s.port, user, password, database: EVIL_DB, application_name });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    };
    const setup = await connect('postgres', s.password, 'dbdoctor-test');
    await setup.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v int); INSERT INTO ${table} VALUES (1, 0); GRANT ALL ON ${table} TO PUBLIC`);
    await setup.end();
    const open = async () => {
      const c = await connect(EVIL_ROLE, ROLE_PASSWORD, 'hostile');
      clients.push(c);
      return c;
    };
    const b = await open();
    await b.query('BEGIN');
    await b.query(updateSql(table));
    blocker = (b as unknown as { processID: number }).processID;
    const w = await open();
    waiter = (w as unknown as { processID: number }).processID;
    w.query(updateSql(table)).catch(() => undefined);
    await waitForState(s, [waiter], 'active', 'Lock');
    const z = await open();
    sleeper = (z as unknown as { processID: number }).processID;
    z.query(sleepSql).catch(() => undefined);
    await waitForState(s, [sleeper], 'active');
  }, 60_000);

  afterAll(async () => {
    const s = server();
    await s.sql('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [[blocker, waiter, sleeper]]).catch(() => undefined);
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }, 30_000);

  async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    const s = server();
    const r = await runCli([...args, '-d', s.url()], { env });
    expectNoStackTrace(r);
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
    return r;
  }

  test('connections --list and --by user,db print the names inert, on one line', async () => {
    const list = await cli(['connections', '--list', '--app', 'hostile']);
    expectInert(list.stdout + list.stderr);
    // shown, never removed: the escapes as escapes (a statement shows as it runs), dbdoctor's own colour code form aside
    expect(list.stdout).toMatch(/^every session below: user evil\\u001b\]0;pwned\\u0007 role, db evil\\u001b\]8;;http/m);
    expect(list.stdout).toMatch(new RegExp(`^${sleeper} +hostile +active .*SELECT pg_sleep\\(3600\\)`, 'm'));
    const wide = await cli(['connections', '--list', '--app', 'hostile'], { COLUMNS: '160' });
    expect(wide.stdout).toMatch(new RegExp(`^${sleeper} +hostile +active .*SELECT pg_sleep\\(3600\\) /\\* \\\\u001b\\[2J\\\\u001b\\[H\\\\u001b\\]0;owned\\\\u0007 DROP TABLE everything; \\\\u009b31m \\*/$`, 'm'));
    const byUser = await cli(['connections', '--by', 'user,db']);
    expectInert(byUser.stdout + byUser.stderr);
    expect(byUser.stdout).toMatch(/│ evil\\u001b\]0\S* +│ evil\\u001b\]8;\S* +│ 3 /);
    const coloured = await cli(['connections', '--list', '--app', 'hostile'], { FORCE_COLOR: '1' });
    expect(coloured.stdout).toMatch(/\u001b\[\d+m/);
    expectInert(coloured.stdout, true);
  });

  test('locks prints the hostile root and its tree inert', async () => {
    const r = await cli(['locks']);
    expectInert(r.stdout + r.stderr);
    expect(r.stdout).toContain(`root ${blocker}  hostile  evil\\u001b]0;pwned`);
    expect(r.stdout).toMatch(/query +UPDATE hostile_\w+ SET v = v \+ 1 WHERE id = 1 \/\* \\u001b\[2J/);
    for (const l of r.stdout.split('\n')) expect(l.length).toBeLessThanOrEqual(80);
  });

  test('queries prints the hostile statements inert, also grouped', async () => {
    const r = await cli(['queries', '--min-duration', '0', '--group']);
    expectInert(r.stdout + r.stderr);
    expect(r.stdout).toMatch(new RegExp(`^${sleeper} +hostile +.*SELECT pg_sleep\\(3600\\) /\\* \\\\u001b\\[2J`, 'm'));
  });

  test('the JSON carries every name and query intact', async () => {
    const conns = parseJson<{ report: { sessions: Session[] } }>(await cli(['connections', '--json', '--list', '--app', 'hostile']));
    const bySleeper = conns.report.sessions.find((x) => x.pid === sleeper)!;
    expect(bySleeper).toMatchObject({ usename: EVIL_ROLE, datname: EVIL_DB, query: sleepSql });
    const locks = parseJson<{ report: { roots: Array<{ pid: number; session: Session }>; nodes: Array<{ pid: number; blocked_by: number | null; session: Session }> } }>(
      await cli(['locks', '--json']),
    );
    expectValidLocksDoc(locks);
    const root = locks.report.roots.find((x) => x.pid === blocker)!;
    expect(root.session).toMatchObject({ usename: EVIL_ROLE, datname: EVIL_DB, query: updateSql(table) });
    expect(locks.report.nodes.find((n) => n.blocked_by === blocker)!.session).toMatchObject({ pid: waiter, usename: EVIL_ROLE, query: updateSql(table) });
    const queries = parseJson<{ report: { long_queries: Session[]; statement_groups: Array<{ example: string; pids: number[] }> } }>(
      await cli(['queries', '--json', '--min-duration', '0', '--group']),
    );
    expect(queries.report.long_queries.find((x) => x.pid === sleeper)).toMatchObject({ usename: EVIL_ROLE, query: sleepSql });
    expect(queries.report.statement_groups.find((g) => g.pids.includes(sleeper))!.example).toBe(sleepSql);
  });
});
