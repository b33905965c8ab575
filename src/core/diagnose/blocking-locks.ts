/**
 * runbooks/blocking-locks.md: who blocks whom. `blocking`: root blockers (from pg_blocking_pids(),
 * never the pg_locks self-join), whom they block and for how long, what to do with each by its
 * state, prepared transactions, and lock cycles (the members apart from the sessions stuck behind
 * them, and which member to end). `ddl-queue`: a migration waiting for a strong table lock with
 * ordinary readers and writers queued behind it, where cancelling the DDL first frees everyone.
 */
import { isVisible, type SessionRow, snapshotByPid } from '../activity.js';
import { type BlockingReport, buildBlockingReport, cycleStep, type LockCycle, type QueueHead, queueHeads, type RootBlocker, waitsAsDdl } from '../blocking.js';
import { worstOf } from '../capacity.js';
import { clientOf } from '../connections.js';
import type { Severity } from '../exit-codes.js';
import { type Arg, database, fixedStep, type NextStep, role, type SqlPart, sqlStep, statementStep } from '../printed.js';
import type { Thresholds } from '../thresholds.js';
import { largest } from '../stats.js';
import { SettingsView, settingNumber } from './settings.js';
import { appLabel, type Context, cut, distinct, dur, emptyEvidence, finding, MAX_PIDS, type NodeResult, nonNull, pathStep, plural, rootIit, runbookStep, uniq } from './shared.js';
import type { Evidence, EvidenceGroup, Finding, SettingsFacts } from './types.js';

export const NODES = ['blocking', 'ddl-queue'] as const;

export interface BlockingResult extends NodeResult {
  report: BlockingReport;
  finding: Finding | null;
}

const QUESTION = 'is anyone blocked behind a lock?';

/** As for a root: by how many wait behind it and how long the longest has waited. */
function severityOf(t: Thresholds, behind: number, wait: number | null, endless: boolean): Severity {
  if ((wait ?? 0) < t.lock_wait_ms) return 'info';
  return endless || behind >= t.blocked_crit_sessions || (wait ?? 0) >= t.lock_wait_crit_ms ? 'critical' : 'warning';
}

function rootGroup(c: Context, r: RootBlocker): { group: EvidenceGroup; step: NextStep[] } {
  const s = r.session;
  const sev = severityOf(c.t, r.all.length, r.longest_wait_ms, rootIit(r) || r.pid === 0);
  const what = r.pid === 0 ? 'a prepared transaction' : s ? `pid ${r.pid} (${appLabel(s.application_name)}, ${s.state ?? 'hidden'}${s.state_age_ms !== null ? ` for ${dur(s.state_age_ms)}` : ''})` : `pid ${r.pid} (gone or hidden)`;
  const locks = r.waited_locks.map((l) => (l.mode ? `${l.mode} on ${l.relation ?? l.locktype}` : l.locktype)).join(', ');
  const group: EvidenceGroup = {
    label: what,
    application: s?.application_name ?? null,
    client: s ? clientOf(s) : null,
    database: s?.datname ?? null,
    users: nonNull([s?.usename]),
    state: s?.state ?? null,
    wait_event: null,
    count: r.all.length,
    // A prepared transaction has no pid: it is named in the evidence's prepared_transactions.
    pids: r.pid === 0 ? r.all : [r.pid, ...r.all],
    oldest_ms: r.longest_wait_ms === null ? null : Math.round(r.longest_wait_ms),
    statement: s && isVisible(s) ? cut(s.query) : null,
    severity: sev,
  };
  if (sev === 'info') return { group, step: [] };
  if (r.pid === 0) return { group, step: r.next };
  if (!s) return { group, step: [] };
  const args: Arg[] = [['--pid', String(r.pid)]];
  if (r.action === 'cancel_then_terminate') args.push('--cancel-first');
  if (s.superuser) args.push('--include-superusers');
  const words = rootIit(r) ? 'the root is idle in transaction: cancelling does nothing; terminate it' : r.action === 'cancel_then_terminate' ? 'the root is running a statement: cancel it first, terminate if it persists' : r.advice;
  return { group, step: [fixedStep(`${words}${locks ? ` (waited on: ${locks})` : ''}`, 'terminate', args)] };
}

