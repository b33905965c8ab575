/**
 * The JSON Schema checks for the `--json` documents that have a schema (schema/*.schema.json):
 * every `dbdoctor diagnose --json` and `dbdoctor locks --json` document a test produces, from the
 * built binary or wrapped in-process with envelope(kind, report, ...), goes through one of these.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';

const ROOT = new URL('../../', import.meta.url);

function loadSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`schema/${name}.schema.json`, ROOT), 'utf8')) as Record<string, unknown>;
}

/** ajv's errors (one a line) for a document against schema/<name>.schema.json, or null when it is valid. */
function checker(name: string, schema: Record<string, unknown>, refs: Array<Record<string, unknown>> = []): { errors(doc: unknown): string | null; expectValid(doc: unknown): void } {
  const ajv = new Ajv({ allErrors: true, strict: true });
  for (const r of refs) ajv.addSchema(r);
  const validate = ajv.compile(schema);
  const errors = (doc: unknown) => (validate(doc) ? null : ajv.errorsText(validate.errors, { separator: '\n' }));
  return {
    errors,
    expectValid(doc) {
      const e = errors(doc);
      if (e !== null) throw new Error(`${name} JSON does not match schema/${name}.schema.json:\n${e}`);
    },
  };
}

export const DIAGNOSE_SCHEMA = loadSchema('diagnose');
export const LOCKS_SCHEMA = loadSchema('locks');
export const PGBOUNCER_SCHEMA = loadSchema('pgbouncer');
const pgbouncer = checker('pgbouncer', PGBOUNCER_SCHEMA);
const fleet = checker('fleet', loadSchema('fleet'), [DIAGNOSE_SCHEMA]);
/** Throws with ajv's errors unless `doc` is a valid `dbdoctor diagnose --targets --json` document. */
export const expectValidFleetDoc = fleet.expectValid;
/** Throws with ajv's errors unless `doc` is a valid `dbdoctor pools --json` document. */
export const expectValidPgBouncerDoc = pgbouncer.expectValid;
const diagnose = checker('diagnose', DIAGNOSE_SCHEMA);
const locks = checker('locks', LOCKS_SCHEMA);

/** Throws with ajv's errors unless `doc` is a valid `dbdoctor diagnose --json` document. */
export const expectValidDiagnoseDoc = diagnose.expectValid;
/** Throws with ajv's errors unless `doc` is a valid `dbdoctor locks --json` document. */
export const expectValidLocksDoc = locks.expectValid;
/** ajv's errors for a `dbdoctor locks --json` document, one a line, or null when it is valid. */
export const locksDocErrors = locks.errors;

export const SNAPSHOT_SCHEMA = loadSchema('snapshot');
const snapshot = checker('snapshot', SNAPSHOT_SCHEMA);
/** Throws with ajv's errors unless `doc` is a valid `dbdoctor snapshot` document. */
export const expectValidSnapshotDoc = snapshot.expectValid;

export const WATCH_SCHEMA = loadSchema('watch');
const watch = checker('watch', WATCH_SCHEMA);
/** Throws with ajv's errors unless `doc` is a valid line of `dbdoctor watch --json`. */
export const expectValidWatchDoc = watch.expectValid;
