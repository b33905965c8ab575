/**
 * Other clients' passwords never leave (issue #14, item 4), on real servers (PostgreSQL 14 and 18):
 * real sessions whose current or last statement carries a password, in the spellings PostgreSQL's
 * lexer accepts (every string-constant form, comments and no space before the literal, constants
 * continued over lines, standard_conforming_strings off, USER MAPPING options, conninfo and URLs
 * in dblink, subscriptions and ALTER SYSTEM, DO blocks and format(), a glued dollar quote and a bare
 * URL in failed statements, a text cut by track_activity_query_size inside the literal), and every
 * view that shows statements, run through the built binary: connections --list, queries (and
 * --group), locks, diagnose (text, JSON, nagios), terminate's plan (text, JSON) and a real
 * terminate with its audit log. No piece of any password appears in stdout, stderr, JSON or the
 * audit log, in any encoding the statement used.
 *
 * First, the spellings themselves are checked against the server: each literal form reads back as
 * the secret, and the conninfo and URL encodings log in through dblink (libpq's own parser).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { parseJson, runCli } from '../support/cli.js';
import { dbdoctorSessionsLeft, waitFor } from '../support/incidents.js';
import { expectNoStack } from '../support/reliability.js';
import { conninfoValue, type Lit, LITERAL_FORMS, type LiteralForm, literal, type Piece, type Rng, rng, urlPassword } from '../support/secret-statements.js';
import { ROLE_PASSWORD, useServer } from '../support/server.js';

/** Password characters for these runs: every quoting-special one, no whitespace (views fold it). */
const CHARS = [..."abcXYZ0189'\"\\$@:/%=&?#;(),-_.!~+<>|é€ж"];

function secretOf(r: Rng, len = 10): string {
  let s = 'Kq7';
  for (let i = 0; i < len; i++) s += r.pick(CHARS);
  return `${s}Zv`;
}

/** A statement with one password in it: its text and where the password's encoding sits. */
interface Spelling extends Lit {
  label: string;
  secret: string;
  /** How the session runs it: waiting behind the holder's lock (active), or run and failed/done (idle). */
  how: 'waits' | 'idle' | 'holds';
  /** Run `SET standard_conforming_strings = off` in the session first. */
  scsOff?: boolean;
}

function place(before: string, lit: Lit, after: string): Lit {
  const k = before.length;
  return { text: before + lit.text + after, secretStart: k + lit.secretStart, secretEnd: k + lit.secretEnd, holes: lit.holes.map(([a, b]) => [a + k, b + k]) };
}

const only = (secret: string): Piece[] => [{ text: secret, secret: true }];
const inside = (before: string, secret: string, after: string): Piece[] => [{ text: before }, { text: secret, secret: true }, { text: after }];
const raw = (text: string): Lit => ({ text, secretStart: 0, secretEnd: text.length, holes: [] });

