/**
 * Masking other clients' secrets, as a property: statements carrying a random secret in every
 * form PostgreSQL's lexer accepts (each string-constant form with random escapes, constants
 * continued over lines, comments and no whitespace between the keyword and the literal, conninfo
 * strings and URLs inside literals, DO blocks, several statements, the text cut anywhere as
 * track_activity_query_size cuts it) never show any part of the secret after redactStatement.
 *
 * "Any part in any encoding": the generator knows where the secret's encoding sits in the
 * statement. Every 3-character window of that encoding that does not occur in the rest of the
 * statement must be absent from the output (a window can only reach the output from the secret's
 * own characters), and so must the secret as the server reads it. The literal encoders themselves
 * are checked against real servers in masking.test.ts.
 */
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { normalizeStatement } from '../../src/core/normalize.js';
import { parseConninfo, parseUrl } from '../../src/core/conninfo.js';
import { redactSecrets, redactStatement } from '../../src/core/redact.js';
import { type Encoded, encodeStatement, type Rng, rng, secretArb, type StatementKind, STATEMENT_KINDS, type LiteralForm, LITERAL_FORMS } from '../support/secret-statements.js';

const RUNS = { numRuns: Number(process.env.DBDOCTOR_PROPERTY_RUNS ?? 3000) };

/**
 * The check: nothing of the secret's encoding (or the secret itself) survives in `out`. `created`
 * names characters the output may make up itself (normalization writes `?` and collapses
 * whitespace): windows holding them are not evidence.
 */
function leaks(e: Encoded, out: string, created: RegExp | null = null): string[] {
  const found: string[] = [];
  const enc = e.text.slice(e.secretStart, e.secretEnd);
  if (enc.length === 0) return found;
  if (out.includes(e.secret)) found.push(`the secret ${JSON.stringify(e.secret)}`);
  // the secret's encoding in segments, without what the statement put between its pieces (a
  // continuation's quote-newline-quote); the skeleton is the statement with the segments masked
  const segments: Array<[number, number]> = [];
  let at = e.secretStart;
  for (const [a, b] of [...e.holes.filter(([, b]) => b <= e.secretEnd), [e.secretEnd, e.secretEnd] as [number, number]]) {
    if (Math.min(a, e.secretEnd) > at) segments.push([at, Math.min(a, e.secretEnd)]);
    at = Math.max(at, b);
  }
  let skeleton = '';
  let from = 0;
  for (const [a, b] of segments) {
    skeleton += `${e.text.slice(from, a)}***`;
    from = b;
  }
  skeleton += e.text.slice(from);
  for (const [a, b] of segments) {
    const seg = e.text.slice(a, b);
    for (let i = 0; i + 3 <= seg.length; i++) {
      const w = seg.slice(i, i + 3);
      if (w.includes('*') || skeleton.includes(w) || created?.test(w)) continue;
      if (out.includes(w)) found.push(`window ${JSON.stringify(w)} of ${JSON.stringify(enc)}`);
    }
  }
  return found;
}

function explain(e: Encoded, out: string, found: string[]): string {
  return `statement (${e.kind}/${e.form}): ${JSON.stringify(e.text)}\nsecret encoding: ${JSON.stringify(e.text.slice(e.secretStart, e.secretEnd))}\noutput: ${JSON.stringify(out)}\nleaks: ${found.join('; ')}`;
}

const statementArb = fc
  .record({
    kind: fc.constantFrom<StatementKind>(...STATEMENT_KINDS),
    form: fc.constantFrom<LiteralForm>(...LITERAL_FORMS),
    secret: secretArb,
    seed: fc.integer(),
    cut: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { freq: 2 }),
  })
  .map(({ kind, form, secret, seed, cut }) => {
    const r: Rng = rng(seed);
    const e = encodeStatement(kind, form, secret, r);
    if (cut === null) return e;
    // track_activity_query_size cuts the text anywhere
    const at = Math.floor(cut * e.text.length);
    return { ...e, text: e.text.slice(0, at), secretStart: Math.min(e.secretStart, at), secretEnd: Math.min(e.secretEnd, at), holes: e.holes.filter(([a]) => a < at).map(([a, b]) => [a, Math.min(b, at)] as [number, number]) };
  });

