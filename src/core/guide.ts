/**
 * The guided walk's decisions (pure): which next steps to offer for a finding, following the
 * decision tree (inspect the evidence, clean up with the recommended `terminate`, read the runbook
 * section), which clean-ups the demo runs, and whether a connection target was given at all.
 * The findings carry their next steps as commands (`dbdoctor terminate --state "idle in
 * transaction" --app worker --older-than 5m`) with their argv; every step the walk offers is a
 * command the user could paste, and runs through that command's own code.
 */
import type { Severity } from './exit-codes.js';
import { shellCommand } from './printed.js';
import type { Target } from './target.js';

/** One next step of a finding: words, and the dbdoctor command that does it, when there is one. */
export interface GuideStep {
  text: string;
  /** The command as printed (`dbdoctor terminate --state ...`), or null. */
  command: string | null;
  /** The same command as an argument vector without "dbdoctor", or null. */
  argv: string[] | null;
}

/** What the walk needs of a diagnose finding. */
export interface GuideFinding {
  id: string;
  severity: Severity;
  title: string;
  /** The likely cause, in plain words. */
  cause?: string;
  next: GuideStep[];
  /** The runbook node (an anchor in runbooks/) that explains this branch, when there is one. */
  runbook: string | null;
}

export type ActionKind = 'terminate' | 'inspect' | 'runbook' | 'run';

export interface GuideAction {
  kind: ActionKind;
  /** The dbdoctor arguments, without "dbdoctor" (e.g. ["locks"]). */
  argv: string[];
  /** The command as the user could paste it. */
  command: string;
  /** Changes something on the server (through the command's own plan and confirmation). */
  destructive: boolean;
}

/** Commands that take the connection options (the walk passes its target on to them). */
export const CONNECTING_COMMANDS = new Set(['check', 'connections', 'locks', 'queries', 'diagnose', 'terminate']);
const INSPECTIONS = new Set(['check', 'connections', 'locks', 'queries']);

const ORDER: Record<ActionKind, number> = { inspect: 0, terminate: 1, run: 2, runbook: 3 };

/** A default inspection for findings that name none, by the branch of the tree they come from. */
export function defaultInspection(findingId: string): string[] | null {
  const id = findingId.toLowerCase();
  if (/block|lock|ddl/.test(id)) return ['locks'];
  if (/slow|long|statement|seq/.test(id)) return ['queries', '--group'];
  if (/leak|idle|client|transaction|cursor/.test(id)) return ['queries'];
  if (/capacity|slot|hold|limit|connection/.test(id)) return ['connections'];
  return null;
}

/**
 * The next steps the walk offers for one finding: its own dbdoctor commands (inspections first,
 * then clean-ups, then anything else), a default inspection when it names none, and its runbook
 * section. Commands that this build of dbdoctor does not have are left out.
 */
export function findingActions(f: GuideFinding, available: ReadonlySet<string>): GuideAction[] {
  const actions: GuideAction[] = [];
  const seen = new Set<string>();
  const add = (argv: string[]) => {
    const sub = argv[0];
    if (!sub || !available.has(sub) || sub === 'diagnose' || sub === 'guide' || sub === 'demo') return;
    // The walk renders for a terminal; a pasted --json or --yes would change what the step is.
    const clean = argv.filter((a) => a !== '--json' && a !== '--yes' && a !== '-y');
    // Built by the one shell quoter; a step whose words cannot be shown exactly is not offered.
    const command = shellCommand(clean);
    if (command === null || seen.has(command)) return;
    seen.add(command);
    const kind: ActionKind = sub === 'terminate' ? 'terminate' : INSPECTIONS.has(sub) ? 'inspect' : sub === 'runbook' ? 'runbook' : 'run';
    actions.push({ kind, argv: clean, command, destructive: kind === 'terminate' });
  };
  for (const step of f.next) if (step.argv) add(step.argv);
  if (!actions.some((a) => a.kind === 'inspect')) {
    const d = defaultInspection(f.id);
    if (d) add(d);
  }
  if (f.runbook && !actions.some((a) => a.kind === 'runbook')) add(['runbook', f.runbook]);
  return actions.map((a, i) => ({ a, i })).sort((x, y) => ORDER[x.a.kind] - ORDER[y.a.kind] || x.i - y.i).map(({ a }) => a);
}

const RANK: Record<Severity, number> = { critical: 0, unknown: 1, warning: 2, info: 3, ok: 4 };

