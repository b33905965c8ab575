/**
 * Connecting exactly as psql would, each case run through psql on the same input in the same test:
 * the Unix socket when no host is given, the password prompt, pg_service.conf, unknown keywords,
 * options, and TLS (require, verify-ca, verify-full, client certificates) on a server with ssl=on.
 * Both reach the same server, or both refuse.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { type RunningServer, serverBinaries, startServer } from '../../src/db/embedded.js';
import { SOCKET_DIRS } from '../../src/db/target.js';
import { parseJson, runCli } from '../support/cli.js';
import { psqlWithPassword, runPsql } from '../support/psql.js';
import { runInPty } from '../support/pty.js';
import { ROLE_PASSWORD, useServer } from '../support/server.js';
import { scaled } from '../support/timing.js';

interface CheckDoc {
  report: { status: string; target: string; steps: Array<{ step: string; ok: boolean; detail: string }>; failure: { cause: string } | null };
}

const home = mkdtempSync(join(tmpdir(), 'dbdoctor-psql-home-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));
/** No ~/.pgpass, no ~/.postgresql, no service file: only what each case gives. */
const bare = { HOME: home };

const server = useServer();

describe('the password: asked for on a terminal, as psql asks', () => {
  const at = () => ['-h', server().host, '-p', String(server().port), '-U', 'app_user', '-d', 'postgres'];

  test('the server wants a password nothing gave: dbdoctor asks, masked, and connects; so does psql', async () => {
    const run = runInPty(['check', ...at()], { env: bare });
    try {
      await run.waitFor(/Password for user app_user:/);
      await run.type(`${ROLE_PASSWORD}\r`);
      expect(await run.exit).toBe(0);
      expect(run.raw()).not.toContain(ROLE_PASSWORD);
      expect(run.text()).toMatch(/OK/);
    } finally {
      run.kill();
    }
    const psql = await psqlWithPassword([...at(), '-c', 'select current_user'], ROLE_PASSWORD, bare);
    expect(psql.exitCode).toBe(0);
    expect(psql.screen).toMatch(/Password for user app_user:/);
    expect(psql.screen).toMatch(/^app_user$/m);
  });

  test('-W asks before connecting, as psql -W', async () => {
    const run = runInPty(['check', '-W', ...at()], { env: { ...bare, PGPASSWORD: 'not-this-one' } });
    try {
      await run.waitFor(/Password for user app_user:/);
      await run.type(`${ROLE_PASSWORD}\r`);
      expect(await run.exit).toBe(0);
      expect(run.raw()).not.toContain(ROLE_PASSWORD);
    } finally {
      run.kill();
    }
    const psql = await psqlWithPassword(['-W', ...at(), '-c', 'select 1'], ROLE_PASSWORD, { ...bare, PGPASSWORD: 'not-this-one' });
    expect(psql.exitCode).toBe(0);
  });

  test('without a terminal both refuse; the hint names PGPASSWORD and ~/.pgpass, never a URL', async () => {
    const r = await runCli(['check', '--json', ...at()], { env: bare });
    expect(r.exitCode).toBe(3);
    const doc = parseJson<CheckDoc>(r);
    expect(doc.report.failure!.cause).toBe('no_password');
    const human = await runCli(['check', ...at()], { env: bare });
    expect(human.stdout + human.stderr).toMatch(/PGPASSWORD/);
    expect(human.stdout + human.stderr).not.toMatch(/postgres:\/\/[^\s]*:[^\s]*@|password=/);
    const psql = await runPsql([...at(), '-c', 'select 1'], bare);
    expect(psql.exitCode).not.toBe(0);
    expect(psql.stderr).toMatch(/no password supplied/);
  });
});

