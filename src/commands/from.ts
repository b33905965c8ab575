/**
 * `--from <file>`: the facts of a `dbdoctor snapshot` document, read from a file instead of a
 * server (diagnose, connections, locks, queries). The file is read only if it is a regular file (a
 * link to one is followed), never waited on (a FIFO or a device is refused), and at most
 * FROM_MAX_BYTES; anything else is a usage error before anything is decided.
 */
import { closeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { requireValues } from '../core/connections.js';
import { UsageError } from '../core/errors.js';
import { type FromFile, parseFromText } from '../core/snapshot.js';
import { errorCode, FileProblem, type OpenedFile, openRegular, readCapped } from '../ui/files.js';
import type { ConnectionCliOptions } from './context.js';

/** A snapshot of 10,000 sessions with 2,000-character queries is about 40 MB. */
export const FROM_MAX_BYTES = 256 * 1024 * 1024;

const HINT = 'give a file written by dbdoctor snapshot (dbdoctor snapshot > incident.json) or recorded by dbdoctor watch --json > incident.jsonl';

export function addFromOption(cmd: Command): Command {
  return cmd.option('--from <file>', 'decide and render from a `dbdoctor snapshot` file or a `watch --json` recording instead of a server (no connection)');
}

/** The text of the file --from names. */
export function readFromText(path: string, cwd: string = process.cwd()): string {
  requireValues('--from', [path]);
  const full = resolve(cwd, path);
  let f: OpenedFile | null;
  try {
    f = openRegular(full, { follow: true });
  } catch (err) {
    if (err instanceof FileProblem) throw new UsageError(`--from ${path} is ${err.what}; nothing was read from it`, HINT);
    throw new UsageError(`cannot read --from ${path}: ${(err as Error).message}`, HINT);
  }
  if (!f) throw new UsageError(`cannot read --from ${path}: no such file`, HINT);
  try {
    const size = f.stats.size;
    if (size > FROM_MAX_BYTES) throw new FileProblem('larger than 256 MB');
    const bytes = readCapped(f, size, 'changing while dbdoctor read it');
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    if (err instanceof FileProblem) throw new UsageError(`--from ${path} is ${err.what}; nothing was read from it`, HINT);
    if (err instanceof TypeError) throw new UsageError(`--from ${path} is not UTF-8 text`, HINT);
    throw new UsageError(`cannot read --from ${path}: ${errorCode(err) || (err as Error).message}`, HINT);
  } finally {
    closeSync(f.fd);
  }
}

/** The snapshot or recording --from names. */
export function readFromFile(path: string): FromFile {
  return parseFromText(readFromText(path), path);
}

/** --from reads a file: the options that name a server do not go with it. */
export function refuseServerWithFrom(opts: ConnectionCliOptions & { service?: string }, extra: Record<string, unknown> = {}): void {
  const given = [
    ['-h', opts.host],
    ['-p', opts.port],
    ['-U', opts.username],
    ['-d', opts.dbname],
    ['--service', opts.service],
    ['--connect-timeout', opts.connectTimeout],
    ['--statement-timeout', opts.statementTimeout],
    ['-W', opts.password === true ? true : undefined],
    ...Object.entries(extra),
  ].filter(([, v]) => v !== undefined && v !== false);
  if (given.length) {
    throw new UsageError(`--from reads a snapshot file, with no server: ${given.map(([k]) => k).join(', ')} ${given.length === 1 ? 'does' : 'do'} not go with it`, 'leave out the connection options, or leave out --from to read the server');
  }
}
