/**
 * connections, locks and queries as a user meets them when something is off: bad flags are usage
 * errors (64) before any connection, a server that is down is CRITICAL (2), both in one line with a
 * hint, and as a dbdoctor.error document with --json.
 */
import { describe, expect, test } from '@jest/globals';
import { freePort } from '../../src/db/embedded.js';
import { expectNoStackTrace, parseJson, runCli } from '../support/cli.js';

describe('usage errors', () => {
  test.each([
    [['connections', '--by', 'app,colour'], /unknown --by key "colour"/],
    [['connections', '--state', 'sleeping'], /unknown --state "sleeping"/],
    [['connections', '--client', '10.0.0.0/33'], /invalid --client "10\.0\.0\.0\/33"/],
    [['connections', '--min-age', '5 parsecs'], /invalid --min-age/],
    [['queries', '--min-duration', '-1s'], /invalid --min-duration/],
    [['queries', '--idle-in-xact', 'soon'], /invalid --idle-in-xact/],
    [['queries', '--app', 'x', '--client', 'db1.example'], /invalid --client/],
  ])('%j', async (args, message) => {
    // Port 1 on loopback: if dbdoctor tried to connect it would fail differently (exit 2).
    const r = await runCli([...args, '-h', '127.0.0.1', '-p', '1']);
    expect(r.exitCode).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^hint: /m);
    expectNoStackTrace(r);
    const json = await runCli([...args, '--json', '-h', '127.0.0.1', '-p', '1']);
    expect(json.exitCode).toBe(64);
    expect(parseJson<{ schema: string; report: { status: string; exit_code: number } }>(json)).toMatchObject({ schema: 'dbdoctor.error', report: { status: 'usage', exit_code: 64 } });
  });
});

describe('a server that is down', () => {
  test.each([['connections'], ['locks'], ['queries']])('%s: CRITICAL, one line and a hint', async (cmd) => {
    const port = await freePort();
    const r = await runCli([cmd, '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toMatch(/^dbdoctor: /);
    expect(r.stderr).toMatch(/^hint: /m);
    expectNoStackTrace(r);
    const json = await runCli([cmd, '--json', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres']);
    expect(json.exitCode).toBe(2);
    expect(parseJson<{ schema: string; report: { status: string } }>(json)).toMatchObject({ schema: 'dbdoctor.error', report: { status: 'critical' } });
  });
});
