/**
 * For the diagnose tests: the recorded snapshots (test/unit/fixtures/diagnose, recorded from real
 * incidents by scripts/record-diagnose-fixtures.mjs) and the JSON Schema check every diagnose
 * document a test produces goes through.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import type { DiagnoseFacts, DiagnoseReport, Finding, NodeId } from '../../src/core/diagnose.js';

const ROOT = new URL('../../', import.meta.url);

export const DIAGNOSE_SCHEMA = JSON.parse(readFileSync(new URL('schema/diagnose.schema.json', ROOT), 'utf8')) as Record<string, unknown>;

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(DIAGNOSE_SCHEMA);

/** Throws with ajv's errors unless `doc` is a valid `dbdoctor diagnose --json` document. */
export function expectValidDiagnoseDoc(doc: unknown): void {
  if (!validate(doc)) {
    throw new Error(`diagnose JSON does not match schema/diagnose.schema.json:\n${ajv.errorsText(validate.errors, { separator: '\n' })}`);
  }
}

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
