/**
 * runbooks/blocking-locks.md: the `blocking` node. Root blockers (from pg_blocking_pids(), never the
 * pg_locks self-join), whom they block and for how long, what to do with each by its state, prepared
 * transactions (pid 0) and lock cycles.
 */
import { isVisible } from '../activity.js';
import { type BlockingReport, buildBlockingReport } from '../blocking.js';
import { worst } from '../capacity.js';
import { clientOf } from '../connections.js';
import type { Severity } from '../exit-codes.js';
import { type Arg, fixedStep, type NextStep } from '../printed.js';
import { appLabel, type Context, cut, dur, emptyEvidence, finding, MAX_PIDS, type NodeResult, nonNull, pathStep, plural, rootIit, uniq } from './shared.js';
import type { Evidence, EvidenceGroup, Finding } from './types.js';

export const NODES = ['blocking'] as const;

export interface BlockingResult extends NodeResult {
  report: BlockingReport;
  finding: Finding | null;
}

const QUESTION = 'is anyone blocked behind a lock?';

/** blocking: root blockers, whom they block and for how long. */
export function blocking(c: Context): BlockingResult {
  const { t, snap } = c;
  const report = buildBlockingReport(snap);
  if (report.roots.length === 0 && report.cycles.length === 0) {
    return { report, finding: null, findings: [], path: [pathStep('blocking', QUESTION, 'none', 'no session waits on a lock held by another')] };
  }
  const eg: EvidenceGroup[] = [];
  const next: NextStep[] = [fixedStep('see the blocking tree', 'locks')];
  for (const r of report.roots) {
    const wait = r.longest_wait_ms;
    let sev: Severity = 'info';
    if ((wait ?? 0) >= t.lock_wait_ms) {
      sev = rootIit(r) || r.pid === 0 || r.all.length >= t.blocked_crit_sessions || (wait ?? 0) >= t.lock_wait_crit_ms ? 'critical' : 'warning';
    }
    const s = r.session;
    const what = r.pid === 0 ? 'a prepared transaction' : s ? `pid ${r.pid} (${appLabel(s.application_name)}, ${s.state ?? 'hidden'}${s.state_age_ms !== null ? ` for ${dur(s.state_age_ms)}` : ''})` : `pid ${r.pid} (gone or hidden)`;
    const locks = r.waited_locks.map((l) => (l.mode ? `${l.mode} on ${l.relation ?? l.locktype}` : l.locktype)).join(', ');
    eg.push({
      label: what,
      application: s?.application_name ?? null,
      client: s ? clientOf(s) : null,
      database: s?.datname ?? null,
      users: nonNull([s?.usename]),
      state: s?.state ?? null,
      wait_event: null,
      count: r.all.length,
      pids: [r.pid, ...r.all],
      oldest_ms: wait === null ? null : Math.round(wait),
      statement: s && isVisible(s) ? cut(s.query) : null,
      severity: sev,
    });
    if (sev !== 'info' && next.length < 5) {
      if (r.pid === 0) next.push(...r.next);
      else if (s) {
        const args: Arg[] = [['--pid', String(r.pid)]];
        if (r.action === 'cancel_then_terminate') args.push('--cancel-first');
        if (s.superuser) args.push('--include-superusers');
        const words = rootIit(r) ? 'the root is idle in transaction: cancelling does nothing; terminate it' : r.action === 'cancel_then_terminate' ? 'the root is running a statement: cancel it first, terminate if it persists' : r.advice;
        next.push(fixedStep(`${words}${locks ? ` (waited on: ${locks})` : ''}`, 'terminate', args));
      }
    }
  }
  for (const cycle of report.cycles) {
    eg.push({ label: `lock cycle among pids ${cycle.join(', ')}`, application: null, client: null, database: null, users: [], state: null, wait_event: null, count: cycle.length, pids: cycle, oldest_ms: null, statement: null, severity: 'warning' });
  }
  if (next.length > 1 && report.roots.filter((r) => r.pid !== 0).length > 1) next.push(fixedStep('or terminate every root blocker at once (a plan is shown first)', 'terminate', ['--blockers']));
  const sev = worst(...eg.map((g) => g.severity));
  const r0 = report.roots[0];
  const g0 = eg[0]!;
  const title = r0
    ? `${g0.label} blocks ${plural(r0.all.length, 'session')}${r0.longest_wait_ms !== null ? `, longest wait ${dur(r0.longest_wait_ms)}` : ''}${report.roots.length > 1 ? `; ${report.roots.length - 1} more root blocker(s)` : ''}${report.cycles.length ? `; ${plural(report.cycles.length, 'lock cycle')}` : ''}`
    : `${plural(report.cycles.length, 'lock cycle')} (a deadlock the server breaks after deadlock_timeout)`;
  const blocked = uniq(report.roots.flatMap((r) => r.all));
  const ev: Evidence = {
    ...emptyEvidence(),
    sessions: report.waiting,
    pids: uniq([...report.roots.map((r) => r.pid), ...blocked]).slice(0, MAX_PIDS),
    applications: uniq(nonNull(eg.map((g) => g.application))),
    clients: uniq(nonNull(eg.map((g) => g.client))),
    users: uniq(eg.flatMap((g) => g.users)),
    databases: uniq(nonNull(eg.map((g) => g.database))),
    oldest_ms: r0?.longest_wait_ms === null || r0 === undefined ? null : Math.round(r0.longest_wait_ms),
    statements: uniq(nonNull(eg.map((g) => g.statement))).slice(0, 5),
    facts: [
      `${plural(report.waiting, 'session')} ${report.waiting === 1 ? 'waits' : 'wait'} on locks; ${plural(report.roots.length, 'root blocker')}`,
      ...report.roots
        .slice(0, 5)
        .map((r) => `root pid ${r.pid}: blocks ${r.direct.length} directly, ${r.all.length} in all (pids ${r.all.slice(0, 10).join(', ')}${r.all.length > 10 ? ', ...' : ''}), longest wait ${dur(r.longest_wait_ms)}${r.holds_advisory ? ', holds advisory locks' : ''}`),
    ],
    groups: eg,
  };
  const iitRoot = r0 ? rootIit(r0) : false;
  const gFirst = ev.groups[0];
  const f = finding(
    'blocking-locks',
    'blocking',
    sev,
    title,
    ev,
    iitRoot
      ? 'the root blocker is idle in transaction: the application took locks (an UPDATE, a SELECT ... FOR UPDATE) and stopped without COMMIT or ROLLBACK. Nothing releases them until it does or the session ends; every waiter holds a connection meanwhile.'
      : r0?.pid === 0
        ? 'a prepared transaction (two-phase commit) holds the lock; it survives restarts and cannot be terminated, only committed or rolled back'
        : 'the root blocker is running a long statement or transaction (a migration, a batch, a slow query) that holds the locks the others need',
    next,
    gFirst && gFirst.pids[0] !== undefined && !gFirst.label.startsWith('lock cycle') ? `pid ${gFirst.pids[0]} blocks ${gFirst.count}` : 'lock cycle',
  );
  return { report, finding: f, findings: [f], path: [pathStep('blocking', QUESTION, sev === 'info' ? 'short-waits' : sev, title)] };
}
