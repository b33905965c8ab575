/**
 * Many servers in one run: the targets file, and the fleet report built from each target's
 * diagnosis. No I/O here (src/commands/fleet.ts runs the diagnoses).
 */
import { worst } from './capacity.js';
import { RANK } from './diagnose/shared.js';
import type { DiagnoseReport } from './diagnose/types.js';
import { UsageError } from './errors.js';
import { exitCodeForSeverity, type ExitCodeValue, type Severity } from './exit-codes.js';

/** One line of a targets file: its name (for labels and /probe) and what -d would take. */
export interface TargetLine {
  /** `@name` given on the line, else null (then the resolved target names it). */
  label: string | null;
  /** A URL, a conninfo string or `service=name`, as `-d` takes it. */
  spec: string;
  line: number;
}

/**
 * A targets file: one target a line (a postgres:// URL, a conninfo string or `service=name`),
 * optionally named first with `@name `; blank lines and lines starting with `#` are skipped.
 */
export function parseTargetsFile(text: string, file: string): TargetLine[] {
  const out: TargetLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const m = /^@([A-Za-z0-9][A-Za-z0-9._:-]{0,63})\s+(.+)$/.exec(raw);
    if (raw.startsWith('@') && !m) throw new UsageError(`bad target name in ${file}, line ${i + 1}`, 'write @name followed by the target, e.g. "@db1 host=db1 user=monitor"; a name is letters, digits, ".", "_", ":" and "-"');
    out.push({ label: m ? m[1]! : null, spec: m ? m[2]! : raw, line: i + 1 });
  }
  if (out.length === 0) throw new UsageError(`no targets in ${file}`, 'one target a line: a postgres:// URL, a conninfo string or service=name');
  return out;
}

/** --service a,b,c as target lines. */
export function serviceTargets(list: string): TargetLine[] {
  const names = list.split(',').map((s) => s.trim());
  if (names.some((n) => n === '')) throw new UsageError('an empty service name in --service', 'give names separated by commas, e.g. --service db1,db2');
  return names.map((n) => ({ label: n, spec: `service=${n}`, line: 0 }));
}

/** Unique names for the fleet: a label, else the target as shown (never a password). */
export function nameTargets(lines: readonly TargetLine[], shown: readonly string[]): string[] {
  const names = lines.map((l, i) => l.label ?? shown[i]!);
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new UsageError(`the target "${n}" is given twice`, 'name targets apart with @name at the start of a line');
    seen.add(n);
  }
  return names;
}

export interface FleetEntry {
  name: string;
  /** Milliseconds this target's diagnosis took. */
  ms: number;
  report: DiagnoseReport;
}

export interface FleetReport {
  verdict: Severity;
  exit_code: ExitCodeValue;
  summary: string;
  counts: Record<Severity, number>;
  concurrency: number;
  /** Milliseconds the whole run took (not the sum: the targets run side by side). */
  ms: number;
  /** Worst first, then by name. */
  targets: FleetEntry[];
}

export function fleetReport(entries: FleetEntry[], concurrency: number, ms: number): FleetReport {
  const targets = [...entries].sort((a, b) => RANK[b.report.verdict] - RANK[a.report.verdict] || a.name.localeCompare(b.name));
  const counts: Record<Severity, number> = { ok: 0, info: 0, warning: 0, critical: 0, unknown: 0 };
  for (const e of targets) counts[e.report.verdict]++;
  const verdict = worst('ok', ...targets.map((e) => e.report.verdict));
  const bad = (['critical', 'unknown', 'warning'] as const).filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`);
  return {
    verdict,
    exit_code: exitCodeForSeverity(verdict),
    summary: `${targets.length} target${targets.length === 1 ? '' : 's'}: ${bad.length ? `${bad.join(', ')}, ` : ''}${counts.ok + counts.info} ok`,
    counts,
    concurrency,
    ms,
    targets,
  };
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order of the results. */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
