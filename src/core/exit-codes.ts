/**
 * The one exit-code table of the whole CLI. Its core is the monitoring-plugin convention, so
 * every command drops into Nagios, Icinga, Sensu or a shell `if`. Documented in the README and in
 * `--help`; keep the three in step.
 */
export const ExitCode = {
  OK: 0,
  WARNING: 1,
  CRITICAL: 2,
  UNKNOWN: 3,
  /** terminate: another run holds the lock file. */
  LOCKED: 4,
  /** terminate: a destructive step needs confirmation (no TTY and no --yes), or the plan exceeds --max. */
  NOT_CONFIRMED: 5,
  USAGE: 64,
  INTERNAL: 70,
  INTERRUPTED: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODE_TABLE: ReadonlyArray<readonly [number, string]> = [
  [ExitCode.OK, 'OK: nothing wrong found, or the action fully done'],
  [ExitCode.WARNING, 'WARNING: findings at warning level, or an action only partly done'],
  [ExitCode.CRITICAL, 'CRITICAL: critical findings, the server is unreachable, or an action did nothing'],
  [ExitCode.UNKNOWN, "UNKNOWN: dbdoctor could not judge (its own credentials, database, TLS or privileges)"],
  [ExitCode.LOCKED, 'LOCKED: another terminate run holds the lock file; nothing was done'],
  [ExitCode.NOT_CONFIRMED, 'NOT CONFIRMED: nothing was done (no --yes without a TTY, answered No, or plan over --max)'],
  [ExitCode.USAGE, 'usage error: a bad flag or value (a lock file, audit log or config path that is not a regular file dbdoctor may use included)'],
  [ExitCode.INTERNAL, 'internal error: a bug (stack trace with --debug)'],
  [ExitCode.INTERRUPTED, "interrupted (Ctrl-C; SIGTERM too during terminate and watch's screen)"],
];

export type Severity = 'ok' | 'info' | 'warning' | 'critical' | 'unknown';

export function exitCodeForSeverity(severity: Severity): ExitCodeValue {
  switch (severity) {
    case 'ok':
    case 'info':
      return ExitCode.OK;
    case 'warning':
      return ExitCode.WARNING;
    case 'critical':
      return ExitCode.CRITICAL;
    case 'unknown':
      return ExitCode.UNKNOWN;
  }
}
