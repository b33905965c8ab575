/**
 * Smaller leaks (issue #14, item 7), on real servers (PostgreSQL 14 and 18):
 * - a password written into -d (a URL or a conninfo string) gets one warning line on stderr that
 *   other users see it in `ps`, once per run (the guide's own steps included), never with the
 *   password, never for PGPASSWORD, ~/.pgpass or DATABASE_URL;
 * - a malformed conninfo string is refused without echoing any word that could be (a piece of) a
 *   password;
 * - an error the server sent is classified by its SQLSTATE and structure (the routine that raised
 *   it), never by its words, which hold names any client chose: a database named after the role
 *   limit's message, a socket directory named "SSL connection timed out", errors whose text reads
 *   like node-postgres' own.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { classifyConnectError, type RawError } from '../../src/core/classify.js';
import { queryError } from '../../src/db/session.js';
import { parseJson, runCli } from '../support/cli.js';
import { CONNECTING, landed } from '../support/commands.js';
import { dbdoctorSessionsLeft, idleInTransaction, waitFor } from '../support/incidents.js';
import { runInPty } from '../support/pty.js';
import { expectNoStack } from '../support/reliability.js';
import { ROLE_PASSWORD, useServer } from '../support/server.js';

const WARNING = /^warning: the password in the -d (URL|connection string) is visible to other users of this machine \(ps\); give it in PGPASSWORD or ~\/\.pgpass instead$/;
const commands = landed(CONNECTING);

function argsFor(name: string): string[] {
  const c = commands.find((x) => x.name === name)!;
  return [name, ...c.args];
}

function warnings(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /visible to other users/.test(l));
}

/** No piece of `secret` (4 characters or more) in any of the texts. */
function expectNone(texts: string[], secret: string, where: string): void {
  for (const text of texts) {
    for (let i = 0; i + 4 <= secret.length; i++) {
      const piece = secret.slice(i, i + 4);
      if (text.includes(piece)) throw new Error(`${where}: ${JSON.stringify(piece)} of the secret appears in:\n${text}`);
    }
  }
}

