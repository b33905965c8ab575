/**
 * Statement normalization, for grouping "the same statement running in many sessions": string,
 * numeric and boolean literals and $n parameters become `?`, IN lists collapse, comments go, and
 * whitespace is collapsed. Pure and total: any input string gives a string.
 *
 * One left-to-right pass, as PostgreSQL's lexer reads: whatever starts first wins, so `--` or `/*`
 * inside a string literal is part of the literal, and a quote inside a comment is part of the
 * comment. A literal cut off at the end (query text is truncated by track_activity_query_size) is
 * still a literal.
 *
 * The normalized text is shown (queries --group, diagnose), so it is built from the statement with
 * its secrets masked (redactStatement): what this lexer reads differently from the server's (a
 * dollar quote glued to a word, standard_conforming_strings off) cannot carry a secret out.
 */
import { redactStatement } from './redact.js';

const TOKENS = new RegExp(
  [
    // comments (an unterminated block comment runs to the end)
    String.raw`(?<comment>--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))`,
    // dollar-quoted strings: $$...$$ or $tag$...$tag$
    String.raw`(?<dollar>\$(?<tag>[A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?(?:\$\k<tag>\$|$))`,
    // E'' strings (backslash escapes), then standard strings ('' doubles a quote)
    String.raw`(?<estring>(?<![A-Za-z0-9_$])[eE]'(?:[^'\\]|\\[\s\S]|'')*(?:'|$))`,
    "(?<string>'(?:[^']|'')*(?:'|$))",
    // quoted identifiers are kept as they are
    '(?<quoted>"(?:[^"]|"")*(?:"|$))',
    // identifiers and key words (true, false and null are literals)
    String.raw`(?<word>[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)`,
    // parameters, then numbers (a leading minus belongs to the number unless it follows an operand)
    String.raw`(?<param>\$\d+)`,
    String.raw`(?<number>(?<![A-Za-z0-9_."$)\]])-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)`,
  ].join('|'),
  'g',
);

const LITERAL_WORDS = new Set(['true', 'false', 'null']);

// At incident scale the same few statements fill hundreds of sessions, and diagnose groups the
// same rows several times: the result of each text is kept (pure function; bounded, dropped whole
// when full).
const MEMO_LIMIT = 10_000;
const memo = new Map<string, string>();

export function normalizeStatement(sql: string): string {
  let out = memo.get(sql);
  if (out === undefined) {
    if (memo.size >= MEMO_LIMIT) memo.clear();
    out = normalize(redactStatement(sql));
    memo.set(sql, out);
  }
  return out;
}

function normalize(sql: string): string {
  return (
    sql
      .replace(TOKENS, (match, ...args) => {
        const groups = args[args.length - 1] as Record<string, string | undefined>;
        if (groups.comment !== undefined) return ' ';
        if (groups.quoted !== undefined) return match;
        if (groups.word !== undefined) return LITERAL_WORDS.has(match.toLowerCase()) ? '?' : match;
        return '?';
      })
      // IN (?, ?, ?) -> IN (...)
      .replace(/\(\s*\?(?:\s*,\s*\?)+\s*\)/g, '(...)')
      .replace(/\s+/g, ' ')
      .trim()
  );
}
