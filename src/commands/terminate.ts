import { randomUUID } from 'node:crypto';
import { homedir, hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { requireValues } from '../core/connections.js';
import { plural } from '../core/count.js';
import { formatDuration, MAX_TIMEOUT_MS, parseDuration } from '../core/duration.js';
import { DbdoctorError, InterruptedError, UsageError } from '../core/errors.js';
import { describeTarget, type Target } from '../core/target.js';
import {
  type AuditFailure,
  classifyAfterCancel,
  classifyBatchRow,
  classifySignal,
  DEFAULT_BATCH_SIZE,
  DEFAULT_GRACE_MS,
  DEFAULT_MAX,
  DEFAULT_TERMINATE_TIMEOUT_MS,
  emptyFilters,
  exitConfirmed,
  exitTimedOut,
  finishReport,
  normalizeState,
  type PlannedSession,
  parseMax,
  parsePidList,
  planTermination,
  type ReportBase,
  type SessionResult,
  sessionLost,
  type SignalKind,
  type StepResult,
  statusOfResults,
  type TerminateFilters,
  type TerminateReport,
  validateFilters,
} from '../core/terminate.js';
import { DEFAULT_STATEMENT_TIMEOUT_MS, openSession, type Session, type SessionOptions } from '../db/session.js';
import { throughPoolerRefusal } from '../core/pgbouncer.js';
import { type AuditContext, auditIntent, auditOutcome, stateDir } from '../core/terminate-audit.js';
import { readTerminateSnapshot, sessionStillThere, signalBatch, signalSession, stillThere } from '../db/sql/terminate.js';
import { envelope, renderJson } from '../render/json.js';
import { choiceLabel, renderPlan, renderTerminate, terminateNotices } from '../render/terminate.js';
import { type AuditLog, appendRecords, checkAuditLog, openAuditLog } from '../ui/audit.js';
import { acquireLock, type HeldLock, type LockDeps } from '../ui/lockfile.js';
import { inquirerPrompter, type Prompter } from '../ui/prompts.js';
import { createProgress, type Progress } from '../ui/progress.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, sessionOptions, targetFrom, refuseConsole } from './context.js';

export interface TerminateOptions {
  target: Target;
  session: SessionOptions;
  filters: TerminateFilters;
  allDatabases: boolean;
  includeSuperusers: boolean;
  dryRun: boolean;
  yes: boolean;
  max: number;
  cancelFirst: boolean;
  graceMs: number;
  /** pg_terminate_backend's timeout (default 5s, kept below the statement timeout). */
  terminateTimeoutMs?: number;
  lockFile: string;
  auditLog: string;
  /** Sessions per batch statement (default DEFAULT_BATCH_SIZE). */
  batchSize?: number;
}

export interface TerminateDeps {
  /** Asks on the terminal; null when there is none (then nothing happens without --yes). */
  prompter: Prompter | null;
  /** Shows the plan before the questions (the command prints it; tests may record it). */
  showPlan?: (report: TerminateReport) => void;
  signal?: AbortSignal;
  now?: () => Date;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  osUser?: string;
  machine?: string;
  pid?: number;
  version?: string;
  lock?: LockDeps;
  /** Opens the audit log (tests inject a failing one). */
  openAuditLog?: (path: string) => AuditLog;
  /** A spinner while connecting and reading the plan (erased before the plan is shown). */
  progress?: Pick<Progress, 'start' | 'stop'>;
  /** Called before each batch statement, with its index (tests change sessions between the plan and a batch). */
  beforeBatch?: (index: number) => Promise<void>;
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function osUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? 'unknown';
  }
}

/**
 * The longest one server-side wait for an exit (awaitExits): short, so that the exits of the
 * others are seen while a session that cannot exit is waited for.
 */
const EXIT_POLL_MS = 250;

/** Keeps pg_terminate_backend's wait under dbdoctor's own statement_timeout. */
function terminateTimeout(o: TerminateOptions): number {
  const statementTimeout = o.session.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const wanted = o.terminateTimeoutMs ?? DEFAULT_TERMINATE_TIMEOUT_MS;
  return Math.max(100, Math.min(wanted, statementTimeout - 1000, Math.floor(statementTimeout * 0.8)));
}

