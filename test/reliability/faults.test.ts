/**
 * Faults, each on a real server (or a real TCP peer), for every command that connects: each run
 * must end in one clear message, a documented exit code, no hang, no stack trace and nothing left
 * behind (no dbdoctor session, the process gone).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseJson, runCli, type CliResult } from '../support/cli.js';
import { expectNoStack } from '../support/reliability.js';
import { CONNECTING, landed, spec } from '../support/commands.js';
import { fakePeer, freezingProxy, holdRolesView, holdLock, observer, startCli, startStandby, type Standby, waitForDbdoctor } from '../support/faults.js';
import { dbdoctorSessionsLeft, fillServer, idleSessions, lockChain } from '../support/incidents.js';
import { ROLE_PASSWORD, startTestServer, type TestServer, useServer } from '../support/server.js';

const connecting = landed(CONNECTING);
const names = connecting.map((c) => c.name);
const argsOf = (name: string) => spec(name).args;

/** One clear failure: the documented code, a `dbdoctor:` line (or check's `cause:`), no stack trace. */
function expectOneClearFailure(r: CliResult, code: number, message: RegExp): void {
  expectNoStack(r);
  expect({ exitCode: r.exitCode, output: r.stdout + r.stderr }).toMatchObject({ exitCode: code });
  expect(r.stdout + r.stderr).toMatch(message);
  const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('dbdoctor:'));
  expect(errorLines.length).toBeLessThanOrEqual(1);
  for (const l of r.stderr.split('\n')) expect(l.length).toBeLessThan(400);
}

/** The same failure as one JSON document: check reports it in its report, others in an error envelope. */
function expectJsonFailure(r: CliResult, code: number): Record<string, unknown> {
  expectNoStack(r);
  expect(r.exitCode).toBe(code);
  const doc = parseJson<{ schema: string; report: Record<string, unknown> }>(r);
  expect(doc.schema).toMatch(/^dbdoctor\./);
  return doc.report;
}

// ---------------------------------------------------------------------------------------------