describe('pg_service.conf, as libpq reads it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-svc-'));
  afterAll(async () => {
    await server().sql('DROP ROLE IF EXISTS svc_user');
    rmSync(dir, { recursive: true, force: true });
  });

  test('a password with ";" and "#" is kept whole, and [prod.eu] is one service', async () => {
    const s = server();
    await s.sql(`DROP ROLE IF EXISTS svc_user; CREATE ROLE svc_user LOGIN PASSWORD 'a;b#c'`);
    const file = join(dir, 'pg_service.conf');
    writeFileSync(
      file,
      ['# services', '[prod]', 'host=wrong.invalid', 'port=1', '', '[prod.eu]', `host=${s.host}`, `port=${s.port}`, 'user=svc_user', 'password=a;b#c', 'dbname=postgres', '[eu]', 'port=2', ''].join('\n'),
      { mode: 0o600 },
    );
    const env = { ...bare, PGSERVICEFILE: file };
    const r = await runCli(['check', '--json', '--service', 'prod.eu'], { env });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(parseJson<CheckDoc>(r).report.target).toBe(`postgres://svc_user@${s.host}:${s.port}/postgres`);
    const psql = await runPsql(['service=prod.eu', '-c', 'select current_user, inet_server_port()'], env);
    expect(psql).toMatchObject({ exitCode: 0, stdout: `svc_user|${s.port}` });
    // the same file through PGSERVICE and -d service=
    expect((await runCli(['check', '--json', '-d', 'service=prod.eu'], { env })).exitCode).toBe(0);
    expect((await runCli(['check', '--json'], { env: { ...env, PGSERVICE: 'prod.eu' } })).exitCode).toBe(0);
  });
});

describe('connection keywords, as libpq takes them', () => {
  test('an unknown keyword is refused with a suggestion; psql refuses it too', async () => {
    const s = server();
    const conninfo = `host=${s.host} port=${s.port} user=postgres dbnmae=app`;
    const r = await runCli(['check', '-d', conninfo], { env: { ...bare, PGPASSWORD: s.password } });
    expect(r.exitCode).toBe(64);
    expect(r.stderr).toMatch(/invalid connection option "dbnmae": did you mean "dbname"\?/);
    const psql = await runPsql([conninfo, '-c', 'select 1'], { ...bare, PGPASSWORD: s.password });
    expect(psql.exitCode).not.toBe(0);
    expect(psql.stderr).toMatch(/invalid connection option "dbnmae"/);
  });

  test('options=-c statement_timeout reaches the server: a good value connects, a bad one is refused by it, for both', async () => {
    const s = server();
    const env = { ...bare, PGPASSWORD: s.password };
    for (const [value, ok] of [
      ['4321', true],
      ['banana', false],
    ] as const) {
      const conninfo = `host=${s.host} port=${s.port} user=postgres dbname=postgres options='-c statement_timeout=${value}'`;
      const r = await runCli(['check', '--json', '-d', conninfo], { env });
      const psql = await runPsql([conninfo, '-c', 'show statement_timeout'], env);
      expect([r.exitCode === 0, psql.exitCode === 0]).toEqual([ok, ok]);
      if (ok) expect(psql.stdout).toBe('4321ms');
      else expect(r.stdout + r.stderr).toMatch(/statement_timeout/);
    }
  });

  test('several hosts and target_session_attrs are refused by name, never half-honoured', async () => {
    const r = await runCli(['check', '-d', 'host=a.invalid,b.invalid dbname=x'], { env: bare });
    expect(r.exitCode).toBe(64);
    expect(r.stderr).toMatch(/does not support several hosts/);
    const t = await runCli(['check', '-d', 'host=a.invalid target_session_attrs=read-write'], { env: bare });
    expect(t.exitCode).toBe(64);
    expect(t.stderr).toMatch(/target_session_attrs=read-write/);
  });
});

/** The directory psql (libpq) looks in for a server's socket when given no host. */
async function psqlSocketDir(): Promise<string> {
  const r = await runPsql(['-p', '1', '-c', 'select 1'], bare);
  const m = /on socket "(.+)\/\.s\.PGSQL\.1"/.exec(r.stderr);
  if (!m) throw new Error(`cannot tell psql's default socket directory from: ${r.stderr}`);
  return m[1]!;
}

/** Root starts the server as `postgres` (the packaged servers' user), who may write the packaged socket directory. */
function socketServerUser(dir: string): { osUser?: string; writable: boolean } {
  if (process.getuid?.() !== 0) {
    try {
      accessSync(dir, constants.W_OK);
      return { writable: true };
    } catch {
      return { writable: false };
    }
  }
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  } catch {
    return { writable: false };
  }
  const st = statSync(dir);
  const writable = (st.uid === uid && (st.mode & 0o200) !== 0) || (st.gid === gid && (st.mode & 0o020) !== 0) || (st.mode & 0o002) !== 0;
  return { osUser: 'postgres', writable };
}