interface ActContext {
  session: Session;
  audit: AuditLog;
  auditCtx: AuditContext;
  options: TerminateOptions;
  now: () => Date;
  signal: AbortSignal | undefined;
  /** Called before each batch statement (tests change sessions between the plan and a batch). */
  beforeBatch?: (index: number) => Promise<void>;
}

/** What every re-check holds a planned session to besides its identity and state: the filters' conditions that can change since the plan. */
function recheckOptions(o: TerminateOptions): { minAgeMs: number | null; stillBlocking: boolean; includeSuperusers: boolean } {
  return { minAgeMs: o.filters.older_than_ms, stillBlocking: o.filters.blockers, includeSuperusers: o.includeSuperusers };
}

/** One attempt's result; `auditError`: the audit log failed (intent: nothing sent; outcome: sent, not on record). */
type Attempt = StepResult & { fatal: boolean; auditError?: string };

/** A statement error for the target's sake, as an outcome; `fatal`: dbdoctor's own session is gone. */
function failedStep(r: { permissionDenied: boolean; message: string; fatal: boolean }): Attempt {
  if (r.permissionDenied) return { outcome: 'permission_denied', detail: r.message, fatal: false };
  return {
    outcome: 'failed',
    // dbdoctor's own session is gone: whatever the plan said no longer describes the server
    detail: r.fatal ? `${r.message}; dbdoctor lost its session, so the plan is stale (the server restarted or went away since it was made): run terminate again for a new plan` : r.message,
    fatal: r.fatal,
  };
}

/**
 * One session by its own statement (signalSession, waiting for the exit): what a batch falls back
 * to when its statement failed, since which of its rows were signalled is then unknown. Each
 * re-check holds as in the batch: a session already signalled is gone, or signalled again under
 * the same identity.
 */
async function oneByOne(c: ActContext, p: PlannedSession, kind: SignalKind, afterCancel: boolean): Promise<Attempt> {
  const r = await signalSession(c.session, p, kind, { timeoutMs: terminateTimeout(c.options), ...recheckOptions(c.options) });
  if (!r.ok) return failedStep(r);
  let step = afterCancel ? classifyAfterCancel(p, r.raw) : classifySignal(p, kind, r.raw);
  // pg_terminate_backend returned false: it did not exit within the timeout. Did it since?
  if (kind === 'terminate' && r.raw.signalled === false && !(await sessionStillThere(c.session, p.pid, p.backend_start))) {
    step = { outcome: 'terminated', detail: 'terminated; it exited just after the timeout' };
  }
  return { ...step, fatal: false };
}

/**
 * Waits for the batch's terminated sessions to exit, all at once: each step is a fresh statement
 * that lists those still there and waits server-side for one of them, up to EXIT_POLL_MS (or what
 * is left of the timeout). The first step only lists (most sessions exit at once). Each exit goes
 * into `out` as it is seen: a session that cannot exit holds up the statement that waits for it,
 * and with it the list of the others, so the waits are short and an exit is on record within
 * EXIT_POLL_MS even when an interruption comes while a stuck session is waited for. Bounded: every
 * step sees an exit or waits its share of the time left.
 */
async function awaitExits(c: ActContext, sent: PlannedSession[], afterCancel: boolean, out: Map<number, Attempt>): Promise<void> {
  let pending = sent;
  const timeout = terminateTimeout(c.options);
  const deadline = Date.now() + timeout;
  try {
    for (let step = 0; pending.length > 0 && step <= sent.length + Math.ceil(timeout / EXIT_POLL_MS) + 50; step++) {
      const left = deadline - Date.now();
      const still = await stillThere(c.session, pending, step === 0 ? 0 : Math.min(Math.max(left, 0), EXIT_POLL_MS));
      for (const p of pending) if (!still.has(p.pid)) out.set(p.pid, { ...exitConfirmed(afterCancel), fatal: false });
      pending = pending.filter((p) => still.has(p.pid));
      if (left <= 0) break;
    }
    for (const p of pending) out.set(p.pid, { ...exitTimedOut(), fatal: false });
  } catch (err) {
    if (!(err instanceof DbdoctorError) || err.cause_id === 'interrupted') throw err;
    const fatal = sessionLost(err.cause_id);
    const detail = fatal
      ? `SIGTERM sent; dbdoctor lost its session before it saw the exit (${err.message}), so the plan is stale: run terminate again for a new plan`
      : `SIGTERM sent; its exit could not be confirmed: ${err.message}`;
    for (const p of pending) out.set(p.pid, { outcome: 'failed', detail, fatal });
  }
}