describe.each([14, 18])('PostgreSQL %i', (major) => {
  const server = useServer({ major, settings: { max_connections: 30 } });
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-leaks-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('a password on the command line', () => {
    test.each(commands.map((c) => [c.name]))('%s: one warning line naming ps, never the password; none for PGPASSWORD, ~/.pgpass or DATABASE_URL', async (name) => {
      const s = server();
      const url = s.url();
      const bare = s.url({ password: '' });
      const conninfo = `host=${s.host} port=${s.port} user=postgres dbname=postgres password='${s.password}'`;
      const pgpass = join(dir, `pgpass-${name}`);
      writeFileSync(pgpass, `${s.host}:${s.port}:*:postgres:${s.password}\n`, { mode: 0o600 });
      expect(s.major).toBe(major);
      for (const [label, args, env, what] of [
        ['-d URL', ['-d', url], {}, 'URL'],
        ['--dbname=URL', [`--dbname=${url}`], {}, 'URL'],
        ['-d conninfo', ['-d', conninfo], {}, 'connection string'],
        ['-d conninfo --json', ['-d', conninfo, '--json'], {}, 'connection string'],
        ['PGPASSWORD', ['-d', bare], { PGPASSWORD: s.password }, null],
        ['~/.pgpass', ['-d', bare], { PGPASSFILE: pgpass }, null],
        ['DATABASE_URL', [], { DATABASE_URL: url }, null],
      ] as Array<[string, string[], Record<string, string>, string | null]>) {
        const r = await runCli([...argsFor(name), ...args], { env });
        expectNoStack(r);
        expect({ label, exit: r.exitCode }).toMatchObject({ exit: expect.any(Number) });
        expect([0, 1, 2, 3]).toContain(r.exitCode);
        const lines = warnings(r.stderr);
        if (what === null) {
          expect({ label, lines }).toEqual({ label, lines: [] });
        } else {
          expect({ label, lines: lines.length }).toEqual({ label, lines: 1 });
          expect(lines[0]).toMatch(WARNING);
          expect(lines[0]).toContain(what);
        }
        if (args.includes('--json')) parseJson(r);
        expect(r.stdout + r.stderr).not.toContain(s.password);
      }
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    });

    test('the guide: warned once for its -d, not again for the steps it runs with the password it holds', async () => {
      const s = server();
      const home = join(dir, `guide-${major}`);
      mkdirSync(join(home, 'config', 'dbdoctor'), { recursive: true });
      writeFileSync(join(home, 'config', 'dbdoctor', 'config.json'), JSON.stringify({ thresholds: { idle_in_transaction: '1s' } }));
      const leak = await idleInTransaction(s, 1, { app: 'rel-leaks-guide', user: 'app_user' });
      try {
        await waitFor(s, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'rel-leaks-guide' AND now() - state_change > interval '1.5 seconds'", [], (rows) => rows.length > 0);
        const pty = runInPty(['guide', '-d', s.url()], { env: { XDG_STATE_HOME: join(home, 'state'), XDG_CONFIG_HOME: join(home, 'config') }, cwd: home });
        try {
          await pty.choose(/Pick a finding to see its next steps/, /rel-leaks-guide/);
          // an inspecting step runs `connections` in this process, pointed by a -d with the password
          await pty.choose(/Next step for:/, /Inspect: dbdoctor connections/);
          await pty.choose(/Next step for:/, /Quit/);
          expect(await pty.exit).toBe(0);
        } finally {
          pty.child.kill();
        }
        const text = pty.text();
        expect(text).toMatch(/\$ dbdoctor connections/);
        expect(warnings(text)).toHaveLength(1);
        expect(text).not.toContain(s.password);
      } finally {
        await leak.release();
      }
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    }, 60_000);
  });

  describe('connection errors, classified by structure', () => {
    test('a database whose name is the role limit\'s message: its CONNECTION LIMIT is the database\'s', async () => {
      const s = server();
      const db = 'too many connections for role "app_user"';
      await s.sql(`CREATE DATABASE "${db.replace(/"/g, '""')}" CONNECTION LIMIT 0`);
      try {
        const r = await runCli(['check', '--json', '-d', s.url({ user: 'app_user', password: '', dbname: db })], { env: { PGPASSWORD: ROLE_PASSWORD } });
        expectNoStack(r);
        expect(r.exitCode).toBe(2);
        const failure = parseJson<{ report: { failure: { step: string; cause: string; message: string; hint: string } } }>(r).report.failure;
        expect(failure).toMatchObject({ step: 'slots', cause: 'connection_limit' });
        expect(failure.message).toMatch(/^the database CONNECTION LIMIT of /);
        expect(failure.hint).toMatch(/ALTER DATABASE/);
      } finally {
        await s.sql(`DROP DATABASE "${db.replace(/"/g, '""')}"`);
      }
    });

    test("a role's CONNECTION LIMIT is the role's (the routine that raised it, on this server version)", async () => {
      const s = server();
      await s.sql(`CREATE ROLE "rel limited for database" LOGIN PASSWORD '${ROLE_PASSWORD}' CONNECTION LIMIT 0`);
      try {
        const r = await runCli(['check', '--json', '-d', s.url({ user: 'rel limited for database', password: '' })], { env: { PGPASSWORD: ROLE_PASSWORD } });
        expect(r.exitCode).toBe(2);
        const failure = parseJson<{ report: { failure: { cause: string; message: string; hint: string } } }>(r).report.failure;
        expect(failure).toMatchObject({ cause: 'connection_limit' });
        expect(failure.message).toMatch(/^the role CONNECTION LIMIT of "rel limited for database"/);
        expect(failure.hint).toMatch(/ALTER ROLE/);
      } finally {
        await s.sql('DROP ROLE "rel limited for database"');
      }
    });

    test('a socket directory named "SSL connection timed out": the server is reached there, and without its socket it is "nothing listens", not TLS or a timeout', async () => {
      const s = server();
      const sockets = join(dir, `SSL connection timed out ${major}`);
      mkdirSync(sockets, { recursive: true });
      const empty = await runCli(['check', '--json', '-h', sockets, '-p', String(s.port), '-U', 'postgres']);
      expectNoStack(empty);
      expect(empty.exitCode).toBe(2);
      expect(parseJson<{ report: { failure: { step: string; cause: string } } }>(empty).report.failure).toMatchObject({ step: 'tcp', cause: 'refused' });
      // the server's own socket, reached through that directory: it works
      symlinkSync(join(s.embedded!.dir, `.s.PGSQL.${s.port}`), join(sockets, `.s.PGSQL.${s.port}`));
      const ok = await runCli(['check', '--json', '-h', sockets, '-p', String(s.port), '-U', 'postgres'], { env: { PGPASSWORD: s.password } });
      expectNoStack(ok);
      expect(parseJson<{ report: { failure: unknown } }>(ok).report.failure).toBeNull();
    });

    test('real server errors whose words read like node-postgres\' own are classified by their SQLSTATE', async () => {
      const s = server();
      const c = await s.client();
      const raise = async (sqlstate: string, message: string): Promise<RawError> => {
        const err = await c.query(`DO $$ BEGIN RAISE EXCEPTION '${message.replace(/'/g, "''")}' USING ERRCODE = '${sqlstate}'; END $$`).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(pg.DatabaseError);
        return err as RawError;
      };
      try {
        const ctx = { host: '127.0.0.1', port: s.port, user: 'postgres', dbname: 'postgres', connectTimeoutMs: 5000, sslmode: 'prefer' };
        const cases: Array<[string, string, { step: string; cause: string }]> = [
          ['XX000', 'There was an error establishing an SSL connection', { step: 'startup', cause: 'server_refused' }],
          ['XX000', 'The server does not support SSL connections', { step: 'startup', cause: 'server_refused' }],
          ['XX000', 'timeout expired: Connection terminated due to connection timeout', { step: 'startup', cause: 'server_refused' }],
          ['XX000', 'client password must be a string', { step: 'startup', cause: 'server_refused' }],
          ['53300', 'too many connections for role "x"', { step: 'slots', cause: 'out_of_slots' }],
          ['28000', 'certificate TLS timed out', { step: 'auth', cause: 'auth_rejected' }],
        ];
        for (const [sqlstate, message, want] of cases) {
          const f = classifyConnectError(await raise(sqlstate, message), ctx);
          expect({ message, got: { step: f.step, cause: f.cause } }).toEqual({ message, got: want });
        }
        // a statement error on an open session: "closed" in its words is no lost connection
        const target = { host: '127.0.0.1', port: s.port } as Parameters<typeof queryError>[1];
        const q = queryError(await raise('XX000', 'Connection terminated unexpectedly: the table "closed" is not queryable'), target, 15_000, 1_000);
        expect(q.cause_id).toBe('query_failed');
        expect(q.exitCode).toBe(3);
      } finally {
        await c.end();
      }
    });
  });
});

describe('conninfo parse errors never echo what could be a password', () => {
  // letters and digits only: the longest word a key can be, so an echo would show most of it
  const SECRET = 'Zr9HushQk4WxYvB7';
  test.each([
    ['an unquoted password with a space', `host=127.0.0.1 password=${SECRET.slice(0, 7)} ${SECRET.slice(7)}`],
    ['a password in quotes that never close', `host=127.0.0.1 password='${SECRET} dbname=app`],
    ['a bare word', `host=127.0.0.1 ${SECRET}`],
    ['a bare quoted word', `host=127.0.0.1 '${SECRET}'`],
    ['a word after the password that looks like a key', `password=x ${SECRET}='never closed`],
    ['the password without "="', `host=127.0.0.1 password '${SECRET}'`],
    ['a password with a quote in it, unescaped', `host=127.0.0.1 password='${SECRET.slice(0, 6)}'${SECRET.slice(6)}'`],
  ])('%s', async (_label, conninfo) => {
    for (const json of [false, true]) {
      const r = await runCli(['check', ...(json ? ['--json'] : []), '-d', conninfo]);
      expectNoStack(r);
      expect(r.exitCode).toBe(64);
      expect(r.stderr).toMatch(/^dbdoctor: invalid connection string: /m);
      expectNone([r.stdout, r.stderr], SECRET, conninfo);
    }
  });
});

describe("commander's usage errors never echo a password they quote", () => {
  const SECRET = 'Kp3WsecretCLIq9';
  test.each([
    ['a URL given as the command', [`postgres://u:${SECRET}@h/db`]],
    ['a URL given as an unknown flag of a command', ['diagnose', `--url=postgres://u:${SECRET}@h/db`]],
    ['a conninfo string given as the command', [`host=h password=${SECRET}`]],
  ])('%s', async (_label, args) => {
    const r = await runCli(args);
    expectNoStack(r);
    expect(r.exitCode).toBe(64);
    expect(r.stderr).toMatch(/^dbdoctor: (unknown command|unknown option|too many arguments)/m);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(r.stderr).toContain('***');
  });
});