describe('redactStatement: a secret in any spelling never shows', () => {
  test('every statement kind and literal form, whole or cut anywhere', () => {
    fc.assert(
      fc.property(statementArb, (e) => {
        const out = redactStatement(e.text);
        const found = leaks(e, out);
        if (found.length) throw new Error(explain(e, out, found));
        // the statement stays readable: its first word is kept
        expect(out.startsWith(/^\S*/.exec(e.text)![0].replace(/[$'"].*/, ''))).toBe(true);
      }),
      RUNS,
    );
  });

  test('the normalized statement (queries --group, diagnose) shows no part of it either', () => {
    fc.assert(
      fc.property(statementArb, (e) => {
        const out = normalizeStatement(e.text);
        // what the normalizer writes itself: '?' for a value, spaces, and '(...)' for a list of
        // them (a secret spelt with '...' is not seen in that token)
        const found = leaks(e, out, /[?\s]|^(?:\(\.\.|\.\.\.|\.\.\))$/);
        if (found.length) throw new Error(explain(e, out, found));
      }),
      { numRuns: Math.ceil(RUNS.numRuns / 3) },
    );
  });

  test('several statements in one text, each with its own secret', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom<StatementKind>(...STATEMENT_KINDS), fc.constantFrom<LiteralForm>(...LITERAL_FORMS), secretArb, fc.integer()), { minLength: 2, maxLength: 4 }), (specs) => {
        const parts = specs.map(([kind, form, secret, seed]) => encodeStatement(kind, form, secret, rng(seed)));
        let text = '';
        const placed: Encoded[] = [];
        for (const p of parts) {
          const offset = text.length;
          text += `${p.text};\n`;
          placed.push({ ...p, secretStart: p.secretStart + offset, secretEnd: p.secretEnd + offset, holes: p.holes.map(([a, b]) => [a + offset, b + offset]) });
        }
        const out = redactStatement(text);
        for (const p of placed) {
          const found = leaks({ ...p, text }, out);
          if (found.length) throw new Error(explain({ ...p, text }, out, found));
        }
      }),
      { numRuns: Math.ceil(RUNS.numRuns / 3) },
    );
  });

  test('after any garbage (a text built to make the readings diverge): still no piece of the secret, in bounded work', () => {
    const soup = fc.array(fc.constantFrom("'", '\\', ';', '\n', '$a$', 'a$b$', 'password', ' ', "E'", "U&'", '--', '/*', '*/', 'postgres://', '&', "''", '(', ')', '||', '%L', 'x'), { maxLength: 400 }).map((xs) => xs.join(''));
    fc.assert(
      fc.property(soup, statementArb, (garbage, e) => {
        const text = `${garbage};\n${e.text}`;
        const k = garbage.length + 2;
        const placed = { ...e, text, secretStart: e.secretStart + k, secretEnd: e.secretEnd + k, holes: e.holes.map(([a, b]) => [a + k, b + k] as [number, number]) };
        const out = redactStatement(text);
        const found = leaks(placed, out);
        if (found.length) throw new Error(explain(placed, out, found));
      }),
      { numRuns: Math.ceil(RUNS.numRuns / 3) },
    );
  });

  test('a statement without secrets comes back unchanged', () => {
    const plain = fc.constantFrom(
      "SELECT * FROM orders WHERE note = 'it''s late' AND id = $1",
      "UPDATE jobs SET state = 'done' WHERE id = 7 -- worker 3",
      "SELECT E'tab\\there', U&'d\\0061t\\+000061', $q$dollar$q$ /* c /* nested */ */ FROM t",
      "INSERT INTO log (msg) VALUES ('a'\n'b')",
      'SELECT 1',
    );
    fc.assert(
      fc.property(plain, (sql) => {
        expect(redactStatement(sql)).toBe(sql);
      }),
    );
  });

  test('total: any text gives a string, and masking twice changes nothing more', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom(..."pasword'\"$\\&U E/*-\n=:@%()x;|") })), (text) => {
        const once = redactStatement(text);
        expect(typeof once).toBe('string');
        expect(redactStatement(once)).toBe(redactStatement(once));
      }),
      RUNS,
    );
  });
});

