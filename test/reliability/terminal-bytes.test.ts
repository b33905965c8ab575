/**
 * The raw bytes a real terminal gets (a pseudo-terminal, colour on), from every command and from the
 * whole guided walk, against role names, database names, gids and query text that carry every
 * escape a terminal acts on: OSC 52 (write the clipboard), OSC 0/2 (window title), OSC 8
 * (hyperlinks), DCS, CSI (clear, move), SGR (conceal, 256-colour), 8-bit C1, bidi overrides and
 * zero-width characters. Only escapes dbdoctor writes itself may reach the terminal: its own colour
 * codes, and the cursor and erase sequences of its prompts and spinner.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { inquirerMenu, inquirerPrompter } from '../../src/ui/prompts.js';
import { captureOutput } from '../support/output.js';
import { idleInTransaction, type Incident, longQueries, waitForState } from '../support/incidents.js';
import { KEY, runInPty, type PtyRun } from '../support/pty.js';
import { ROLE_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

const ATTACK = '\u001b]52;c;ZXZpbA==\u0007\u001b]0;PWNED\u0007\u001b]8;;https://evil.example/\u0007L\u001b]8;;\u0007\u001b[8m\u001b[38;5;196m\u001b[2J\u001bP+q\u001b\\\u009b31m\u009d0;T\u009c\u202e\u200b\u2066';
const ROLE = `rEVIL${ATTACK}`.slice(0, 40);
const DB = `dEVIL\u001b]52;c;ZXZpbA==\u0007\u202e\u200b`;
const GID = `gEVIL${ATTACK}`;
const QUERY = `SELECT pg_sleep(3600) /* ${ATTACK} */`;

/** The escape sequences in `raw` that dbdoctor did not write itself (its colours, its prompts' cursor moves). */
function foreignEscapes(raw: string): string[] {
  const bad: string[] = [];
  // C1 controls (8-bit CSI, OSC, DCS, ...) and hidden characters never reach the terminal raw.
  for (const m of raw.matchAll(/[\u0080-\u009f\u202a-\u202e\u2066-\u2069\u200b\u200e\u200f\u061c\ufeff]/g)) bad.push(JSON.stringify(m[0]));
  for (const m of raw.matchAll(/\u001b(\[[0-?]*[ -/]*[@-~]|[\s\S])/g)) {
    const seq = m[0];
    const csi = /^\u001b\[([0-?]*)([ -/]*)([@-~])$/.exec(seq);
    if (!csi) {
      bad.push(JSON.stringify(seq)); // OSC, DCS, APC, PM, SOS, RIS, ...: dbdoctor writes none
      continue;
    }
    const [, params = '', inter, final] = csi;
    if (inter) bad.push(JSON.stringify(seq));
    else if (final === 'm') {
      // SGR: weight, italic, underline, the 16 colours and resets; never conceal, blink or 256-colour.
      if (!params.split(';').every((p) => /^(0|1|2|3|4|22|23|24|3[0-7]|39|9[0-7])?$/.test(p))) bad.push(JSON.stringify(seq));
    } else if (!/^[ABCDEFGHJK]$/.test(final!) && !(params === '?25' && /^[hl]$/.test(final!))) {
      bad.push(JSON.stringify(seq)); // cursor moves and erases only (and showing/hiding the cursor)
    }
  }
  return bad;
}

describe.each([14, 18])('PostgreSQL %i: raw terminal bytes', (major) => {
  let s: TestServer;
  let su: pg.Client;
  let owner: pg.Client;
  const incidents: Incident[] = [];

  beforeAll(async () => {
    s = await startTestServer({ major, settings: { max_prepared_transactions: 3, max_connections: 40 } });
    su = await s.client();
    await su.query(`CREATE ROLE ${su.escapeIdentifier(ROLE)} LOGIN PASSWORD ${su.escapeLiteral(ROLE_PASSWORD)}`);
    await su.query(`CREATE DATABASE ${su.escapeIdentifier(DB)}`);
    incidents.push(await idleInTransaction(s, 2, { app: 'bytes-iit', user: ROLE, dbname: DB }, QUERY.replace('pg_sleep(3600)', '1')));
    incidents.push(await longQueries(s, 1, { app: 'bytes-long', user: ROLE }, 3600, QUERY));
    // A prepared transaction with a hostile gid holding a lock that a session waits for.
    await su.query('CREATE TABLE bytes_t (id int PRIMARY KEY); INSERT INTO bytes_t VALUES (1)');
    owner = await s.client({ application_name: 'bytes-owner' });
    await owner.query('BEGIN');
    await owner.query('DELETE FROM bytes_t WHERE id = 1');
    await owner.query(`PREPARE TRANSACTION ${owner.escapeLiteral(GID)}`);
    const waiter = await s.client({ application_name: 'bytes-waiter' });
    const waiting = waiter.query('DELETE FROM bytes_t WHERE id = 1').catch(() => undefined);
    await waitForState(s, [(waiter as unknown as { processID: number }).processID], 'active', 'Lock');
    incidents.push({
      pids: [],
      clients: [waiter],
      async release() {
        await su.query(`ROLLBACK PREPARED ${su.escapeLiteral(GID)}`).catch(() => undefined);
        await waiting;
        await waiter.end().catch(() => undefined);
      },
    });
    await new Promise((r) => setTimeout(r, 1100));
  }, 90_000);

  afterAll(async () => {
    for (const i of incidents.reverse()) await i.release();
    await Promise.all([owner, su].map((c) => c?.end().catch(() => undefined)));
    await s?.stop();
  }, 60_000);

  const LOW = ['--idle-in-transaction', '1s', '--lock-wait', '1s', '--long-query', '1s'];

  async function finished(pty: PtyRun): Promise<string> {
    try {
      await pty.exit;
      return pty.raw();
    } finally {
      pty.kill();
    }
  }

  test.each([
    ['check', []],
    ['connections', []],
    ['connections', ['--list']],
    ['connections', ['--by', 'user,db,client']],
    ['locks', []],
    ['queries', ['--min-duration', '0s']],
    ['queries', ['--group']],
    ['diagnose', LOW],
    ['diagnose', [...LOW, '--format', 'nagios']],
    ['terminate', ['--app', 'bytes-*', '--all-databases', '--include-superusers', '--dry-run']],
    ['connections', ['--app', ATTACK]],
    // Error lines: commander's echo of a bad flag, and a server error naming a hostile database.
    ['connections', [`--no-such-${ATTACK}`]],
    ['check', ['--dbname', 'URL-OF-A-MISSING-HOSTILE-DATABASE']],
  ])('%s %j: no escape but dbdoctor\'s own', async (cmd, args) => {
    const hostileDb = s.url({ dbname: `nope${ATTACK}` });
    const pty = runInPty([cmd, '-d', s.url(), ...args.map((a) => (a === 'URL-OF-A-MISSING-HOSTILE-DATABASE' ? hostileDb : a))]);
    const raw = await finished(pty);
    expect(raw.length).toBeGreaterThan(40);
    expect(foreignEscapes(raw)).toEqual([]);
  });

  test('terminate on a terminal: its plan, checkbox and question carry no foreign escape', async () => {
    const pty = runInPty(['terminate', '-d', s.url(), '--app', 'bytes-*', '--all-databases', '--include-superusers', '--lock-file', `/tmp/dbdoctor-bytes-${process.pid}-${major}.lock`]);
    try {
      await pty.waitFor(/Sessions to terminate/);
      await pty.type(KEY.enter);
      await pty.waitFor(/\(y\/N\)/);
      await pty.type(KEY.enter); // the default: No
      expect(await pty.exit).toBe(5);
      expect(foreignEscapes(pty.raw())).toEqual([]);
    } finally {
      pty.kill();
    }
  });

  test('the whole guided walk: menus, labels, the echoed commands and the steps it runs', async () => {
    // The walk takes its thresholds from the config file.
    const home = mkdtempSync(join(tmpdir(), 'dbdoctor-bytes-'));
    mkdirSync(join(home, 'dbdoctor'));
    writeFileSync(join(home, 'dbdoctor', 'config.json'), JSON.stringify({ thresholds: { idle_in_transaction: '1s', lock_wait: '1s', long_query: '1s' } }));
    const pty = runInPty(['guide', '-d', s.url()], { env: { XDG_CONFIG_HOME: home, PAGER: 'cat' } });
    try {
      // Every finding, every inspection it offers (read-only), back, and finally quit.
      const first = await pty.choose(/Pick a finding to see its next steps/, /bytes-iit at/);
      expect(first).toMatch(/Quit/);
      await pty.choose(/Next step for:/, /Inspect: dbdoctor connections/);
      await pty.choose(/Next step for:/, /Back to the findings/);
      await pty.choose(/Pick a finding to see its next steps/, /prepared transaction/);
      await pty.choose(/Next step for:/, /Inspect: dbdoctor locks/);
      await pty.choose(/Next step for:/, /Read the runbook/);
      await pty.choose(/Next step for:/, /Back to the findings/);
      await pty.choose(/Pick a finding to see its next steps/, /quer(y|ies) running/);
      await pty.choose(/Next step for:/, /Back to the findings/);
      await pty.choose(/Pick a finding to see its next steps/, /idle_in_transaction_session_timeout is off/);
      await pty.choose(/Next step for:/, /Back to the findings/);
      await pty.choose(/Pick a finding to see its next steps/, /quer(y|ies) running/);
      await pty.choose(/Next step for:/, /Inspect: dbdoctor queries/);
      await pty.choose(/Next step for:/, /Quit/);
      expect(await pty.exit).toBe(0);
      expect(foreignEscapes(pty.raw())).toEqual([]);
    } finally {
      pty.kill();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('the one writer', () => {
  test('whatever a caller passes, only the palette colours and line breaks reach the terminal', () => {
    for (const colour of [false, true]) {
      const { output, out, err } = captureOutput({ tty: true, colour });
      output.out(`head\n${ATTACK}\n${output.style.red('red')} ${output.style.bold.dim('b')}`);
      output.err(`dbdoctor: ${ATTACK}`);
      output.status(`spinner ${ATTACK}`);
      output.status(null);
      const all = [...out, ...err].join('');
      expect(foreignEscapes(all)).toEqual([]);
      expect(all).toContain('head\n');
      // Zero-width and bidi characters are shown, as escapes.
      expect(all).toContain('\\u202e\\u200b\\u2066');
      if (colour) expect(all).toContain('\u001b[31mred\u001b[39m');
      // Without colour, the only escape is the spinner's own erase of its line.
      else expect([...out, ...err].join('').replace(/\r\u001b\[2K/g, '')).not.toContain('\u001b');
    }
  });
});

describe('the prompts', () => {
  test('inquirer is given only sanitized text: messages, labels, descriptions, defaults', async () => {
    let written = '';
    /** One terminal per question (inquirer ends its streams when a prompt is done); Enter answers. */
    const terminal = () => {
      const input = new PassThrough();
      const output = new Writable({
        write(chunk: Buffer, _enc, done) {
          written += chunk.toString('utf8');
          done();
        },
      });
      setTimeout(() => input.write('\r'), 50);
      return { input, output };
    };
    expect(await inquirerPrompter(terminal()).checkbox(`pick ${ATTACK}`, [{ value: 1, name: `one ${ATTACK}`, short: `s ${ATTACK}`, checked: true }])).toEqual([1]);
    expect(await inquirerPrompter(terminal()).confirm(`sure ${ATTACK}?`)).toBe(false);
    expect(await inquirerMenu(terminal()).select(`menu ${ATTACK}`, [{ name: `label ${ATTACK}`, value: 'a', description: `about ${ATTACK}` }])).toBe('a');
    // A default that cannot be shown exactly is not offered (it would also be the answer).
    expect(await inquirerMenu(terminal()).input(`where ${ATTACK}`, { default: `host${ATTACK}` })).toBe('');
    // shown, never removed: every escape of the attack as an escape, its text kept
    // (a choice is cut to the terminal's width)
    const shown = '\\u001b]52;c;ZXZpbA==\\u0007\\u001b]0;PWNED';
    const unwrapped = written.replace(/\n/g, '');
    for (const word of ['pick', 'one', 'sure', 'menu', 'label', 'about', 'where']) expect(unwrapped).toContain(`${word} ${shown}`);
    expect(unwrapped).toContain('\\u009d0;T\\u009c\\u202e\\u200b\\u2066');
    expect(foreignEscapes(written)).toEqual([]);
  });
});
