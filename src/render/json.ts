import { escapeCodePoint, revealHidden } from '../core/text.js';
import { plainLines } from './sanitize.js';

/** The versioned JSON envelope every `--json` document shares. */
export const JSON_SCHEMA_VERSION = 1;

/**
 * Documents whose shape changed in a way a reader must know (a field removed or changed meaning)
 * carry a higher version: dbdoctor.locks 2 lists every session once, flat (`nodes`), instead of a
 * nested `tree` per root, and its `cycles` name members and stuck sessions apart.
 */
const SCHEMA_VERSIONS: Readonly<Record<string, number>> = { locks: 2 };

export interface Envelope<K extends string, R> {
  schema: `dbdoctor.${K}`;
  schema_version: number;
  dbdoctor_version: string;
  generated_at: string;
  report: R;
}

export function envelope<K extends string, R>(kind: K, report: R, version: string, now = new Date()): Envelope<K, R> {
  return {
    schema: `dbdoctor.${kind}`,
    schema_version: SCHEMA_VERSIONS[kind] ?? JSON_SCHEMA_VERSION,
    dbdoctor_version: version,
    generated_at: now.toISOString(),
    report,
  };
}

/**
 * The document as JSON text that is inert on a terminal and still means exactly the same: control
 * characters JSON.stringify leaves raw (DEL, C1) and hidden characters (zero-width, bidi) are
 * written as \uXXXX escapes, which JSON reads back as the same characters. No line break at the
 * end: the writer adds it (Output.out) without joining it to the text, since a text joined is a
 * text copied, and a 5,000-session `locks --json` is 1.7 MB.
 */
export function renderJson(doc: unknown): string {
  return inert(JSON.stringify(doc, null, 2));
}

/** One JSON document on one line (JSON lines: `watch --json`), inert on a terminal as renderJson's. */
export function renderJsonLine(doc: unknown): string {
  return inert(JSON.stringify(doc));
}

/**
 * JSON text with DEL, C1 and hidden characters escaped. JSON.stringify escapes every other control
 * character, so a text of printable ASCII and line breaks (most documents) has nothing to escape:
 * one scan says so, where the two replacements each scanned it (~3 ms for `locks --json` at
 * incident scale on Node 20). Also what the audit log writes (src/ui/audit.ts): read with cat or
 * tail, it is a terminal's text too.
 */
export function inert(json: string): string {
  if (plainLines(json)) return json;
  return revealHidden(json.replace(/[\u007f-\u009f]/g, escapeCodePoint));
}