/**
 * deadlock_timeout for the cycle's members, where a role or database raised it from the default:
 * the fact, and the RESET that would have let the server break the cycle after a second.
 */
function deadlockTimeouts(settings: SettingsFacts | null, members: SessionRow[]): { facts: string[]; steps: NextStep[] } {
  if (!settings) return { facts: [], steps: [] };
  const view = new SettingsView(settings);
  const facts: string[] = [];
  const steps: NextStep[] = [];
  const seen = new Set<string>();
  for (const r of members) {
    const e = view.effective('deadlock_timeout', r.usename, r.datname);
    if (e.level === 'server' || e.value === null) continue;
    const ms = settingNumber(e.value, 'ms');
    if (ms !== null && ms <= 1000) continue;
    const key = `${e.level}\u0000${r.usename}\u0000${r.datname}`;
    if (seen.has(key)) continue;
    seen.add(key);
    facts.push(`deadlock_timeout is ${e.value} for role ${r.usename ?? '?'} in database ${r.datname ?? '?'} (set at ${e.level} level): the server breaks the cycle only after that`);
    const o = settings.overrides.find((x) => x.name === 'deadlock_timeout' && (e.level === 'database' ? x.role === null : x.role === r.usename) && (e.level === 'role' ? x.database === null : x.database === r.datname));
    const target: SqlPart[] =
      e.level === 'role in database'
        ? ['ALTER ROLE ', role(r.usename ?? '', o?.role_oid ?? r.usesysid ?? null), ' IN DATABASE ', database(r.datname ?? '', o?.database_oid ?? r.datid ?? null)]
        : e.level === 'role'
          ? ['ALTER ROLE ', role(r.usename ?? '', o?.role_oid ?? r.usesysid ?? null)]
          : ['ALTER DATABASE ', database(r.datname ?? '', o?.database_oid ?? r.datid ?? null)];
    steps.push(statementStep(`let the server break such cycles after its default second again (at ${e.level} level)`, [...target, ' RESET deadlock_timeout;'], 'RESET deadlock_timeout there'));
  }
  return { facts, steps };
}

function cycleGroup(c: Context, cycle: LockCycle, rows: ReadonlyMap<number, SessionRow>): { group: EvidenceGroup; steps: NextStep[]; facts: string[] } {
  const members = cycle.members.map((p) => rows.get(p)).filter((r): r is SessionRow => r !== undefined);
  const timeouts = deadlockTimeouts(c.facts.settings, members);
  const apps = uniq(members.map((r) => appLabel(r.application_name)));
  return {
    group: {
      label: `lock cycle: pids ${cycle.members.join(', ')} (${apps.slice(0, 3).join(', ')}) wait for each other; ${plural(cycle.stuck.length, 'session')} stuck behind them`,
      application: members[0]?.application_name ?? null,
      client: members[0] ? clientOf(members[0]) : null,
      database: members[0]?.datname ?? null,
      users: distinct(members, (r) => r.usename),
      state: null,
      wait_event: null,
      count: cycle.members.length + cycle.stuck.length,
      pids: [...cycle.members, ...cycle.stuck],
      oldest_ms: cycle.longest_wait_ms === null ? null : Math.round(cycle.longest_wait_ms),
      statement: members[0] && isVisible(members[0]) ? cut(members[0].query) : null,
      severity: severityOf(c.t, cycle.stuck.length, cycle.longest_wait_ms, false),
    },
    steps: [cycleStep(cycle, rows), ...timeouts.steps],
    facts: [
      `lock cycle: ${members.map((r) => `pid ${r.pid} (${appLabel(r.application_name)}, waiting ${dur(r.wait_lock?.wait_ms ?? r.state_age_ms)}${isVisible(r) ? `: ${cut(r.query, 60)}` : ''})`).join(' and ')}; ${plural(cycle.stuck.length, 'session')} stuck behind (pids ${cycle.stuck.slice(0, 10).join(', ')}${cycle.stuck.length > 10 ? ', ...' : ''})`,
      ...timeouts.facts,
    ],
  };
}

