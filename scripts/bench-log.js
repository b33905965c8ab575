// Benchmark helper: reads the throwaway server's log (log_line_prefix '%m [%p] %a: ',
// log_connections, and log_min_duration_statement = 0 during the capture pass) to find out what a
// client did on the server: the connections it opened, the statements it sent with their
// parameters, and their server-side durations. Also turns captured statements into a psql script
// that replays exactly the same SQL.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export const LOG_LINE_PREFIX = '%m [%p] %a: ';

const ENTRY_START = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (.*?): (LOG|DETAIL|ERROR|STATEMENT|FATAL|PANIC|WARNING|HINT|CONTEXT|NOTICE|INFO|DEBUG\d?): {2}/;

/** Reads a growing log file from an offset. */
export class LogReader {
  constructor(file) {
    this.file = file;
  }
  size() {
    const fd = openSync(this.file, 'r');
    try {
      return fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
  }
  readFrom(offset) {
    const fd = openSync(this.file, 'r');
    try {
      const size = fstatSync(fd).size;
      const len = Math.max(0, size - offset);
      const buf = Buffer.alloc(len);
      let got = 0;
      // bounded: at most len bytes, and stops at end of file
      while (got < len) {
        const n = readSync(fd, buf, got, len - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got).toString('utf8');
    } finally {
      closeSync(fd);
    }
  }
}

/** Splits log text into entries { pid, app, level, message } (continuation lines joined). */
export function parseEntries(text) {
  const entries = [];
  let cur;
  for (const line of text.split('\n')) {
    const m = ENTRY_START.exec(line);
    if (m) {
      cur = { pid: Number(m[1]), app: m[2], level: m[3], message: line.slice(m[0].length) };
      entries.push(cur);
    } else if (cur && line.length > 0) {
      cur.message += `\n${line.replace(/^\t/, '')}`;
    }
  }
  return entries;
}

/** TCP/socket connections the postmaster accepted, and sessions authorized (with their app). */
export function connectionsIn(entries) {
  let received = 0;
  const authorized = [];
  for (const e of entries) {
    if (e.level !== 'LOG') continue;
    if (e.message.startsWith('connection received:')) received++;
    else if (e.message.startsWith('connection authorized:')) {
      const app = /application_name=(\S+)/.exec(e.message);
      authorized.push(app ? app[1] : '');
    }
  }
  return { received, authorized };
}

const DURATION = /^duration: ([\d.]+) ms(?: {2}(statement|parse|bind|execute)(?: [^:]*)?: ([\s\S]*))?$/;

function parseParams(detail) {
  const params = {};
  const re = /\$(\d+) = (NULL|'(?:[^']|'')*')/g;
  for (let m = re.exec(detail), n = 0; m && n < 10_000; m = re.exec(detail), n++) params[m[1]] = m[2];
  return params;
}

/**
 * Statements logged by log_min_duration_statement = 0 for the sessions `accept(entry)` selects:
 * [{ kind: 'statement' | 'execute', sql, params, ms }] (parse and bind time is added to the
 * execute that follows), plus the total server-side milliseconds and any errors.
 */
export function statementsIn(entries, accept = () => true) {
  const statements = [];
  const errors = [];
  let serverMs = 0;
  const carry = new Map(); // pid -> parse+bind ms waiting for its execute
  let last;
  for (const e of entries) {
    if (!accept(e)) continue;
    if (e.level === 'ERROR' || e.level === 'FATAL') errors.push(e.message.split('\n')[0]);
    if (e.level === 'DETAIL' && last && last.pid === e.pid && /^parameters: /i.test(e.message)) {
      last.stmt.params = parseParams(e.message);
      continue;
    }
    if (e.level !== 'LOG') continue;
    const m = DURATION.exec(e.message);
    if (!m) continue;
    const ms = Number(m[1]);
    serverMs += ms;
    const kind = m[2];
    if (kind === 'parse' || kind === 'bind' || !kind) {
      carry.set(e.pid, (carry.get(e.pid) ?? 0) + ms);
      last = undefined;
      continue;
    }
    const stmt = { kind, sql: m[3] ?? '', params: {}, ms: ms + (carry.get(e.pid) ?? 0), pid: e.pid };
    carry.delete(e.pid);
    statements.push(stmt);
    last = { pid: e.pid, stmt };
  }
  return { statements, serverMs, errors };
}

/** The statement with its bound parameters written in as literals (what psql can send). */
export function inlineParams(stmt) {
  if (stmt.kind !== 'execute') return stmt.sql;
  return stmt.sql.replace(/\$(\d+)(?!\d)/g, (all, n) => stmt.params[n] ?? all);
}
