import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { parseJson, runCli } from '../support/cli.js';
import { dbdoctorSessionsLeft } from '../support/incidents.js';
import { useServer } from '../support/server.js';

interface Doc {
  report: { status: string; target: string; failure: { step: string; cause: string } | null; privileges: { role: string } | null };
}

const server = useServer();
const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-conn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('connection options, as libpq reads them', () => {
  test('PG* environment variables', async () => {
    const s = server();
    const r = await runCli(['check', '--json'], { env: { PGHOST: s.host, PGPORT: String(s.port), PGUSER: 'postgres', PGPASSWORD: s.password, PGDATABASE: 'postgres' } });
    expect(r.exitCode).toBe(0);
    expect(parseJson<Doc>(r).report.privileges!.role).toBe('postgres');
    expect(r.stdout + r.stderr).not.toContain(s.password);
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test('a conninfo string in -d, and explicit flags win over the environment', async () => {
    const s = server();
    const r = await runCli(['check', '--json', '-d', `host=${s.host} port=${s.port} user=postgres dbname=postgres`, '-p', String(s.port)], {
      env: { PGPASSWORD: s.password, PGHOST: 'wrong-host.invalid', PGPORT: '1' },
    });
    expect(r.exitCode).toBe(0);
    expect(parseJson<Doc>(r).report.target).toBe(`postgres://postgres@${s.host}:${s.port}/postgres`);
  });

  test('PGOPTIONS reaches the server as libpq sends it, options= in -d wins over it, and PG* variables set but empty count as unset', async () => {
    const s = server();
    const env = { PGHOST: '', PGPORT: '', PGSSLMODE: '', PGSERVICE: '', PGUSER: 'postgres', PGPASSWORD: s.password, PGDATABASE: 'postgres' };
    const at = ['-h', s.host, '-p', String(s.port)];
    const bad = await runCli(['check', '--json', ...at], { env: { ...env, PGOPTIONS: '-c work_mem=banana' } });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/work_mem/);
    const good = await runCli(['check', '--json', ...at, '-d', "dbname=postgres options='-c work_mem=64kB'"], { env: { ...env, PGOPTIONS: '-c work_mem=banana' } });
    expect(good.exitCode).toBe(0);
    const plain = await runCli(['check', '--json', ...at], { env: { ...env, PGOPTIONS: '' } });
    expect(plain.exitCode).toBe(0);
    expect(await dbdoctorSessionsLeft(s)).toBe(0);
  });

  test('DATABASE_URL is used when nothing else is given', async () => {
    const s = server();
    const r = await runCli(['check', '--json'], { env: { DATABASE_URL: s.url() } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(s.password);
  });

  test('~/.pgpass (PGPASSFILE) supplies the password; a group-readable file is ignored', async () => {
    const s = server();
    const file = join(dir, 'pgpass');
    writeFileSync(file, `${s.host}:${s.port}:*:postgres:${s.password}\n`);
    chmodSync(file, 0o600);
    const ok = await runCli(['check', '--json', '-h', s.host, '-p', String(s.port), '-U', 'postgres'], { env: { PGPASSFILE: file } });
    expect(ok.exitCode).toBe(0);
    chmodSync(file, 0o644);
    const ignored = await runCli(['check', '--json', '-h', s.host, '-p', String(s.port), '-U', 'postgres'], { env: { PGPASSFILE: file } });
    expect(ignored.exitCode).toBe(3);
    expect(parseJson<Doc>(ignored).report.failure).toMatchObject({ step: 'auth', cause: 'no_password' });
    expect(ignored.stderr).toMatch(/permissions should be u=rw/);
    expect(ignored.stdout + ignored.stderr).not.toContain(s.password);
  });

  test('PGSERVICE and --service read pg_service.conf (PGSERVICEFILE)', async () => {
    const s = server();
    const file = join(dir, 'pg_service.conf');
    writeFileSync(file, `[incident]\nhost=${s.host}\nport=${s.port}\nuser=postgres\ndbname=postgres\n`);
    const viaEnv = await runCli(['check', '--json'], { env: { PGSERVICE: 'incident', PGSERVICEFILE: file, PGPASSWORD: s.password } });
    expect(viaEnv.exitCode).toBe(0);
    const viaFlag = await runCli(['check', '--json', '--service', 'incident'], { env: { PGSERVICEFILE: file, PGPASSWORD: s.password } });
    expect(viaFlag.exitCode).toBe(0);
    const missing = await runCli(['check', '--service', 'nope'], { env: { PGSERVICEFILE: file } });
    expect(missing.exitCode).toBe(64);
    expect(missing.stderr).toMatch(/service "nope" not found/);
  });

  test('sslmode keeps libpq meanings: require on a server without SSL is a TLS failure; prefer goes on without it', async () => {
    const s = server();
    const req = await runCli(['check', '--json', '-d', `${s.url()}?sslmode=require`]);
    expect(req.exitCode).toBe(3);
    expect(parseJson<Doc>(req).report.failure).toMatchObject({ step: 'tls', cause: 'tls_unsupported' });
    const viaEnv = await runCli(['check', '--json', '-d', s.url()], { env: { PGSSLMODE: 'verify-full' } });
    expect(viaEnv.exitCode).toBe(3);
    expect(parseJson<Doc>(viaEnv).report.failure).toMatchObject({ step: 'tls', cause: 'tls_unsupported' });
    const prefer = await runCli(['check', '--json', '-d', `${s.url()}?sslmode=prefer`]);
    expect(prefer.exitCode).toBe(0);
    const disable = await runCli(['check', '--json', '-d', s.url()], { env: { PGSSLMODE: 'disable' } });
    expect(disable.exitCode).toBe(0);
  });

  test('a URL with the password is never echoed, even when malformed', async () => {
    const r = await runCli(['check', '-d', 'postgres://bob:Hunter2-secret@[bad/app']);
    expect(r.exitCode).toBe(64);
    expect(r.stdout + r.stderr).not.toContain('Hunter2-secret');
  });
});