describe('no host given: the Unix socket first, as libpq', () => {
  let socketServer: RunningServer | undefined;
  let dir = '';
  /** psql needs -h only when its own default directory could not be used (then it is /tmp for both). */
  let psqlHost: string[] = [];
  beforeAll(async () => {
    const psqlDir = await psqlSocketDir();
    const user = socketServerUser(psqlDir);
    dir = SOCKET_DIRS.includes(psqlDir) && user.writable ? psqlDir : '/tmp';
    psqlHost = dir === psqlDir ? [] : ['-h', dir];
    socketServer = await startServer({ socketOnly: dir, ...(user.osUser && dir === psqlDir ? { osUser: user.osUser } : {}) });
  }, scaled(60_000));
  afterAll(async () => {
    await socketServer?.stop();
  }, scaled(60_000));

  test('a server on a Unix socket only: dbdoctor check without -h connects over the socket, as psql does', async () => {
    const port = String(socketServer!.port);
    const r = await runCli(['check', '--json', '-p', port, '-U', 'postgres', '-d', 'postgres'], { env: bare });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const doc = parseJson<CheckDoc>(r);
    expect(doc.report.target).toBe(`postgres@postgres via socket ${dir} port ${port}`);
    expect(doc.report.steps.find((s) => s.step === 'auth')!.detail).toMatch(new RegExp(`^Unix socket ${dir},`));
    const text = await runCli(['check', '-p', port, '-U', 'postgres', '-d', 'postgres'], { env: bare });
    expect(text.stdout).toMatch(/Unix socket/);
    expect(text.stdout).not.toMatch(/TCP|sslmode=prefer/);
    const psql = await runPsql([...psqlHost, '-p', port, '-U', 'postgres', '-d', 'postgres', '-c', "select current_setting('port'), inet_server_port() is null"], bare);
    expect(psql).toMatchObject({ exitCode: 0, stdout: `${port}|t` });
    // PGHOST names the directory just as well; a port with no server on any socket falls back to TCP localhost
    expect((await runCli(['check', '--json', '-p', port, '-U', 'postgres', '-d', 'postgres'], { env: { ...bare, PGHOST: dir } })).exitCode).toBe(0);
  });
});

