/**
 * What dbdoctor prints for someone to paste (src/core/printed.ts), tried as an attacker would, on
 * real servers (PostgreSQL 14 and 18): for names drawn from all of Unicode and every character a
 * quoter must get right (quotes, backslashes, $, backticks, newlines, controls, bidi, zero-width),
 *
 * - the printed SQL, run on the server, is exactly one statement (run with the extended protocol,
 *   which refuses two) that acts on exactly the intended object: the role, database or prepared
 *   transaction the name came from, read back from the catalog, and nothing else;
 * - the printed shell command, read by a real `sh`, gives exactly the argument vector;
 * - a value that cannot be shown exactly is never inlined (the SQL is then the query that writes
 *   the statement from the catalog, for psql's \gexec; the command is null, and callers select by pid).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import type pg from 'pg';
import { commandStep, database, literal, preparedGid, role, type SqlPart, shellWord, sqlIdent, sqlLiteral, statement } from '../../src/core/printed.js';
import { showable } from '../../src/core/text.js';
import { sanitize } from '../../src/render/sanitize.js';
import { shellWords } from '../support/output.js';
import { startTestServer, type TestServer } from '../support/server.js';

/** Characters a quoter must get right, and characters a terminal must not be given raw. */
const NASTY = ["'", '"', '\\', '$', '`', '!', ' ', '  ', '\n', '\r', '\t', ';', '--', '/*', '*/', '%', '%I', '%L', '\u001b', '\u001b[31m', '\u001b]52;c;ZXZpbA==\u0007', '\u0007', '\u007f', '\u009b', '\u202e', '\u2066', '\u200b', '\u200d', '\ufeff', '\u00a0', '\u0301', '\ufffd', 'é', '日本', '👩‍💻', '☕️', '*', '?', '-', '='];
const char = fc.oneof({ arbitrary: fc.constantFrom(...NASTY), weight: 3 }, { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 2 }, { arbitrary: fc.constantFrom('a', 'b', 'Z', '0', '_'), weight: 2 });
/** A name PostgreSQL can hold: no NUL, no lone surrogate (it could not travel as UTF-8), at most `bytes` bytes. */
const name = (bytes: number) =>
  fc
    .array(char, { minLength: 1, maxLength: 12 })
    .map((parts) => parts.join(''))
    .filter((s) => !s.includes('\u0000') && !/\p{Cs}/u.test(s) && Buffer.byteLength(s) <= bytes);

const RUNS = 40;

/** Runs what dbdoctor printed: one statement (extended protocol), or for \gexec the query and then each statement it wrote. */
async function runPrinted(c: pg.Client, sql: string): Promise<string[]> {
  const one = async (text: string) => (await c.query({ text, queryMode: 'extended' } as pg.QueryConfig)).rows;
  if (!sql.endsWith(' \\gexec')) {
    await one(sql);
    return [sql];
  }
  const rows = await one(sql.slice(0, -' \\gexec'.length));
  const written = rows.flatMap((r) => Object.values(r as Record<string, string>));
  for (const w of written) await one(w);
  return written;
}

