/**
 * Secrets never leave: a known password, given every way libpq takes one (URL, conninfo,
 * PGPASSWORD, DATABASE_URL, ~/.pgpass), never appears in stdout, stderr, JSON, the audit log or an
 * error message, for every command, when it works and when it fails.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { freePort } from '../../src/db/embedded.js';
import { parseJson, runCli } from '../support/cli.js';
import { COMMANDS, CONNECTING, landed } from '../support/commands.js';
import { fakePeer, type FakePeer, holdRolesView } from '../support/faults.js';
import { dbdoctorSessionsLeft, idleInTransaction, type Incident, waitForState } from '../support/incidents.js';
import { expectNoStack } from '../support/reliability.js';
import { useServer } from '../support/server.js';

/** Characters that URL-encoding, conninfo quoting and shell-ish parsing all treat specially. */
const SECRET = "Rel-S3cret p@ss:w/rd%'\\x";
const WRONG = 'Rel-Wr0ng-pa55-word';
const ROLE = 'rel_secret';

/** Every form the password could leak in. */
function forms(pw: string): string[] {
  // the distinctive start of each password ('Rel-S3cret', 'Rel-Wr0ng-') catches every encoding of it
  return [pw, encodeURIComponent(pw), encodeURI(pw), pw.replace(/'/g, "\\'"), JSON.stringify(pw).slice(1, -1), pw.slice(0, 10)];
}

function expectNoSecret(texts: string[], where: string): void {
  for (const text of texts) {
    for (const f of [...forms(SECRET), ...forms(WRONG)]) {
      if (text.includes(f)) throw new Error(`${where}: the password (as ${JSON.stringify(f)}) appears in:\n${text}`);
    }
  }
}

const incidents: Incident[] = [];
afterAll(async () => {
  for (const i of incidents.splice(0).reverse()) await i.release();
});
const server = useServer({ settings: { max_connections: 50 } });

let dir: string;
let closedPort = 0;
let peer: FakePeer;
beforeAll(async () => {
  const s = server();
  dir = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-secret-'));
  closedPort = await freePort();
  peer = await fakePeer({ reply: 'HTTP/1.1 400 Bad Request\r\n\r\n', on: 'data', close: true });
  await s.sql(`CREATE ROLE ${ROLE} LOGIN SUPERUSER PASSWORD '${SECRET.replace(/'/g, "''")}'`);
  // something to report and to terminate
  incidents.push(await idleInTransaction(s, 2, { app: 'rel-secret-iit', user: 'app_user' }));
}, 60_000);
afterAll(async () => {
  await peer?.close();
  rmSync(dir, { recursive: true, force: true });
});

const quoted = `'${SECRET.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** How the password reaches dbdoctor: [label, args, env]. */
function ways(host: string, port: number, dbname = 'postgres'): Array<[string, string[], Record<string, string>]> {
  const url = `postgres://${ROLE}:${encodeURIComponent(SECRET)}@${host}:${port}/${dbname}`;
  const pgpass = join(dir, `pgpass-${port}-${dbname}`);
  writeFileSync(pgpass, `${host}:${port}:${dbname}:${ROLE}:${SECRET.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`, { mode: 0o600 });
  return [
    ['a URL', ['-d', url], {}],
    ['a conninfo string', ['-d', `host=${host} port=${port} dbname=${dbname} user=${ROLE} password=${quoted}`], {}],
    ['PGPASSWORD', ['-h', host, '-p', String(port), '-U', ROLE, '-d', dbname], { PGPASSWORD: SECRET }],
    ['DATABASE_URL', [], { DATABASE_URL: url }],
    ['~/.pgpass', ['-h', host, '-p', String(port), '-U', ROLE, '-d', dbname], { PGPASSFILE: pgpass }],
  ];
}

const commands = landed(CONNECTING);

function argsFor(name: string, json: boolean): string[] {
  const spec = COMMANDS.find((c) => c.name === name)!;
  const base = name === 'terminate' ? ['terminate', '--app', 'rel-secret-iit', '--dry-run'] : [name, ...spec.args];
  return [...base, ...(json ? ['--json'] : [])];
}

describe('on success', () => {
  test.each(commands.flatMap((c) => [[c.name, false], [c.name, true]] as const))('%s (json: %s): no password, whichever way it was given', async (name, json) => {
    const s = server();
    for (const [how, args, env] of ways('127.0.0.1', s.port)) {
      const r = await runCli([...argsFor(name, json), ...args], { env });
      expectNoStack(r);
      expect({ how, exit: r.exitCode, err: r.stderr }).toMatchObject({ exit: expect.any(Number) });
      expect([0, 1, 2, 3]).toContain(r.exitCode);
      // it did connect (a failure here would make this a test of the failure path)
      expect(r.stdout + r.stderr).not.toMatch(/password authentication failed|no password/i);
      expect({ how, stderr: r.stderr }).toMatchObject({ stderr: expect.not.stringMatching(/^dbdoctor: /m) });
      if (json) expect((parseJson<{ report: { connected?: boolean } }>(r).report.connected ?? true)).toBe(true);
      expectNoSecret([r.stdout, r.stderr], `${name} via ${how}`);
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test('terminate --yes: the audit log and the report hold no password (also none from the query text)', async () => {
    if (!commands.some((c) => c.name === 'terminate')) return;
    const s = server();
    const victims = await idleInTransaction(s, 1, { app: 'rel-secret-victim', user: 'app_user' }, `ALTER ROLE app_user PASSWORD '${SECRET.replace(/'/g, "''")}'`);
    const urls = await idleInTransaction(s, 1, { app: 'rel-secret-victim2', user: 'app_user' }, `SELECT 'postgres://someone:${encodeURIComponent(SECRET).replace(/'/g, "''")}@db/x' AS url`);
    incidents.push(victims, urls);
    const audit = join(dir, 'audit.jsonl');
    for (const [how, args, env] of ways('127.0.0.1', s.port).slice(0, 3)) {
      const r = await runCli(['terminate', '--app', 'rel-secret-*', '--yes', '--json', '--lock-file', join(dir, 'lock'), '--audit-log', audit, ...args], { env });
      expectNoStack(r);
      expectNoSecret([r.stdout, r.stderr], `terminate --yes via ${how}`);
    }
    const log = readFileSync(audit, 'utf8');
    expect(log).toMatch(/"event":"intent"/);
    expectNoSecret([log], 'the audit log');
  });
});

describe('on failure', () => {
  const failures = (name: string): Array<[string, string[], Record<string, string>]> => {
    const s = server();
    return [
      // wrong database
      ...ways('127.0.0.1', s.port, 'no_such_db').map(([how, a, e]) => [`missing database, via ${how}`, a, e] as [string, string[], Record<string, string>]),
      // nothing listens
      ...ways('127.0.0.1', closedPort).map(([how, a, e]) => [`server down, via ${how}`, a, e] as [string, string[], Record<string, string>]),
      // not PostgreSQL
      ...ways('127.0.0.1', peer.port).map(([how, a, e]) => [`not PostgreSQL, via ${how}`, a, e] as [string, string[], Record<string, string>]),
      // a wrong password: neither the wrong one nor the right one appears
      [`wrong password in a URL`, ['-d', `postgres://${ROLE}:${encodeURIComponent(WRONG)}@127.0.0.1:${s.port}/postgres`], {}],
      [`wrong password in PGPASSWORD`, ['-h', '127.0.0.1', '-p', String(s.port), '-U', ROLE], { PGPASSWORD: WRONG }],
      // a usage error with the password on the same command line
      [`a bad flag next to a URL with a password`, ['-d', `postgres://${ROLE}:${encodeURIComponent(SECRET)}@127.0.0.1:${s.port}/postgres`, '--statement-timeout', '5x'], {}],
      [`a malformed URL holding a password`, ['-d', `postgres://${ROLE}:${encodeURIComponent(SECRET)}@127.0.0.1:abc/postgres`], {}],
      [`a malformed conninfo holding a password`, ['-d', `host=127.0.0.1 password=${quoted} port=abc`], {}],
      [`an unterminated conninfo password`, ['-d', `host=127.0.0.1 password='${SECRET}`], {}],
      [`a bad sslmode next to a password`, ['-d', `postgres://${ROLE}:${encodeURIComponent(SECRET)}@127.0.0.1:${s.port}/postgres?sslmode=bogus`], {}],
    ].map(([how, a, e]) => [`${name}: ${how}`, a as string[], e as Record<string, string>]);
  };

  // One test per failure (each a process or two, on a slow machine a few seconds), not one per
  // command: a loop of 44 runs in one test outlasted any sane timeout on a loaded machine.
  const FAILURES = 3 * 5 + 7;
  test('the failure table is as long as the rows below expect', () => {
    for (const c of commands) expect(failures(c.name)).toHaveLength(FAILURES);
  });

  const rows = commands.flatMap((c) => [false, true].flatMap((json) => Array.from({ length: FAILURES }, (_, i) => [c.name, json, i] as const)));
  test.each(rows)('%s (json: %s), failure %i: no password in the output', async (name, json, i) => {
    const [how, args, env] = failures(name)[i]!;
    const r = await runCli([...argsFor(name, json), ...args, '--connect-timeout', '2s'], { env });
    expectNoStack(r);
    expect({ how, exit: r.exitCode }).toMatchObject({ exit: expect.any(Number) });
    expect(r.exitCode).not.toBe(0);
    expectNoSecret([r.stdout, r.stderr], how);
  });

  test.each(commands.map((c) => [c.name] as const))('%s: no password when its own read times out mid-run', async (name) => {
    const s = server();
    const hold = await holdRolesView(s);
    try {
      const [, args] = ways('127.0.0.1', s.port)[0]!;
      const r = await runCli([...argsFor(name, true), ...args]);
      expect(r.exitCode).toBe(3);
      expectNoSecret([r.stdout, r.stderr], `${name} lock_timeout`);
    } finally {
      await hold.release();
    }
  });
});

describe("passwords inside other clients' statements", () => {
  const OTHER = 'Rel-0ther-pw-Q7';
  const statements = [
    `SELECT 'postgres://someone:${OTHER}@db.example/app' AS url`,
    `SELECT 'host=db.example user=x password=${OTHER} dbname=app' AS conninfo`,
    `ALTER ROLE app_user PASSWORD '${OTHER}'`,
  ];
  /** Every view that shows statement text, as an operator runs it. */
  const views = [
    ['connections', '--list'],
    ['queries', '--min-duration', '0s'],
    ['queries', '--min-duration', '0s', '--group'],
    ['locks'],
    ['diagnose', '--idle-in-transaction', '0s'],
    ['terminate', '--app', 'rel-secret-stmt-*', '--dry-run'],
  ].filter((v) => commands.some((c) => c.name === v[0]));

  test.each(views.flatMap((v) => [[v.join(' '), false, v], [v.join(' '), true, v]] as const))('%s (json: %s): masked', async (_label, json, view) => {
    const s = server();
    const held: Incident[] = [];
    try {
      for (const [i, sql] of statements.entries()) held.push(await idleInTransaction(s, 1, { app: `rel-secret-stmt-${i}`, user: 'app_user' }, sql));
      // the ALTER ROLE holds app_user's pg_authid row: a second one waits on it, so locks shows the first
      const waiter = await s.client({ application_name: 'rel-secret-stmt-waiter' });
      const waiting = waiter.query(`ALTER ROLE app_user PASSWORD '${OTHER}'`).catch(() => undefined);
      await waitForState(s, [(waiter as unknown as { processID: number }).processID], 'active', 'Lock');
      held.push({
        pids: [],
        clients: [waiter],
        async release() {
          await s.sql('SELECT pg_cancel_backend($1)', [(waiter as unknown as { processID: number }).processID]);
          await waiting;
          await waiter.end().catch(() => undefined);
        },
      });
      const r = await runCli([...view, ...(json ? ['--json'] : []), '-d', s.url()], { env: { COLUMNS: '200' } });
      expectNoStack(r);
      // the sessions are shown (so the check is not vacuous) ...
      expect(r.stdout).toMatch(/rel-secret-stmt|db\.example|ALTER ROLE/);
      // ... and the password in their statements is not
      expect({ view: view.join(' '), leaked: (r.stdout + r.stderr).match(/.{0,40}Rel-0ther.{0,5}/g) }).toEqual({ view: view.join(' '), leaked: null });
    } finally {
      for (const h of held.reverse()) await h.release();
    }
  });
});

describe('commands that start their own server', () => {
  test('demo --yes --json prints no URL with a password in it', async () => {
    if (!landed(COMMANDS).some((c) => c.name === 'demo')) return;
    const r = await runCli(['demo', '--yes', '--json'], { timeoutMs: 120_000 });
    expectNoStack(r);
    expect(r.stdout + r.stderr).not.toMatch(/postgres(?:ql)?:\/\/[^\s:/@]+:[^\s@]+@/);
    expect(r.stdout + r.stderr).not.toMatch(/password\s*=\s*(?!\*)\S/i);
  }, 150_000);
});
