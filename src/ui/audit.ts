/**
 * The audit log: one JSON object per line, appended. The file is a regular file owned by
 * dbdoctor's user, opened without following a symbolic link and without blocking (src/ui/files.ts);
 * anything else at the path is refused before anything is signalled. A new file is created with
 * mode 0600 (its directory 0700); an existing one is used as it is, never chmod'ed or truncated.
 * Each line goes out in one write() whose count is checked, then fsync'd: an intent line is whole
 * on disk before its signal is sent, or the caller sends nothing. After a torn line (this run's or
 * an earlier one's) the next record starts on a fresh line. The records themselves (never a
 * password) are built in src/core/terminate-audit.ts.
 */
import { closeSync, mkdirSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { DbdoctorError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { inert } from '../render/json.js';
import { closeQuietly, effectiveUid, errorCode, FileProblem, type OpenedFile, openRegular, ShortWrite, writeWhole } from './files.js';

export interface AuditLog {
  readonly path: string;
  /** Appends one record as one whole line and flushes it to disk; throws if it could not. */
  append(record: object): void;
  /**
   * Appends several records in one write() and one fsync (a batch's intent lines before its
   * signals). All or nothing as far as the caller knows: on a failure none counts as written.
   */
  appendAll?(records: readonly object[]): void;
  close(): void;
}

function refused(path: string, what: string): DbdoctorError {
  return new DbdoctorError(`--audit-log ${path} is ${what}; nothing was terminated`, {
    exitCode: ExitCode.USAGE,
    hint: `the audit log must be a regular file of dbdoctor's user with no other name (or not exist yet); links are not followed: give --audit-log the file itself`,
    cause: 'audit_log',
  });
}

const RULES = { owner: effectiveUid(), oneLink: true };

/** Why a write failed, in a few words: the system's code, or the short count. */
function why(err: unknown): string {
  return err instanceof ShortWrite ? err.message : errorCode(err);
}

/** Opening failed: nothing was signalled. A path that cannot be a file is a usage error. */
function auditError(path: string, err: unknown): DbdoctorError {
  if (err instanceof FileProblem) return refused(path, err.what);
  const badPath = ['ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EISDIR'].includes(errorCode(err));
  return new DbdoctorError(`cannot write the audit log ${path} (${why(err)}); nothing was terminated`, {
    exitCode: badPath ? ExitCode.USAGE : ExitCode.UNKNOWN,
    hint: badPath ? 'give --audit-log a path to a file' : 'fix the permissions or free space, or choose another file with --audit-log',
    cause: 'audit_log',
  });
}

/** Refuses, before anything is done, an audit log path that holds something dbdoctor will not write to. */
export function checkAuditLog(path: string): void {
  try {
    const f = openRegular(path, RULES);
    if (f) closeSync(f.fd);
  } catch (err) {
    throw auditError(path, err);
  }
}

/** Whether the file ends a line (or is empty), so that the next record starts on its own line. */
function endsLine(f: OpenedFile): boolean {
  if (f.stats.size === 0) return true;
  const last = Buffer.alloc(1);
  return readSync(f.fd, last, 0, 1, f.stats.size - 1) === 1 && last[0] === 0x0a;
}

export function openAuditLog(path: string): AuditLog {
  let f: OpenedFile;
  let fresh: boolean;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    f = openRegular(path, { ...RULES, append: true, createMode: 0o600 })!;
    fresh = endsLine(f);
  } catch (err) {
    throw auditError(path, err);
  }
  let open = true;
  return {
    path,
    append(record) {
      // inert: the log is read with cat and tail, and other clients' names and statements are in it
      const line = `${fresh ? '' : '\n'}${inert(JSON.stringify(record))}\n`;
      try {
        writeWhole(f.fd, line);
        fresh = true;
      } catch (err) {
        // Part of it may be on disk: the next line must not be glued to it.
        fresh = false;
        throw new Error(`cannot write the audit log ${path}: ${why(err)}`);
      }
    },
    appendAll(records) {
      if (records.length === 0) return;
      const text = `${fresh ? '' : '\n'}${records.map((r) => inert(JSON.stringify(r))).join('\n')}\n`;
      try {
        writeWhole(f.fd, text);
        fresh = true;
      } catch (err) {
        fresh = false;
        throw new Error(`cannot write the audit log ${path}: ${why(err)}`);
      }
    },
    close() {
      if (!open) return;
      open = false;
      closeQuietly(f.fd);
    },
  };
}

/**
 * Writes a batch's records: in one write and one fsync where the log can (appendAll), else one
 * by one. Returns how many are on record (a prefix: all or none with appendAll) and the failure.
 */
export function appendRecords(log: AuditLog, records: readonly object[]): { written: number; error: string | null } {
  if (log.appendAll) {
    try {
      log.appendAll(records);
      return { written: records.length, error: null };
    } catch (err) {
      return { written: 0, error: (err as Error).message };
    }
  }
  let written = 0;
  for (const r of records) {
    try {
      log.append(r);
    } catch (err) {
      return { written, error: (err as Error).message };
    }
    written++;
  }
  return { written, error: null };
}
