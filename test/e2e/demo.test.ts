/**
 * `dbdoctor demo` without a terminal, from the built binary, as `npm run demo` runs it in CI: a
 * throwaway server with seeds/000's incident, a CRITICAL diagnosis naming the leaking application
 * and the blocker, the recommended clean-up, then OK; exit 0; no server process and no temporary
 * directory left behind.
 */
import { existsSync, } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { expectNoStackTrace, HOSTILE_PG_ENV, parseJson, runCli } from '../support/cli.js';
import { running } from '../support/processes.js';

interface Finding {
  id: string;
  severity: string;
  title: string;
  evidence: { applications: string[]; pids: number[] };
}

interface DemoDoc {
  schema: string;
  report: {
    server: { pid: number; data_directory: string; max_connections: number; major: number };
    incident: { leaking_app: string; blocker_app: string; pids: { blocker: number; client_read: number[]; idle_in_transaction: number[]; long_query: number } };
    before: { verdict: string; findings: Finding[] };
    cleanup: Array<{ command: string[]; exit_code: number; terminated: number; cancelled: number }>;
    after: { verdict: string; findings: Finding[] };
    verdict_before: string;
    verdict_after: string;
    torn_down: boolean;
  };
}

describe('dbdoctor demo without a terminal', () => {
  test('CRITICAL naming the leaking application and the blocker, the clean-up, then OK; exit 0; nothing left behind', async () => {
    const r = await runCli(['demo'], { timeoutMs: 120_000 });
    expectNoStackTrace(r);
    expect(r.exitCode).toBe(0);
    const out = r.stdout;
    const server = /\(pid (\d+)\), max_connections 25/.exec(out);
    const dir = /data\s+(\/\S+)/.exec(out);
    expect(server).not.toBeNull();
    expect(dir).not.toBeNull();

    // diagnose's one-screen text wraps its titles at 80 columns: read them with the wrapping undone.
    const before = out.slice(out.indexOf('── 1. diagnose'), out.indexOf('── 2.')).replace(/\n {2}(?=\S)/g, ' ');
    const after = out.slice(out.indexOf('── 3. diagnose again'));
    expect(before).toMatch(/^CRITICAL {2}/m);
    expect(before).toMatch(/files-api at 127\.0\.0\.1 has 6 active sessions waiting on ClientRead/);
    expect(before).toMatch(/files-api at 127\.0\.0\.1 holds 4 sessions idle in transaction/);
    const blocker = /^ {2}billing-sync +holds that row lock .*\(pid (\d+)\)/m.exec(out);
    expect(blocker).not.toBeNull();
    expect(before).toMatch(new RegExp(`pid ${blocker![1]} \\(billing-sync, idle in transaction for \\d+s\\) blocks 3 sessions`));

    const cleanup = out.slice(out.indexOf('── 2.'), out.indexOf('── 3.'));
    expect(cleanup).toMatch(/\$ dbdoctor terminate --state "idle in transaction" --app files-api --older-than 2s --yes/);
    expect(cleanup).toMatch(/done: 6 of 6 planned sessions/);
    expect(cleanup).toMatch(/query cancelled/);

    expect(after).toMatch(/^OK {2,}no problems found/m);
    expect(out).toMatch(/Before: CRITICAL\. {2}Clean-up: 11 sessions terminated, 1 query cancelled\. {2}After: OK\./);

    expect(running(Number(server![1]))).toBe(false);
    expect(existsSync(dir![1]!)).toBe(false);
    // No progress, colour or prompts without a terminal.
    expect(out).not.toMatch(/\u001b\[/);
    expect(r.stderr).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
  }, 120_000);

  test('--json: one document with the before, the clean-up and the after, matching the incident it built', async () => {
    const r = await runCli(['demo', '--json'], { timeoutMs: 120_000 });
    expect(r.exitCode).toBe(0);
    const doc = parseJson<DemoDoc>(r);
    expect(doc.schema).toBe('dbdoctor.demo');
    const { report } = doc;
    expect(report).toMatchObject({ verdict_before: 'critical', verdict_after: 'ok', torn_down: true });
    expect(report.server.max_connections).toBe(25);
    // The npm-shipped server of the major asked for (PostgreSQL installed on the machine comes later).
    expect(report.server.major).toBe(Number(process.env.DBDOCTOR_PG_MAJOR || 18));

    const byId = new Map(report.before.findings.map((f) => [f.id, f]));
    expect(byId.get('unread-results')).toMatchObject({ severity: 'critical', evidence: { applications: ['files-api'] } });
    expect([...byId.get('unread-results')!.evidence.pids].sort()).toEqual([...report.incident.pids.client_read].sort());
    expect(byId.get('blocking')?.severity).toBe('critical');
    expect(byId.get('blocking')?.title).toContain(`pid ${report.incident.pids.blocker} (billing-sync`);
    expect(byId.get('capacity')?.severity).toBe('critical');

    const terminated = report.cleanup.reduce((n, c) => n + c.terminated, 0);
    const cancelled = report.cleanup.reduce((n, c) => n + c.cancelled, 0);
    expect(terminated).toBe(11);
    expect(cancelled).toBe(1);
    expect(report.cleanup.every((c) => c.command[0] === 'terminate' && c.command.includes('--yes'))).toBe(true);
    expect(report.after.findings.filter((f) => f.severity === 'warning' || f.severity === 'critical')).toEqual([]);

    expect(running(report.server.pid)).toBe(false);
    expect(existsSync(report.server.data_directory)).toBe(false);
    expect(r.stderr).toBe('');
  }, 120_000);

  test("the user's PG* environment does not reach the demo's server or its clients: PGPORT= (empty) and a bad PGOPTIONS change nothing", async () => {
    const r = await runCli(['demo', '--json'], { timeoutMs: 120_000, env: HOSTILE_PG_ENV });
    expectNoStackTrace(r);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(parseJson<DemoDoc>(r).report).toMatchObject({ verdict_before: 'critical', verdict_after: 'ok', torn_down: true });
  }, 120_000);

  test('no server binaries anywhere it looks: one line saying how to get PostgreSQL on this platform, exit 3', async () => {
    const r = await runCli(['demo'], { env: { DBDOCTOR_PG_BINDIR: '/nonexistent/bin' } });
    expectNoStackTrace(r);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^dbdoctor: the demo needs PostgreSQL (server binaries \(14 or newer\)|\d+ server binaries \(DBDOCTOR_PG_MAJOR\)), and none were found in DBDOCTOR_PG_BINDIR \(\/nonexistent\/bin\)\nhint: install [^\n]*(apt-get install postgresql|dnf install postgresql-server|brew install postgresql@18|your distribution's)[^\n]*$/);
  });
});
