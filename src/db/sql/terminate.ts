/**
 * `terminate`'s SQL. PostgreSQL 14-18: pg_terminate_backend(pid, timeout) is 14+ and is called
 * positionally (named arguments fail on 13).
 *
 * - readTerminateSnapshot: the activity snapshot and each session's exact fingerprint
 *   (backend_start, state_change, xact_start, query_start as text: JS dates lose microseconds),
 *   read in ONE round trip of SELECTs, one implicit transaction (src/db/sql/read.ts).
 *   pg_stat_activity is snapshotted once per transaction, so both reads describe the same instant
 *   (with --blockers, the lock table, when a wait needs it, comes in a second round trip: who
 *   blocks whom then comes from it, a round trip later; each signal re-checks it anyway).
 *   Every statement reads it from the function under the view (BACKENDS in activity.ts): the
 *   columns used here are all the function's.
 * - signalSession: ONE autocommit statement per session (so one session's error cannot affect
 *   another's, and every statement reads a fresh snapshot) that re-checks the fingerprint (and,
 *   for --blockers, that the session still blocks someone and waits for no lock itself) and sends
 *   the signal only when it still holds. SQLSTATE 42501 is returned as permission denied.
 */
import type { ActivitySnapshot } from '../../core/activity.js';
import { DbdoctorError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import { type Fingerprint, type PlannedSession, type SignalKind, type SignalRaw, sessionLost } from '../../core/terminate.js';
import type { Session } from '../session.js';
import { type ActivityOptions, activityRead, BACKENDS, withLockDetail } from './activity.js';
import { type Read, readTogether } from './read.js';

export const MIN_SERVER_VERSION_NUM = 140000;

const FINGERPRINT_SQL = `SELECT pid,
       backend_start::text AS backend_start,
       state,
       state_change::text AS state_change,
       xact_start::text AS xact_start,
       query_start::text AS query_start
  FROM ${BACKENDS}`;

export interface TerminateSnapshot {
  activity: ActivitySnapshot;
  fingerprints: Fingerprint[];
}

/**
 * The activity and the fingerprints the plan is made from. Who blocks whom is read only for
 * --blockers (the plan uses it for nothing else), and then as `locks` reads it (the roots are the
 * ones `locks` shows): from the lock table where a wait needs it or a queue is long, so the read is
 * linear in a queue's length (pg_blocking_pids() lists, for each waiter, every waiter ahead of it);
 * where the lock table is refused, or locked past the lock_timeout, from pg_blocking_pids()
 * (withLockDetail).
 */
export async function readTerminateSnapshot(s: Session, blockers: boolean): Promise<TerminateSnapshot> {
  if (s.serverVersionNum < MIN_SERVER_VERSION_NUM) {
    throw new DbdoctorError(`terminate needs PostgreSQL 14 or newer (this server is ${Math.floor(s.serverVersionNum / 10000)})`, {
      exitCode: ExitCode.UNKNOWN,
      hint: 'on older servers use pg_terminate_backend by hand, re-checking backend_start in the same statement (runbooks/leaks.md)',
      cause: 'server_too_old',
    });
  }
  const fingerprintsRead: Read<Fingerprint[]> = { statements: [FINGERPRINT_SQL], parse: ([rows = []]) => rows as Fingerprint[] };
  const read = (opts: ActivityOptions) => readTogether<[ActivitySnapshot, Fingerprint[]]>(s, activityRead(s, opts), fingerprintsRead);
  const [activity, fingerprints] = blockers ? await withLockDetail(s, (lockDetail) => read({ lockDetail }), { afterLockTimeout: true }) : await read({ blockers: false });
  return { activity, fingerprints };
}

/**
 * With --blockers: whether the session waits for a lock itself, it or a parallel worker of its
 * (pg_blocking_pids() of a lock group's leader covers its workers; one call per planned session,
 * not per waiter). NULL for a session that is gone.
 */
const WAITS = (pid: string) => `cardinality(pg_blocking_pids(${pid})) > 0`;

/**
 * "Still blocks": a session waiting for a lock names `pid` in pg_blocking_pids(). Asked first of
 * the waiters the plan saw the root block (`waiters`, an int[] of a few pids: PlannedSession.waiters),
 * since each call copies the whole queue of the lock the waiter waits for: asking a few is linear
 * in a queue where asking every Lock waiter (`everyone`) is quadratic (one queue of 1,500
 * advisory-lock waiters: a batch took 11-19 ms of the server's time this way, 557-581 ms asking
 * everyone). `everyone` is asked only when none of them says so (they got their lock, gave up or
 * were cancelled): CASE evaluates its ELSE only then, and a CTE that nothing reads is never run.
 * The answer is the one asking everyone gives, or a truer yes: a planned waiter is asked whatever
 * the statement's pg_stat_activity snapshot shows of it (one running the deadlock check shows no
 * Lock wait, and still waits).
 */
const stillBlocks = (pid: string, waiters: string, everyone: string) =>
  `CASE WHEN EXISTS (SELECT 1 FROM unnest(${waiters}) AS w(pid) WHERE w.pid <> ${pid} AND ${pid} = ANY (pg_blocking_pids(w.pid))) THEN true
             ELSE ${everyone} END`;

/**
 * The re-check and the signal in one statement. The CASE only calls the (volatile) signal
 * function when the session is still the one planned (pid + backend_start), in the planned state,
 * has not moved since (state_change, xact_start), is still old enough, is a client backend, is
 * not dbdoctor itself, is no superuser's unless --include-superusers ($9: the plan left superusers'
 * sessions out, and a role can be made one since) and, with --blockers ($7), still a root
 * blocker: it blocks at least one other session and waits for no lock itself, nor does a
 * parallel worker of its (a root that started waiting since the plan, its statement unchanged,
 * waits behind another session: ending it would not free the queue, and the lock table read for
 * the plan may have missed a waiter that queued while it was read).
 *
 * "Still blocks": some session waiting for a lock names it in pg_blocking_pids() (stillBlocks:
 * the planned waiters, $8, then every session waiting on a Lock, whose inner CASE keeps the call
 * from the others: each call takes the lock manager's partition locks). The waiters come from this
 * statement's own pg_stat_activity snapshot and pg_blocking_pids() reads the lock table as it is
 * now, so a waiter that was cancelled, gave up or got its lock since the plan no longer counts.
 */
function signalSql(kind: SignalKind): string {
  const call = kind === 'terminate' ? 'pg_terminate_backend(a.pid, $10::bigint)' : 'pg_cancel_backend(a.pid)';
  return `SELECT (a.pid IS NOT NULL) AS present,
       a.backend_start::text AS backend_start_now,
       a.state AS state_now,
       CASE WHEN NOT $9::boolean THEN r.rolsuper END AS superuser_now,
       b.blocking AS blocking_now,
       b.waits AS waiting_now,
       CASE WHEN a.backend_start::text = $2::text
             AND a.state = $3::text
             AND a.state_change::text IS NOT DISTINCT FROM $4::text
             AND a.xact_start::text IS NOT DISTINCT FROM $5::text
             AND ($6::float8 IS NULL
                  OR (extract(epoch FROM (clock_timestamp() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.state_change END)) * 1000)::float8 >= $6::float8)
             AND a.backend_type = 'client backend'
             AND a.pid <> pg_backend_pid()
             AND ($9::boolean OR NOT coalesce(r.rolsuper, false))
             AND (NOT $7::boolean OR (b.blocking AND b.waits IS FALSE))
            THEN ${call}
       END AS signalled
  FROM (SELECT $1::int AS pid) AS t
  LEFT JOIN ${BACKENDS} a ON a.pid = t.pid
  LEFT JOIN pg_roles r ON r.oid = a.usesysid
  LEFT JOIN LATERAL (
        SELECT ${stillBlocks(
          't.pid',
          '$8::int[]',
          `EXISTS (SELECT 1
                     FROM ${BACKENDS} w
                    WHERE w.pid <> t.pid
                      AND CASE WHEN w.wait_event_type = 'Lock' THEN t.pid = ANY (pg_blocking_pids(w.pid)) ELSE false END)`,
        )} AS blocking,
               ${WAITS('t.pid')} AS waits
         WHERE $7::boolean) AS b ON true`;
}

export type SignalResult = { ok: true; raw: SignalRaw } | { ok: false; permissionDenied: boolean; message: string; fatal: boolean };

export interface SignalOptions {
  /** pg_terminate_backend's timeout: wait this long for the exit. */
  timeoutMs: number;
  /** The --older-than condition, re-checked; null when not filtering by age. */
  minAgeMs: number | null;
  /** --blockers: signal only while the session still blocks at least one other session and waits for no lock itself. */
  stillBlocking: boolean;
  /** --include-superusers: without it, a session whose role is a superuser now (it was not when planned) is left alone. */
  includeSuperusers: boolean;
}

/**
 * Sends one signal to one planned session, race-safely. Never throws for the target's sake:
 * permission denied and other statement errors come back as results. Errors that end dbdoctor's
 * own session (fatal) and Ctrl-C are reported as fatal / rethrown.
 */
export async function signalSession(s: Session, p: PlannedSession, kind: SignalKind, opts: SignalOptions): Promise<SignalResult> {
  const params: unknown[] = [p.pid, p.backend_start, p.state, p.state_change, p.xact_start, opts.minAgeMs, opts.stillBlocking, p.waiters, opts.includeSuperusers];
  if (kind === 'terminate') params.push(Math.max(1, Math.round(opts.timeoutMs)));
  try {
    const [row] = await s.query<SignalRaw>(signalSql(kind), params);
    return { ok: true, raw: row ?? { present: false, backend_start_now: null, state_now: null, superuser_now: null, signalled: null, blocking_now: null, waiting_now: null } };
  } catch (err) {
    if (!(err instanceof DbdoctorError) || err.cause_id === 'interrupted') throw err;
    return {
      ok: false,
      permissionDenied: err.cause_id === 'permission_denied',
      message: err.message,
      fatal: sessionLost(err.cause_id),
    };
  }
}

/** Is the session (pid + backend_start) still there? A new statement, so a fresh snapshot. */
export async function sessionStillThere(s: Session, pid: number, backendStart: string): Promise<boolean> {
  const [row] = await s.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${BACKENDS} WHERE pid = $1::int AND backend_start::text = $2::text`,
    [pid, backendStart],
  );
  return (row?.n ?? 0) > 0;
}

// ---------------------------------------------------------------------------------------------
// Batches: one statement signals many sessions, each re-checked as signalSession re-checks one

/**
 * One statement for a batch of planned sessions. Each row re-checks its session exactly as
 * signalSql does (identity, state, state_change, xact_start, age, client backend, not dbdoctor,
 * no superuser's unless --include-superusers, with --blockers still a root blocker) in this
 * statement's own pg_stat_activity snapshot, and also whether the role may signal it
 * (pg_signal_backend's rules: the session's role's privileges or pg_signal_backend, and a
 * superuser's session only by a superuser), so that no row raises an error after earlier rows'
 * signals went out. The signal is sent without waiting
 * (pg_terminate_backend(pid) returns once the signal is delivered): the exits are awaited together
 * by confirmExits, not one 100 ms wait after another.
 *
 * With --blockers, whether a root still blocks is asked first of its planned waiters ($8, one
 * int[] literal per session; stillBlocks), and only when none of them says so of every Lock
 * waiter, whose blockers are then read once for the statement (`blockers`, a MATERIALIZED CTE:
 * pg_blocking_pids() once per Lock waiter, not once per waiter and planned session).
 */
export function batchSql(kind: SignalKind): string {
  const call = kind === 'terminate' ? 'pg_terminate_backend(a_pid)' : 'pg_cancel_backend(a_pid)';
  return `WITH t AS (
  SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $8::text[]) WITH ORDINALITY
           AS t(pid, backend_start, state, state_change, xact_start, waiters, n)
), blockers AS MATERIALIZED (
  SELECT DISTINCT b.pid
    FROM ${BACKENDS} w
    CROSS JOIN LATERAL unnest(CASE WHEN w.wait_event_type = 'Lock' THEN pg_blocking_pids(w.pid) END) AS b(pid)
   WHERE $7::boolean AND w.wait_event_type = 'Lock' AND b.pid <> w.pid
), me AS MATERIALIZED (
  SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) AS super,
         pg_has_role('pg_signal_backend', 'USAGE') AS signal_backend
), c AS (
  SELECT t.n, t.pid, a.pid AS a_pid,
         a.backend_start::text AS backend_start_now,
         a.state AS state_now,
         CASE WHEN NOT $9::boolean THEN r.rolsuper END AS superuser_now,
         b.blocking AS blocking_now,
         b.waits AS waiting_now,
         (a.backend_start::text = t.backend_start
          AND a.state = t.state
          AND a.state_change::text IS NOT DISTINCT FROM t.state_change
          AND a.xact_start::text IS NOT DISTINCT FROM t.xact_start
          AND ($6::float8 IS NULL
               OR (extract(epoch FROM (clock_timestamp() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.state_change END)) * 1000)::float8 >= $6::float8)
          AND a.backend_type = 'client backend'
          AND a.pid <> pg_backend_pid()
          AND ($9::boolean OR NOT coalesce(r.rolsuper, false))
          AND (NOT $7::boolean OR (b.blocking AND b.waits IS FALSE))) AS holds,
         ((me.super OR NOT coalesce(r.rolsuper, false))
          AND (me.signal_backend OR (a.usesysid IS NOT NULL AND pg_has_role(a.usesysid, 'USAGE')))) AS permitted
    FROM t
    CROSS JOIN me
    LEFT JOIN ${BACKENDS} a ON a.pid = t.pid
    LEFT JOIN pg_roles r ON r.oid = a.usesysid
    LEFT JOIN LATERAL (
          SELECT ${stillBlocks('t.pid', 't.waiters::int[]', 'EXISTS (SELECT 1 FROM blockers bl WHERE bl.pid = t.pid)')} AS blocking,
                 ${WAITS('a.pid')} AS waits
           WHERE $7::boolean) b ON true
)
SELECT n::int AS n, pid, (a_pid IS NOT NULL) AS present, backend_start_now, state_now, superuser_now, blocking_now, waiting_now,
       coalesce(holds, false) AND NOT coalesce(permitted, false) AS denied,
       CASE WHEN coalesce(holds, false) AND coalesce(permitted, false) THEN ${call} END AS signalled
  FROM c
 ORDER BY n`;
}

/** What the batch statement says of one session; `denied`: it still matched, but the role may not signal it. */
export type BatchRaw = SignalRaw & { pid: number; denied: boolean };

export type BatchResult = { ok: true; raws: BatchRaw[] } | { ok: false; permissionDenied: boolean; message: string; fatal: boolean };

/**
 * Re-checks and signals a batch of planned sessions in ONE autocommit statement, one row per
 * session in the plan's order. Never throws for the targets' sake; a statement error comes back
 * as a result (the caller then cannot know which rows were signalled, and re-checks them one by
 * one: a session already signalled is then gone, or re-signalled under the same identity).
 */
export async function signalBatch(s: Session, batch: readonly PlannedSession[], kind: SignalKind, opts: Omit<SignalOptions, 'timeoutMs'>): Promise<BatchResult> {
  const params: unknown[] = [
    batch.map((p) => p.pid),
    batch.map((p) => p.backend_start),
    batch.map((p) => p.state),
    batch.map((p) => p.state_change),
    batch.map((p) => p.xact_start),
    opts.minAgeMs,
    opts.stillBlocking,
    batch.map((p) => `{${p.waiters.join(',')}}`),
    opts.includeSuperusers,
  ];
  try {
    const rows = await s.query<BatchRaw & { n: number }>(batchSql(kind), params);
    if (rows.length !== batch.length || rows.some((r, i) => r.pid !== batch[i]!.pid)) {
      return { ok: false, permissionDenied: false, message: `the batch statement returned ${rows.length} rows for ${batch.length} sessions`, fatal: false };
    }
    return { ok: true, raws: rows.map(({ n: _n, ...raw }) => raw) };
  } catch (err) {
    if (!(err instanceof DbdoctorError) || err.cause_id === 'interrupted') throw err;
    return { ok: false, permissionDenied: err.cause_id === 'permission_denied', message: err.message, fatal: sessionLost(err.cause_id) };
  }
}

/**
 * One step of waiting for signalled sessions to exit: which of them (pid + backend_start) are
 * still there, in a fresh statement, and while at it a wait of up to `waitMs` for the first of
 * them (pg_terminate_backend(pid, timeout) on the same identity, re-checked in this statement:
 * SIGTERM again to a session already terminating, and the server's own wait for its exit). The
 * others exit meanwhile, so a batch takes about as long as its slowest exit, not the sum.
 * `waitMs` 0: only look.
 */
const CONFIRM_SQL = `WITH t AS (
  SELECT * FROM unnest($1::int[], $2::text[]) AS t(pid, backend_start)
), still AS MATERIALIZED (
  SELECT a.pid, row_number() OVER (ORDER BY a.pid) AS k
    FROM t JOIN ${BACKENDS} a ON a.pid = t.pid AND a.backend_start::text = t.backend_start
   WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
)
SELECT pid, CASE WHEN k = 1 AND $3::bigint > 0 THEN pg_terminate_backend(pid, $3::bigint) END AS exited
  FROM still`;

/** Confirm-step rows: the sessions still there when the statement began. */
export async function stillThere(s: Session, sessions: ReadonlyArray<{ pid: number; backend_start: string }>, waitMs: number): Promise<Set<number>> {
  if (sessions.length === 0) return new Set();
  const rows = await s.query<{ pid: number; exited: boolean | null }>(CONFIRM_SQL, [
    sessions.map((x) => x.pid),
    sessions.map((x) => x.backend_start),
    Math.max(0, Math.round(waitMs)),
  ]);
  return new Set(rows.filter((r) => r.exited !== true).map((r) => r.pid));
}