describe('redactStatement: the spellings, one by one (what an operator reads)', () => {
  test.each([
    ["CREATE ROLE x LOGIN PASSWORD 'a''b'", "CREATE ROLE x LOGIN PASSWORD '***'"],
    ["alter user x with encrypted password E'zz\\'q'", "alter user x with encrypted password E'***'"],
    ["ALTER ROLE x PASSWORD'sec'", "ALTER ROLE x PASSWORD'***'"],
    ["ALTER ROLE x PASSWORD/*c*/'sec'", "ALTER ROLE x PASSWORD/*c*/'***'"],
    ["ALTER ROLE x PASSWORD -- c\n'sec'", "ALTER ROLE x PASSWORD -- c\n'***'"],
    // a statement that names a password shows none of its constants
    ["CREATE USER x PASSWORD $t$sec$t$ VALID UNTIL 'infinity'", "CREATE USER x PASSWORD $t$***$t$ VALID UNTIL '***'"],
    ["ALTER ROLE x PASSWORD U&'s!0065c' UESCAPE '!'", "ALTER ROLE x PASSWORD U&'***' UESCAPE '***'"],
    ["ALTER ROLE x PASSWORD 'se'\n  'c'", "ALTER ROLE x PASSWORD '***'\n  '***'"],
    ["ALTER ROLE x PASSWORD N'sec'", "ALTER ROLE x PASSWORD N'***'"],
    ["ALTER ROLE x PASSWORD 'cut-off", "ALTER ROLE x PASSWORD '***"],
    ['ALTER ROLE x PASSWORD$$sec ret$$', 'ALTER ROLE x PASSWORD$$***$$'],
    ["SELECT 1; ALTER ROLE a PASSWORD 'one'; ALTER ROLE b PASSWORD E'two';", "SELECT 1; ALTER ROLE a PASSWORD '***'; ALTER ROLE b PASSWORD E'***';"],
    ["CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'bob', password 'sec')", "CREATE USER MAPPING FOR u SERVER s OPTIONS (user '***', password '***')"],
    ["ALTER USER MAPPING FOR u SERVER s OPTIONS (ADD password 'a', SET \"password\" 'b')", "ALTER USER MAPPING FOR u SERVER s OPTIONS (ADD password '***', SET \"password\" '***')"],
    ["SELECT dblink_connect('host=h password=abc dbname=d')", "SELECT dblink_connect('host=h password=*** dbname=d')"],
    // read with standard_conforming_strings off too, where password is a word outside the literal
    ["SELECT dblink_connect('host=h password=''a b\\''c'' dbname=d')", "SELECT dblink_connect('host=h password=''***''***')"],
    ["CREATE SUBSCRIPTION s CONNECTION 'dbname=x password=sec' PUBLICATION p", "CREATE SUBSCRIPTION s CONNECTION 'dbname=x password=***' PUBLICATION p"],
    ["ALTER SYSTEM SET primary_conninfo = 'host=p user=r password=sec'", "ALTER SYSTEM SET primary_conninfo = 'host=p user=r password=***'"],
    ["SELECT 'postgres://someone:pw@db.example/app' AS url", "SELECT 'postgres://someone:***@db.example/app' AS url"],
    ['SELECT 1 -- postgres://u:pw@h/db', 'SELECT 1 -- postgres://u:***@h/db'],
    ["SELECT dblink('postgresql://h/db?user=u&password=pw', 'SELECT 1')", "SELECT dblink('postgresql://h/db?user=u&password=***', 'SELECT 1')"],
    ["SELECT dblink('postgresql://h/db?user=u&pass%77ord=pw')", "SELECT dblink('postgresql://h/db?user=u&pass%77ord=***')"],
    ["DO $$ BEGIN EXECUTE 'ALTER ROLE x PASSWORD ''sec'''; END $$", "DO $$ BEGIN EXECUTE 'ALTER ROLE x PASSWORD ''***'''; END $$"],
    ["DO $$ BEGIN EXECUTE format('ALTER ROLE %I PASSWORD %L', 'x', 'sec'); END $$", "DO $$ BEGIN EXECUTE format('ALTER ROLE %I PASSWORD %L', '***', '***'); END $$"],
    ["SELECT dblink('host=x password=' || 'sec', 'SELECT 1')", "SELECT dblink('host=x password=' || '***', 'SELECT 1')"],
    ["SELECT E'p\\x61ssword=sec'", "SELECT E'p\\x61ssword=***'"],
    ['SET app.password = sec', 'SET app.password = ***'],
    // a password column, wherever the literal stands
    ["SELECT id FROM users WHERE name = 'bob' AND password = crypt('sec', password)", "SELECT id FROM users WHERE name = '***' AND password = ***('***', password)"],
    ["INSERT INTO users (name, password) VALUES ('bob', 'sec')", "INSERT INTO users (name, password) VALUES ('***', '***')"],
    ["SELECT 1 FROM users WHERE 'sec' = password", "SELECT *** FROM users WHERE '***' = password"],
    ["SELECT 1 FROM users u WHERE u.password::text <> 'sec'", "SELECT *** FROM users u WHERE u.password::text <> '***'"],
    ["SELECT 1 FROM users WHERE password IS NOT DISTINCT FROM 'sec' OR password LIKE 'se%'", "SELECT *** FROM users WHERE password IS NOT DISTINCT FROM '***' OR password LIKE '***'"],
    ["SELECT 1 FROM users WHERE password = ANY (ARRAY['sec'])", "SELECT *** FROM users WHERE password = *** (ARRAY['***'])"],
    ["SELECT 1 FROM users WHERE (password, id) = ('sec', 1)", "SELECT *** FROM users WHERE (password, id) = ('***', ***)"],
    ["UPDATE users SET password_hash = 'sec' WHERE id = 3", "UPDATE users SET password_hash = '***' WHERE id = ***"],
    // a key in JSON or YAML-like text, and URLs of any scheme
    ["SELECT '{\"user\": \"bob\", \"password\": \"s\\\"ec\"}'::jsonb", "SELECT '{\"user\": \"bob\", \"password\": \"***\"}'::jsonb"],
    ["SELECT 'db_password: s ec'", "SELECT 'db_password: ***'"],
    ["SELECT 'mysql://bob:sec@db/app', 'https://bob:sec@api.example/x', 'redis://:sec@cache:6379'", "SELECT 'mysql://bob:***@db/app', 'https://bob:***@api.example/x', 'redis://:***@cache:6379'"],
    // (a conninfo reading of the same text masks up to whitespace)
    ["SELECT 'https://api.example/x?api_secret=sec&v=1'", "SELECT 'https://api.example/x?api_secret=***'"],
    // and no more: names that merely hold the word, URLs without a password, prose after a URL
    ["SELECT id FROM users WHERE password_changed_at < now() - interval '90 days' AND tenant_id = 42", "SELECT id FROM users WHERE password_changed_at < now() - interval '90 days' AND tenant_id = 42"],
    ['SELECT * FROM secrets WHERE id = 5', 'SELECT * FROM secrets WHERE id = 5'],
    ["SELECT 'Visit https://shop.example.com today. Questions: write to help@example.com'", "SELECT 'Visit https://shop.example.com today. Questions: write to help@example.com'"],
    ["SELECT 'http://host:8080/path@v2', 'https://x.example/?ts=12:30&by=@bob'", "SELECT 'http://host:8080/path@v2', 'https://x.example/?ts=12:30&by=@bob'"],
  ])('%j', (sql, masked) => {
    expect(redactStatement(sql)).toBe(masked);
  });
});