/** blocking: root blockers and lock cycles, whom they block and for how long. */
export function blocking(c: Context): BlockingResult {
  const { snap } = c;
  const report = buildBlockingReport(snap);
  if (report.roots.length === 0 && report.cycles.length === 0) {
    return { report, finding: null, findings: [], path: [pathStep('blocking', QUESTION, 'none', 'no session waits on a lock held by another')] };
  }
  const rows = snapshotByPid(snap);
  const eg: EvidenceGroup[] = [];
  const next: NextStep[] = [fixedStep('see the blocking tree', 'locks')];
  const cycleFacts: string[] = [];
  let rootsWithStep = 0;
  for (const r of report.roots) {
    const { group, step } = rootGroup(c, r);
    eg.push(group);
    if (next.length < 5) next.push(...step);
    if (r.pid !== 0 && step.length) rootsWithStep++;
  }
  for (const cycle of report.cycles) {
    const { group, steps, facts } = cycleGroup(c, cycle, rows);
    eg.push(group);
    cycleFacts.push(...facts);
    if (group.severity !== 'info') next.push(...steps);
  }
  if (rootsWithStep > 1) next.push(fixedStep('or terminate every root blocker at once (a plan is shown first)', 'terminate', ['--blockers']));
  const sev = worstOf(eg.map((g) => g.severity));
  const r0 = report.roots[0];
  const g0 = eg[0]!;
  const stuck = report.cycles.reduce((n, cy) => n + cy.stuck.length, 0);
  const cyclesText = report.cycles.length ? `${plural(report.cycles.length, 'lock cycle')} (${stuck} stuck behind)` : '';
  const title = r0
    ? `${g0.label} blocks ${plural(r0.all.length, 'session')}${r0.longest_wait_ms !== null ? `, longest wait ${dur(r0.longest_wait_ms)}` : ''}${report.roots.length > 1 ? `; ${plural(report.roots.length - 1, 'more root blocker')}` : ''}${cyclesText ? `; ${cyclesText}` : ''}`
    : `${cyclesText}: sessions waiting for each other, which the server breaks only after deadlock_timeout`;
  const blocked = uniq([...report.roots.flatMap((r) => r.all), ...report.cycles.flatMap((cy) => [...cy.members, ...cy.stuck])]);
  const prepared = report.roots.filter((r) => r.pid === 0).flatMap((r) => r.prepared);
  const ev: Evidence = {
    ...emptyEvidence(),
    sessions: report.waiting,
    pids: uniq([...report.roots.map((r) => r.pid).filter((p) => p !== 0), ...blocked]).slice(0, MAX_PIDS),
    prepared_transactions: prepared.map((p) => ({ gid: p.gid, owner: p.owner, database: p.database, transaction: p.transaction })),
    applications: distinct(eg, (g) => g.application),
    clients: distinct(eg, (g) => g.client),
    users: uniq(eg.flatMap((g) => g.users)),
    databases: distinct(eg, (g) => g.database),
    oldest_ms: g0.oldest_ms,
    statements: distinct(eg, (g) => g.statement).slice(0, 5),
    facts: [
      `${plural(report.waiting, 'session')} ${report.waiting === 1 ? 'waits' : 'wait'} on locks; ${plural(report.roots.length, 'root blocker')}${report.cycles.length ? `, ${plural(report.cycles.length, 'lock cycle')}` : ''}`,
      ...report.roots
        .slice(0, 5)
        .map((r) => `root ${r.pid === 0 ? 'a prepared transaction' : `pid ${r.pid}`}: blocks ${r.direct.length} directly, ${r.all.length} in all (pids ${r.all.slice(0, 10).join(', ')}${r.all.length > 10 ? ', ...' : ''}), longest wait ${dur(r.longest_wait_ms)}${r.holds_advisory ? ', holds advisory locks' : ''}`),
      ...cycleFacts,
    ],
    groups: eg,
  };
  const iitRoot = r0 ? rootIit(r0) : false;
  const f = finding(
    'blocking-locks',
    'blocking',
    sev,
    title,
    ev,
    !r0
      ? 'the sessions of a cycle each hold a lock the other needs: a deadlock. The server breaks it only after deadlock_timeout; everything queued behind the cycle waits until then.'
      : iitRoot
        ? 'the root blocker is idle in transaction: the application took locks (an UPDATE, a SELECT ... FOR UPDATE) and stopped without COMMIT or ROLLBACK. Nothing releases them until it does or the session ends; every waiter holds a connection meanwhile.'
        : r0.pid === 0
          ? 'a prepared transaction (two-phase commit) holds the lock; it survives restarts and cannot be terminated, only committed or rolled back'
          : 'the root blocker is running a long statement or transaction (a migration, a batch, a slow query) that holds the locks the others need',
    next,
    r0 ? (r0.pid === 0 ? `a prepared transaction blocks ${r0.all.length}` : `pid ${r0.pid} blocks ${r0.all.length}`) : `${plural(report.cycles.length, 'lock cycle')}, ${stuck} stuck behind`,
  );
  return { report, finding: f, findings: [f], path: [pathStep('blocking', QUESTION, sev === 'info' ? 'short-waits' : sev, title)] };
}

