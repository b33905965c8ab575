/**
 * `terminate`'s SQL. PostgreSQL 14-18: pg_terminate_backend(pid, timeout) is 14+ and is called
 * positionally (named arguments fail on 13).
 *
 * - readTerminateSnapshot: the activity snapshot and each session's exact fingerprint
 *   (backend_start, state_change, xact_start, query_start as text: JS dates lose microseconds),
 *   read in ONE round trip of SELECTs, one implicit transaction (src/db/sql/read.ts).
 *   pg_stat_activity is snapshotted once per transaction, so both reads describe the same instant.
 * - signalSession: ONE autocommit statement per session (so one session's error cannot affect
 *   another's, and every statement reads a fresh snapshot) that re-checks the fingerprint (and,
 *   for --blockers, that the session still blocks someone) and sends the signal only when it
 *   still holds. SQLSTATE 42501 is returned as permission denied.
 */
import type { ActivitySnapshot } from '../../core/activity.js';
import { DbdoctorError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { Fingerprint, PlannedSession, SignalKind, SignalRaw } from '../../core/terminate.js';
import type { Session } from '../session.js';
import { activityRead } from './activity.js';
import { type Read, readTogether } from './read.js';

export const MIN_SERVER_VERSION_NUM = 140000;

const FINGERPRINT_SQL = `SELECT pid,
       backend_start::text AS backend_start,
       state,
       state_change::text AS state_change,
       xact_start::text AS xact_start,
       query_start::text AS query_start
  FROM pg_stat_activity`;

export interface TerminateSnapshot {
  activity: ActivitySnapshot;
  fingerprints: Fingerprint[];
}

export async function readTerminateSnapshot(s: Session): Promise<TerminateSnapshot> {
  if (s.serverVersionNum < MIN_SERVER_VERSION_NUM) {
    throw new DbdoctorError(`terminate needs PostgreSQL 14 or newer (this server is ${Math.floor(s.serverVersionNum / 10000)})`, {
      exitCode: ExitCode.UNKNOWN,
      hint: 'on older servers use pg_terminate_backend by hand, re-checking backend_start in the same statement (runbooks/leaks.md)',
      cause: 'server_too_old',
    });
  }
  const fingerprintsRead: Read<Fingerprint[]> = { statements: [FINGERPRINT_SQL], parse: ([rows = []]) => rows as Fingerprint[] };
  const [activity, fingerprints] = await readTogether<[ActivitySnapshot, Fingerprint[]]>(s, activityRead(s), fingerprintsRead);
  return { activity, fingerprints };
}

/**
 * The re-check and the signal in one statement. The CASE only calls the (volatile) signal
 * function when the session is still the one planned (pid + backend_start), in the planned state,
 * has not moved since (state_change, xact_start), is still old enough, is a client backend, is
 * not dbdoctor itself and, with --blockers ($7), still blocks at least one other session.
 *
 * "Still blocks": some session waiting on a Lock names it in pg_blocking_pids(), which is called
 * for Lock waiters only (the CASE keeps it from the others: each call takes the lock manager's
 * partition locks). The waiters come from this statement's own pg_stat_activity snapshot and
 * pg_blocking_pids() reads the lock table as it is now, so a waiter that was cancelled, gave up or
 * got its lock since the plan no longer counts.
 */
function signalSql(kind: SignalKind): string {
  const call = kind === 'terminate' ? 'pg_terminate_backend(a.pid, $8::bigint)' : 'pg_cancel_backend(a.pid)';
  return `SELECT (a.pid IS NOT NULL) AS present,
       a.backend_start::text AS backend_start_now,
       a.state AS state_now,
       b.blocking AS blocking_now,
       CASE WHEN a.backend_start::text = $2::text
             AND a.state = $3::text
             AND a.state_change::text IS NOT DISTINCT FROM $4::text
             AND a.xact_start::text IS NOT DISTINCT FROM $5::text
             AND ($6::float8 IS NULL
                  OR (extract(epoch FROM (clock_timestamp() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.state_change END)) * 1000)::float8 >= $6::float8)
             AND a.backend_type = 'client backend'
             AND a.pid <> pg_backend_pid()
             AND (NOT $7::boolean OR b.blocking)
            THEN ${call}
       END AS signalled
  FROM (SELECT $1::int AS pid) AS t
  LEFT JOIN pg_stat_activity a ON a.pid = t.pid
  LEFT JOIN LATERAL (
        SELECT EXISTS (SELECT 1
                         FROM pg_stat_activity w
                        WHERE w.pid <> t.pid
                          AND CASE WHEN w.wait_event_type = 'Lock' THEN t.pid = ANY (pg_blocking_pids(w.pid)) ELSE false END) AS blocking
         WHERE $7::boolean) AS b ON true`;
}

export type SignalResult = { ok: true; raw: SignalRaw } | { ok: false; permissionDenied: boolean; message: string; fatal: boolean };

export interface SignalOptions {
  /** pg_terminate_backend's timeout: wait this long for the exit. */
  timeoutMs: number;
  /** The --older-than condition, re-checked; null when not filtering by age. */
  minAgeMs: number | null;
  /** --blockers: signal only while the session still blocks at least one other session. */
  stillBlocking: boolean;
}

/**
 * Sends one signal to one planned session, race-safely. Never throws for the target's sake:
 * permission denied and other statement errors come back as results. Errors that end dbdoctor's
 * own session (fatal) and Ctrl-C are reported as fatal / rethrown.
 */
export async function signalSession(s: Session, p: PlannedSession, kind: SignalKind, opts: SignalOptions): Promise<SignalResult> {
  const params: unknown[] = [p.pid, p.backend_start, p.state, p.state_change, p.xact_start, opts.minAgeMs, opts.stillBlocking];
  if (kind === 'terminate') params.push(Math.max(1, Math.round(opts.timeoutMs)));
  try {
    const [row] = await s.query<SignalRaw>(signalSql(kind), params);
    return { ok: true, raw: row ?? { present: false, backend_start_now: null, state_now: null, signalled: null, blocking_now: null } };
  } catch (err) {
    if (!(err instanceof DbdoctorError) || err.cause_id === 'interrupted') throw err;
    return {
      ok: false,
      permissionDenied: err.cause_id === 'permission_denied',
      message: err.message,
      fatal: err.cause_id === 'server_gone',
    };
  }
}

/** Is the session (pid + backend_start) still there? A new statement, so a fresh snapshot. */
export async function sessionStillThere(s: Session, pid: number, backendStart: string): Promise<boolean> {
  const [row] = await s.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int AND backend_start::text = $2::text',
    [pid, backendStart],
  );
  return (row?.n ?? 0) > 0;
}
