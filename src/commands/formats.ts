/**
 * diagnose's output formats, in one place for the command (its --format) and for the CLI's
 * start-up (src/cli.ts), which skips the display-width tables for the formats a machine reads.
 */
export const DIAGNOSE_FORMATS = ['text', 'json', 'nagios', 'prometheus', 'openmetrics', 'icinga'] as const;
export type DiagnoseFormat = (typeof DIAGNOSE_FORMATS)[number];

/** The formats a machine reads: nothing in them is aligned in columns. */
export const MACHINE_FORMATS: ReadonlySet<string> = new Set(DIAGNOSE_FORMATS.filter((f) => f !== 'text'));
