/**
 * Hostile data from other clients: query text, role names and database names holding ANSI CSI and
 * OSC sequences (title, hyperlink, clipboard), DCS, 8-bit C1, newlines, carriage returns, other
 * control characters, right-to-left overrides, very long text and SQL-looking text. (PostgreSQL
 * turns non-printable characters in application_name into '?', so there the attack is SQL-looking
 * text and glob/LIKE characters.) In every human view it must print inert; in JSON it must stay
 * valid and exact; as a filter value it must match literally.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type CliResult, parseJson, runCli } from '../support/cli.js';
import { COMMANDS, landed } from '../support/commands.js';
import { dbdoctorSessionsLeft, idleInTransaction, type Incident, longQueries, waitForState } from '../support/incidents.js';
import { expectInert, expectNoStack, strings } from '../support/reliability.js';
import { ROLE_PASSWORD, useServer } from '../support/server.js';

/** One payload with everything a terminal might act on. */
const PAYLOAD =
  'MARK-A\u001b]0;PWNED-TITLE\u0007\u001b[2J\u001b[H\u001b[38;5;196mRED\u001b[0m' +
  '\u001b]8;;https://evil.example/\u0007LINK\u001b]8;;\u0007\u001b]52;c;ZXZpbA==\u0007' +
  '\nSECOND-LINE\rCR\u0008BS\u0001\u007f \u009b31mC1 \u009d0;T\u009c \u001bP+qDCS\u001b\\ ' +
  '\u202eRTL-OVERRIDE\u202c \u2066ISOLATE\u2069 \u200fRLM ' +
  "'; DROP TABLE rel_guard; -- MARK-Z";
/** A role and a database whose names carry the attack (63 bytes at most). */
const ROLE = 'rEVIL\u001b[31m\u001b]0;T\u0007\n\u202eX\u007f';
const DB = 'dEVIL\u001b[2J\n\u202eY';
const SQL_APP = "'; DROP TABLE rel_guard; --";
const LIKE_APP = 'lit_a%b';
const LIKE_DECOY = 'litXaYYb';
const LONG = `SELECT 'MARK-LONG${'x'.repeat(12_000)}' AS filler, pg_sleep(3600)`;

