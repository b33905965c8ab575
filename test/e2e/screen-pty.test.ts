/**
 * The 3 a.m. screen, on a real 80x24 terminal, against the demo's incident on a real server
 * (seeds/000: a pool full of unread result sets and idle transactions, a blocker, a long query):
 * `diagnose` answers on one screen (at most 40 lines, the verdict on line 1, no line over 80
 * columns), and the guide's verdict is still on the first screen when its menu is drawn.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { DEMO_AGE_MS, DEMO_THRESHOLDS } from '../../src/commands/demo.js';
import { createDemoIncident, type DemoIncident } from '../../src/db/demo-incident.js';
import { displayWidth } from '../../src/render/width.js';
import { KEY, runInPty } from '../support/pty.js';
import { useServer } from '../support/server.js';

const server = useServer({ settings: { max_connections: 25, superuser_reserved_connections: 3 } });

let incident: DemoIncident;
let home: string;
beforeAll(async () => {
  const s = server();
  incident = await createDemoIncident({ host: s.host, port: s.port, password: s.password });
  await new Promise((r) => setTimeout(r, DEMO_AGE_MS));
  home = mkdtempSync(join(tmpdir(), 'dbdoctor-screen-test-'));
  mkdirSync(join(home, 'config', 'dbdoctor'), { recursive: true });
  writeFileSync(join(home, 'config', 'dbdoctor', 'config.json'), JSON.stringify({ thresholds: DEMO_THRESHOLDS }));
}, 120_000);
afterAll(async () => {
  await incident?.release();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** The URL without its password (given in PGPASSWORD, as a careful user would: no warning line). */
function target(): { args: string[]; env: Record<string, string> } {
  const s = server();
  return {
    args: ['-h', s.host, '-p', String(s.port), '-U', 'postgres', '-d', incident.database],
    env: { PGPASSWORD: s.password, XDG_CONFIG_HOME: join(home, 'config'), XDG_STATE_HOME: join(home, 'state') },
  };
}

describe('the 3 a.m. screen at 80x24', () => {
  test('diagnose on the demo incident: at most 40 lines, the verdict on line 1, nothing over 80 columns', async () => {
    const t = target();
    const pty = runInPty(['diagnose', ...t.args], { cols: 80, rows: 24, env: t.env, cwd: home });
    try {
      expect(await pty.exit).toBe(2);
      const lines = pty.text().replace(/\n+$/, '').split('\n');
      expect(lines[0]).toMatch(/^CRITICAL {2}\d+\/22 slots used/);
      expect(lines.length).toBeLessThanOrEqual(40);
      expect(lines.filter((l) => displayWidth(l) > 80)).toEqual([]);
      const text = lines.join('\n');
      // The incident, worst first, each with its command; the settings gathered; what --verbose adds.
      const order = ['CRITICAL capacity:', 'CRITICAL unread-results:', 'CRITICAL blocking:', 'WARNING idle-in-transaction:', 'WARNING long-queries:'].map((h) => text.indexOf(`\n${h}`));
      for (const i of order) expect(i).toBeGreaterThan(0);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(text).toContain(`next      dbdoctor terminate --pid ${incident.pids.blocker}`);
      expect(text).toMatch(/\nto prevent a repeat[^\n]*\n {2}idle_in_transaction_session_timeout is off/);
      expect(text).not.toMatch(/ALTER ROLE|path taken|who holds the connections/);
      expect(lines.at(-1)).toMatch(/^--verbose adds: /);
    } finally {
      pty.kill();
    }
  });

  test('diagnose --verbose keeps everything: the statements, the holders table, the path', async () => {
    const t = target();
    const pty = runInPty(['diagnose', '--verbose', ...t.args], { cols: 80, rows: 24, env: t.env, cwd: home });
    try {
      expect(await pty.exit).toBe(2);
      const text = pty.text();
      expect(text).toMatch(/ALTER ROLE "files_api" SET idle_in_transaction_session_timeout/);
      expect(text).toMatch(/who holds the connections/);
      expect(text).toMatch(/path taken/);
    } finally {
      pty.kill();
    }
  });

  test('the guide: the verdict is on the first 24-line screen when the menu is drawn', async () => {
    const t = target();
    const pty = runInPty(['guide', ...t.args], { cols: 80, rows: 24, env: t.env, cwd: home });
    try {
      const shown = await pty.waitFor(/navigate/);
      const screen = shown.replace(/\n+$/, '').split('\n').slice(-24);
      expect(screen.some((l) => /^CRITICAL {2}\d+\/22 slots used/.test(l))).toBe(true);
      expect(screen.filter((l) => displayWidth(l) > 80)).toEqual([]);
      await pty.type(KEY.ctrlC);
      expect(await pty.exit).toBe(130);
    } finally {
      pty.kill();
    }
  });
});