/**
 * One batch: its intent lines (whole, in one write, fsync'd once), ONE race-safe statement that
 * re-checks and signals every session of it, the wait for the exits, then its outcome lines
 * (again one write). No intent on record, no signal. Permission denied and failures are outcomes,
 * not exceptions; Ctrl-C is recorded and rethrown.
 */
async function actBatch(c: ActContext, batch: PlannedSession[], kind: SignalKind, afterCancel: boolean): Promise<Attempt[]> {
  const intents = appendRecords(
    c.audit,
    batch.map((p) => auditIntent(c.auditCtx, p, kind, c.now())),
  );
  const onRecord = batch.slice(0, intents.written);
  const steps = new Map<number, Attempt>();
  for (const p of batch.slice(intents.written)) {
    steps.set(p.pid, { outcome: 'not_attempted', detail: `not attempted: its intent line could not be written: ${intents.error}`, fatal: true, auditError: intents.error ?? '' });
  }
  // what the batch statement said it signalled: their exits are awaited, and a Ctrl-C meanwhile does not unsend them
  const sent: PlannedSession[] = [];
  if (onRecord.length > 0) {
    try {
      const r = await signalBatch(c.session, onRecord, kind, recheckOptions(c.options));
      if (!r.ok && r.fatal) {
        for (const p of onRecord) steps.set(p.pid, failedStep(r));
      } else if (!r.ok) {
        // one by one; once one finds dbdoctor's session lost, the rest are not attempted (no statement reaches them)
        let lost: string | null = null;
        for (const p of onRecord) {
          const step: Attempt = lost === null ? await oneByOne(c, p, kind, afterCancel) : { outcome: 'not_attempted', detail: `not attempted, an earlier step failed: ${lost}`, fatal: false };
          steps.set(p.pid, step);
          if (step.fatal) lost ??= step.detail;
        }
      } else {
        onRecord.forEach((p, i) => {
          const step = classifyBatchRow(p, kind, r.raws[i]!, afterCancel);
          if (step === 'sent') sent.push(p);
          else steps.set(p.pid, { ...step, fatal: false });
        });
        await awaitExits(c, sent, afterCancel, steps);
      }
    } catch (err) {
      const interrupted = err instanceof InterruptedError;
      const why = interrupted ? 'interrupted' : `error: ${(err as Error).message}`;
      const unknown: StepResult = { outcome: 'failed', detail: `${why}: whether the signal was sent is unknown` };
      const unconfirmed: StepResult = { outcome: 'failed', detail: `SIGTERM sent; ${why} before its exit was confirmed` };
      // The error below is what ends the run. Every intent gets its outcome line: what was decided
      // already (changed, denied, gone, one by one), what the batch said it signalled, the rest unknown.
      appendRecords(
        c.audit,
        onRecord.map((p) => auditOutcome(c.auditCtx, p, kind, steps.get(p.pid) ?? (sent.includes(p) ? unconfirmed : unknown), c.now())),
      );
      throw err;
    }
  }
  const outcomes = appendRecords(
    c.audit,
    onRecord.map((p) => auditOutcome(c.auditCtx, p, kind, steps.get(p.pid)!, c.now())),
  );
  if (outcomes.error !== null) {
    // The signals were sent; the record of them is incomplete. Say so, and go no further.
    for (const p of onRecord.slice(outcomes.written)) {
      const step = steps.get(p.pid)!;
      const sent = step.outcome === 'signalled' ? 'cancel sent' : step.detail;
      steps.set(p.pid, { ...step, detail: `${sent}, but its outcome line is not in the audit log: ${outcomes.error}`, fatal: true, auditError: outcomes.error });
    }
  }
  return batch.map((p) => steps.get(p.pid)!);
}