describe('the server stopped before the command', () => {
  let port = 0;
  beforeAll(async () => {
    const s = await startTestServer({ settings: { max_connections: 20 } });
    port = s.port;
    await s.stop();
  }, 60_000);

  test.each(names)('%s: exit 2, "nothing listens", human and JSON', async (name) => {
    const base = [name, ...argsOf(name), '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'];
    const human = await runCli(base);
    expectOneClearFailure(human, 2, /nothing listens on 127\.0\.0\.1:\d+/);
    const json = await runCli([...base, '--json']);
    expectJsonFailure(json, 2);
    expect(json.stdout).toMatch(/refused|nothing listens/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('peers that are not PostgreSQL', () => {
  const peers = {
    'accepts TCP and never answers': { expect: /no answer from 127\.0\.0\.1:\d+ within 1000 ms/ },
    'answers HTTP/1.1 400 and closes': { reply: 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n', on: 'data' as const, close: true, expect: /PostgreSQL/ },
    'writes garbage bytes and closes': { reply: Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x13, 0x37, 0x0a]), on: 'data' as const, close: true, expect: /PostgreSQL/ },
    'greets first with an SSH banner and stays open': { reply: 'SSH-2.0-OpenSSH_9.6\r\n', on: 'connect' as const, close: false, expect: /PostgreSQL|no answer/ },
    'closes at once': { reply: '', on: 'connect' as const, close: true, expect: /PostgreSQL|closed/ },
  };

  for (const [label, p] of Object.entries(peers)) {
    describe(label, () => {
      let peer: Awaited<ReturnType<typeof fakePeer>>;
      beforeAll(async () => {
        peer = await fakePeer('reply' in p ? { reply: p.reply, on: p.on, close: p.close } : {});
      });
      afterAll(async () => {
        await peer.close();
      });
      test.each(names.flatMap((n) => [[n, 'prefer'], [n, 'disable']]))('%s (sslmode=%s): exit 2, one clear line, within the connect timeout', async (name, sslmode) => {
        const started = Date.now();
        const r = await runCli([name, ...argsOf(name), '-d', `host=127.0.0.1 port=${peer.port} user=postgres dbname=postgres sslmode=${sslmode}`, '--connect-timeout', '1s'], {
          env: { PGPASSWORD: 'Peer-secret-1' },
          timeoutMs: 15_000,
        });
        expectOneClearFailure(r, 2, p.expect);
        expect(r.stdout + r.stderr).not.toContain('Peer-secret-1');
        // node start-up + the 1 s connect timeout + slack; a hang would hit runCli's limit instead
        expect(Date.now() - started).toBeLessThan(8_000);
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('dbdoctor runs into its own timeouts', () => {
  const server = useServer({ settings: { max_connections: 30 } });

  /**
   * Two holds: pg_roles (every command's reads name it) and pg_locks (`locks` reads it when a wait
   * needs it, for the mode and relation each waiter waits on and who blocks whom: here the second
   * waiter of a row lock, which waits for the tuple; diagnose reads it for such a wait too, and
   * without it goes again with pg_blocking_pids(); so does terminate --blockers' plan read).
   */
  const holds = [
    ...connecting.map((c) => ({ label: 'pg_roles held', name: c.name, args: c.args, hold: holdRolesView, waiters: 1 })),
    ...landed([spec('locks')]).map((c) => ({
      label: 'pg_locks held',
      name: c.name,
      args: c.args,
      hold: (s: TestServer) => holdLock(s),
      waiters: 2,
    })),
  ];

  test.each(holds.map((h) => [h.name, h.label, h] as const))('%s (%s): its lock_timeout (55P03): exit 3, one line naming lock_timeout', async (name, _label, h) => {
    const s = server();
    const chain = await lockChain(s, { app: 'rel-chain' }, h.waiters);
    const lock = await h.hold(s);
    try {
      const r = await runCli([name, ...h.args, '-d', s.url()]);
      expectOneClearFailure(r, 3, /lock_timeout/);
      const j = await runCli([name, ...h.args, '-d', s.url(), '--json']);
      expect(JSON.stringify(expectJsonFailure(j, 3))).toMatch(/lock_timeout/);
    } finally {
      await lock.release();
      await chain.release();
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test.each(landed([spec('diagnose'), { ...spec('terminate'), args: ['--blockers', '--dry-run', '--include-superusers'] }]).map((c) => [c.name, c] as const))(
    '%s with pg_locks locked: the blocking chain is still found (diagnose and terminate --blockers go again without it)',
    async (name, c) => {
      const s = server();
      // the second waiter waits for the tuple: a wait that needs the lock table
      const chain = await lockChain(s, { app: 'rel-chain' }, 2);
      const lock = await holdLock(s);
      try {
        const r = await runCli([name, ...c.args, '-d', s.url(), '--json']);
        const doc = JSON.parse(r.stdout) as { schema: string; report: Record<string, unknown> };
        expect([doc.schema, r.exitCode]).not.toEqual(['dbdoctor.error', 3]);
        if (name === 'diagnose') {
          expect(r.exitCode).not.toBe(3);
          const findings = doc.report.findings as Array<{ id: string; evidence: { pids: number[] } }>;
          expect(findings.find((f) => f.id === 'blocking')?.evidence.pids).toContain(chain.blocker);
        } else {
          expect(r.exitCode).toBe(0);
          expect((doc.report.planned as Array<{ pid: number }>).map((p) => p.pid)).toEqual([chain.blocker]);
        }
      } finally {
        await lock.release();
        await chain.release();
      }
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
    },
  );

  test('locks with pg_locks locked and no wait that needs it (one row-lock waiter: a transactionid wait): the lock table is not read, the chain is found', async () => {
    const s = server();
    const chain = await lockChain(s, { app: 'rel-chain' }, 1);
    const lock = await holdLock(s);
    try {
      const r = await runCli(['locks', '-d', s.url(), '--json']);
      expect(r.exitCode).toBe(1);
      const report = (JSON.parse(r.stdout) as { report: { roots: Array<{ pid: number; blocks_all: number[] }> } }).report;
      expect(report.roots.map((x) => [x.pid, x.blocks_all])).toEqual([[chain.blocker, chain.direct]]);
    } finally {
      await lock.release();
      await chain.release();
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  // pg_settings is a view over a function: locking it stalls only what reads it, which in diagnose
  // are the optional reads (settings, the pg_stat_statements probe), not the state or a login.
  test.each([
    ['its lock_timeout', [], /lock_timeout/],
    ['its statement_timeout', ['--statement-timeout', '300ms'], /statement_timeout \(300 ms\)/],
  ] as const)('diagnose, with only its optional reads stalled (pg_settings held): %s makes settings and statements unavailable; the rest is diagnosed', async (_label, flags, reason) => {
    const s = server();
    const chain = await lockChain(s, { app: 'rel-chain' }, 1);
    const lock = await holdLock(s, 'pg_catalog.pg_settings');
    try {
      // the password in PGPASSWORD: one in -d is warned about on stderr, and stderr is checked empty
      const r = await runCli(['diagnose', '-d', s.url({ password: '' }), '--json', ...flags], { env: { PGPASSWORD: s.password } });
      const report = (JSON.parse(r.stdout) as { report: { unavailable: Array<{ what: string; reason: string }>; findings: Array<{ id: string; evidence: { pids: number[] } }> } }).report;
      expect(report.unavailable.map((u) => u.what)).toEqual(['settings', 'statements']);
      for (const u of report.unavailable) expect(u.reason).toMatch(reason);
      expect(report.findings.find((f) => f.id === 'blocking')?.evidence.pids).toContain(chain.blocker);
      expect(r.stderr).toBe('');
    } finally {
      await lock.release();
      await chain.release();
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test.each(holds.map((h) => [h.name, h.label, h] as const))('%s (%s): its statement_timeout (57014) before its lock_timeout: exit 3, one line naming statement_timeout', async (name, _label, h) => {
    const s = server();
    const chain = await lockChain(s, { app: 'rel-chain' }, h.waiters);
    const lock = await h.hold(s);
    try {
      const r = await runCli([name, ...h.args, '-d', s.url(), '--statement-timeout', '200ms']);
      expectOneClearFailure(r, 3, /statement_timeout \(200 ms\)/);
    } finally {
      await lock.release();
      await chain.release();
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });
});

describe('the longest timeouts still work (32-bit timers)', () => {
  const server = useServer({ settings: { max_connections: 30 } });
  test.each(names)('%s --statement-timeout 20d --connect-timeout 20d: runs normally, no timer fires at once', async (name) => {
    const s = server();
    const r = await runCli([name, ...argsOf(name), '-d', s.url(), '--statement-timeout', '20d', '--connect-timeout', '20d']);
    expectNoStack(r);
    expect([0, 1]).toContain(r.exitCode);
    expect(r.stderr).not.toMatch(/TimeoutOverflowWarning|no answer/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('immediate shutdown while a command runs', () => {
  // diagnose, locks and terminate (the three), and every other command too
  const cases = connecting.map((c) => [c.name, c.name === 'terminate' ? ['--blockers', '--yes', '--max', '5'] : c.args] as const);

  test.each(cases)('%s: the stop lands mid-statement; exit 2, one line, the process ends', async (name, args) => {
    const s = await startTestServer({ settings: { max_connections: 30 } });
    const state = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-'));
    try {
      const lock = await holdRolesView(s);
      const obs = await observer(s);
      // lock_timeout is 1 s: dbdoctor waits on pg_roles at most that long, and the stop lands inside it
      const run = startCli([name, ...args, '-d', s.url()], { timeoutMs: 30_000, env: { XDG_STATE_HOME: state } });
      const waiting = await waitForDbdoctor(obs, (b) => b.wait_event_type === 'Lock', 10_000);
      // Waiting on the view itself (the lock it waits for names it; the statement's text may not
      // within the 1 kB pg_stat_activity keeps of a round trip of several statements).
      const awaited = await obs.query<{ relation: string }>('SELECT relation::regclass::text AS relation FROM pg_locks WHERE pid = $1 AND NOT granted', [waiting.pid]);
      expect(awaited.rows.map((x) => x.relation)).toEqual(['pg_roles']);
      await s.embedded!.stop('immediate');
      const r = await run.done;
      expect(r.signal).toBeNull();
      expectOneClearFailure(r, 2, /the server ended the session|lost the connection/);
      expect(r.stdout + r.stderr).toMatch(/dbdoctor check|shutting down|restarting/);
      await lock.release();
      await obs.end().catch(() => undefined);
    } finally {
      await s.stop();
      rmSync(state, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('the network goes silent mid-session (connected, then nothing more arrives)', () => {
  const server = useServer({ settings: { max_connections: 30 } });

  test.each(names)('%s: gives up after its statement timeout plus a margin, one line, exit 2, the process ends', async (name) => {
    const s = server();
    // start-up and dbdoctor's SETs pass; its first real read is never delivered
    const proxy = await freezingProxy(s.port, 1);
    try {
      const run = startCli([name, ...argsOf(name), '-d', `host=127.0.0.1 port=${proxy.port} user=postgres dbname=postgres sslmode=disable`, '--statement-timeout', '1s'], {
        env: { PGPASSWORD: s.password },
        timeoutMs: 25_000,
      });
      const r = await run.done;
      expect(proxy.frozen()).toBe(true);
      expect(r.signal).toBeNull();
      expectOneClearFailure(r, 2, /no answer|did not answer/);
      expect(r.stdout + r.stderr).not.toContain(s.password);
      // its statement timeout (1 s) plus the client's margin, not forever
      expect(r.ms).toBeLessThan(15_000);
    } finally {
      await proxy.close();
    }
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });
});


// ---------------------------------------------------------------------------------------------

describe('the server out of slots for ordinary roles', () => {
  let s: TestServer;
  let full: Awaited<ReturnType<typeof fillServer>>;
  beforeAll(async () => {
    s = await startTestServer({ settings: { max_connections: 12, superuser_reserved_connections: 3 } });
    full = await fillServer(s, { app: 'hog', user: 'app_user', max: 20 });
  }, 60_000);
  afterAll(async () => {
    await full?.release();
    await s?.stop();
  });

  test.each(names)('%s as an ordinary role: exit 2, says out of slots and how to get in', async (name) => {
    const r = await runCli([name, ...argsOf(name), '-d', s.url({ user: 'other_user', password: ROLE_PASSWORD })]);
    expectOneClearFailure(r, 2, /out of connection slots/);
    expect(r.stdout + r.stderr).toMatch(/superuser_reserved_connections/);
    const j = await runCli([name, ...argsOf(name), '-d', s.url({ user: 'other_user', password: ROLE_PASSWORD }), '--json']);
    expect(JSON.stringify(expectJsonFailure(j, 2))).toMatch(/out_of_slots/);
  });

  test.each(names)('%s as a superuser still gets in, through the reserved slots, and leaves none behind', async (name) => {
    const r = await runCli([name, ...argsOf(name), '-d', s.url(), '--json']);
    expectNoStack(r);
    const doc = parseJson<{ schema: string }>(r);
    expect(doc.schema).toBe(`dbdoctor.${name}`);
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test('connections as a superuser reports zero headroom, not OK', async () => {
    if (!names.includes('connections')) return;
    const r = await runCli(['connections', '-d', s.url(), '--json']);
    const doc = parseJson<{ report: { status: string; capacity: { headroom: number } } }>(r);
    expect(doc.report.capacity.headroom).toBe(0);
    expect(doc.report.status).not.toBe('ok');
    expect(r.exitCode).not.toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a server in recovery', () => {
  const primary = useServer({ settings: { max_connections: 30, wal_level: 'replica', max_wal_senders: 4 } });
  let standby: Standby;
  beforeAll(async () => {
    standby = await startStandby(primary());
  }, 90_000);
  afterAll(async () => {
    await standby?.stop();
  });

  test('check says standby', async () => {
    const r = await runCli(['check', '-d', standby.url(), '--json']);
    expect(r.exitCode).toBe(0);
    expect(parseJson<{ report: { server: { role: string } } }>(r).report.server.role).toBe('standby');
  });

  test.each(names)('%s on a hot standby: a documented exit code, valid JSON, no stack trace, nothing left behind', async (name) => {
    const p = primary();
    const idle = await idleSessions(p, 2, { app: 'rel-on-primary' });
    try {
      for (const extra of [[], ['--json']]) {
        const r = await runCli([name, ...argsOf(name), '-d', standby.url(), ...extra]);
        expectNoStack(r);
        expect([0, 1, 2, 3]).toContain(r.exitCode);
        if (extra.length) expect(parseJson<{ schema: string }>(r).schema).toBe(`dbdoctor.${name}`);
      }
      const [left] = await standby.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'dbdoctor'`);
      expect(left!.n).toBe(0);
    } finally {
      await idle.release();
    }
  });

  describe('a standby that does not accept connections (hot_standby = off)', () => {
    let cold: Standby;
    beforeAll(async () => {
      cold = await startStandby(primary(), { hot_standby: 'off' });
    }, 90_000);
    afterAll(async () => {
      await cold?.stop();
    });
    test.each(names)('%s: exit 2, "not accepting connections", one line', async (name) => {
      const r = await runCli([name, ...argsOf(name), '-d', cold.url()]);
      expectOneClearFailure(r, 2, /not accepting connections/);
    });
  });
});
