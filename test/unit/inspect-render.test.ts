/**
 * The renderers of connections, locks and queries: every line within the terminal's width (80,
 * and narrower), hostile text inert, colour only when asked for.
 */
import { describe, expect, test } from '@jest/globals';
import { Chalk } from 'chalk';
import fc from 'fast-check';
import { connectionsReport } from '../../src/core/connections.js';
import { locksReport } from '../../src/core/locks.js';
import { queriesReport } from '../../src/core/queries.js';
import { fitWidths, renderConnections, wrap } from '../../src/render/connections.js';
import { displayWidth, fitWidth } from '../../src/render/width.js';
import { renderLocks } from '../../src/render/locks.js';
import { renderQueries } from '../../src/render/queries.js';
import { hiddenRow, row, snapshot, waiter } from './inspect-fixtures.js';

const plain = new Chalk({ level: 0 });
const colour = new Chalk({ level: 1 });
const EVIL = 'x\u001b[2J\u001b]0;title\u0007\u001b]8;;http://evil\u001b\\link\u001b]8;;\u001b\\\r\nnext\u009b31m\u202eevil\u0000';
const settings = { max_connections: 100, superuser_reserved: 3, reserved: 0, current_user: 'monitor', can_read_all_stats: true };

function incident() {
  const long = 'SELECT a_rather_long_column_name, another_long_column_name FROM some_schema.some_table WHERE x = 1';
  return snapshot([
    ...Array.from({ length: 20 }, (_, i) => row({ pid: 100 + i, application_name: 'api', state_age_ms: 60_000 + i })),
    ...Array.from({ length: 5 }, (_, i) => row({ pid: 200 + i, application_name: 'worker', state: 'idle in transaction', state_age_ms: 700_000, xact_age_ms: 800_000, client_addr: '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', query: long })),
    row({ pid: 300, application_name: 'billing-service-with-a-long-name', state: 'idle in transaction', xact_age_ms: 90_000, state_age_ms: 80_000, client_hostname: 'billing-7f9c6d5b8-abcde.billing.svc.cluster.local' }),
    waiter(301, [300], { application_name: 'checkout' }),
    waiter(302, [301], { application_name: 'checkout', wait_lock: { locktype: 'tuple', mode: 'ExclusiveLock', relation: 'public.a_table_with_a_really_long_name_for_testing', wait_ms: 4_000 } }),
    row({ pid: 400, application_name: 'reports', state: 'active', wait_event_type: 'Timeout', wait_event: 'PgSleep', query_age_ms: 3_600_000, state_age_ms: 3_600_000, xact_age_ms: 3_600_000, query: long }),
    row({ pid: 500, application_name: 'leaky', state: 'active', wait_event_type: 'Client', wait_event: 'ClientRead', query_age_ms: 40_000, state_age_ms: 40_000, xact_age_ms: 40_000, query: long }),
    // (client_addr and the waited lock's fields: a snapshot file, --from, can carry any text there)
    row({ pid: 600, application_name: EVIL, usename: EVIL, datname: EVIL, client_addr: EVIL, client_hostname: EVIL, state: 'active', wait_event_type: 'Timeout', wait_event: 'PgSleep', query_age_ms: 50_000, state_age_ms: 50_000, xact_age_ms: 50_000, query: `SELECT 1 /* ${EVIL} */` }),
    waiter(601, [600], { application_name: EVIL, usename: EVIL, query: EVIL, client_addr: EVIL, wait_lock: { locktype: EVIL, mode: EVIL, relation: EVIL, wait_ms: 1_000 } }),
    hiddenRow({ pid: 700, application_name: 'someone-else' }),
    row({ pid: 800, backend_type: 'autovacuum worker', state: 'active', application_name: '' }),
  ]);
}

function allOutputs(width: number, style = plain): string[] {
  const snap = incident();
  const zero = { activeMs: 0, transactionMs: 0, idleInTransactionMs: 0, clientWaitMs: 0 };
  return [
    renderConnections(connectionsReport(snap, settings), style, width),
    renderConnections(connectionsReport(snap, settings, { by: ['app', 'user', 'db', 'client', 'state'], list: true }), style, width),
    renderLocks(locksReport(snap, settings), style, width),
    renderQueries(queriesReport(snap, settings, { thresholds: zero, group: true }), style, width),
  ];
}

function expectFits(out: string, width: number, measure = (l: string) => l.length): void {
  const over = out.split('\n').filter((l) => measure(l) > width);
  if (over.length) throw new Error(`lines over ${width} columns:\n${over.join('\n')}\n--- in:\n${out}`);
}

