/**
 * What the start-up needs to know of the command line before the CLI loads: the commands' names
 * (src/cli.ts loads only the one named; bin's code cache keeps a file for each), and diagnose's
 * output formats, in one place for the command (its --format) and for the CLI's start-up, which
 * skips the display-width tables for the formats a machine reads.
 */

/** Every command, in help order (src/cli.ts has a loader for each). */
export const COMMAND_NAMES = ['check', 'connections', 'locks', 'queries', 'pools', 'exporter', 'terminate', 'diagnose', 'watch', 'snapshot', 'runbook', 'guide', 'demo'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export const DIAGNOSE_FORMATS = ['text', 'json', 'nagios', 'prometheus', 'openmetrics', 'icinga'] as const;
export type DiagnoseFormat = (typeof DIAGNOSE_FORMATS)[number];

/** The formats a machine reads: nothing in them is aligned in columns. */
export const MACHINE_FORMATS: ReadonlySet<string> = new Set(DIAGNOSE_FORMATS.filter((f) => f !== 'text'));

/**
 * A run for a machine (`--json`, or a machine's `--format`), not asking for help: it prints nothing
 * measured in columns (src/cli.ts skips the display-width tables for it, and bin's code cache keeps
 * its code apart from the same command's for people). `args` is argv without node and the script;
 * `-h` is the host, as in psql, not help.
 */
export function forMachinesOnly(args: readonly string[]): boolean {
  if (args.includes('--help') || args[0] === 'help') return false;
  return args.some((a, i) => a === '--json' || (a === '--format' && MACHINE_FORMATS.has(args[i + 1] ?? '')) || (a.startsWith('--format=') && MACHINE_FORMATS.has(a.slice('--format='.length))));
}