const DDL_QUESTION = 'is a DDL statement waiting for a table lock with sessions queued behind it?';

/** The statement's first word, upper case ("ALTER", "DROP", ...), or "DDL". */
/** "pid 71, pid 72" (pid 0 as a prepared transaction): the first 5, then "...". */
function pidsText(pids: number[]): string {
  return `${pids.slice(0, 5).map((p) => (p === 0 ? 'a prepared transaction' : `pid ${p}`)).join(', ')}${pids.length > 5 ? ', ...' : ''}`;
}

function verbOf(query: string | null): string {
  return /^\s*(?:--[^\n]*\n\s*|\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/.exec(query ?? '')?.[1]?.toUpperCase() ?? 'DDL';
}

/**
 * ddl-queue: a migration (ALTER TABLE, DROP, TRUNCATE, CREATE INDEX without CONCURRENTLY, ...) waits
 * for a strong lock behind a long transaction, and every reader and writer of the table queues behind
 * the migration. The root is the long transaction; the pile-up exists because of the queued DDL, and
 * cancelling it frees them at once (nothing is lost: it has not started).
 */
export function ddlQueue(c: Context, found: BlockingResult): NodeResult {
  const { t } = c;
  const heads = queueHeads(found.report).filter((h) => waitsAsDdl(h.node.session));
  if (heads.length === 0) return { findings: [], path: [pathStep('ddl-queue', DDL_QUESTION, 'none', 'no DDL statement has sessions queued behind it')] };
  const h0 = heads[0]!;
  const groups = heads.slice(0, 5).map((h) => ddlGroup(t, h));
  const sev = worstOf(groups.map((g) => g.severity));
  const s = h0.node.session!;
  const verb = verbOf(s.query);
  const root = h0.root;
  const others = h0.roots.slice(1);
  const rootWhat = `${root.pid === 0 ? 'a prepared transaction' : root.session ? `pid ${root.pid} (${root.session.state ?? 'hidden'}${root.session.state_age_ms !== null ? ` ${dur(root.session.state_age_ms)}` : ''})` : `pid ${root.pid}`}${others.length ? ` and ${plural(others.length, 'more session')} (${pidsText(others.map((r) => r.pid))})` : ''}`;
  const title = `${isVisible(s) ? cut(s.query, 50) : verb} (pid ${s.pid}, app ${appLabel(s.application_name)}) waits behind ${rootWhat}; ${plural(h0.node.behind, 'session')} queue behind the ${verb}`;
  const cancel: Arg[] = [['--pid', String(s.pid)], '--cancel-first'];
  if (s.superuser) cancel.push('--include-superusers');
  const rootSteps = h0.roots.slice(0, 3).flatMap((r) => rootGroup(c, r).step.map((st) => ({ ...st, text: `then ${others.length ? 'a' : 'the'} long transaction it waits for: ${st.text}` })));
  const behindPids = groups[0]!.pids.slice(1);
  const ev: Evidence = {
    ...emptyEvidence(),
    sessions: h0.node.behind + 1,
    pids: uniq(heads.flatMap((h) => [h.node.pid])).concat(behindPids).slice(0, MAX_PIDS),
    applications: uniq(heads.map((h) => h.node.session?.application_name ?? '')),
    users: distinct(heads, (h) => h.node.session?.usename),
    databases: distinct(heads, (h) => h.node.session?.datname),
    oldest_ms: groups[0]!.oldest_ms,
    statements: distinct(groups, (g) => g.statement),
    facts: heads.slice(0, 5).map((h) => `pid ${h.node.pid} (${appLabel(h.node.session?.application_name)}) waits for a table lock ${h.depth === 1 ? `held by ${h.root.pid === 0 ? 'a prepared transaction' : `pid ${h.root.pid}`}` : `behind pid ${h.root.pid}`}${h.roots.length > 1 ? ` and ${plural(h.roots.length - 1, 'more root blocker')}` : ''}; ${plural(h.node.behind, 'session')} queued behind it`),
    groups,
  };
  const f = finding(
    'blocking-locks',
    'ddl-queue',
    sev,
    title,
    ev,
    `the ${verb} needs a strong lock on the table and waits for ${rootWhat} to finish; meanwhile every reader and writer of the table queues behind the ${verb}, not behind the long transaction. Cancelling the ${verb} frees them at once, and nothing is lost: it has not started.`,
    [
      fixedStep(`cancel the ${verb} first (pid ${s.pid}): the ${plural(h0.node.behind, 'session')} behind it go on at once`, 'terminate', cancel),
      ...rootSteps,
      sqlStep(`retry the ${verb} with a lock timeout in its session, so it gives up (and can be retried) instead of queueing everyone behind it`, "SET lock_timeout = '5s';"),
      runbookStep('ddl-queue'),
    ],
    `${verb} pid ${s.pid} queues ${h0.node.behind}`,
  );
  return { findings: [f], path: [pathStep('ddl-queue', DDL_QUESTION, sev, title)] };
}

function ddlGroup(t: Thresholds, h: QueueHead): EvidenceGroup {
  const s = h.node.session!;
  const behind: number[] = [];
  const stack = [...h.node.children];
  while (stack.length) {
    const n = stack.pop()!;
    behind.push(n.pid);
    for (const child of n.children) stack.push(child);
  }
  const waits = [h.node, ...h.node.children].map((n) => n.session?.wait_lock?.wait_ms ?? n.session?.state_age_ms ?? 0);
  const longest = Math.max(0, largest(waits) ?? 0);
  return {
    label: `${verbOf(s.query)} pid ${s.pid} (${appLabel(s.application_name)})`,
    application: s.application_name,
    client: clientOf(s),
    database: s.datname,
    users: nonNull([s.usename]),
    state: s.state,
    wait_event: s.wait_event ? `${s.wait_event_type}:${s.wait_event}` : null,
    count: h.node.behind,
    pids: [s.pid, ...behind.sort((a, b) => a - b)],
    oldest_ms: Math.round(longest),
    statement: isVisible(s) ? cut(s.query) : null,
    severity: severityOf(t, h.node.behind, longest, false),
  };
}
