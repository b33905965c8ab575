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
 * Exits 1 and names each offending package; prints one summary line otherwise.
 */
import { readFileSync } from 'node:fs';
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? fileURLToPath(new URL('../package-lock.json', import.meta.url));
  const lock = JSON.parse(readFileSync(file, 'utf8'));
  if (lock.lockfileVersion < 2) {
    console.error(`check-platforms: ${file} is lockfileVersion ${lock.lockfileVersion}; version 2 or 3 (npm 7+) records os and cpu`);
    process.exit(1);
  }
  const problems = platformProblems(lock);
  const restricted = Object.values(lock.packages).filter((e) => e.os || e.cpu || e.libc).length;
  if (problems.length > 0) {
    console.error(`check-platforms: ${problems.length} package(s) installed unconditionally are restricted to some platforms:`);
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  console.log(`check-platforms: ok: the ${restricted} platform-specific packages in ${file} are all optional; npm install works on ${TARGETS.map((t) => `${t.os}-${t.cpu}${t.libc ? `-${t.libc}` : ''}`).join(', ')}`);
}
