/**
 * Connection strings, URLs, service files and PG* variables read as libpq reads them: unknown
 * keywords are errors (with a suggestion), options dbdoctor cannot honour are refused by name, and
 * pg_service.conf follows libpq's own grammar rather than a generic INI reader's.
 */
import { describe, expect, test } from '@jest/globals';
import { nearestKeyword, parseConninfo, parseDbnameArg, parseServiceFile, parseUrl, statementTimeoutInOptions } from '../../src/core/conninfo.js';
import { UsageError } from '../../src/core/errors.js';
import { resolveTarget, type TargetInputs } from '../../src/core/target.js';

const base = (over: Partial<TargetInputs> = {}): TargetInputs => ({ flags: {}, env: {}, osUser: 'alice', lookupService: () => undefined, ...over });

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as UsageError).message;
  }
  throw new Error('no error');
}

describe('unknown keywords are errors, as in libpq', () => {
  test.each([
    ['host=db1 dbnmae=app', /^invalid connection option "dbnmae": did you mean "dbname"\?$/],
    ['host=db1 sslmod=require', /did you mean "sslmode"/],
    ['hots=db1', /did you mean "host"/],
    ['host=db1 sslrootcrt=/ca', /did you mean "sslrootcert"/],
  ])('%s', (conninfo, message) => {
    expect(usageMessage(() => parseConninfo(conninfo))).toMatch(message);
  });
  test('a URL parameter libpq does not know is refused, with the suggestion', () => {
    expect(usageMessage(() => parseUrl('postgres://u@h/d?sslmdoe=require'))).toMatch(/^invalid URI query parameter "sslmdoe": did you mean "sslmode"\?$/);
    expect(parseUrl('postgres://u@h/d?ssl=true')).toMatchObject({ sslmode: 'require' });
  });
  test('a key far from every keyword is not echoed (it may be a piece of an unquoted password)', () => {
    const m = usageMessage(() => parseConninfo('password=pa ss9qz=rest host=h'));
    expect(m).toBe('invalid connection option: a key libpq does not know');
    expect(m).not.toContain('ss9qz');
  });
  test('suggestions come from libpq keywords only, and only for near misses', () => {
    expect(nearestKeyword('dbnmae')).toBe('dbname');
    expect(nearestKeyword('completelydifferent')).toBeUndefined();
  });
});

describe('what users pass is taken, or refused by name', () => {
  test('hostaddr, client certificates, revocation list, options, timeouts and keepalives are taken', () => {
    const p = parseConninfo(
      "host=db.example hostaddr=10.0.0.5 sslcert=/c.crt sslkey=/c.key sslpassword=kp sslcrl=/r.crl sslrootcert=/ca.crt options='-c statement_timeout=5s' connect_timeout=7 keepalives=1 keepalives_idle=30 keepalives_interval=5 keepalives_count=3 application_name=x",
    );
    expect(p).toEqual({
      host: 'db.example',
      hostaddr: '10.0.0.5',
      sslcert: '/c.crt',
      sslkey: '/c.key',
      sslpassword: 'kp',
      sslcrl: '/r.crl',
      sslrootcert: '/ca.crt',
      options: '-c statement_timeout=5s',
      connect_timeout: '7',
      keepalives: '1',
      keepalives_idle: '30',
    });
    const t = resolveTarget(base({ flags: { dbname: "host=db.example hostaddr=10.0.0.5 sslcert=/c.crt sslkey=/c.key keepalives_idle=30 ssl_min_protocol_version=TLSv1.2" } }));
    expect(t).toMatchObject({ host: 'db.example', hostaddr: '10.0.0.5', sslcert: '/c.crt', sslkey: '/c.key', keepalivesIdleMs: 30_000, sslMinProtocolVersion: 'TLSv1.2' });
    expect(resolveTarget(base({ flags: { dbname: 'hostaddr=127.0.0.1' } })).host).toBe('127.0.0.1');
    expect(resolveTarget(base({ flags: { dbname: 'keepalives=0' } })).keepalives).toBe(false);
  });
  test.each([
    ['host=a,b', /several hosts/],
    ['port=5432,5433', /several ports/],
    ['target_session_attrs=read-write', /target_session_attrs=read-write/],
    ['krbsrvname=postgres', /"krbsrvname"/],
    ['gssencmode=require', /gssencmode=require/],
    ['passfile=/x', /"passfile"/],
    ['require_auth=scram-sha-256', /"require_auth"/],
    ['hostaddr=db.example', /invalid hostaddr/],
    ['ssl_min_protocol_version=TLSv9', /invalid ssl_min_protocol_version/],
  ])('%s is refused by name', (conninfo, message) => {
    expect(usageMessage(() => resolveTarget(base({ flags: { dbname: conninfo } })))).toMatch(message);
  });
  test('values that ask for no more than dbdoctor does are taken', () => {
    expect(() => parseConninfo('target_session_attrs=any gssencmode=disable channel_binding=prefer sslnegotiation=postgres')).not.toThrow();
  });
  test('a PG* variable is held to the same rules, and named in the message', () => {
    expect(usageMessage(() => resolveTarget(base({ env: { PGTARGETSESSIONATTRS: 'primary' } })))).toMatch(/target_session_attrs=primary.*\(from PGTARGETSESSIONATTRS\)/);
    expect(resolveTarget(base({ env: { PGSSLCERT: '/c', PGSSLKEY: '/k', PGHOSTADDR: '::1' } }))).toMatchObject({ sslcert: '/c', sslkey: '/k', hostaddr: '::1', host: '::1' });
  });
});

