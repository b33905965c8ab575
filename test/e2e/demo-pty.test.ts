/**
 * `dbdoctor demo` on a terminal starts the guided walk against the demo server: pick the unread
 * result sets finding, run the terminate it suggests (plan, checkbox, confirmation), diagnose
 * again, quit; the server and its directory are gone afterwards.
 */
import { existsSync, } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { HOSTILE_PG_ENV } from '../support/cli.js';
import { KEY, runInPty } from '../support/pty.js';
import { running } from '../support/processes.js';

describe('dbdoctor demo on a terminal', () => {
  test("the guided walk: pick a finding, run its terminate, confirm, diagnose again, quit; then the server is gone (the user's PG* environment changes nothing)", async () => {
    // The walk's steps run as dbdoctor commands against the demo's server: none of the user's
    // PG* settings (for their own servers) may reach them.
    const pty = runInPty(['demo'], { env: HOSTILE_PG_ENV });
    try {
      const intro = await pty.waitFor(/data\s+\/\S+ \(removed at the end\)/);
      const pid = Number(/\(pid (\d+)\), max_connections/.exec(intro)![1]);
      const dir = /data\s+(\/\S+) \(removed/.exec(intro)![1]!;
      await pty.choose(/Pick a finding to see its next steps/, /CRITICAL files-api at 127\.0\.0\.1 has 6 active sessions waiting on ClientRead/, 60_000);
      await pty.choose(/Next step for:/, /Clean up: dbdoctor terminate --pid/);
      await pty.waitFor(/Plan: terminate 6 sessions[\s\S]*Sessions to terminate/);
      await pty.type(KEY.enter);
      await pty.waitFor(/Terminate 6 sessions on postgres:\/\/postgres@127\.0\.0\.1:\d+\/cloudvault\? \(y\/N\)/);
      await pty.type(`y${KEY.enter}`);
      await pty.waitFor(/done: 6 of 6 planned sessions/);
      await pty.waitFor(/Next step for:[^\n]*\n[\s\S]*?❯ Diagnose again/);
      await pty.type(KEY.enter);
      await pty.choose(/Pick a finding to see its next steps/, /Quit/);
      expect(await pty.exit).toBe(0);

      const all = pty.text();
      // The second diagnosis: from its verdict line, after the last answered step menu (whose
      // answer, the finding's title and "Diagnose again", the terminal may wrap).
      const afterMenu = all.slice(all.lastIndexOf('✔ Next step for:'));
      const again = afterMenu.slice(afterMenu.search(/^(CRITICAL|WARNING|OK) {2}/m));
      // The unread result sets are gone; the rest of the incident is still there to clean up.
      expect(again).toMatch(/CRITICAL|WARNING/);
      expect(again).not.toMatch(/waiting on ClientRead/);
      expect(again).toMatch(/billing-sync/);
      expect(all).toMatch(/Stopped the demo server/);
      expect(running(pid)).toBe(false);
      expect(existsSync(dir)).toBe(false);
    } finally {
      pty.kill();
    }
  }, 120_000);

  test('Ctrl-C at a prompt of the walk: exit 130, and the server is gone', async () => {
    const pty = runInPty(['demo']);
    try {
      const intro = await pty.waitFor(/data\s+\/\S+ \(removed at the end\)/);
      const pid = Number(/\(pid (\d+)\), max_connections/.exec(intro)![1]);
      const dir = /data\s+(\/\S+) \(removed/.exec(intro)![1]!;
      await pty.waitFor(/Pick a finding to see its next steps[^\n]*\n[\s\S]*?navigate/, 60_000);
      await pty.type(KEY.ctrlC);
      expect(await pty.exit).toBe(130);
      expect(pty.text()).toMatch(/dbdoctor: interrupted/);
      expect(running(pid)).toBe(false);
      expect(existsSync(dir)).toBe(false);
    } finally {
      pty.kill();
    }
  }, 120_000);
});
