/**
 * One sample of `dbdoctor watch`, over the session the watch holds for its whole run: the server
 * facts and limits, the activity (one pg_stat_activity snapshot, lock waiters' pg_blocking_pids()
 * and the prepared transactions: what diagnose's state read is) and, on 14+, pg_stat_database's
 * session counters, in one round trip; timed. Settings and statements are not read again at each
 * sample (they do not move in seconds). Read-only.
 */
import type { ActivitySnapshot } from '../core/activity.js';
import type { DiagnoseFacts, SettingsFacts } from '../core/diagnose.js';
import { describeTarget } from '../core/target.js';
import type { SessionStats } from '../core/watch.js';
import { nowMs } from './clock.js';
import type { Session } from './session.js';
import { activityRead } from './sql/activity.js';
import { readTogether } from './sql/read.js';
import { type ServerProfileFacts, serverProfileRead } from './sql/server-facts.js';
import { sessionStatsRead } from './sql/session-stats.js';
import { settingsRead } from './sql/settings.js';

export interface SampleRead {
  facts: DiagnoseFacts;
  stats: SessionStats | null;
  /** The round trip, ms. */
  ms: number;
}

export async function readSample(session: Session, now: () => number = nowMs): Promise<SampleRead> {
  const started = now();
  const [{ server, limits }, activity, stats] = await readTogether<[ServerProfileFacts, ActivitySnapshot, SessionStats | null]>(
    session,
    serverProfileRead(session),
    activityRead(session, { withPrepared: true, queryChars: 2000 }),
    sessionStatsRead(session),
  );
  const ms = now() - started;
  const facts: DiagnoseFacts = {
    target: describeTarget(session.target),
    connect: { ok: true, connect_ms: session.connectMs },
    server,
    limits,
    activity,
    settings: null,
    statements: null,
    gather_error: null,
    unavailable: [
      { what: 'settings', reason: 'not read at each sample of a watch' },
      { what: 'statements', reason: 'not read at each sample of a watch' },
    ],
    gather_ms: ms,
  };
  return { facts, stats, ms };
}

/** The watch's `d`: the sample's reads and the settings, over the same session, for a full diagnosis now. */
export async function readFullFacts(session: Session, now: () => number = nowMs): Promise<DiagnoseFacts> {
  const started = now();
  const [{ server, limits }, activity, settings] = await readTogether<[ServerProfileFacts, ActivitySnapshot, SettingsFacts]>(
    session,
    serverProfileRead(session),
    activityRead(session, { withPrepared: true, queryChars: 2000 }),
    settingsRead(session),
  );
  return {
    target: describeTarget(session.target),
    connect: { ok: true, connect_ms: session.connectMs },
    server,
    limits,
    activity,
    settings,
    statements: null,
    gather_error: null,
    unavailable: [{ what: 'statements', reason: 'not read by the live view (run dbdoctor diagnose for them)' }],
    gather_ms: now() - started,
  };
}
