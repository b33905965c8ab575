import { ExitCode, type ExitCodeValue } from './exit-codes.js';

/**
 * A failure the user can cause or meet. It carries its exit code, one clear line and a hint;
 * `cli.ts` is the only place that turns it into output and an exit status.
 */
export class DbdoctorError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  /** A stable machine-readable cause, e.g. "auth_failed", "dns", "usage". */
  readonly cause_id: string;

  constructor(message: string, opts: { exitCode: ExitCodeValue; hint?: string; cause?: string }) {
    super(message);
    this.name = 'DbdoctorError';
    this.exitCode = opts.exitCode;
    this.hint = opts.hint;
    this.cause_id = opts.cause ?? 'error';
  }
}

export class UsageError extends DbdoctorError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.USAGE, cause: 'usage', ...(hint ? { hint } : {}) });
    this.name = 'UsageError';
  }
}

export class InterruptedError extends DbdoctorError {
  constructor() {
    super('interrupted', { exitCode: ExitCode.INTERRUPTED, cause: 'interrupted' });
    this.name = 'InterruptedError';
  }
}
