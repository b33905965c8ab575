/**
 * Gathers every fact `diagnose` decides on, over ONE connection, in as few round trips as the
 * facts allow: server facts and limits (1), the activity snapshot with lock waiters and prepared
 * transactions (1), settings and their per-role/per-database overrides (1), pg_stat_statements
 * detection with sequential-scan tables (1), and the top statements only when that view is
 * usable (1). Read-only. PostgreSQL 14-18 (version differences are in each SQL module).
 *
 * A connection failure is not an error here: it becomes the `connect` fact the tree turns into
 * its first finding. A failure after connecting (the server went away, a timeout) becomes
 * `gather_error`; optional facts (settings, statements) that fail are listed as unavailable and
 * the diagnosis goes on without them.
 */
import type { DiagnoseFacts } from '../core/diagnose.js';
import { DbdoctorError, InterruptedError } from '../core/errors.js';
import { describeTarget, type Target } from '../core/target.js';
import type { Thresholds } from '../core/thresholds.js';
import { ConnectError, openSession, type Session, type SessionOptions } from './session.js';
import { readActivity } from './sql/activity.js';
import { readServerFacts } from './sql/server-facts.js';
import { readSettings } from './sql/settings.js';
import { readStatements } from './sql/statements.js';

export interface GatherDeps {
  /** Opens the one session (injectable for tests of the failure paths). */
  open?: (t: Target, o: SessionOptions) => Promise<Session>;
  now?: () => number;
}

export interface GatherOptions {
  thresholds: Thresholds;
  /** Cut query text to this many characters (default 2000). */
  queryChars?: number;
}

function fatal(err: unknown): boolean {
  return err instanceof InterruptedError || (err instanceof DbdoctorError && err.cause_id === 'server_gone') || !(err instanceof DbdoctorError);
}

export async function gatherFacts(target: Target, sessionOpts: SessionOptions, opts: GatherOptions, deps: GatherDeps = {}): Promise<DiagnoseFacts> {
  const now = deps.now ?? (() => performance.now());
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
    const { server, limits } = await readServerFacts(session);
    facts.server = server;
    facts.limits = limits;
    facts.activity = await readActivity(session, { withLocks: true, queryChars: opts.queryChars ?? 2000 });
    try {
      facts.settings = await readSettings(session);
    } catch (err) {
      if (fatal(err)) throw err;
      facts.unavailable.push({ what: 'settings', reason: (err as Error).message });
    }
    try {
      facts.statements = await readStatements(session, { seqScanRows: opts.thresholds.seq_scan_rows, top: opts.thresholds.top_statements });
    } catch (err) {
      if (fatal(err)) throw err;
      facts.unavailable.push({ what: 'statements', reason: (err as Error).message });
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