describe('no host: the Unix socket first, as libpq', () => {
  test('the socket directory that holds a server for the port, else localhost', () => {
    const seen: number[] = [];
    const findSocketDir = (port: number) => {
      seen.push(port);
      return port === 5433 ? '/var/run/postgresql' : undefined;
    };
    expect(resolveTarget(base({ flags: { port: '5433' }, findSocketDir })).host).toBe('/var/run/postgresql');
    expect(resolveTarget(base({ findSocketDir })).host).toBe('localhost');
    expect(seen).toEqual([5433, 5432]);
    expect(resolveTarget(base({ env: { PGHOST: 'db1' }, findSocketDir })).host).toBe('db1');
    expect(resolveTarget(base({ flags: { dbname: 'hostaddr=10.1.1.1' }, findSocketDir })).host).toBe('10.1.1.1');
  });
});

describe("pg_service.conf, read by libpq's grammar", () => {
  const file = [
    '# a comment',
    '[prod]',
    'host=wrong',
    '',
    '[prod.eu]',
    '  host=db.eu.example  ',
    'password=a;b#c',
    'options=-c search_path=app',
    'dbname="quoted"',
    'host=second-is-ignored',
    '  # an indented comment',
    '[after]',
    'host=after',
  ].join('\n');
  test('a section name with a dot is one service; values are literal after the first "="', () => {
    expect(parseServiceFile(file, 'prod.eu', 'f')).toEqual({ host: 'db.eu.example', password: 'a;b#c', options: '-c search_path=app', dbname: '"quoted"' });
    expect(parseServiceFile(file, 'prod', 'f')).toEqual({ host: 'wrong' });
    expect(parseServiceFile(file, 'eu', 'f')).toBeUndefined();
    expect(parseServiceFile(file, 'prod.e', 'f')).toBeUndefined();
  });
  test('a line without "=", an unknown keyword, or a nested service is an error naming the file and line', () => {
    expect(usageMessage(() => parseServiceFile('[s]\nhost db1\n', 's', '/etc/pg_service.conf'))).toMatch(/syntax error in the service file \/etc\/pg_service.conf, line 2/);
    expect(usageMessage(() => parseServiceFile('[s]\nhots=db1\n', 's', 'f'))).toMatch(/did you mean "host".*line 2/);
    expect(usageMessage(() => parseServiceFile('[s]\nservice=t\n', 's', 'f'))).toMatch(/nested service/);
    // libpq does not trim around "=": "host =x" is the keyword "host "
    expect(() => parseServiceFile('[s]\nhost =x\n', 's', 'f')).toThrow(UsageError);
    // errors in other sections are not read
    expect(parseServiceFile('[t]\nbogus\n[s]\nhost=x\n', 's', 'f')).toEqual({ host: 'x' });
  });
  test('-d and URLs still take everything they took', () => {
    expect(parseDbnameArg("host=db1 dbname=app password='a b'")).toEqual({ host: 'db1', dbname: 'app', password: 'a b' });
  });
});

describe("options' statement_timeout is dbdoctor's own, as the user asked", () => {
  test.each([
    ['-c statement_timeout=4321', 4321],
    ['-c statement_timeout=5s', 5000],
    ['-cstatement_timeout=2min -c search_path=app', 120_000],
    ['--statement_timeout=250ms', 250],
    ['--statement-timeout=1h', 3_600_000],
    ['-c statement_timeout=1s -c statement_timeout=3s', 3000],
    ['-c statement_timeout=0', undefined],
    ['-c statement_timeout=banana', undefined],
    ['-c search_path=app', undefined],
    ['-c lock_timeout=5s', undefined],
  ])('%s', (options, ms) => {
    expect(statementTimeoutInOptions(options)).toBe(ms);
  });
});
