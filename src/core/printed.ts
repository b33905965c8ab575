/**
 * What dbdoctor prints for a person to run: `dbdoctor ...` commands and SQL statements. Each one is
 * built here, once, from the raw values, by the POSIX shell quoter and the SQL quoters, and never
 * altered afterwards: renderers print `command` and `sql` as they are, and a command's text is a
 * function of its argument vector, so the printed text, the JSON `command` and the JSON `argv`
 * are always the same action.
 *
 * A value that cannot be shown exactly and safely (src/core/text.ts `showable`) is never put
 * inline. A command then has no text (the caller selects the sessions another way, by pid); a
 * statement is written by the server from the catalog instead: `SELECT format('ALTER ROLE %I ...',
 * rolname) FROM pg_roles WHERE oid = 16384 \gexec` (psql runs what the query returns). Pure.
 */
import { showable } from './text.js';

/** One next step: words, and at most one exact command or statement. */
export interface NextStep {
  /** What to do, in words. */
  text: string;
  /** An exact dbdoctor command to run (add your connection options), or null. */
  command: string | null;
  /** The same command as an argument vector (without "dbdoctor"), or null. */
  argv: string[] | null;
  /** SQL to run instead (settings fixes, manual fallbacks), or null. */
  sql: string | null;
}

// ---------------------------------------------------------------------------------------------
// The shell

const BARE = /^[A-Za-z0-9_@%+:,./-][A-Za-z0-9_@%+=:,./-]*$/;

/**
 * One word for a POSIX shell (and bash and zsh): bare when nothing in it is special, in double
 * quotes when nothing in it is special there ($ ` \ " and bash's history !), else in single quotes.
 * Only for showable values (the caller checks).
 */