function batchesOf<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function act(c: ActContext, plan: PlannedSession[]): Promise<{ results: SessionResult[]; audit: AuditFailure | null }> {
  const results = new Map<number, SessionResult>();
  const set = (p: PlannedSession, outcome: SessionResult['outcome'], detail: string) =>
    results.set(p.pid, { pid: p.pid, backend_start: p.backend_start, app: p.app, user: p.user, action: p.action, outcome, detail });
  let stop: string | null = null;
  let audit: AuditFailure | null = null;
  const stopped = () => stop !== null || Boolean(c.signal?.aborted);
  const record = (p: PlannedSession, kind: SignalKind, step: Attempt) => {
    if (step.fatal && stop === null) stop = step.detail;
    if (step.auditError !== undefined) {
      const sent = step.outcome !== 'not_attempted';
      audit ??= { message: step.auditError, unrecorded: [] };
      if (sent) audit.unrecorded.push({ pid: p.pid, backend_start: p.backend_start, action: kind, outcome: step.outcome });
    }
    // A cancel was sent and dbdoctor stops here: the session is not terminated, say so.
    if (step.outcome === 'signalled' && step.fatal) set(p, 'failed', step.detail);
    else if (step.outcome !== 'signalled') set(p, step.outcome, step.detail);
  };
  const size = Math.max(1, c.options.batchSize ?? DEFAULT_BATCH_SIZE);
  let batchIndex = 0;
  const run = async (sessions: PlannedSession[], kind: SignalKind, afterCancel: boolean, onStep?: (p: PlannedSession, s: Attempt) => void) => {
    for (const batch of batchesOf(sessions, size)) {
      if (stopped()) break;
      await c.beforeBatch?.(batchIndex++);
      const steps = await actBatch(c, batch, kind, afterCancel);
      batch.forEach((p, i) => {
        record(p, kind, steps[i]!);
        onStep?.(p, steps[i]!);
      });
    }
  };

  // Cancels first, so the grace period runs while the idle sessions are terminated.
  const cancelled: PlannedSession[] = [];
  await run(plan.filter((x) => x.action === 'cancel_then_terminate'), 'cancel', false, (p, step) => {
    if (step.outcome === 'signalled' && !step.fatal) cancelled.push(p);
  });
  const cancelledAt = Date.now();
  await run(plan.filter((x) => x.action === 'terminate'), 'terminate', false);
  if (cancelled.length > 0 && !stopped()) {
    await abortableSleep(c.options.graceMs - (Date.now() - cancelledAt), c.signal);
  }
  await run(cancelled, 'terminate', true);
  // Ctrl-C once every session has its outcome changes nothing: the report is whole (its outcome lines are written)
  if (c.signal?.aborted && plan.some((p) => !results.has(p.pid))) throw new InterruptedError();
  const cancelSent = new Set(cancelled);
  for (const p of plan) {
    if (results.has(p.pid)) continue;
    // A session whose cancel was sent is not "not attempted", whatever stopped the run after it.
    if (cancelSent.has(p)) set(p, 'failed', `cancel sent; dbdoctor stopped before its grace period and terminate step: ${stop}`);
    else set(p, 'not_attempted', stop ? `not attempted, an earlier step failed: ${stop}` : 'not attempted');
  }
  return { results: plan.map((p) => results.get(p.pid)!), audit };
}

/**
 * `terminate`: lock, read, plan, show, confirm, act (race-safely, audited), report. Never
 * prints and never exits; the questions and the plan display are injected.
 */
