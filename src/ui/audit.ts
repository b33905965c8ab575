/**
 * The audit log: one JSON object per line, appended, in a file created with mode 0600 (its
 * directory 0700). Each line is written with one write() on a file opened for appending and then
 * fsync'd, so an intent line is on disk before the signal is sent. The records themselves (and
 * what they may hold: never a password) are built in src/core/terminate.ts.
 */
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { DbdoctorError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';

export interface AuditLog {
  readonly path: string;
  /** Appends one record as one line and flushes it to disk. */
  append(record: object): void;
  close(): void;
}

function auditError(path: string, err: unknown): DbdoctorError {
  const code = (err as { code?: string }).code ?? 'error';
  return new DbdoctorError(`cannot write the audit log ${path} (${code}); nothing was terminated`, {
    exitCode: ExitCode.UNKNOWN,
    hint: 'fix the permissions or free space, or choose another file with --audit-log',
    cause: 'audit_log',
  });
}

export function openAuditLog(path: string): AuditLog {
  let fd: number;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    fd = openSync(path, 'a', 0o600);
    // An audit file that already existed with wider permissions is tightened, not trusted.
    fchmodSync(fd, 0o600);
  } catch (err) {
    throw auditError(path, err);
  }
  let open = true;
  return {
    path,
    append(record) {
      const line = `${JSON.stringify(record)}\n`;
      try {
        writeSync(fd, line);
        fsyncSync(fd);
      } catch (err) {
        throw auditError(path, err);
      }
    },
    close() {
      if (!open) return;
      open = false;
      try {
        closeSync(fd);
      } catch {
        // Already closed: nothing to lose, every line was flushed when written.
      }
    },
  };
}