function expectShownOrIndirect(sql: string, values: string[]): void {
  if (values.every(showable)) {
    expect(sql.endsWith('\\gexec')).toBe(false);
    // Shown exactly: the terminal writer leaves it as it is.
    expect(sanitize(sql)).toBe(sql);
  } else {
    expect(sql).toMatch(/^SELECT format\('.*\) \\gexec$/s);
    for (const v of values.filter((x) => !showable(x))) expect(sql.includes(v)).toBe(false);
    expect(sanitize(sql)).toBe(sql);
  }
}

describe.each([14, 18])('printed SQL on PostgreSQL %i', (major) => {
  let s: TestServer;
  let c: pg.Client;
  beforeAll(async () => {
    s = await startTestServer({ major, settings: { max_prepared_transactions: 5 } });
    c = await s.client();
  }, 60_000);
  afterAll(async () => {
    await c?.end();
    await s?.stop();
  }, 60_000);

  /** Creates a role with this name and reads back what the server holds: the raw value dbdoctor would see. */
  async function createRole(n: string): Promise<{ name: string; oid: number }> {
    await c.query(`CREATE ROLE ${c.escapeIdentifier(n)}`);
    const [r] = (await c.query('SELECT rolname::text AS name, oid::int8::text AS oid FROM pg_roles WHERE rolname = $1', [n])).rows as Array<{ name: string; oid: string }>;
    return { name: r!.name, oid: Number(r!.oid) };
  }

  test('ALTER ROLE ... SET: one statement, that role only', async () => {
    await fc.assert(
      fc.asyncProperty(name(63), async (n) => {
        const r = await createRole(n);
        try {
          const before = (await c.query('SELECT count(*)::int AS n FROM pg_db_role_setting')).rows[0].n as number;
          const sql = statement(['ALTER ROLE ', role(r.name, r.oid), ' SET statement_timeout = ', literal('30s'), ';'])!;
          expectShownOrIndirect(sql, [r.name]);
          const ran = await runPrinted(c, sql);
          expect(ran).toHaveLength(1);
          const rows = (await c.query('SELECT setrole::int8::text AS role, setconfig FROM pg_db_role_setting')).rows as Array<{ role: string; setconfig: string[] }>;
          expect(rows).toHaveLength(before + 1);
          expect(rows.find((x) => Number(x.role) === r.oid)?.setconfig).toEqual(['statement_timeout=30s']);
        } finally {
          await c.query(`DROP ROLE ${c.escapeIdentifier(r.name)}`);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('GRANT pg_monitor TO ...: that role only', async () => {
    await fc.assert(
      fc.asyncProperty(name(63), async (n) => {
        const r = await createRole(n);
        try {
          const sql = statement(['GRANT pg_monitor TO ', role(r.name, r.oid), ';'])!;
          expectShownOrIndirect(sql, [r.name]);
          await runPrinted(c, sql);
          const members = (await c.query("SELECT member::int8::text AS m FROM pg_auth_members WHERE roleid = 'pg_monitor'::regrole")).rows.map((x) => Number(x.m));
          expect(members).toContain(r.oid);
        } finally {
          await c.query(`DROP ROLE ${c.escapeIdentifier(r.name)}`);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('ALTER ROLE ... IN DATABASE ... SET, and ALTER DATABASE ... CONNECTION LIMIT: those objects only', async () => {
    await fc.assert(
      fc.asyncProperty(name(63), name(63), async (rn, dn) => {
        const r = await createRole(rn);
        await c.query(`CREATE DATABASE ${c.escapeIdentifier(dn)}`);
        try {
          const [d] = (await c.query('SELECT datname::text AS name, oid::int8::text AS oid FROM pg_database WHERE datname = $1', [dn])).rows as Array<{ name: string; oid: string }>;
          const db = { name: d!.name, oid: Number(d!.oid) };
          const sql = statement(['ALTER ROLE ', role(r.name, r.oid), ' IN DATABASE ', database(db.name, db.oid), ' SET lock_timeout = ', literal('5s'), ';'])!;
          expectShownOrIndirect(sql, [r.name, db.name]);
          await runPrinted(c, sql);
          const rows = (await c.query('SELECT setrole::int8::text AS r, setdatabase::int8::text AS d, setconfig FROM pg_db_role_setting')).rows as Array<{ r: string; d: string; setconfig: string[] }>;
          expect(rows.filter((x) => x.setconfig.includes('lock_timeout=5s')).map((x) => [Number(x.r), Number(x.d)])).toEqual([[r.oid, db.oid]]);
          const limit = statement(['ALTER DATABASE ', database(db.name, db.oid), ' CONNECTION LIMIT 7;'])!;
          await runPrinted(c, limit);
          const limits = (await c.query('SELECT oid::int8::text AS oid FROM pg_database WHERE datconnlimit = 7')).rows.map((x) => Number(x.oid));
          expect(limits).toEqual([db.oid]);
        } finally {
          await c.query(`DROP DATABASE ${c.escapeIdentifier(dn)}`);
          await c.query(`DROP ROLE ${c.escapeIdentifier(r.name)}`);
        }
      }),
      { numRuns: 12 },
    );
  });

  test('COMMIT/ROLLBACK PREPARED: that prepared transaction only, and no statement smuggled in its gid', async () => {
    const owner = await s.client();
    try {
      await fc.assert(
        fc.asyncProperty(name(199), fc.boolean(), async (g, commit) => {
          await owner.query('BEGIN');
          await owner.query(`PREPARE TRANSACTION ${owner.escapeLiteral(g)}`);
          const [p] = (await c.query('SELECT gid, transaction::text AS xid FROM pg_prepared_xacts')).rows as Array<{ gid: string; xid: string }>;
          const parts: SqlPart[] = [commit ? 'COMMIT PREPARED ' : 'ROLLBACK PREPARED ', preparedGid(p!.gid, p!.xid), ';'];
          const sql = statement(parts)!;
          expectShownOrIndirect(sql, [p!.gid]);
          try {
            expect(await runPrinted(c, sql)).toHaveLength(1);
            expect((await c.query('SELECT count(*)::int AS n FROM pg_prepared_xacts')).rows[0].n).toBe(0);
          } finally {
            await c.query(`ROLLBACK PREPARED ${c.escapeLiteral(p!.gid)}`).catch(() => undefined);
          }
        }),
        { numRuns: RUNS },
      );
    } finally {
      await owner.end();
    }
  });

  test("the issue's gid: an escape character before the quote cannot end the literal", async () => {
    const owner = await s.client();
    try {
      const gid = "x\u001b'; CREATE ROLE pwned SUPERUSER; --";
      await owner.query('BEGIN');
      await owner.query(`PREPARE TRANSACTION ${owner.escapeLiteral(gid)}`);
      const [p] = (await c.query('SELECT gid, transaction::text AS xid FROM pg_prepared_xacts')).rows as Array<{ gid: string; xid: string }>;
      const sql = statement(['ROLLBACK PREPARED ', preparedGid(p!.gid, p!.xid), ';'])!;
      expect(sql).toBe(`SELECT format('ROLLBACK PREPARED %L', (SELECT gid FROM pg_prepared_xacts WHERE transaction = '${p!.xid}'::xid)) \\gexec`);
      await runPrinted(c, sanitize(sql));
      expect((await c.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'pwned'")).rows[0].n).toBe(0);
      expect((await c.query('SELECT count(*)::int AS n FROM pg_prepared_xacts')).rows[0].n).toBe(0);
    } finally {
      await owner.end();
    }
  });
});

describe('printed shell commands', () => {
  test('a real sh reads back exactly the argv, or the command is not printed at all', () => {
    fc.assert(
      fc.property(name(200), name(63), (app, db) => {
        const step = commandStep('t', 'terminate', [
          ['--state', 'idle in transaction'],
          ['--app', app],
          ['--db', db],
        ]);
        if (!showable(app) || !showable(db)) {
          expect(step).toBeNull();
          return;
        }
        expect(step!.command).not.toBeNull();
        expect(shellWords(step!.command!)).toEqual(['dbdoctor', ...step!.argv!]);
        // The same text on the terminal as in the JSON.
        expect(sanitize(step!.command!)).toBe(step!.command!);
        // A value that starts with a dash travels joined to its flag, so it cannot pass for a flag.
        for (const v of [app, db]) if (v.startsWith('-')) expect(step!.argv!.some((a) => a.endsWith(`=${v}`))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('names a shell treats specially but a terminal shows as they are: always printed, always read back', () => {
    const shellish = fc.constantFrom("'", '"', '\\', '$', '`', '!', ' ', '*', '?', '~', '=', '#', ';', '&', '|', '<', '>', '(', ')', '{', '}', '[', ']', '-', 'é', '日本', '👩‍💻', 'a', 'b');
    fc.assert(
      fc.property(fc.array(shellish, { minLength: 1, maxLength: 10 }).map((p) => p.join('')), (app) => {
        fc.pre(showable(app));
        const step = commandStep('t', 'connections', [['--app', app], '--list'])!;
        expect(shellWords(step.command!)).toEqual(['dbdoctor', ...step.argv!]);
      }),
      { numRuns: 300 },
    );
  });

  test('words with glob, tilde, equals and history characters are quoted for sh, bash and zsh alike', () => {
    for (const w of ['a*b', 'a?b', '[ab]', '~root', '=ls', 'a!b', 'a b', "it's", 'x$HOME', '`id`', 'a\\b', '{a,b}', 'a;b', 'a&b', 'a|b', 'a>b', '#x', 'a#b']) {
      expect(shellWord(w)).not.toBe(w);
      expect(shellWords(`dbdoctor ${shellWord(w)}`)).toEqual(['dbdoctor', w]);
    }
    for (const w of ['api', '10.0.0.0/8', 'user@host', '--pid=5', 'a=b', 'worker-1.x:2']) expect(shellWord(w)).toBe(w);
  });

  test('SQL quoters: identifiers always quoted, literals exact whatever standard_conforming_strings', () => {
    expect(sqlIdent('user')).toBe('"user"');
    expect(sqlIdent('a"b')).toBe('"a""b"');
    expect(sqlLiteral("it's")).toBe("'it''s'");
    expect(sqlLiteral('a\\b')).toBe("E'a\\\\b'");
  });
});
