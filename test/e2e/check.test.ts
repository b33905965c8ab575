import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { freePort } from '../../src/db/embedded.js';
import { execa } from 'execa';
import { BIN, cleanEnv, expectNoStackTrace, parseJson, runCli } from '../support/cli.js';
import { dbdoctorSessionsLeft, fillServer, idleSessions } from '../support/incidents.js';
import { connectionsOpenedBy, LOG_CONNECTIONS, ROLE_PASSWORD, startTestServer, type TestServer, useServer } from '../support/server.js';

interface CheckDoc {
  schema: string;
  report: {
    status: string;
    failure: { step: string; cause: string; message: string; exit_code: number } | null;
    capacity: { max_connections: number; superuser_reserved: number; reserved: number; client_backends: number; headroom: number; ordinary_slots: number } | null;
    server: { major: number; role: string } | null;
    privileges: { superuser: boolean; can_see_other_sessions: boolean; can_terminate_other_roles: boolean; notes: string[] } | null;
  };
}

const server = useServer({ settings: { ...LOG_CONNECTIONS, max_connections: 30, superuser_reserved_connections: 3 } });

describe('check on a healthy server', () => {
  test('--json holds the facts the test set up, with one connection and none left behind', async () => {
    const s = server();
    const idle = await idleSessions(s, 4, { app: 'check-idle' });
    try {
      let r!: Awaited<ReturnType<typeof runCli>>;
      const opened = await connectionsOpenedBy(s, async () => {
        r = await runCli(['check', '--json', '-d', s.url()]);
      });
      expect(r.exitCode).toBe(0);
      const doc = parseJson<CheckDoc>(r);
      expect(doc.schema).toBe('dbdoctor.check');
      expect(doc.report.status).toBe('ok');
      expect(doc.report.capacity).toMatchObject({ max_connections: 30, superuser_reserved: 3, ordinary_slots: 30 - 3 - doc.report.capacity!.reserved });
      // 4 idle test sessions + dbdoctor itself (it counts itself: it holds a slot too).
      expect(doc.report.capacity!.client_backends).toBe(5);
      expect(doc.report.server).toMatchObject({ major: s.major, role: 'primary' });
      expect(doc.report.privileges).toMatchObject({ superuser: true, can_see_other_sessions: true, can_terminate_other_roles: true });
      expect(opened).toBe(1);
      expect(await dbdoctorSessionsLeft(s)).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(s.password);
    } finally {
      await idle.release();
    }
  });

  test('human output starts with a one-line verdict', async () => {
    const s = server();
    const r = await runCli(['check', '-h', s.host, '-p', String(s.port), '-U', 'postgres'], { env: { PGPASSWORD: s.password } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^OK {2}connected to PostgreSQL \d+ \(primary\)/);
    expect(r.stdout + r.stderr).not.toContain(s.password);
  });

  test('a role without monitoring privileges is told what it cannot see or do', async () => {
    const s = server();
    const r = await runCli(['check', '--json', '-d', s.url({ user: 'app_user', password: ROLE_PASSWORD })]);
    const doc = parseJson<CheckDoc>(r);
    expect(doc.report.privileges).toMatchObject({ superuser: false, can_see_other_sessions: false, can_terminate_other_roles: false });
    expect(doc.report.privileges!.notes.join('\n')).toMatch(/cannot see other roles' queries/);
    expect(doc.report.privileges!.notes.join('\n')).toMatch(/cannot terminate other roles' sessions/);
    const human = await runCli(['check', '-d', s.url({ user: 'app_user', password: ROLE_PASSWORD })]);
    expect(human.stdout).toMatch(/cannot see other roles' queries/);
    expect(human.stdout + human.stderr).not.toContain(ROLE_PASSWORD);
  });

  test('a monitoring role can see other sessions but not terminate them', async () => {
    const s = server();
    const doc = parseJson<CheckDoc>(await runCli(['check', '--json', '-d', s.url({ user: 'monitor_user', password: ROLE_PASSWORD })]));
    expect(doc.report.privileges).toMatchObject({ superuser: false, can_see_other_sessions: true, can_terminate_other_roles: false });
  });
});

describe('check when it cannot connect: every row of the table', () => {
  test('a .invalid host name: DNS, CRITICAL', async () => {
    const r = await runCli(['check', '--json', '-h', 'no-such-host.invalid', '-U', 'x']);
    expect(r.exitCode).toBe(2);
    expect(parseJson<CheckDoc>(r).report.failure).toMatchObject({ step: 'dns', cause: 'dns_not_found' });
    const human = await runCli(['check', '-h', 'no-such-host.invalid']);
    expect(human.exitCode).toBe(2);
    expect(human.stdout).toMatch(/does not resolve/);
    expectNoStackTrace(human);
  });

  test('a closed port: refused, CRITICAL', async () => {
    const port = await freePort();
    const r = await runCli(['check', '--json', '-h', '127.0.0.1', '-p', String(port)]);
    expect(r.exitCode).toBe(2);
    expect(parseJson<CheckDoc>(r).report.failure).toMatchObject({ step: 'tcp', cause: 'refused' });
  });

  describe('a listener that accepts and never answers', () => {
    let silent: Server;
    const sockets: Socket[] = [];
    let port = 0;
    beforeAll(async () => {
      silent = createServer((sock) => sockets.push(sock));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
      port = (silent.address() as { port: number }).port;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    });
    test('is a timeout, reported within the connect timeout plus one second', async () => {
      const r = await runCli(['check', '--json', '-h', '127.0.0.1', '-p', String(port), '--connect-timeout', '1s']);
      expect(r.exitCode).toBe(2);
      const report = parseJson<CheckDoc & { report: { steps: Array<{ step: string; ok: boolean; ms: number }> } }>(r).report;
      expect(report.failure).toMatchObject({ step: 'tcp', cause: 'timeout' });
      // dbdoctor's own measure of how long it waited (node start-up excluded): timeout + 1 s at most.
      const failed = report.steps.find((s) => !s.ok)!;
      expect(failed.ms).toBeGreaterThanOrEqual(900);
      expect(failed.ms).toBeLessThan(2000);
    });

    test('Ctrl-C while connecting exits 130 at once, with one line', async () => {
      const child = execa('node', [BIN, 'check', '-h', '127.0.0.1', '-p', String(port), '--connect-timeout', '60s'], { env: cleanEnv(), extendEnv: false, reject: false, stdin: 'ignore' });
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGINT');
      const r = await child;
      expect(r.exitCode).toBe(130);
      expect(String(r.stderr).trim()).toBe('dbdoctor: interrupted');
    });
  });

  test('a wrong password: auth, UNKNOWN, and the password is never printed', async () => {
    const s = server();
    const wrong = 'Wrong-pw-99x';
    const r = await runCli(['check', '--json', '-d', s.url({ password: wrong })]);
    expect(r.exitCode).toBe(3);
    expect(parseJson<CheckDoc>(r).report.failure).toMatchObject({ step: 'auth', cause: 'auth_failed' });
    const human = await runCli(['check', '-d', s.url({ password: wrong })]);
    expect(human.exitCode).toBe(3);
    expect(human.stdout).toMatch(/password authentication failed for user "postgres"/);
    for (const out of [r.stdout, r.stderr, human.stdout, human.stderr]) {
      expect(out).not.toContain(wrong);
      expect(out).not.toContain(s.password);
    }
    const viaEnv = await runCli(['check', '-h', s.host, '-p', String(s.port), '-U', 'postgres'], { env: { PGPASSWORD: wrong } });
    expect(viaEnv.exitCode).toBe(3);
    expect(viaEnv.stdout + viaEnv.stderr).not.toContain(wrong);
  });

  test('a missing database: UNKNOWN', async () => {
    const s = server();
    const r = await runCli(['check', '--json', '-d', s.url({ dbname: 'no_such_db' })]);
    expect(r.exitCode).toBe(3);
    expect(parseJson<CheckDoc>(r).report.failure).toMatchObject({ step: 'database', cause: 'database_missing' });
  });
});

describe('a server filled to max_connections by an ordinary role', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ settings: { max_connections: 12, superuser_reserved_connections: 3 } });
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  });

  test('an ordinary role is told the server is out of slots; a superuser still gets in and sees zero headroom', async () => {
    const full = await fillServer(s, { app: 'hog', user: 'app_user', max: 20 });
    try {
      expect(full.pids.length).toBe(9);
      const ordinary = await runCli(['check', '--json', '-d', s.url({ user: 'other_user', password: ROLE_PASSWORD })]);
      expect(ordinary.exitCode).toBe(2);
      const failure = parseJson<CheckDoc>(ordinary).report.failure!;
      expect(failure).toMatchObject({ step: 'slots', cause: 'out_of_slots' });
      const human = await runCli(['check', '-d', s.url({ user: 'other_user', password: ROLE_PASSWORD })]);
      expect(human.stdout).toMatch(/superuser_reserved_connections/);
      if (s.major >= 16) expect(human.stdout).toMatch(/pg_use_reserved_connections/);
      expectNoStackTrace(human);

      const su = await runCli(['check', '--json', '-d', s.url()]);
      const doc = parseJson<CheckDoc>(su);
      expect(doc.report.capacity).toMatchObject({ headroom: 0, ordinary_slots: 9 });
      expect(doc.report.status).toBe('warning');
      expect(su.exitCode).toBe(1);
    } finally {
      await full.release();
    }
  });
});
