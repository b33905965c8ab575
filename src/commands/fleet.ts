/**
 * Many targets in one run: each diagnosed on its own connection with its own timeouts, at most
 * `concurrency` at a time, so one dead server costs its connect timeout and nothing more. Used by
 * `diagnose --targets/--service a,b` and by the exporter. Never prints, never exits.
 */
import type { ConnectFailure } from '../core/classify.js';
import { diagnose } from '../core/diagnose.js';
import type { DiagnoseReport } from '../core/diagnose/types.js';
import { DbdoctorError, InterruptedError, UsageError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { type FleetEntry, mapConcurrent, nameTargets, parseTargetsFile, serviceTargets, type TargetLine } from '../core/fleet.js';
import { describeTarget, type Target } from '../core/target.js';
import type { Thresholds } from '../core/thresholds.js';
import { nowMs } from '../db/clock.js';
import type { SessionOptions } from '../db/session.js';
import { resolveConnectionTarget } from '../db/target.js';
import { FileProblem, readRegularText } from '../ui/files.js';
import { runDiagnose } from './diagnose.js';

export interface FleetTarget {
  name: string;
  target: Target;
}

export const DEFAULT_CONCURRENCY = 16;

/** A targets file of thousands of lines is well under this. */
const TARGETS_MAX_BYTES = 16 * 1024 * 1024;

/** The targets of a targets file or a --service list, resolved (PG* variables fill what a line leaves out). */
export function fleetTargets(source: { file?: string; services?: string }, flags: { username?: string; connectTimeout?: string }, env: NodeJS.ProcessEnv): FleetTarget[] {
  let lines: TargetLine[];
  if (source.file !== undefined) {
    const hint = 'one target a line: a postgres:// URL, a conninfo string or service=name';
    let text: string | null;
    try {
      // a regular file only, never waited on (a FIFO there is refused, not read)
      text = readRegularText(source.file, TARGETS_MAX_BYTES);
    } catch (err) {
      const why = err instanceof FileProblem ? `it is ${err.what}` : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      throw new UsageError(`cannot read the targets file ${source.file}: ${why}`, hint);
    }
    if (text === null) throw new UsageError(`cannot read the targets file ${source.file}: no such file`, hint);
    lines = parseTargetsFile(text, source.file);
  } else lines = serviceTargets(source.services ?? '');
  const targets = lines.map((l) => {
    try {
      return resolveConnectionTarget({ dbname: l.spec, username: flags.username, connectTimeout: flags.connectTimeout }, env);
    } catch (err) {
      if (err instanceof UsageError && l.line > 0) throw new UsageError(`${err.message} (${source.file}, line ${l.line})`, err.hint);
      throw err;
    }
  });
  const names = nameTargets(lines, targets.map(describeTarget));
  return targets.map((target, i) => ({ name: names[i]!, target }));
}

/** A target that could not even be tried (its certificate file is missing, say): its report, UNKNOWN. */
export function failedReport(t: Target, err: DbdoctorError, thresholds: Thresholds, ms: number): DiagnoseReport & { config: { file: null; environment: null } } {
  const failure: ConnectFailure = { step: 'target', cause: err.cause_id, message: err.message, hint: err.hint ?? '', exit_code: err.exitCode === ExitCode.CRITICAL ? ExitCode.CRITICAL : ExitCode.UNKNOWN, code: undefined, runbook: 'cannot-connect' };
  const report = diagnose(
    { target: describeTarget(t), connect: { ok: false, failure, ms }, server: null, limits: [], activity: null, settings: null, statements: null, gather_error: null, unavailable: [], gather_ms: ms },
    thresholds,
  );
  return { ...report, config: { file: null, environment: null } };
}

/** Diagnoses one target, never throwing for what is the target's problem. */
export async function diagnoseOne(t: FleetTarget, session: SessionOptions, thresholds: Thresholds): Promise<FleetEntry> {
  const started = nowMs();
  try {
    const report = await runDiagnose({ target: t.target, session, thresholds });
    return { name: t.name, ms: nowMs() - started, report };
  } catch (err) {
    if (err instanceof InterruptedError || !(err instanceof DbdoctorError)) throw err;
    return { name: t.name, ms: nowMs() - started, report: failedReport(t.target, err, thresholds, nowMs() - started) };
  }
}

export async function runFleet(targets: readonly FleetTarget[], session: SessionOptions, thresholds: Thresholds, concurrency: number): Promise<FleetEntry[]> {
  // no prompt for a password in a fleet: a target without one is reported, as in cron
  const { askPassword: _ask, askPasswordFirst: _first, ...quiet } = session;
  return mapConcurrent(targets, concurrency, (t) => diagnoseOne(t, quiet, thresholds));
}

export function parseConcurrency(value: string | undefined): number {
  if (value === undefined) return DEFAULT_CONCURRENCY;
  const n = /^\s*\d{1,4}\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`invalid --concurrency ${JSON.stringify(value)}`, 'how many targets to diagnose at once, 1 to 1000 (default 16)');
  return n;
}