export async function runTerminate(o: TerminateOptions, deps: TerminateDeps): Promise<TerminateReport> {
  validateFilters(o.filters);
  const now = deps.now ?? (() => new Date());
  const runId = randomUUID();
  // A dry run acts on nothing, so it takes no lock and writes no audit line; every other run
  // checks both paths and takes the lock before connecting.
  if (!o.dryRun) checkAuditLog(o.auditLog);
  const lock: HeldLock | null = o.dryRun ? null : acquireLock(o.lockFile, { ...(deps.pid !== undefined ? { pid: deps.pid } : {}), ...deps.lock });
  try {
    deps.progress?.start(`connecting to ${describeTarget(o.target)}, reading the sessions to plan`);
    let session: Session;
    let snap: Awaited<ReturnType<typeof readTerminateSnapshot>>;
    try {
      session = await openSession(o.target, o.session);
    } catch (err) {
      deps.progress?.stop();
      throw err;
    }
    try {
      if (session.throughPooler) {
        deps.progress?.stop();
        throw throughPoolerRefusal();
      }
      try {
        snap = await readTerminateSnapshot(session, o.filters.blockers);
      } finally {
        deps.progress?.stop();
      }
      const plan = planTermination(snap.activity, snap.fingerprints, {
        filters: o.filters,
        allDatabases: o.allDatabases,
        includeSuperusers: o.includeSuperusers,
        cancelFirst: o.cancelFirst,
      });
      const base: ReportBase = {
        target: describeTarget(o.target),
        database: plan.database,
        all_databases: o.allDatabases,
        include_superusers: o.includeSuperusers,
        filters: o.filters,
        max: o.max,
        dry_run: o.dryRun,
        cancel_first: o.cancelFirst,
        grace_ms: o.cancelFirst ? o.graceMs : null,
        planned: plan.planned,
        excluded: plan.excluded,
        not_found_pids: plan.not_found_pids,
        hidden_sessions: plan.hidden_sessions,
        deselected: [],
        results: [],
        audit_log: o.dryRun ? null : o.auditLog,
        lock_file: lock ? lock.path : null,
        run_id: runId,
      };
      if (plan.planned.length === 0) return finishReport(base, 'nothing_to_do');
      if (o.dryRun) return finishReport(base, 'dry_run');
      if (plan.planned.length > o.max) return finishReport(base, 'over_max');

      if (!o.yes && !deps.prompter) return finishReport(base, 'not_confirmed', 'no_tty');
      // Check the audit log can be written before asking anyone anything.
      const audit = (deps.openAuditLog ?? openAuditLog)(o.auditLog);
      try {
        let chosen = plan.planned;
        if (!o.yes && deps.prompter) {
          deps.showPlan?.(finishReport(base, 'dry_run'));
          const pids = await deps.prompter.checkbox(
            'Sessions to terminate (space toggles, a toggles all, enter accepts):',
            plan.planned.map((p) => ({ value: p.pid, name: choiceLabel(p), short: `pid ${p.pid}`, checked: true })),
          );
          const keep = new Set(pids);
          chosen = plan.planned.filter((p) => keep.has(p.pid));
          base.deselected = plan.planned.filter((p) => !keep.has(p.pid)).map((p) => p.pid);
          base.planned = chosen;
          if (chosen.length === 0) return finishReport(base, 'not_confirmed', 'none_selected');
          const cancels = chosen.filter((p) => p.action === 'cancel_then_terminate').length;
          const yes = await deps.prompter.confirm(confirmQuestion(chosen.length, cancels, o.graceMs, describeTarget(o.target)));
          if (!yes) return finishReport(base, 'not_confirmed', 'answered_no');
        }
        const auditCtx: AuditContext = {
          run_id: runId,
          os_user: deps.osUser ?? osUserName(),
          machine: deps.machine ?? hostname(),
          dbdoctor_pid: deps.pid ?? process.pid,
          dbdoctor_version: deps.version ?? 'unknown',
          host: o.target.host,
          port: o.target.port,
          database: o.target.dbname,
          role: o.target.user,
          filters: o.filters,
        };
        const acted = await act({ session, audit, auditCtx, options: o, now, signal: deps.signal, ...(deps.beforeBatch ? { beforeBatch: deps.beforeBatch } : {}) }, chosen);
        base.results = acted.results;
        base.audit_failure = acted.audit;
        return finishReport(base, statusOfResults(acted.results, acted.audit));
      } finally {
        audit.close();
      }
    } finally {
      await session.close();
    }
  } finally {
    lock?.release();
  }
}

// ---------------------------------------------------------------------------------------------
// The command

/**
 * The question before acting, saying plainly what will happen: "Terminate 3 sessions on X?",
 * "Cancel the queries of 9 sessions, then terminate those still running after 5s on X?", or both
 * parts when the plan mixes them.
 */
