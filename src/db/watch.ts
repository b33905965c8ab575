/**
 * One sample of `dbdoctor watch`, over the session the watch holds for its whole run: the server
 * facts and limits, the activity (one pg_stat_activity snapshot, who blocks whom and the prepared
 * transactions: what diagnose's state read is) and, on 14+, pg_stat_database's session counters,
 * in one round trip (two when a wait needs the lock table); timed. Settings and statements are not read again at each sample (they do not
 * move in seconds). Read-only.
 *
 * Who blocks whom is read as diagnose reads it: from the lock table where a wait needs it or a
 * queue is long (linearly in the queue: each waiter, the holders and the one just ahead), else
 * from pg_blocking_pids(); where the lock table is refused or a query over it fails, the sample
 * goes again without it, and after a refusal the watch's session keeps to pg_blocking_pids()
 * (withLockDetail in sql/activity.ts). A lock or statement timeout is not retried: the sample
 * would wait twice.
 */
import type { ActivitySnapshot } from '../core/activity.js';
import type { DiagnoseFacts, SettingsFacts } from '../core/diagnose.js';
import { describeTarget } from '../core/target.js';
import type { SessionStats } from '../core/watch.js';
import { nowMs } from './clock.js';
import type { Session } from './session.js';
import { activityRead, withLockDetail } from './sql/activity.js';
import { readTogether } from './sql/read.js';
import { type ServerProfileFacts, serverProfileRead } from './sql/server-facts.js';
import { sessionStatsRead } from './sql/session-stats.js';
import { settingsRead } from './sql/settings.js';

export interface SampleRead {
  facts: DiagnoseFacts;
  stats: SessionStats | null;
  /** The read (its round trip, and the lock table's when a wait needs it), ms. */
  ms: number;
}

/** What a watch reads of the sessions at each sample (and for `d`): every row, with its prepared transactions. */
const WATCH_ACTIVITY = { withPrepared: true, queryChars: 2000 } as const;

/** The facts of a watch's read, in diagnose's shape (what it did not read, and why, in `unavailable`). */
function watchFacts(session: Session, { server, limits }: ServerProfileFacts, activity: ActivitySnapshot, settings: SettingsFacts | null, unavailable: DiagnoseFacts['unavailable'], ms: number): DiagnoseFacts {
  return {
    target: describeTarget(session.target),
    connect: { ok: true, connect_ms: session.connectMs },
    server,
    limits,
    activity,
    settings,
    statements: null,
    gather_error: null,
    unavailable,
    gather_ms: ms,
  };
}

export async function readSample(session: Session, now: () => number = nowMs): Promise<SampleRead> {
  // The read that answered: a first one refused does not count towards the sample's time
  // (nor towards the interval's back-off).
  let started = 0;
  const [profile, activity, stats] = await withLockDetail(session, (lockDetail) => {
    started = now();
    return readTogether<[ServerProfileFacts, ActivitySnapshot, SessionStats | null]>(session, serverProfileRead(session), activityRead(session, { ...WATCH_ACTIVITY, lockDetail }), sessionStatsRead(session));
  });
  const ms = now() - started;
  const unavailable = [
    { what: 'settings', reason: 'not read at each sample of a watch' },
    { what: 'statements', reason: 'not read at each sample of a watch' },
  ];
  return { facts: watchFacts(session, profile, activity, null, unavailable, ms), stats, ms };
}

/** The watch's `d`: the sample's reads and the settings, over the same session, for a full diagnosis now. */
export async function readFullFacts(session: Session, now: () => number = nowMs): Promise<DiagnoseFacts> {
  const started = now();
  const [profile, activity, settings] = await withLockDetail(session, (lockDetail) =>
    readTogether<[ServerProfileFacts, ActivitySnapshot, SettingsFacts]>(session, serverProfileRead(session), activityRead(session, { ...WATCH_ACTIVITY, lockDetail }), settingsRead(session)),
  );
  return watchFacts(session, profile, activity, settings, [{ what: 'statements', reason: 'not read by the live view (run dbdoctor diagnose for them)' }], now() - started);
}