/** A CA, a server certificate for "localhost" and a client certificate for the role certuser, by openssl. */
function makeCertificates(dir: string): void {
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = (name: string) => ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', `${name}.key`]);
  key('ca');
  ossl(['req', '-x509', '-new', '-key', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=dbdoctor test CA']);
  for (const [name, cn, ext] of [
    ['server', 'localhost', 'subjectAltName=DNS:localhost'],
    ['client', 'certuser', 'keyUsage=digitalSignature'],
  ] as const) {
    key(name);
    ossl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  }
  for (const f of ['ca.key', 'server.key', 'client.key']) chmodSync(join(dir, f), 0o600);
}

describe('TLS, as libpq: sslmode, the server certificate and client certificates', () => {
  let tls: RunningServer | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-tls-'));
  const serverFiles = join(dir, 'server');
  const clientHome = join(dir, 'home');
  beforeAll(async () => {
    mkdirSync(serverFiles, { mode: 0o700 });
    makeCertificates(serverFiles);
    writeFileSync(
      join(serverFiles, 'pg_hba.conf'),
      ['local all all trust', 'hostssl all certuser 127.0.0.1/32 cert', 'hostnossl all tlsonly 127.0.0.1/32 reject', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n'),
    );
    const as = serverBinaries()?.runAs;
    if (as) {
      chmodSync(dir, 0o755);
      chownSync(serverFiles, as.uid, as.gid);
      for (const f of ['server.key', 'server.crt', 'ca.crt', 'pg_hba.conf']) chownSync(join(serverFiles, f), as.uid, as.gid);
    }
    tls = await startServer({
      settings: {
        ssl: 'on',
        ssl_cert_file: join(serverFiles, 'server.crt'),
        ssl_key_file: join(serverFiles, 'server.key'),
        ssl_ca_file: join(serverFiles, 'ca.crt'),
        hba_file: join(serverFiles, 'pg_hba.conf'),
        // the statements dbdoctor sends, for the options test
        log_statement: 'all',
      },
    });
    const c = new pg.Client({ connectionString: tls.url(), ssl: false });
    await c.connect();
    await c.query(`CREATE ROLE certuser LOGIN; CREATE ROLE tlsonly LOGIN PASSWORD '${ROLE_PASSWORD}'`);
    await c.end();
    // the default client certificate and key, where libpq looks for them
    mkdirSync(join(clientHome, '.postgresql'), { recursive: true, mode: 0o700 });
    for (const f of ['crt', 'key']) writeFileSync(join(clientHome, '.postgresql', `postgresql.${f}`), execFileSync('cat', [join(serverFiles, `client.${f}`)]), { mode: 0o600 });
  }, scaled(90_000));
  afterAll(async () => {
    await tls?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, scaled(60_000));

  const ca = () => join(serverFiles, 'ca.crt');
  const cases: Array<[string, (port: number) => string, Record<string, string>, boolean]> = [
    ['require: encrypted, the certificate not checked (a TLS-only role gets in)', (p) => `host=127.0.0.1 port=${p} user=tlsonly dbname=postgres sslmode=require`, { PGPASSWORD: ROLE_PASSWORD }, true],
    ['prefer (the default): encrypted over the one connection, the TLS-only role gets in', (p) => `host=127.0.0.1 port=${p} user=tlsonly dbname=postgres`, { PGPASSWORD: ROLE_PASSWORD }, true],
    ['prefer by a host name (SNI names it)', (p) => `host=localhost port=${p} user=tlsonly dbname=postgres sslmode=prefer`, { PGPASSWORD: ROLE_PASSWORD }, true],
    ['prefer with the client certificate pg_hba.conf requires', (p) => `host=127.0.0.1 port=${p} user=certuser dbname=postgres sslcert=${join(serverFiles, 'client.crt')} sslkey=${join(serverFiles, 'client.key')}`, {}, true],
    ['disable: the TLS-only role is rejected', (p) => `host=127.0.0.1 port=${p} user=tlsonly dbname=postgres sslmode=disable`, { PGPASSWORD: ROLE_PASSWORD }, false],
    ['verify-ca: the CA checked, not the name', (p) => `host=127.0.0.1 port=${p} user=tlsonly dbname=postgres sslmode=verify-ca sslrootcert=${ca()}`, { PGPASSWORD: ROLE_PASSWORD }, true],
    ['verify-full with the certificate\'s name (hostaddr for the address)', (p) => `host=localhost hostaddr=127.0.0.1 port=${p} user=tlsonly dbname=postgres sslmode=verify-full sslrootcert=${ca()}`, { PGPASSWORD: ROLE_PASSWORD }, true],
    ['verify-full with a wrong host name is refused', (p) => `host=wrong.example hostaddr=127.0.0.1 port=${p} user=tlsonly dbname=postgres sslmode=verify-full sslrootcert=${ca()}`, { PGPASSWORD: ROLE_PASSWORD }, false],
    ['verify-full against an IP address the certificate does not name is refused', (p) => `host=127.0.0.1 port=${p} user=tlsonly dbname=postgres sslmode=verify-full sslrootcert=${ca()}`, { PGPASSWORD: ROLE_PASSWORD }, false],
    ['a client certificate that pg_hba.conf requires (sslcert, sslkey)', (p) => `host=127.0.0.1 port=${p} user=certuser dbname=postgres sslmode=require sslcert=${join(serverFiles, 'client.crt')} sslkey=${join(serverFiles, 'client.key')}`, {}, true],
    ['no client certificate where pg_hba.conf requires one is refused', (p) => `host=127.0.0.1 port=${p} user=certuser dbname=postgres sslmode=require`, {}, false],
  ];

  test.each(cases)('%s; psql agrees', async (_name, conninfo, env, ok) => {
    const c = conninfo(tls!.port);
    const r = await runCli(['check', '--json', '-d', c], { env: { ...bare, ...env } });
    const psql = await runPsql([c, '-c', 'select current_user, inet_server_port()'], { ...bare, ...env });
    expect({ dbdoctor: r.exitCode === 0, psql: psql.exitCode === 0 }).toEqual({ dbdoctor: ok, psql: ok });
    if (ok) expect(psql.stdout).toMatch(new RegExp(`\\|${tls!.port}$`));
    else expect(r.exitCode).not.toBe(64);
  });

  test("options' statement_timeout is honoured: dbdoctor keeps it for its own statements instead of its 15s default", async () => {
    const c = `host=127.0.0.1 port=${tls!.port} user=tlsonly dbname=postgres sslmode=require options='-c statement_timeout=4321'`;
    const r = await runCli(['check', '--json', '-d', c], { env: { ...bare, PGPASSWORD: ROLE_PASSWORD } });
    expect(r.exitCode).toBe(0);
    const log = readFileSync(tls!.logFile, 'utf8');
    expect(log).toMatch(/statement: SET DateStyle = ISO; SET statement_timeout = 4321;/);
    // and --statement-timeout still wins
    const flag = await runCli(['check', '--json', '-d', c, '--statement-timeout', '7s'], { env: { ...bare, PGPASSWORD: ROLE_PASSWORD } });
    expect(flag.exitCode).toBe(0);
    expect(readFileSync(tls!.logFile, 'utf8')).toMatch(/statement: SET DateStyle = ISO; SET statement_timeout = 7000;/);
  });

  test('a default client certificate that cannot be read (here a FIFO, never waited on) is skipped, as libpq skips one it cannot stat', async () => {
    const home = join(dir, 'fifo-home');
    mkdirSync(join(home, '.postgresql'), { recursive: true });
    execFileSync('mkfifo', [join(home, '.postgresql', 'postgresql.crt')]);
    const c = `host=127.0.0.1 port=${tls!.port} user=tlsonly dbname=postgres sslmode=require`;
    const r = await runCli(['check', '--json', '-d', c], { env: { HOME: home, PGPASSWORD: ROLE_PASSWORD } });
    expect(r.exitCode).toBe(0);
    // named explicitly, the same file is an error that says what it is
    const named = await runCli(['check', '--json', '-d', `${c} sslcert=${join(home, '.postgresql', 'postgresql.crt')}`], { env: { HOME: home, PGPASSWORD: ROLE_PASSWORD } });
    expect(named.exitCode).toBe(3);
    expect(named.stderr).toMatch(/cannot read the client certificate file .*: it is/);
  });

  test("a client key that does not match its certificate: dbdoctor's own TLS set-up (UNKNOWN), under prefer as under require, no stack", async () => {
    const base = `host=127.0.0.1 port=${tls!.port} user=certuser dbname=postgres sslcert=${join(serverFiles, 'client.crt')} sslkey=${join(serverFiles, 'server.key')}`;
    const outcomes = [];
    for (const mode of ['prefer', 'require']) {
      const r = await runCli(['check', '--json', '-d', `${base} sslmode=${mode}`], { env: bare });
      expect(r.stderr).not.toMatch(/\n\s+at |node:internal/);
      expect(r.exitCode).toBe(3);
      outcomes.push(parseJson<{ report: { failure: { step: string; cause: string; message: string } } }>(r).report.failure);
    }
    expect(outcomes[0]).toMatchObject({ step: 'tls', cause: 'tls_failed', message: expect.stringMatching(/key values mismatch/) });
    expect(outcomes[0]).toEqual(outcomes[1]);
  });

  test('the client certificate in ~/.postgresql is used when sslcert is not given, as libpq does', async () => {
    const c = `host=127.0.0.1 port=${tls!.port} user=certuser dbname=postgres sslmode=require`;
    const r = await runCli(['check', '--json', '-d', c], { env: { HOME: clientHome } });
    expect(r.exitCode).toBe(0);
    const psql = await runPsql([c, '-c', 'select current_user'], { HOME: clientHome });
    expect(psql).toMatchObject({ exitCode: 0, stdout: 'certuser' });
  });
});