export function confirmQuestion(total: number, cancels: number, graceMs: number, target: string): string {
  const grace = formatDuration(graceMs);
  const terms = total - cancels;
  if (cancels === 0) return `Terminate ${plural(total, 'session')} on ${target}?`;
  const cancelPart = `cancel the ${cancels === 1 ? 'query of 1 session' : `queries of ${cancels} sessions`}, then terminate ${cancels === 1 ? 'it if still running' : 'those still running'} after ${grace}`;
  if (terms === 0) return `${cancelPart[0]!.toUpperCase()}${cancelPart.slice(1)} on ${target}?`;
  return `Terminate ${plural(terms, 'session')}, and ${cancelPart}, on ${target}?`;
}

interface TerminateCliOptions extends ConnectionCliOptions {
  state?: string[];
  olderThan?: string;
  app?: string[];
  user?: string[];
  db?: string[];
  client?: string[];
  pid?: string[];
  blockers?: boolean;
  query?: string;
  allDatabases?: boolean;
  includeSuperusers?: boolean;
  dryRun?: boolean;
  yes?: boolean;
  max?: string;
  cancelFirst?: boolean;
  grace?: string;
  lockFile?: string;
  auditLog?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
/**
 * Comma-separated values, trimmed. An empty one (an unset shell variable, a stray comma) is a
 * usage error: dropping it would silently widen what a destructive command selects.
 */
function splitList(values: string[] | undefined, flag: string): string[] {
  const items = (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim());
  requireValues(flag, items);
  return items;
}

/** A path flag given an empty value (an unset variable) is refused, not taken for the current directory. */
function pathFlag(value: string | undefined, flag: string): string | undefined {
  if (value !== undefined) requireValues(flag, [value]);
  return value;
}

/** A longer wait cannot be kept: Node's timers are 32-bit and fire at once past 2^31-1 ms. */
function parseGrace(text: string): number {
  const ms = parseDuration(text, '--grace');
  if (ms > MAX_TIMEOUT_MS) throw new UsageError('--grace must be at most 24d', 'for example --grace 10s');
  return ms;
}

/** Flags -> options. Every bad value is a UsageError here, before any lock or connection. */
export function terminateOptionsFrom(opts: TerminateCliOptions, env: NodeJS.ProcessEnv, target: Target, session: SessionOptions): TerminateOptions {
  const filters = emptyFilters();
  filters.states = [...new Set(splitList(opts.state, '--state').map(normalizeState))];
  if (opts.olderThan !== undefined) filters.older_than_ms = parseDuration(opts.olderThan, '--older-than');
  // application names may hold commas: --app is repeated, never split
  filters.apps = opts.app ?? [];
  filters.users = splitList(opts.user, '--user');
  filters.dbs = splitList(opts.db, '--db');
  filters.clients = splitList(opts.client, '--client');
  filters.pids = [...new Set((opts.pid ?? []).flatMap(parsePidList))];
  filters.blockers = Boolean(opts.blockers);
  if (opts.query !== undefined) filters.query = opts.query;
  validateFilters(filters);
  if (opts.grace !== undefined && !opts.cancelFirst) throw new UsageError('--grace only applies with --cancel-first', 'add --cancel-first, or drop --grace');
  const dir = stateDir(env, env.HOME || homedir());
  return {
    target,
    session,
    filters,
    allDatabases: Boolean(opts.allDatabases),
    includeSuperusers: Boolean(opts.includeSuperusers),
    dryRun: Boolean(opts.dryRun),
    yes: Boolean(opts.yes),
    max: opts.max !== undefined ? parseMax(opts.max) : DEFAULT_MAX,
    cancelFirst: Boolean(opts.cancelFirst),
    graceMs: opts.grace !== undefined ? parseGrace(opts.grace) : DEFAULT_GRACE_MS,
    lockFile: pathFlag(opts.lockFile, '--lock-file') ?? join(dir, 'terminate.lock'),
    auditLog: pathFlag(opts.auditLog, '--audit-log') ?? join(dir, 'audit.jsonl'),
  };
}

const EXAMPLES = `
Examples:
  dbdoctor terminate --state "idle in transaction" --older-than 5m --app 'worker*'
  dbdoctor terminate --blockers --dry-run
  dbdoctor terminate --pid 12345 --cancel-first --grace 10s
  # in cron (no terminal, so --yes; one JSON document for the log):
  dbdoctor terminate --state idle --older-than 30m --app api --yes --json --max 50
`;

export function terminateCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('terminate')
    .description('clean up: pick sessions by filters, show the plan, confirm, terminate race-safely, audit')
    .option('--state <state>', 'sessions in this state: active, idle, "idle in transaction", "idle in transaction (aborted)"; repeatable', collect)
    .option('--older-than <duration>', 'in the current state at least this long (active sessions: the query\'s age), e.g. 5m')
    .option('--app <glob>', 'application_name matches this glob (* and ?); repeatable', collect)
    .option('--user <role>', 'sessions of this role; repeatable or comma-separated', collect)
    .option('--db <name>', 'sessions in this database; repeatable (one other than the connected database needs --all-databases)', collect)
    .option('--client <addr>', 'from this address or CIDR range (10.0.0.0/8, ::1, local); repeatable', collect)
    .option('--pid <pids>', 'these pids (comma-separated; repeatable)', collect)
    .option('--blockers', 'the root blockers of the blocking tree (what `dbdoctor locks` shows)')
    .option('--query <pattern>', 'query text contains this (case-insensitive; * and ? are wildcards)')
    .option('--all-databases', 'look at every database (default: only the one connected to)')
    .option('--include-superusers', 'also act on superuser sessions (excluded by default)')
    .option('--dry-run', 'show the plan and stop (exit 5, as the real run, when it is over --max)')
    .option('-y, --yes', 'do not ask (needed without a terminal: cron, scripts)')
    .option('--max <n>', `refuse a plan of more than n sessions, terminating none (default ${DEFAULT_MAX})`)
    .option('--cancel-first', 'for active sessions: cancel the query, wait --grace, terminate only if still running')
    .option('--grace <duration>', `with --cancel-first: how long to wait after cancelling (default ${DEFAULT_GRACE_MS / 1000}s)`)
    .option('--lock-file <path>', 'a second run while this lock is held exits with 4, doing nothing (default $XDG_STATE_HOME/dbdoctor/terminate.lock)')
    .option('--audit-log <path>', 'append one JSON line per intent and outcome here (default $XDG_STATE_HOME/dbdoctor/audit.jsonl)')
    .addHelpText('after', EXAMPLES);
  addConnectionOptions(cmd)
    .option('--json', 'one JSON document on stdout (the plan and questions, if any, go to stderr)')
    .action(async (opts: TerminateCliOptions) => {
      ctx.json = Boolean(opts.json);
      // SIGTERM (cron's `timeout`, a service manager) and SIGHUP (the terminal closed) stop it as a
      // first Ctrl-C does: a batch whose intents are on record gets its outcome lines, no later
      // batch starts, exit 130. Node's default ended the process between intents and outcomes.
      const optOut = ctx.stopOnSignals?.() ?? (() => undefined);
      try {
        const target = targetFrom(opts, ctx);
        refuseConsole(target, 'terminate');
        const options = terminateOptionsFrom(opts, ctx.env, target, sessionOptions(opts, ctx));
        const { output } = ctx;
        const interactive = output.stdinIsTTY && output.stderrIsTTY;
        let planShown = false;
        const report = await runTerminate(options, {
          prompter: interactive ? inquirerPrompter({ signal: ctx.signal }) : null,
          showPlan: (plan) => {
            planShown = true;
            // With --json, stdout is the document: the plan goes with the questions, to stderr.
            if (opts.json) output.err(renderPlan(plan, output.errStyle, output.columns));
            else output.out(renderPlan(plan, output.style, output.columns));
          },
          signal: ctx.signal,
          version: ctx.version,
          progress: createProgress(output, ctx.json),
        });
        output.out(opts.json ? renderJson(envelope('terminate', report, ctx.version)) : renderTerminate(report, output.style, { planShown, columns: output.columns }));
        // When the text report and stderr are the same terminal, the report's first line said it already.
        const summaryShown = !opts.json && output.stdoutIsTTY && output.stderrIsTTY;
        for (const line of terminateNotices(report, { summaryShown })) output.err(line);
        ctx.exitCode = report.exit_code;
      } finally {
        optOut();
      }
    });
}
