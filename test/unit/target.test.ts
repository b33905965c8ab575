import { describe, expect, test } from '@jest/globals';
import { parseConninfo, parseDbnameArg, redactSecrets } from '../../src/core/conninfo.js';
import { UsageError } from '../../src/core/errors.js';
import { describeTarget, resolveTarget, type TargetInputs, withoutConnectionEnv } from '../../src/core/target.js';

const base = (over: Partial<TargetInputs> = {}): TargetInputs => ({
  flags: {},
  env: {},
  osUser: 'alice',
  lookupService: () => undefined,
  ...over,
});

describe('conninfo and URLs', () => {
  test('parses key=value strings with quoting as libpq does', () => {
    expect(parseConninfo("host=db1 dbname=app sslmode=require password='a b\\'c'")).toEqual({ host: 'db1', dbname: 'app', sslmode: 'require', password: "a b'c" });
    expect(parseConninfo('host = db1  port=6543')).toEqual({ host: 'db1', port: '6543' });
  });
  test('rejects malformed conninfo with a usage error', () => {
    expect(() => parseConninfo("host='unterminated")).toThrow(UsageError);
    expect(() => parseConninfo('host db1')).toThrow(UsageError);
  });
  test('-d takes a name, a URL or a conninfo string', () => {
    expect(parseDbnameArg('app')).toEqual({ dbname: 'app' });
    expect(parseDbnameArg('postgres://u:p%40ss@h:6000/d?sslmode=disable&application_name=x')).toEqual({
      host: 'h', port: '6000', user: 'u', password: 'p@ss', dbname: 'd', sslmode: 'disable',
    });
    expect(parseDbnameArg('dbname=app host=h')).toEqual({ dbname: 'app', host: 'h' });
    expect(() => parseDbnameArg('postgres://u@h:99999999/d')).toThrow(UsageError);
  });
  test('redacts passwords in URLs and conninfo strings', () => {
    expect(redactSecrets('postgres://bob:s3cret@db/app')).toBe('postgres://bob:***@db/app');
    expect(redactSecrets("host=x password='s 3' user=y")).toBe('host=x password=*** user=y');
    expect(redactSecrets('password=abc')).toBe('password=***');
  });
});

describe('target resolution follows libpq precedence', () => {
  test('defaults: localhost, 5432, the OS user, dbname = user, prefer, 5 s', () => {
    expect(resolveTarget(base())).toMatchObject({ host: 'localhost', port: 5432, user: 'alice', dbname: 'alice', sslmode: 'prefer', connectTimeoutMs: 5000 });
  });
  test('explicit flags beat -d, which beats the service, which beats PG*, which beats DATABASE_URL', () => {
    const t = resolveTarget(
      base({
        flags: { host: 'flaghost', dbname: 'postgres://urluser@urlhost:7000/urldb', service: 'svc' },
        env: { PGHOST: 'envhost', PGPORT: '6000', PGUSER: 'envuser', PGDATABASE: 'envdb', PGSSLMODE: 'disable', DATABASE_URL: 'postgres://du:dp@duhost:1111/dudb' },
        lookupService: () => ({ host: 'svchost', port: '6500', dbname: 'svcdb', sslmode: 'verify-full' }),
      }),
    );
    expect(t).toMatchObject({ host: 'flaghost', port: 7000, user: 'urluser', dbname: 'urldb', sslmode: 'verify-full', password: 'dp', service: 'svc' });
  });
  test('DATABASE_URL is used when nothing else says otherwise', () => {
    expect(resolveTarget(base({ env: { DATABASE_URL: 'postgres://du@duhost:1111/dudb' } }))).toMatchObject({ host: 'duhost', port: 1111, user: 'du', dbname: 'dudb' });
  });
  test('PGSERVICE is read, and an unknown service is a usage error', () => {
    expect(resolveTarget(base({ env: { PGSERVICE: 's1' }, lookupService: (n) => (n === 's1' ? { host: 'h1', user: 'u1' } : undefined) }))).toMatchObject({ host: 'h1', user: 'u1', service: 's1' });
    expect(() => resolveTarget(base({ env: { PGSERVICE: 'nope' } }))).toThrow(/service "nope" not found/);
  });
  test('connect timeout: --connect-timeout, then connect_timeout / PGCONNECT_TIMEOUT in seconds (minimum 2, as libpq)', () => {
    expect(resolveTarget(base({ flags: { connectTimeout: '1500ms' }, env: { PGCONNECT_TIMEOUT: '9' } })).connectTimeoutMs).toBe(1500);
    expect(resolveTarget(base({ env: { PGCONNECT_TIMEOUT: '9' } })).connectTimeoutMs).toBe(9000);
    expect(resolveTarget(base({ env: { PGCONNECT_TIMEOUT: '1' } })).connectTimeoutMs).toBe(2000);
  });
  test.each(['0', '70000', 'abc', '-1', ''])('port %p is a usage error', (port) => {
    if (port === '') {
      expect(resolveTarget(base({ flags: { port } })).port).toBe(5432);
      return;
    }
    expect(() => resolveTarget(base({ flags: { port } }))).toThrow(UsageError);
  });
  test('an unknown sslmode is a usage error', () => {
    expect(() => resolveTarget(base({ env: { PGSSLMODE: 'sometimes' } }))).toThrow(/invalid sslmode/);
  });
  test('describeTarget never shows a password', () => {
    const t = resolveTarget(base({ flags: { dbname: 'postgres://u:topsecret@h/d' } }));
    expect(describeTarget(t)).toBe('postgres://u@h:5432/d');
  });
});

describe('the PG* environment, as libpq reads it', () => {
  test('a variable that is set but empty counts as unset (PGHOST= PGPORT= as scripts leave them)', () => {
    const t = resolveTarget(base({ env: { PGHOST: '', PGPORT: '', PGUSER: '', PGDATABASE: '', PGSSLMODE: '', PGCONNECT_TIMEOUT: '', PGOPTIONS: '', PGSERVICE: '' } }));
    expect(t).toMatchObject({ host: 'localhost', port: 5432, user: 'alice', dbname: 'alice', sslmode: 'prefer', connectTimeoutMs: 5000, service: undefined });
    expect(t.options).toBeUndefined();
  });
  test('PGOPTIONS is the options sent to the server; options= in -d (a URL or conninfo) and the service win over it', () => {
    expect(resolveTarget(base({ env: { PGOPTIONS: '-c search_path=app' } })).options).toBe('-c search_path=app');
    expect(resolveTarget(base({ env: { PGOPTIONS: '-c a=1' }, flags: { dbname: "host=h options='-c b=2'" } })).options).toBe('-c b=2');
    expect(resolveTarget(base({ flags: { dbname: 'postgres://u@h/d?options=-c%20c%3D3' } })).options).toBe('-c c=3');
    expect(resolveTarget(base({ env: { PGOPTIONS: '-c a=1' }, flags: { service: 's' }, lookupService: () => ({ options: '-c d=4' }) })).options).toBe('-c d=4');
  });
  test('withoutConnectionEnv drops every PG* variable and DATABASE_URL, and nothing else', () => {
    expect(withoutConnectionEnv({ PGHOST: '', PGPORT: '5433', PGOPTIONS: '-c x=y', PGDATA: '/d', DATABASE_URL: 'postgres://x', PATH: '/bin', HOME: '/h', DBDOCTOR_PG_MAJOR: '16', LANG: undefined })).toEqual({
      PATH: '/bin',
      HOME: '/h',
      DBDOCTOR_PG_MAJOR: '16',
    });
  });
});