/** Findings worth walking through, worst first (ok findings are not offered). */
export function actionableFindings<F extends GuideFinding>(findings: F[]): F[] {
  return findings
    .map((f, i) => ({ f, i }))
    .filter(({ f }) => f.severity !== 'ok')
    .sort((a, b) => RANK[a.f.severity] - RANK[b.f.severity] || a.i - b.i)
    .map(({ f }) => f);
}

/**
 * The clean-ups the demo runs without a TTY: every `dbdoctor terminate ...` that a critical or
 * warning finding recommends, in the order of the findings (worst first), each once.
 */
export function recommendedTerminations(findings: GuideFinding[]): string[][] {
  const out: string[][] = [];
  const seen = new Set<string>();
  for (const f of actionableFindings(findings)) {
    if (f.severity !== 'critical' && f.severity !== 'warning') continue;
    for (const step of f.next) {
      const argv = step.argv;
      if (argv?.[0] !== 'terminate') continue;
      const clean = argv.filter((a) => a !== '--json' && a !== '--yes' && a !== '-y' && a !== '--dry-run');
      const key = clean.join('\u0000');
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(clean);
    }
  }
  return out;
}

/**
 * Whether a recommended terminate that names its sessions by pid (`--pid 1,2`) and nothing else
 * would only find sessions an earlier clean-up of the same run already ended.
 */
export function coveredByEarlier(argv: string[], ended: ReadonlySet<number>): boolean {
  const pids: number[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--pid' && i + 1 < argv.length) pids.push(...argv[++i]!.split(',').map(Number));
    else if (a.startsWith('--pid=')) pids.push(...a.slice(6).split(',').map(Number));
    else if (a === '--cancel-first' || a === '--include-superusers' || a === '--all-databases') continue;
    else return false;
  }
  return pids.length > 0 && pids.every((p) => ended.has(p));
}

export interface TargetFlags {
  host?: string | undefined;
  port?: string | undefined;
  username?: string | undefined;
  dbname?: string | undefined;
  service?: string | undefined;
}

const TARGET_ENV = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGSERVICE', 'DATABASE_URL'];

/** Whether the options or the environment say where to connect (else the walk asks). */
export function targetGiven(flags: TargetFlags, env: Readonly<Record<string, string | undefined>>): boolean {
  if ([flags.host, flags.port, flags.username, flags.dbname, flags.service].some((v) => v !== undefined && v !== '')) return true;
  return TARGET_ENV.some((k) => env[k] !== undefined && env[k] !== '');
}

/** How the walk reads what the user typed when asked where to connect. */
export function flagsFromAnswer(answer: string): TargetFlags {
  const a = answer.trim();
  if (/^postgres(ql)?:\/\//i.test(a) || /\w\s*=/.test(a)) return { dbname: a };
  // host, host:port, or [v6]:port
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(a);
  if (v6) return { host: v6[1], ...(v6[2] ? { port: v6[2] } : {}) };
  const hp = /^([^:/\s]+):(\d+)$/.exec(a);
  if (hp) return { host: hp[1], port: hp[2] };
  return { host: a };
}

function conninfoValue(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The options that point another dbdoctor command at the walk's target: one conninfo string in
 * `-d` (with the password, when the walk has one: it stays in this process and is never printed),
 * and the connect timeout.
 */
export function connectionArgs(t: Target): string[] {
  const parts = [`host=${conninfoValue(t.host)}`, `port=${t.port}`, `user=${conninfoValue(t.user)}`, `dbname=${conninfoValue(t.dbname)}`, `sslmode=${t.sslmode}`];
  if (t.password !== undefined) parts.push(`password=${conninfoValue(t.password)}`);
  const optional: Array<[string, string | undefined]> = [
    ['hostaddr', t.hostaddr],
    ['sslrootcert', t.sslrootcert],
    ['sslcert', t.sslcert],
    ['sslkey', t.sslkey],
    ['sslpassword', t.sslpassword],
    ['sslcrl', t.sslcrl],
    ['ssl_min_protocol_version', t.sslMinProtocolVersion],
    ['ssl_max_protocol_version', t.sslMaxProtocolVersion],
    ['keepalives', t.keepalives === false ? '0' : undefined],
    ['keepalives_idle', t.keepalivesIdleMs !== undefined ? String(t.keepalivesIdleMs / 1000) : undefined],
    ['options', t.options],
  ];
  for (const [k, v] of optional) if (v !== undefined) parts.push(`${k}=${conninfoValue(v)}`);
  return ['-d', parts.join(' '), '--connect-timeout', `${t.connectTimeoutMs}ms`];
}