/** The spellings, each with its own password. The roles they name are ones app_user may not alter. */
function spellings(r: Rng): Spelling[] {
  const out: Spelling[] = [];
  const add = (label: string, how: Spelling['how'], make: (secret: string) => Lit, opts: { scsOff?: boolean; secret?: (s: string) => string } = {}) => {
    const base = secretOf(r);
    const secret = opts.secret ? opts.secret(base) : base;
    out.push({ ...make(secret), label, secret, how, scsOff: opts.scsOff ?? false });
  };
  const t = 'rel_mask_target';
  add('PASSWORD standard literal', 'waits', (s) => place(`ALTER ROLE ${t} PASSWORD `, literal('q', only(s), r), ''));
  add('ENCRYPTED PASSWORD, comment, E literal', 'waits', (s) => place(`ALTER ROLE ${t} WITH ENCRYPTED PASSWORD/*c*/`, literal('e', only(s), r), " VALID UNTIL 'infinity'"));
  add('PASSWORD, line comment, U& with UESCAPE', 'waits', (s) => place(`ALTER USER ${t} PASSWORD -- the new one\n`, literal('u', only(s), r), ''));
  add('CREATE ROLE, dollar quote with a tag', 'waits', (s) => place('CREATE ROLE rel_mask_new LOGIN PASSWORD ', literal('dollar', only(s), r), ''));
  add('PASSWORD with no space, continued over lines', 'waits', (s) => place(`alter role ${t} password`, literal('cont', only(s), r), ''));
  add('standard_conforming_strings off', 'waits', (s) => place(`ALTER ROLE ${t} PASSWORD `, literal('off', only(s), r), ''), { scsOff: true });
  add(
    'standard_conforming_strings off, conninfo in escapes',
    'waits',
    (s) => {
      // "password" itself escaped: only a reading with backslash escapes finds the conninfo
      const v = conninfoValue(s, r);
      const off = (x: string) => x.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
      const secret = literal('off', only(v.text.slice(v.inner[0], v.inner[1])), r);
      const head = `'host=db \\x70assword=${off(v.text.slice(0, v.inner[0]))}`;
      return place('SELECT dblink_connect(', { text: `${head}${secret.text.slice(1, -1)}${off(v.text.slice(v.inner[1]))}'`, secretStart: head.length, secretEnd: head.length + secret.text.length - 2, holes: [] }, ')');
    },
    { scsOff: true },
  );
  add('USER MAPPING OPTIONS', 'waits', (s) => place("CREATE USER MAPPING FOR app_user SERVER rel_mask_srv OPTIONS (user 'bob', password ", literal('q', only(s), r), ')'));
  // N'' is no plain string constant to the grammar: a syntax error here, and shown all the same
  add('ALTER USER MAPPING ADD "password" N literal (a syntax error)', 'idle', (s) => place('ALTER USER MAPPING FOR app_user SERVER rel_mask_srv OPTIONS (ADD "password"', literal('n', only(s), r), ')'));
  add('dblink_connect conninfo', 'waits', (s) => {
    const v = conninfoValue(s, r);
    return place('SELECT dblink_connect(', literal('q', inside(`host=db port=5432 password=${v.text.slice(0, v.inner[0])}`, v.text.slice(v.inner[0], v.inner[1]), `${v.text.slice(v.inner[1])} dbname=app`), r), ')');
  });
  add('CREATE SUBSCRIPTION CONNECTION, E literal', 'waits', (s) => {
    const v = conninfoValue(s, r);
    return place('CREATE SUBSCRIPTION rel_mask_sub CONNECTION ', literal('e', inside(`host=db password=${v.text.slice(0, v.inner[0])}`, v.text.slice(v.inner[0], v.inner[1]), v.text.slice(v.inner[1])), r), ' PUBLICATION p');
  });
  add('ALTER SYSTEM primary_conninfo, quoted conninfo value', 'waits', (s) =>
    place('ALTER SYSTEM SET primary_conninfo = ', literal('q', inside("host=db user=r password='", s.replace(/\\/g, '\\\\').replace(/'/g, "\\'"), "'"), r), ''),
  );
  add('dblink URL', 'waits', (s) => place('SELECT * FROM dblink(', literal('q', inside('postgresql://bob:', urlPassword(s, r), '@db/app'), r), ", 'SELECT 1') AS t(x int)"));
  add('DO block, format() %L', 'waits', (s) => place(`DO $$ BEGIN EXECUTE format('ALTER ROLE %I PASSWORD %L', '${t}', `, literal('q', only(s), r), '); END $$'));
  add('DO block, EXECUTE string', 'waits', (s) => place('DO $do$ BEGIN EXECUTE ', literal('q', inside(`ALTER ROLE ${t} PASSWORD '`, s.replace(/'/g, "''"), "'"), r), '; END $do$'));
  add('cut by track_activity_query_size inside the literal', 'waits', (s) => place(`/* ${'p'.repeat(900)} */ ALTER ROLE ${t} PASSWORD `, literal('q', only(s), r), ''), {
    secret: (s) => `${s}${s.slice(3)}${s.slice(3)}${s.slice(3)}${s.slice(3)}${s.slice(3)}`,
  });
  add('glued dollar quote (a syntax error, shown all the same)', 'idle', (s) => place(`ALTER ROLE ${t} PASSWORD`, literal('dollar', only(s), r), ''));
  add('URL in a comment', 'idle', (s) => place('SELECT 1 -- reach it at postgres://bob:', raw(encodeURIComponent(s)), '@db/app'));
  add('bare URL (a syntax error)', 'idle', (s) => place('postgres://bob:', raw(encodeURIComponent(s)), '@db/app'));
  add('the lock holder: a URL in its last statement', 'holds', (s) => place('SELECT pg_advisory_xact_lock(4242), ', literal('q', inside('postgres://bob:', urlPassword(s, r), '@db/x'), r), ' AS target'));
  return out;
}

/**
 * Windows (5 characters) of each password's encoding, and the password, as raw and JSON text,
 * less those that occur in the statements outside the passwords (or in their JSON form).
 */
function forbidden(all: Spelling[], prefixFor: (s: Spelling) => string): Map<string, string> {
  const out = new Map<string, string>();
  // the statements with every password masked: what may legitimately show
  let skeleton = '';
  const segmentsOf = (sp: Spelling): Array<[number, number]> => {
    const segs: Array<[number, number]> = [];
    let at = sp.secretStart;
    for (const [a, b] of [...sp.holes, [sp.secretEnd, sp.secretEnd] as [number, number]]) {
      if (Math.min(a, sp.secretEnd) > at) segs.push([at, Math.min(a, sp.secretEnd)]);
      at = Math.max(at, b);
    }
    return segs;
  };
  for (const sp of all) {
    let from = 0;
    for (const [a, b] of segmentsOf(sp)) {
      skeleton += `${sp.text.slice(from, a)}***`;
      from = b;
    }
    skeleton += `${sp.text.slice(from)}\n${prefixFor(sp)}\n`;
  }
  const json = (w: string) => JSON.stringify(w).slice(1, -1);
  // JSON writes a backslash as two: a window may look like the escaped text of the skeleton
  const jsonSkeleton = json(skeleton);
  for (const sp of all) {
    out.set(sp.secret, sp.label);
    out.set(json(sp.secret), sp.label);
    for (const [a, b] of segmentsOf(sp)) {
      const seg = sp.text.slice(a, b);
      for (let i = 0; i + 5 <= seg.length; i++) {
        const w = seg.slice(i, i + 5);
        // (digits and the punctuation around numbers are no evidence: JSON is full of them, as
        // `"pid": 10021,` holds the `0021,` of a U& escape)
        if (w.includes('*') || /^[\d.,:\s[\]{}-]+$/.test(w) || skeleton.includes(w) || jsonSkeleton.includes(w)) continue;
        out.set(w, sp.label);
        out.set(json(w), sp.label);
      }
    }
  }
  return out;
}

function expectNoLeak(texts: Record<string, string>, bad: Map<string, string>): void {
  for (const [where, text] of Object.entries(texts)) {
    for (const [w, label] of bad) {
      const at = text.indexOf(w);
      if (at >= 0) throw new Error(`${where}: a piece of the password of "${label}" (${JSON.stringify(w)}) shows:\n…${text.slice(Math.max(0, at - 120), at + 60)}…`);
    }
  }
}

describe.each([14, 18])('PostgreSQL %i', (major) => {
  const server = useServer({ major, settings: { max_connections: 60 } });

  describe('the spellings are what the server reads', () => {
    test('every literal form reads back as the password', async () => {
      const s = server();
      expect(s.major).toBe(major);
      const c = await s.client();
      try {
        for (const form of LITERAL_FORMS) {
          await c.query(`SET standard_conforming_strings = ${form === 'off' ? 'off' : 'on'}`);
          await c.query('SET escape_string_warning = off');
          for (let seed = 0; seed < 40; seed++) {
            const r = rng(seed * 7919 + form.length);
            const secret = `${secretOf(r, 12)}${r.pick(['', '\n', ' \t', '😀'])}`;
            const lit = literal(form as LiteralForm, only(secret), r);
            const [row] = (await c.query<{ v: string }>(`SELECT ${lit.text}::text AS v`)).rows;
            expect({ form, lit: lit.text, v: row?.v }).toEqual({ form, lit: lit.text, v: secret });
          }
        }
      } finally {
        await c.end();
      }
    });

    test('the conninfo and URL encodings log in through libpq (dblink)', async () => {
      const s = server();
      await s.sql('CREATE DATABASE rel_mask_lib');
      const c = await s.client({ dbname: 'rel_mask_lib' });
      try {
        await c.query('CREATE EXTENSION dblink');
        for (let seed = 0; seed < 8; seed++) {
          const r = rng(seed + 101);
          const secret = secretOf(r, 12);
          await c.query(`DROP ROLE IF EXISTS rel_mask_login; CREATE ROLE rel_mask_login LOGIN PASSWORD '${secret.replace(/'/g, "''")}'`);
          const v = conninfoValue(secret, r);
          for (const conn of [`host=127.0.0.1 port=${s.port} user=rel_mask_login dbname=postgres password=${v.text}`, `postgresql://rel_mask_login:${urlPassword(secret, r)}@127.0.0.1:${s.port}/postgres`]) {
            const [row] = (await c.query<{ ok: string }>('SELECT dblink_connect($1, $2) AS ok', ['v', conn])).rows;
            expect({ conn, ok: row?.ok }).toEqual({ conn, ok: 'OK' });
            await c.query("SELECT dblink_disconnect('v')");
          }
        }
      } finally {
        await c.query('DROP ROLE IF EXISTS rel_mask_login').catch(() => undefined);
        await c.end();
        await s.sql('DROP DATABASE rel_mask_lib WITH (FORCE)');
      }
    });
  });

  describe('sessions whose statements carry passwords', () => {
    const clients: pg.Client[] = [];
    const waiting: Array<Promise<unknown>> = [];
    let dir: string;
    let all: Spelling[] = [];
    let bad = new Map<string, string>();
    const WAIT_PREFIX = 'SELECT pg_advisory_lock(4242); ';

    beforeAll(async () => {
      const s = server();
      dir = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-mask-'));
      await s.sql(`CREATE ROLE rel_mask_target LOGIN PASSWORD '${ROLE_PASSWORD}'`);
      all = spellings(rng(major));
      bad = forbidden(all, (sp) => (sp.how === 'waits' ? WAIT_PREFIX : ''));
      // every password has pieces to look for (the check is not vacuous)
      for (const sp of all) expect([sp.label, [...bad.values()].filter((l) => l === sp.label).length > 6]).toEqual([sp.label, true]);
      const open = async (app: string) => {
        const c = new pg.Client({ connectionString: s.url({ user: 'app_user', password: ROLE_PASSWORD }), application_name: app });
        c.on('error', () => undefined);
        await c.connect();
        clients.push(c);
        return c;
      };
      const holder = all.find((sp) => sp.how === 'holds')!;
      const h = await open('rel-mask-holder');
      await h.query('BEGIN');
      await h.query(holder.text);
      for (const [i, sp] of all.entries()) {
        if (sp.how === 'holds') continue;
        const c = await open(`rel-mask-${i}`);
        if (sp.scsOff) await c.query('SET standard_conforming_strings = off; SET escape_string_warning = off');
        if (sp.how === 'idle') await c.query(sp.text).catch(() => undefined);
        else waiting.push(c.query(WAIT_PREFIX + sp.text).catch(() => undefined));
      }
      const waiters = all.filter((sp) => sp.how === 'waits').length;
      await waitFor(s, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'rel-mask-%' AND wait_event_type = 'Lock'", [], (rows) => rows[0]?.n === waiters);
      // the cut one is cut inside its password, as the test means it
      const cutOne = all.find((sp) => sp.label.startsWith('cut by'))!;
      const cut = (await s.sql<{ query: string }>("SELECT query FROM pg_stat_activity WHERE query LIKE '%/* ppp%'"))[0]!.query;
      expect(cut.length).toBeGreaterThan(WAIT_PREFIX.length + cutOne.secretStart);
      expect(cut.length).toBeLessThan(WAIT_PREFIX.length + cutOne.secretEnd);
    }, 60_000);

    afterAll(async () => {
      const s = server();
      await s.sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'rel-mask-%'").catch(() => undefined);
      await Promise.all(waiting);
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await s.sql('DROP ROLE IF EXISTS rel_mask_target').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });

    const views: Array<[string, string[]]> = [
      ['connections --list', ['connections', '--list']],
      ['connections --list --json', ['connections', '--list', '--json']],
      ['queries', ['queries', '--min-duration', '0s']],
      ['queries --json', ['queries', '--min-duration', '0s', '--json']],
      ['queries --group', ['queries', '--min-duration', '0s', '--group']],
      ['queries --group --json', ['queries', '--min-duration', '0s', '--group', '--json']],
      ['locks', ['locks']],
      ['locks --json', ['locks', '--json']],
      ['diagnose', ['diagnose', '--lock-wait', '0s', '--idle-in-transaction', '0s', '--same-statement-age', '0s']],
      ['diagnose --verbose', ['diagnose', '--verbose', '--lock-wait', '0s', '--idle-in-transaction', '0s', '--same-statement-age', '0s']],
      ['diagnose --json', ['diagnose', '--lock-wait', '0s', '--idle-in-transaction', '0s', '--same-statement-age', '0s', '--json']],
      ['diagnose --format nagios', ['diagnose', '--lock-wait', '0s', '--idle-in-transaction', '0s', '--format', 'nagios']],
      ['terminate plan --dry-run', ['terminate', '--app', 'rel-mask-*', '--max', '50', '--dry-run']],
      ['terminate plan --dry-run --json', ['terminate', '--app', 'rel-mask-*', '--max', '50', '--dry-run', '--json']],
      ['terminate plan, not confirmed (no terminal, no --yes)', ['terminate', '--app', 'rel-mask-*', '--max', '50']],
    ];

    test.each(views)('%s: no piece of any password', async (_label, args) => {
      const s = server();
      const r = await runCli([...args, '-d', s.url({ password: '' })], { env: { PGPASSWORD: s.password, COLUMNS: '4000' } });
      expectNoStack(r);
      // the statements are shown, masked (the check is not vacuous; nagios is one status line, and
      // diagnose's default text quotes the statements only in its titles, cut: --verbose has them) ...
      if (!args.includes('nagios') && !(args[0] === 'diagnose' && !args.includes('--verbose') && !args.includes('--json'))) expect(r.stdout + r.stderr).toMatch(/rel_mask_target PASSWORD.{0,12}\*\*\*|bob:\*\*\*@db/);
      // ... and no password is
      expectNoLeak({ stdout: r.stdout, stderr: r.stderr }, bad);
    });

    test('JSON views show the statements, masked: the password keyword and the literal\'s quotes stay', async () => {
      const s = server();
      const r = await runCli(['connections', '--list', '--json', '-d', s.url({ password: '' })], { env: { PGPASSWORD: s.password } });
      const sessions = parseJson<{ report: { sessions: Array<{ application_name: string; query: string | null }> } }>(r).report.sessions;
      const first = sessions.find((x) => x.application_name === 'rel-mask-0')!;
      expect(first.query).toBe(`${WAIT_PREFIX}ALTER ROLE rel_mask_target PASSWORD '***'`);
      expect(sessions.filter((x) => x.application_name.startsWith('rel-mask-')).length).toBe(all.length);
    });

    test('terminate --yes --json --audit-log: the report, the audit log: no piece of any password', async () => {
      const s = server();
      const audit = join(dir, 'audit.jsonl');
      // the waiters first, then the holder (so no waiter takes the lock and changes under the run)
      const outputs: Record<string, string> = {};
      for (const [label, apps] of [
        ['waiters', ['--app', 'rel-mask-?', '--app', 'rel-mask-??']],
        ['holder', ['--app', 'rel-mask-holder']],
      ] as const) {
        const r = await runCli(['terminate', ...apps, '--max', '50', '--yes', '--json', '--audit-log', audit, '--lock-file', join(dir, 'lock'), '-d', s.url({ password: '' })], {
          env: { PGPASSWORD: s.password },
        });
        expectNoStack(r);
        expect({ label, exit: r.exitCode, summary: parseJson<{ report: { summary: string } }>(r).report.summary }).toMatchObject({ label, exit: 0 });
        outputs[`${label} stdout`] = r.stdout;
        outputs[`${label} stderr`] = r.stderr;
      }
      const log = readFileSync(audit, 'utf8');
      const intents = log.split('\n').filter((l) => l.includes('"event":"intent"'));
      expect(intents.length).toBe(all.length);
      expect(log).toMatch(/PASSWORD/);
      expectNoLeak({ ...outputs, 'audit log': log }, bad);
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    });
  });
});
