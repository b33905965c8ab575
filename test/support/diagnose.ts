/**
 * For the diagnose tests: the recorded snapshots (test/unit/fixtures/diagnose, recorded from real
 * incidents by scripts/record-diagnose-fixtures.mjs), and the JSON Schema check every diagnose
 * document a test produces goes through (test/support/schemas.ts).
 */
import { readFileSync } from 'node:fs';
import type { DiagnoseFacts, DiagnoseReport, Finding, NodeId } from '../../src/core/diagnose.js';

export { DIAGNOSE_SCHEMA, expectValidDiagnoseDoc } from './schemas.js';

const ROOT = new URL('../../', import.meta.url);

export type FixtureName = 'seeds-000' | 'seeds-000-pg14' | 'lock-chain' | 'same-statement' | 'listeners' | 'healthy-busy' | 'unprivileged';

/** A recorded snapshot (a deep copy each time, so tests may change it). */
export function fixture(name: FixtureName): DiagnoseFacts {
  return JSON.parse(readFileSync(new URL(`test/unit/fixtures/diagnose/${name}.json`, ROOT), 'utf8')) as DiagnoseFacts;
}

export function findingOf(r: DiagnoseReport, id: NodeId): Finding | undefined {
  return r.findings.find((f) => f.id === id);
}

/** The finding, failing loudly with the ids present when it is missing. */
export function mustFind(r: DiagnoseReport, id: NodeId): Finding {
  const f = findingOf(r, id);
  if (!f) throw new Error(`no ${id} finding; findings: ${r.findings.map((x) => `${x.id}(${x.severity})`).join(', ')}`);
  return f;
}

/** The dbdoctor commands a finding recommends. */
export function commandsOf(f: Finding): string[] {
  return f.next.map((n) => n.command).filter((c): c is string => c !== null);
}