describe('widths', () => {
  test.each([80, 100, 60])('every line fits %i columns', (width) => {
    for (const out of allOutputs(width)) expectFits(out, width);
  });
  test('with colour, the visible width still fits', () => {
    for (const out of allOutputs(80, colour)) {
      expect(out).toMatch(/\u001b\[\d+m/);
      expectFits(out, 80, displayWidth);
    }
  });
  test('CJK and emoji in names and queries: columns align by display width, and nothing is cut inside a character', () => {
    const names = ['注文サービス', '👩‍💻-worker', 'café-api', 'plain'];
    const snap = snapshot(
      names.map((app, i) =>
        row({ pid: 900 + i, application_name: app, usename: `用户${i}`, state: 'idle in transaction', state_age_ms: 60_000, query: `SELECT '${'顧客'.repeat(30)}' /* ${app} */` }),
      ),
    );
    const out = renderConnections(connectionsReport(snap, settings, { by: ['app', 'user'], list: true }), plain, 80);
    expectFits(out, 80, displayWidth);
    // The list: every session row puts its state column at the same display column.
    const rows = out.split('\n').filter((l) => /^90\d /.test(l));
    expect(rows).toHaveLength(4);
    const at = rows.map((l) => displayWidth(l.slice(0, l.indexOf('idle in xact'))));
    expect(new Set(at).size).toBe(1);
    // No half characters: no lone surrogate, no emoji sequence cut after its joiner.
    expect(out).not.toMatch(/\p{Cs}|\u200d(?!\p{Extended_Pictographic})/u);
    expect(fitWidth('日本語テキスト', 6)).toBe('日本…');
    expect(fitWidth('👩‍💻👩‍💻👩‍💻', 5)).toBe('👩‍💻👩‍💻…');
    // an ESC [ that is no colour code is cut as characters (it used to loop forever)
    expect(fitWidth('x\u001b[2Jabcdef', 5)).toBe('x\u001b[2J…\u001b[0m');
    expect(displayWidth(fitWidth(EVIL, 5))).toBeLessThanOrEqual(5);
  });
  test('fitWidths: needs met when they fit; soft widths give way before min widths', () => {
    const cols = [
      { head: 'a', cells: ['1234567890'], min: 2, soft: 6 },
      { head: 'b', cells: ['x'.repeat(40)], min: 4, soft: 20 },
    ];
    expect(fitWidths(cols, 100, 0)).toEqual([10, 40]);
    expect(fitWidths(cols, 26, 0)).toEqual([6, 20]);
    expect(fitWidths(cols, 10, 0)).toEqual([5, 5]);
    expect(fitWidths(cols, 1, 0)).toEqual([2, 4]);
  });
  test('fitWidths over a column of 262,143 cells (one per session of a full server) without overflowing the stack', () => {
    const cells = Array.from({ length: 262_143 }, (_, i) => String(i + 1));
    expect(fitWidths([{ head: 'pid', cells }, { head: 'app', cells: cells.map(() => '') }], 100, 0)).toEqual([6, 3]);
  });
  test('wrap keeps leading spaces and runs of spaces, and indents continuations', () => {
    expect(wrap('  a  b c', 80)).toBe('  a  b c');
    expect(wrap('aaa bbb ccc', 7, '  ')).toBe('aaa bbb\n  ccc');
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z]{1,12}$/), { maxLength: 30 }), fc.integer({ min: 20, max: 100 }), (words, width) => {
        for (const line of wrap(words.join(' '), width, '  ').split('\n')) expect(line.length).toBeLessThanOrEqual(width);
      }),
    );
  });
  test('fitWidth counts visible characters and closes colour', () => {
    const s = `${colour.red('abcdef')}ghij`;
    const cut = fitWidth(s, 5);
    expect(displayWidth(cut)).toBe(5);
    expect(cut.endsWith('\u001b[0m')).toBe(true);
    expect(fitWidth('abc', 5)).toBe('abc');
  });
});

describe('hostile text', () => {
  test('no escape sequence, control character or bidi override reaches the terminal', () => {
    for (const out of allOutputs(200)) {
      expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      // the OSC is shown (its ESC as an escape), never acted on: its text only inside it
      expect(out).not.toMatch(/(?<!\\u001b\]0;)title/);
    }
    const list = allOutputs(200)[1]!;
    // Hidden and control characters are shown as escapes, never passed.
    expect(list).toMatch(/^600 +x\\u001b\[2J\\u001b\]0;/m);
  });
  test('with colour, only our own SGR codes appear', () => {
    for (const out of allOutputs(200, colour)) {
      expect(out.replace(/\u001b\[[0-9;]*m/g, '')).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    }
  });
});

describe('content', () => {
  test('connections: the capacity line first, then the verdict and the groups', () => {
    const out = renderConnections(connectionsReport(incident(), settings), plain, 80);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^capacity 33\/100 client backends; headroom 64 of 97 slots for ordinary/);
    expect(out).toMatch(/│ idle +│ api +│ 20 │ 1m +│ 1m +│ -/);
    expect(out).toContain('other processes, not counted above (1): autovacuum worker');
  });
  test('locks: the root with the most blocked first, its details and tree', () => {
    const out = renderLocks(locksReport(incident(), settings), plain, 80);
    expect(out.indexOf('root 300')).toBeLessThan(out.indexOf('root 600'));
    expect(out).toContain('  blocks   1 directly, 2 in total; longest wait 5s');
    expect(out).toMatch(/ {2}└─ 301 {2}checkout {2}waits 5s {2}ShareLock transactionid/);
    expect(out).toMatch(/dbdoctor terminate --pid 600 --cancel-first/);
  });
});