export function shellWord(s: string): string {
  if (BARE.test(s)) return s;
  if (!/["$`\\!]/.test(s)) return `"${s}"`;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A flag and its value, or a word of its own. */
export type Arg = string | readonly [flag: string, value: string];

/** The argument vector: a value that starts with "-" is joined to its flag (`--app=-x`), so it cannot pass for a flag. */
export function dbdoctorArgv(sub: string, args: readonly Arg[] = []): string[] {
  const argv = [sub];
  for (const a of args) {
    if (typeof a === 'string') argv.push(a);
    else if (a[1].startsWith('-')) argv.push(`${a[0]}=${a[1]}`);
    else argv.push(a[0], a[1]);
  }
  return argv;
}

/** `dbdoctor <argv quoted word by word>`, or null when a word cannot be shown exactly. */
export function shellCommand(argv: readonly string[]): string | null {
  if (!argv.every(showable)) return null;
  return ['dbdoctor', ...argv.map(shellWord)].join(' ');
}

/**
 * The command in lines of at most `width` characters, broken between words with a shell
 * continuation (` \`), so it still pastes as one command; a flag stays with its value.
 */
export function commandLines(argv: readonly string[], width: number): string[] {
  const command = shellCommand(argv);
  if (command === null) return [];
  if (command.length <= width) return [command];
  const words = ['dbdoctor', ...argv.map(shellWord)];
  const units: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const next = words[i + 1];
    if (w.startsWith('--') && !w.includes('=') && next !== undefined && !next.startsWith('-')) {
      units.push(`${w} ${next}`);
      i++;
    } else units.push(w);
  }
  const out: string[] = [];
  let line = '';
  for (const u of units) {
    const indent = out.length ? '  ' : '';
    if (line && `${indent}${line} ${u}`.length + 2 > width) {
      out.push(`${indent}${line} \\`);
      line = u;
    } else line = line ? `${line} ${u}` : u;
  }
  out.push(`${out.length ? '  ' : ''}${line}`);
  return out;
}

/** A step with an exact dbdoctor command, or null when one of its values cannot be shown. */
export function commandStep(text: string, sub: string, args: readonly Arg[] = []): NextStep | null {
  const argv = dbdoctorArgv(sub, args);
  const command = shellCommand(argv);
  return command === null ? null : { text, command, argv, sql: null };
}

/** A step whose command holds only dbdoctor's own words (flags, numbers, node ids). */
export function fixedStep(text: string, sub: string, args: readonly Arg[] = []): NextStep {
  const s = commandStep(text, sub, args);
  if (!s) throw new Error(`not a fixed command: ${sub}`);
  return s;
}

export function sqlStep(text: string, sql: string): NextStep {
  return { text, command: null, argv: null, sql };
}

export function textStep(text: string): NextStep {
  return { text, command: null, argv: null, sql: null };
}

// ---------------------------------------------------------------------------------------------
// SQL

/** A string constant: '...' with quotes doubled, E'...' when it holds a backslash (exact whatever standard_conforming_strings). */
export function sqlLiteral(s: string): string {
  const body = s.replace(/'/g, "''");
  return s.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/** An identifier, always double-quoted (a bare word may be a keyword, or be folded to lower case). */
export function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/**
 * A piece of a statement: dbdoctor's own SQL text, an identifier or a string constant. `select`
 * is an SQL expression that yields the value on the server (from the catalog, by oid or xid), for
 * when the value cannot be shown; null when there is none.
 */
export type SqlPart = string | { ident: string; select: string | null } | { literal: string; select: string | null };

/** A role, by name, with the catalog expression that yields its name when it cannot be shown. */
export function role(name: string, oid: number | null): SqlPart {
  return { ident: name, select: isOid(oid) ? `(SELECT rolname FROM pg_roles WHERE oid = ${oid})` : null };
}

export function database(name: string, oid: number | null): SqlPart {
  return { ident: name, select: isOid(oid) ? `(SELECT datname FROM pg_database WHERE oid = ${oid})` : null };
}

/** A prepared transaction's gid, selected by its transaction id when it cannot be shown. */
export function preparedGid(gid: string, xid: string): SqlPart {
  return { literal: gid, select: /^\d+$/.test(xid) ? `(SELECT gid FROM pg_prepared_xacts WHERE transaction = '${xid}'::xid)` : null };
}

/** A constant dbdoctor chose (a setting's value): always shown. */
export function literal(value: string): SqlPart {
  return { literal: value, select: null };
}

/** An oid as the catalog holds it (a whole number of 32 bits); anything else selects nothing. */
function isOid(oid: unknown): oid is number {
  return typeof oid === 'number' && Number.isInteger(oid) && oid > 0 && oid <= 0xffffffff;
}

const rawValue = (p: Exclude<SqlPart, string>) => ('ident' in p ? p.ident : p.literal);

/**
 * One statement from its parts. Inline when every value can be shown; otherwise the query that
 * writes it on the server, for psql's \gexec; null when a value can neither be shown nor selected.
 */
export function statement(parts: readonly SqlPart[]): string | null {
  const values = parts.filter((p): p is Exclude<SqlPart, string> => typeof p !== 'string');
  if (values.every((p) => showable(rawValue(p)))) {
    return parts.map((p) => (typeof p === 'string' ? p : 'ident' in p ? sqlIdent(p.ident) : sqlLiteral(p.literal))).join('');
  }
  if (values.some((p) => !showable(rawValue(p)) && p.select === null)) return null;
  const template = parts.map((p) => (typeof p === 'string' ? p.replace(/%/g, '%%') : 'ident' in p ? '%I' : '%L')).join('');
  const args = values.map((p) => (showable(rawValue(p)) ? sqlLiteral(rawValue(p)) : p.select!));
  return `SELECT format(${sqlLiteral(template.replace(/;\s*$/, ''))}, ${args.join(', ')}) \\gexec`;
}

/**
 * A step with a statement; when a name had to be selected from the catalog, the words say why and
 * how to run it; when it could not be selected at all, the words only, with `instead`.
 */
export function statementStep(text: string, parts: readonly SqlPart[], instead: string): NextStep {
  const sql = statement(parts);
  if (sql === null) return textStep(`${text}: ${instead} (the name holds characters that cannot be shown safely)`);
  if (sql.endsWith('\\gexec')) return sqlStep(`${text} (a name holds characters that cannot be shown safely, so the server writes the statement: run this in psql)`, sql);
  return sqlStep(text, sql);
}
