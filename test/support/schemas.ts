/**
 * The JSON Schema checks for the `--json` documents that have a schema besides diagnose's
 * (test/support/diagnose.ts): every `dbdoctor locks --json` document a test produces, from the
 * built binary or wrapped in-process with envelope('locks', report, ...), goes through
 * expectValidLocksDoc.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';

const ROOT = new URL('../../', import.meta.url);

export const LOCKS_SCHEMA = JSON.parse(readFileSync(new URL('schema/locks.schema.json', ROOT), 'utf8')) as Record<string, unknown>;

const ajv = new Ajv({ allErrors: true, strict: true });
const validateLocks = ajv.compile(LOCKS_SCHEMA);

/** ajv's errors for a `dbdoctor locks --json` document, one a line, or null when it is valid. */
export function locksDocErrors(doc: unknown): string | null {
  return validateLocks(doc) ? null : ajv.errorsText(validateLocks.errors, { separator: '\n' });
}

/** Throws with ajv's errors unless `doc` is a valid `dbdoctor locks --json` document. */
export function expectValidLocksDoc(doc: unknown): void {
  const errors = locksDocErrors(doc);
  if (errors !== null) throw new Error(`locks JSON does not match schema/locks.schema.json:\n${errors}`);
}