/** With colour forced on, the only escapes are dbdoctor's own 16-colour SGR codes. */
function expectOnlyOwnColours(text: string, where: string): void {
  const stripped = text.replace(/\u001b\[(?:\d{1,2}(?:;\d{1,2})*)?m/g, '');
  expectInert(stripped, `${where} (colour on, after removing dbdoctor's SGR codes)`);
  expect(text).not.toContain('\u001b[38;5;196m');
  expect(text).not.toContain('\u001b]');
}

const incidents: Incident[] = [];
// declared before useServer: afterAll hooks run in declaration order, and these need the server
afterAll(async () => {
  for (const i of incidents.reverse()) await i.release();
});
const server = useServer({ settings: { max_connections: 60, track_activity_query_size: 16384 } });
let truth: { query: string; usename: string; pid: number }[] = [];

beforeAll(async () => {
  const s = server();
  await s.sql('CREATE TABLE rel_guard (id int)');
  await s.sql(`CREATE ROLE "${ROLE.replace(/"/g, '""')}" LOGIN PASSWORD '${ROLE_PASSWORD}' IN ROLE pg_read_all_stats`);
  await s.sql(`CREATE DATABASE "${DB.replace(/"/g, '""')}"`);
  // hostile query text, from a hostile role, in a hostile database; active and idle in transaction
  incidents.push(await longQueries(s, 1, { app: 'rel-hostile-active', user: ROLE, dbname: DB }, 3600, `SELECT pg_sleep(3600) /* ${PAYLOAD} */`));
  incidents.push(await idleInTransaction(s, 1, { app: 'rel-hostile-iit', user: ROLE }, `SELECT $$${PAYLOAD}$$::text`));
  // a blocker whose last statement is hostile, and a session waiting on it, so locks and diagnose show it
  await s.sql(`GRANT ALL ON rel_guard TO "${ROLE.replace(/"/g, '""')}"`);
  const blocker = await s.client({ user: ROLE, application_name: 'rel-hostile-blocker' });
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE rel_guard IN SHARE MODE');
  await blocker.query(`SELECT $$${PAYLOAD}$$::text`);
  const waiter = await s.client({ application_name: 'rel-hostile-waiter' });
  const waiting = waiter.query('INSERT INTO rel_guard VALUES (1)').catch(() => undefined);
  const [bpid, wpid] = [blocker, waiter].map((c) => (c as unknown as { processID: number }).processID) as [number, number];
  await waitForState(s, [wpid], 'active', 'Lock');
  incidents.push({
    pids: [bpid, wpid],
    clients: [blocker, waiter],
    async release() {
      await blocker.query('ROLLBACK').catch(() => undefined);
      await waiting;
      await Promise.all([blocker.end(), waiter.end()].map((p) => p.catch(() => undefined)));
    },
  });
  incidents.push(await longQueries(s, 1, { app: 'rel-hostile-long', user: 'app_user' }, 3600, LONG));
  incidents.push(await idleInTransaction(s, 1, { app: SQL_APP, user: 'app_user' }));
  incidents.push(await idleInTransaction(s, 1, { app: LIKE_APP, user: 'app_user' }));
  incidents.push(await idleInTransaction(s, 1, { app: LIKE_DECOY, user: 'app_user' }));
  truth = await s.sql(`SELECT pid, usename::text AS usename, query FROM pg_stat_activity WHERE application_name LIKE 'rel-hostile-%'`);
}, 90_000);


const views = landed(COMMANDS).filter((c) => c.kind === 'read' || c.kind === 'terminate');

function argsFor(name: string, variant: string[]): string[] {
  if (name === 'terminate') return ['terminate', '--app', 'rel-hostile-*', '--app', SQL_APP, '--include-superusers', '--all-databases', '--dry-run', ...variant];
  const spec = COMMANDS.find((c) => c.name === name)!;
  return [name, ...spec.args, ...variant];
}

describe('hostile text prints inert in every human view', () => {
  const rows = views.flatMap((c) => c.variants.map((v) => [`${c.name} ${v.join(' ')}`.trim(), c.name, v] as const));

  test.each(rows)('%s', async (_label, name, variant) => {
    const s = server();
    const r = await runCli([...argsFor(name, variant), '-d', s.url()], { env: { COLUMNS: '80' } });
    expectNoStack(r);
    expect([0, 1, 2]).toContain(r.exitCode);
    // it ran and showed the incident (a failure would pass the inertness checks vacuously)
    expect(r.stderr).not.toMatch(/^dbdoctor: /m);
    if (name !== 'check' && !variant.includes('nagios')) expect(r.stdout).toMatch(/rel-hostile|MARK|rEVIL/);
    expectInert(r.stdout, `${name} stdout`);
    expectInert(r.stderr, `${name} stderr`);
    // the payload's OSC is shown, its ESC and BEL as escapes: its title text only ever inside that
    expect(r.stdout.split('\\u001b]0;PWNED-TITLE').join('')).not.toContain('PWNED-TITLE');
    // (the nagios status line is one line by design)
    if (!variant.includes('nagios')) for (const line of r.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(160);
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test.each(rows)('%s, colour forced on', async (_label, name, variant) => {
    const s = server();
    const r = await runCli([...argsFor(name, variant), '-d', s.url()], { env: { FORCE_COLOR: '1', COLUMNS: '80' } });
    expectNoStack(r);
    expectOnlyOwnColours(r.stdout, `${name} stdout`);
    expectOnlyOwnColours(r.stderr, `${name} stderr`);
  });

  test('the hostile text is shown (inert), not silently dropped, where sessions are listed', async () => {
    const s = server();
    const outputs: CliResult[] = [];
    for (const [name, variant] of [
      ['connections', ['--list']],
      ['queries', ['--min-duration', '0s']],
    ] as const) {
      if (!views.some((v) => v.name === name)) continue;
      outputs.push(await runCli([name, ...variant, '-d', s.url()], { env: { COLUMNS: '200' } }));
    }
    for (const r of outputs) expect(r.stdout).toMatch(/MARK-A/);
  });

  test('a hostile role name and database name, as dbdoctor connects with them (check and errors)', async () => {
    const s = server();
    const url = s.url({ user: ROLE, password: ROLE_PASSWORD, dbname: DB });
    for (const args of [['check'], ['check', '--json']]) {
      const r = await runCli([...args, '-d', url], { env: { COLUMNS: '80' } });
      expect(r.exitCode).toBe(0);
      if (args.includes('--json')) expect(strings(parseJson(r))).toContain(ROLE);
      else expectInert(r.stdout + r.stderr, 'check as the hostile role');
    }
    // the same names in error messages: wrong password, missing database
    for (const bad of [s.url({ user: ROLE, password: 'wrong', dbname: DB }), s.url({ user: ROLE, password: ROLE_PASSWORD, dbname: `${DB}-missing` })]) {
      for (const name of views.map((v) => v.name)) {
        const r = await runCli([...argsFor(name, []), '-d', bad]);
        expectNoStack(r);
        expect(r.exitCode).toBe(3);
        expectInert(r.stdout + r.stderr, `${name} failing as the hostile role`);
      }
    }
  });
});

describe('the JSON stays valid and exact', () => {
  test.each(views.map((c) => [c.name] as const))('%s --json carries the hostile text byte for byte', async (name) => {
    const s = server();
    // diagnose with a long-query threshold every statement passes: its findings quote the hostile
    // statements whether this runs one second or a minute after they started
    const variant = name === 'connections' ? ['--list'] : name === 'diagnose' ? ['--long-query', '1ms'] : [];
    const r = await runCli([...argsFor(name, variant), '-d', s.url(), '--json']);
    expectNoStack(r);
    const all = strings(parseJson(r));
    // whatever a view carries of a hostile session, it carries exactly (or cut at a documented length)
    for (const v of all.filter((x) => x.includes('MARK-A'))) {
      // diagnose's findings quote a statement as evidence: secrets masked, whitespace collapsed, cut
      // at a documented length; every other view carries the field as the server has it
      const digest = (q: string) => (name === 'diagnose' ? q.replace(/\s+/g, ' ').trim() : q);
      // the statement is the whole value, or is quoted at its end (a finding's summary sentence),
      // cut with '…', which may be followed by the rest of the sentence ('; 1 more group, 2 in
      // all': whether another group passed the threshold depends on how long the run took)
      const quotes = (q: string) => {
        const d = digest(q);
        const at = v.indexOf(d.slice(0, 24));
        const rest = at < 0 ? null : v.slice(at).replace(/…(; .*)?$/s, '');
        return rest !== null && d.startsWith(rest);
      };
      const source = truth.find((t) => quotes(t.query));
      expect({ value: v, source: source?.query ?? 'none' }).toMatchObject({ value: v, source: expect.stringContaining('MARK-A') });
    }
    for (const v of all.filter((x) => x.startsWith('rEVIL'))) expect(v).toBe(ROLE);
    if (['connections', 'queries', 'locks', 'terminate'].includes(name)) {
      // the role name is listed with the sessions
      expect(all).toContain(ROLE);
    }
    if (['queries', 'terminate'].includes(name)) {
      const full = truth.find((t) => t.query.includes('MARK-A') && t.query.startsWith('SELECT pg_sleep'))!.query;
      expect(all).toContain(full);
    }
  });

  test('a very long statement is cut, never split into invalid JSON', async () => {
    const s = server();
    for (const name of views.map((v) => v.name).filter((n) => n === 'queries' || n === 'connections')) {
      const r = await runCli([name, ...(name === 'connections' ? ['--list'] : ['--min-duration', '0s']), '-d', s.url(), '--json']);
      const longOnes = strings(parseJson(r)).filter((x) => x.includes('MARK-LONG'));
      expect(longOnes.length).toBeGreaterThan(0);
      for (const v of longOnes) {
        expect(LONG.startsWith(v)).toBe(true);
        expect(v.length).toBeLessThanOrEqual(2000);
      }
    }
  });
});

describe('filter values match literally', () => {
  const has = (name: string) => views.some((v) => v.name === name);

  test("connections --app \"'; DROP TABLE rel_guard; --\" finds that session and drops nothing", async () => {
    if (!has('connections')) return;
    const s = server();
    const r = await runCli(['connections', '--list', '--app', SQL_APP, '-d', s.url(), '--json']);
    expectNoStack(r);
    const apps = new Set(strings(parseJson(r)).filter((x) => x === SQL_APP || x.startsWith('rel-') || x.startsWith('lit')));
    expect([...apps]).toEqual([SQL_APP]);
    expect(await s.sql(`SELECT to_regclass('rel_guard')::text AS t`)).toEqual([{ t: 'rel_guard' }]);
  });

  test('glob filters are not LIKE patterns: _ and % are literal', async () => {
    if (!has('connections')) return;
    const s = server();
    const r = await runCli(['connections', '--list', '--app', LIKE_APP, '-d', s.url(), '--json']);
    const found = strings(parseJson(r));
    expect(found).toContain(LIKE_APP);
    expect(found).not.toContain(LIKE_DECOY);
  });

  test('terminate --app with SQL in it plans exactly that session, and --user with the hostile role matches it', async () => {
    if (!has('terminate')) return;
    const s = server();
    const target = incidents.find((i) => i.clients.some((c) => (c as unknown as { connectionParameters: { application_name: string } }).connectionParameters.application_name === SQL_APP));
    const r = await runCli(['terminate', '--app', SQL_APP, '--dry-run', '--json', '-d', s.url()]);
    expectNoStack(r);
    const doc = parseJson<{ report: { planned: Array<{ pid: number; app: string }> } }>(r);
    expect(doc.report.planned.map((p) => p.app)).toEqual([SQL_APP]);
    if (target) expect(doc.report.planned.map((p) => p.pid)).toEqual(target.pids);
    const byUser = await runCli(['terminate', '--user', ROLE, '--all-databases', '--dry-run', '--json', '-d', s.url()]);
    const planned = parseJson<{ report: { planned: Array<{ user: string }> } }>(byUser).report.planned;
    // the active one (in the hostile database), the idle-in-transaction one and the blocker
    expect(planned.length).toBe(3);
    for (const p of planned) expect(p.user).toBe(ROLE);
    const byQuery = await runCli(['terminate', '--query', "'; DROP TABLE rel_guard", '--all-databases', '--include-superusers', '--dry-run', '--json', '-d', s.url()]);
    expect(parseJson<{ report: { planned: unknown[] } }>(byQuery).report.planned.length).toBe(3);
    expect(await s.sql(`SELECT to_regclass('rel_guard')::text AS t`)).toEqual([{ t: 'rel_guard' }]);
  });
});

