/**
 * The guided walk (`dbdoctor guide`, a terminal command) under the reliability suite's faults, in
 * a real pseudo-terminal: a server that is down, hostile text from other clients (checked on the
 * raw terminal bytes, so nothing the walk draws may carry a client's escape sequence), and a
 * known password that must never reach the screen. demo and runbook are covered by the bad-input
 * and secrets suites; runbook reads no client data.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { freePort } from '../../src/db/embedded.js';
import { COMMANDS, landed } from '../support/commands.js';
import { dbdoctorSessionsLeft, idleInTransaction, type Incident } from '../support/incidents.js';
import { KEY, type PtyRun, runInPty } from '../support/pty.js';
import { ROLE_PASSWORD, useServer } from '../support/server.js';

const hasGuide = landed(COMMANDS).some((c) => c.name === 'guide');
const PAYLOAD = "MARK\u001b]0;PWNED-TITLE\u0007\u001b[38;5;196mRED\u001b]8;;https://evil.example/\u0007L\u001b]8;;\u0007\nX\u202eRTL\u2066I\u2069 \u009b31m '; DROP TABLE t; --";
const HOSTILE_BYTES = ['\u001b]0;', '\u001b[38;5;196m', '\u001b]8;;', '\u202e', '\u2066', '\u009b'];
/** The payload's text, shown (its escapes as escapes, never removed): only ever inside what shows them. */
const SHOWN_ONLY = [/(?<!\\u001b\]0;)PWNED-TITLE/, /(?<!\\u001b\]8;;https:\/\/)evil\.example/];

const incidents: Incident[] = [];
afterAll(async () => {
  for (const i of incidents.splice(0).reverse()) await i.release();
});
const server = useServer({ settings: { max_connections: 40 } });

let home: string;
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-guide-'));
  mkdirSync(join(home, 'config', 'dbdoctor'), { recursive: true });
  writeFileSync(join(home, 'config', 'dbdoctor', 'config.json'), JSON.stringify({ thresholds: { idle_in_transaction: '1s' } }));
});
afterAll(() => {
  rmSync(home, { recursive: true, force: true });
});
const env = () => ({ XDG_CONFIG_HOME: join(home, 'config'), XDG_STATE_HOME: join(home, 'state') });

/** The pty run and every raw byte it drew (escapes included). */
function start(args: string[]): { pty: PtyRun; raw: () => string } {
  const pty = runInPty(args, { env: env(), cwd: home });
  let raw = '';
  pty.child.stdout!.on('data', (d: Buffer) => {
    raw += d.toString('utf8');
  });
  return { pty, raw: () => raw };
}

async function finish(pty: PtyRun): Promise<number> {
  const code = await Promise.race([pty.exit, new Promise<number>((r) => setTimeout(() => r(-1), 20_000).unref())]);
  pty.kill();
  return code;
}

describe('guide', () => {
  test('the server is down: the cause in one line, a way out, exit 2 on quitting, no stack trace', async () => {
    if (!hasGuide) return;
    const port = await freePort();
    const { pty } = start(['guide', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres']);
    await pty.waitFor(/nothing listens on 127\.0\.0\.1:\d+/);
    await pty.choose(/Could not connect\. What now\?/, /Quit/);
    expect(await finish(pty)).toBe(2);
    expect(pty.text()).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  });

  test('hostile text from other clients never reaches the terminal as escapes', async () => {
    if (!hasGuide) return;
    const s = server();
    await s.sql(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rel_evil') THEN CREATE ROLE rel_evil LOGIN PASSWORD '${ROLE_PASSWORD}'; END IF; END $$`);
    incidents.push(await idleInTransaction(s, 3, { app: 'rel-guide-leak', user: 'rel_evil' }, `SELECT $$${PAYLOAD}$$::text`));
    await new Promise((r) => setTimeout(r, 1200));
    const { pty, raw } = start(['guide', '-d', s.url()]);
    try {
      await pty.choose(/Pick a finding to see its next steps/, /rel-guide-leak/);
      await pty.waitFor(/Next step for:[\s\S]*navigate/);
      // let it draw, then leave with Ctrl-C
      await pty.type(KEY.ctrlC);
      expect(await finish(pty)).toBe(130);
      expect(pty.text()).toMatch(/MARK/);
      for (const bad of HOSTILE_BYTES) expect({ bad, found: raw().includes(bad) }).toEqual({ bad, found: false });
      for (const bad of SHOWN_ONLY) expect(raw()).not.toMatch(bad);
    } finally {
      pty.kill();
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test('a known password never reaches the screen, connected or not', async () => {
    if (!hasGuide) return;
    const s = server();
    for (const [dbname, expectMenu] of [
      ['postgres', /Pick a finding|What next|Diagnose again/],
      ['rel_no_such_db', /Could not connect\. What now\?/],
    ] as const) {
      const { pty, raw } = start(['guide', '-d', s.url({ dbname })]);
      try {
        await pty.waitFor(expectMenu);
        await pty.type(KEY.ctrlC);
        await finish(pty);
        expect(raw()).not.toContain(s.password);
        expect(raw()).not.toContain(encodeURIComponent(s.password));
      } finally {
        pty.kill();
      }
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });
});