describe('redactSecrets (messages, targets)', () => {
  test.each([
    ['postgres://bob:s3cret@db/app', 'postgres://bob:***@db/app'],
    ["host=x password='s 3' user=y", 'host=x password=*** user=y'],
    ['password=abc', 'password=***'],
    ["host=x password='never closed and more words", 'host=x password=***'],
    ['connect to postgresql://u:p%40ss@h:5432/d failed', 'connect to postgresql://u:***@h:5432/d failed'],
    ['postgres://bob@db:5432/app', 'postgres://bob@db:5432/app'],
  ])('%j', (text, masked) => {
    expect(redactSecrets(text)).toBe(masked);
  });

  test('a password written raw in a URL (with "@" and ":" unencoded) or conninfo is the one the parser connects with, and never shown', () => {
    // every character a URL's userinfo may hold raw (not "/", "?", "#", "%" or a space); "@" and ":" often
    const raw = fc.string({ unit: fc.constantFrom(...'@@@:::abcXYZ019!$&()*+,;=._~-[]'), minLength: 1, maxLength: 24 });
    const user = fc.string({ unit: fc.constantFrom(...'abcxyz019_.-'), minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(user, raw, fc.constantFrom('h', 'db.example', '[::1]', '10.0.0.5'), fc.constantFrom('', ':5432'), fc.constantFrom('', '/app', '/app?sslmode=require'), (u, pw, host, port, rest) => {
        const secret = `Q${pw}Z`;
        const url = `postgres://${u}:${secret}@${host}${port}${rest}`;
        expect(parseUrl(url).password).toBe(secret);
        for (const text of [url, `could not connect: ${url} (refused)`]) {
          const out = redactSecrets(text);
          expect(out).not.toContain(secret);
          // what follows the password (the host) is still shown: masked up to the last "@" only
          expect(out).toContain(`${u}:***@${host}`);
        }
        const conninfo = `host=${host.replace(/[[\]]/g, '')} password=${secret} user=${u}`;
        expect(parseConninfo(conninfo).password).toBe(secret);
        expect(redactSecrets(conninfo)).toBe(`host=${host.replace(/[[\]]/g, '')} password=*** user=${u}`);
      }),
      RUNS,
    );
  });

  test('a URL or conninfo string with a random password never shows it', () => {
    fc.assert(
      fc.property(secretArb, fc.integer(), (secret, seed) => {
        const r = rng(seed);
        const url = `postgres://u:${encodeURIComponent(secret)}@h:5432/db`;
        const conninfo = `host=h password='${secret.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}' dbname=d`;
        for (const text of [url, conninfo, `could not connect: ${r.pick([url, conninfo])} (refused)`]) {
          const out = redactSecrets(text);
          expect(out).not.toContain(secret);
          expect(out).not.toContain(encodeURIComponent(secret));
        }
      }),
      RUNS,
    );
  });
});
