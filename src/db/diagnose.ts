/**
 * Gathers every fact `diagnose` decides on, over ONE connection, in as few round trips as the
 * facts allow: server facts, limits, the activity snapshot with lock waiters and prepared
 * transactions (one pg_stat_activity snapshot), settings with their per-role/per-database
 * overrides, and the pg_stat_statements probe with sequential-scan tables (1); the top statements
 * only when that view is usable (1). Read-only. PostgreSQL 14-18 (version differences are in each
 * SQL module).
 *
 * A connection failure is not an error here: it becomes the `connect` fact the tree turns into
 * its first finding. A failure after connecting (the server went away, a timeout) becomes
 * `gather_error`; optional facts (settings, statements) that fail are listed as unavailable and
 * the diagnosis goes on without them.
 */
import type { ActivitySnapshot } from '../core/activity.js';
import type { DiagnoseFacts, SettingsFacts } from '../core/diagnose.js';
import { DbdoctorError, InterruptedError } from '../core/errors.js';
import { describeTarget, type Target } from '../core/target.js';
import type { Thresholds } from '../core/thresholds.js';
import { ConnectError, openSession, type Session, type SessionOptions } from './session.js';
import { activityRead, type LockDetail } from './sql/activity.js';
import { type FirstRoundTrip, readFirst, readTogether } from './sql/read.js';
import { type ServerProfileFacts, serverProfileRead } from './sql/server-facts.js';
import { settingsRead } from './sql/settings.js';
import { readTopStatements, type StatementsProbe, statementsProbeRead } from './sql/statements.js';
import { nowMs } from './clock.js';

export interface GatherDeps {
  /** Opens the one session (injectable for tests of the failure paths). */
  open?: (t: Target, o: SessionOptions) => Promise<Session>;
  now?: () => number;
}

export interface GatherOptions {
  thresholds: Thresholds;
  /** Cut query text to this many characters (default DIAGNOSE_QUERY_CHARS). */
  queryChars?: number;
}

/**
 * How much of each session's statement `diagnose` reads, cut server-side: what it shows is at most
 * 300 characters (core/diagnose/shared.ts), and it groups statements and matches them with
 * pg_stat_statements' texts, which are read to 500 (src/db/sql/statements.ts): 500 serves both,
 * where 2,000 was read for every session.
 */
export const DIAGNOSE_QUERY_CHARS = 500;

/**
 * Failures an optional read can cause on its own, so that reading again apart may get past them.
 * A statement_timeout is one too, but reading the optional facts again would wait as long again:
 * after one in the first round trip, only the state is read again, and the optional facts are
 * unavailable (after one in the lock table's round trip, they stand as the first read them).
 */
const OPTIONAL_FAILURES = new Set(['permission_denied', 'lock_timeout', 'query_failed', 'statement_timeout']);

function fatal(err: unknown): boolean {
  return err instanceof InterruptedError || (err instanceof DbdoctorError && err.cause_id === 'server_gone') || !(err instanceof DbdoctorError);
}

export async function gatherFacts(target: Target, sessionOpts: SessionOptions, opts: GatherOptions, deps: GatherDeps = {}): Promise<DiagnoseFacts> {
  const now = deps.now ?? nowMs;
  const open = deps.open ?? openSession;
  const started = now();
  const facts: DiagnoseFacts = {
    target: describeTarget(target),
    connect: { ok: true, connect_ms: 0 },
    server: null,
    limits: [],
    activity: null,
    settings: null,
    statements: null,
    gather_error: null,
    unavailable: [],
    gather_ms: 0,
  };
  let session: Session;
  try {
    session = await open(target, sessionOpts);
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    facts.connect = { ok: false, failure: err.failure, ms: now() - started };
    facts.gather_ms = now() - started;
    return facts;
  }
  facts.connect = { ok: true, connect_ms: session.connectMs };
  try {
    const statementsOpts = { seqScanRows: opts.thresholds.seq_scan_rows, top: opts.thresholds.top_statements };
    // pg_locks is read only when a wait needs it (a relation, a tuple, ...: who blocks whom then
    // comes from the lock table, linearly in a queue); 'none' leaves it to pg_blocking_pids().
    const state = (lockDetail: LockDetail = 'targeted') =>
      [activityRead(session, { withPrepared: true, lean: true, lockDetail, queryChars: opts.queryChars ?? DIAGNOSE_QUERY_CHARS }), serverProfileRead(session)] as const;
    const optional = () => [settingsRead(session), statementsProbeRead(statementsOpts)] as const;
    let probe: StatementsProbe | null = null;
    let first: FirstRoundTrip<[ActivitySnapshot, ServerProfileFacts, SettingsFacts, StatementsProbe]> | undefined;
    try {
      // Everything in one round trip: the state now (activity, prepared transactions, server
      // facts, limits: one snapshot of pg_stat_activity), then the settings and the statements
      // probe. The activity comes first: the server reads everything else while dbdoctor is still
      // parsing its rows (at 1,500 sessions, longer than the server takes for the rest). The lock
      // table, when a wait needs it, comes in a second (the activity read's follow-up).
      first = await readFirst<[ActivitySnapshot, ServerProfileFacts, SettingsFacts, StatementsProbe]>(session, ...state(), ...optional());
      const [activity, { server, limits }, settings, found] = await first.finish();
      [facts.server, facts.limits, facts.activity, facts.settings, probe] = [server, limits, activity, settings, found];
    } catch (err) {
      // One failing statement fails its round trip. When an optional read may be the one (a
      // revoked catalog, a lock on it, a timeout), the reads go again apart: the state alone, then
      // the optional facts in a round trip whose failure only makes them unavailable. The state
      // goes again without pg_locks, which may be the one (a hardened server revokes it, a lock on
      // it): who blocks whom then comes from pg_blocking_pids(). When only the lock table's round
      // trip failed, the settings and the statements probe of the first stand as read. When the
      // state itself was the one, it fails again the same way (after a second lock_timeout or
      // statement_timeout), and the diagnosis reports that failure as before.
      if (!(err instanceof DbdoctorError) || !OPTIONAL_FAILURES.has(err.cause_id)) throw err;
      const [activity, { server, limits }] = await readTogether<[ActivitySnapshot, ServerProfileFacts]>(session, ...state('none'));
      [facts.server, facts.limits, facts.activity] = [server, limits, activity];
      const [, , readSettings, readProbe] = first?.done ?? [];
      const unavailable = (reason: string) => {
        for (const what of ['settings', 'statements'] as const) facts.unavailable.push({ what, reason });
      };
      if (readSettings !== undefined && readProbe !== undefined) [facts.settings, probe] = [readSettings, readProbe];
      else if (err.cause_id === 'statement_timeout') unavailable(err.message);
      else {
        try {
          [facts.settings, probe] = await readTogether<[SettingsFacts, StatementsProbe]>(session, ...optional());
        } catch (err) {
          if (fatal(err)) throw err;
          unavailable((err as Error).message);
        }
      }
    }
    if (probe) {
      try {
        facts.statements = await readTopStatements(session, probe, statementsOpts);
      } catch (err) {
        if (fatal(err)) throw err;
        facts.unavailable.push({ what: 'statements', reason: (err as Error).message });
      }
    }
  } catch (err) {
    if (err instanceof InterruptedError || !(err instanceof DbdoctorError)) throw err;
    facts.gather_error = { cause: err.cause_id, message: err.message, hint: err.hint ?? null, exit_code: err.exitCode };
  } finally {
    await session.close();
  }
  facts.gather_ms = now() - started;
  return facts;
}
