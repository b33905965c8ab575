/** The versioned JSON envelope every `--json` document shares. */
export const JSON_SCHEMA_VERSION = 1;

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
    schema_version: JSON_SCHEMA_VERSION,
    dbdoctor_version: version,
    generated_at: now.toISOString(),
    report,
  };
}

export function renderJson(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
