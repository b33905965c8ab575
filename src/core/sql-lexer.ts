/**
 * PostgreSQL's lexer (src/backend/parser/scan.l), as much of it as masking secrets needs
 * (src/core/redact.ts): the tokens of one statement (string constants in every form, quoted
 * identifiers, nested comments, dollar quotes, constants continued over lines, a text cut
 * anywhere), and what the server reads a constant or quoted identifier as, with the source offsets
 * of every character. Pure: no I/O.
 *
 * The work is bounded: `withWorkBudget` gives a computation a number of units (characters lexed,
 * decoded or searched) and `spend` throws OverBudget past it, so a text built to be costly cannot
 * hold up a view that masks thousands of statements.
 */

export class OverBudget extends Error {}
let workLeft = Number.POSITIVE_INFINITY;

export function spend(units: number): void {
  workLeft -= units;
  if (workLeft < 0) throw new OverBudget();
}

/** Runs `fn` with `units` of work to spend (see `spend`); unbounded again afterwards. */
export function withWorkBudget<T>(units: number, fn: () => T): T {
  workLeft = units;
  try {
    return fn();
  } finally {
    workLeft = Number.POSITIVE_INFINITY;
  }
}

// ---------------------------------------------------------------------------------------------
// Characters, as scan.l classifies them (bytes >= 0x80 are identifier characters)

export function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
}
function isNewline(c: string | undefined): boolean {
  return c === '\n' || c === '\r';
}
function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}
function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9A-Fa-f]$/.test(c);
}
function isIdentStart(c: string | undefined): boolean {
  if (c === undefined) return false;
  const k = c.charCodeAt(0);
  return (k >= 65 && k <= 90) || (k >= 97 && k <= 122) || k === 95 || k >= 0x80;
}
function isIdentCont(c: string | undefined): boolean {
  return isIdentStart(c) || isDigit(c) || c === '$';
}
const OP_CHARS = '~!@#^&|`?+-*/%<>=';
function isOpChar(c: string | undefined): boolean {
  return c !== undefined && OP_CHARS.includes(c);
}
/** `$$` or `$tag$` (a tag is an identifier without `$`). */
const DOLLAR_DELIM = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

export function dollarDelimAt(s: string, i: number): string | null {
  DOLLAR_DELIM.lastIndex = i;
  return DOLLAR_DELIM.exec(s)?.[0] ?? null;
}

// ---------------------------------------------------------------------------------------------
// Tokens

/** The content of one quoted piece, quotes excluded, as offsets into the text. */
export interface Part {
  start: number;
  end: number;
}

/** q: standard; e: backslash escapes; u: U&; b, x: bit strings; dollar: $tag$...$tag$. */
export type Form = 'q' | 'e' | 'u' | 'b' | 'x' | 'dollar';

export interface StringTok {
  kind: 'string';
  start: number;
  end: number;
  form: Form;
  /** Pieces the server joins into one constant (split over lines). */
  parts: Part[];
  /** Cut off at the end of the text. */
  open: boolean;
}
export interface IdentTok {
  kind: 'ident';
  start: number;
  end: number;
  /** no: a plain word (folded to lower case); plain: "..."; unicode: U&"..." */
  quoted: 'no' | 'plain' | 'unicode';
  content: Part;
}
export interface CommentTok {
  kind: 'comment';
  start: number;
  end: number;
  body: Part;
}
export interface OtherTok {
  kind: 'op' | 'param' | 'number' | 'punct';
  start: number;
  end: number;
  text: string;
}
export type Tok = StringTok | IdentTok | CommentTok | OtherTok;

/** Where a nested block comment starting at `i` ends, and where its body ends. */
function blockComment(s: string, i: number): { end: number; bodyEnd: number } {
  let depth = 0;
  let j = i + 2;
  while (j < s.length) {
    if (s[j] === '/' && s[j + 1] === '*') {
      depth++;
      j += 2;
    } else if (s[j] === '*' && s[j + 1] === '/') {
      if (depth === 0) return { end: j + 2, bodyEnd: j };
      depth--;
      j += 2;
    } else {
      j++;
    }
  }
  return { end: s.length, bodyEnd: s.length };
}

/**
 * A quoted string constant whose opening quote is at `q`: its pieces, joined as the server joins
 * them (`'a'` newline `'b'`, with only whitespace and `--` comments between, at least one newline).
 */
function quotedString(s: string, start: number, q: number, form: Exclude<Form, 'dollar'>): StringTok {
  const n = s.length;
  const parts: Part[] = [];
  let pos = q + 1;
  for (;;) {
    const contentStart = pos;
    while (pos < n) {
      const c = s[pos];
      if (form === 'e' && c === '\\') {
        pos += 2;
      } else if (c === "'") {
        if (form !== 'b' && form !== 'x' && s[pos + 1] === "'") pos += 2;
        else break;
      } else {
        pos++;
      }
    }
    if (pos >= n) {
      parts.push({ start: contentStart, end: n });
      return { kind: 'string', start, end: n, form, parts, open: true };
    }
    parts.push({ start: contentStart, end: pos });
    pos++;
    // quotecontinue: whitespace and -- comments with at least one newline, then a quote
    let k = pos;
    let newline = false;
    while (k < n) {
      if (isNewline(s[k])) {
        newline = true;
        k++;
      } else if (isSpace(s[k])) {
        k++;
      } else if (s[k] === '-' && s[k + 1] === '-') {
        while (k < n && !isNewline(s[k])) k++;
      } else {
        break;
      }
    }
    if (newline && s[k] === "'") {
      pos = k + 1;
      continue;
    }
    return { kind: 'string', start, end: pos, form, parts, open: false };
  }
}

function quotedIdent(s: string, start: number, q: number, quoted: 'plain' | 'unicode'): IdentTok {
  const n = s.length;
  let pos = q + 1;
  while (pos < n) {
    if (s[pos] === '"') {
      if (s[pos + 1] === '"') pos += 2;
      else break;
    } else {
      pos++;
    }
  }
  return { kind: 'ident', start, end: Math.min(pos + 1, n), quoted, content: { start: q + 1, end: Math.min(pos, n) } };
}

/**
 * How a text is read. scsOff: standard_conforming_strings off ('' takes backslash escapes).
 * gluedDollar: a dollar quote may start right after a word (`PASSWORD$$x$$`); the server reads
 * that as one word and fails, and shows the text all the same.
 */
export interface Mode {
  scsOff: boolean;
  gluedDollar: boolean;
}

/**
 * The tokens of one statement of `s` from `from`, comments included, as scan.l finds them: up to
 * and including the `;` that ends it. `next` is where the next statement starts (or the end).
 */
export function lex(s: string, mode: Mode, from = 0): { toks: Tok[]; next: number } {
  const scsOff = mode.scsOff;
  const n = s.length;
  const out: Tok[] = [];
  let i = from;
  while (i < n) {
    const c = s[i]!;
    const c1 = s[i + 1];
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === '-' && c1 === '-') {
      let j = i + 2;
      while (j < n && !isNewline(s[j])) j++;
      out.push({ kind: 'comment', start: i, end: j, body: { start: i + 2, end: j } });
      i = j;
      continue;
    }
    if (c === '/' && c1 === '*') {
      const { end, bodyEnd } = blockComment(s, i);
      out.push({ kind: 'comment', start: i, end, body: { start: i + 2, end: bodyEnd } });
      i = end;
      continue;
    }
    let tok: Tok | null = null;
    if (c === "'") {
      tok = quotedString(s, i, i, scsOff ? 'e' : 'q');
    } else if (c === '"') {
      tok = quotedIdent(s, i, i, 'plain');
    } else if (isIdentStart(c)) {
      const low = c.toLowerCase();
      if (c1 === "'" && (low === 'e' || low === 'b' || low === 'x' || low === 'n')) {
        tok = quotedString(s, i, i + 1, low === 'e' ? 'e' : low === 'b' ? 'b' : low === 'x' ? 'x' : scsOff ? 'e' : 'q');
      } else if (low === 'u' && c1 === '&' && s[i + 2] === "'") {
        tok = quotedString(s, i, i + 2, 'u');
      } else if (low === 'u' && c1 === '&' && s[i + 2] === '"') {
        tok = quotedIdent(s, i, i + 2, 'unicode');
      } else {
        let j = i + 1;
        while (j < n && isIdentCont(s[j]) && !(mode.gluedDollar && s[j] === '$' && dollarDelimAt(s, j))) j++;
        tok = { kind: 'ident', start: i, end: j, quoted: 'no', content: { start: i, end: j } };
      }
    } else if (c === '$') {
      if (isDigit(c1)) {
        let j = i + 1;
        while (j < n && isDigit(s[j])) j++;
        tok = { kind: 'param', start: i, end: j, text: s.slice(i, j) };
      } else {
        const delim = dollarDelimAt(s, i);
        if (delim) {
          const from = i + delim.length;
          const close = s.indexOf(delim, from);
          tok =
            close < 0
              ? { kind: 'string', start: i, end: n, form: 'dollar', parts: [{ start: from, end: n }], open: true }
              : { kind: 'string', start: i, end: close + delim.length, form: 'dollar', parts: [{ start: from, end: close }], open: false };
        } else {
          tok = { kind: 'punct', start: i, end: i + 1, text: '$' };
        }
      }
    } else if (isDigit(c) || (c === '.' && isDigit(c1))) {
      let j = i;
      while (j < n && (isDigit(s[j]) || s[j] === '_')) j++;
      if (s[j] === '.' && s[j + 1] !== '.') {
        j++;
        while (j < n && isDigit(s[j])) j++;
      }
      if ((s[j] === 'e' || s[j] === 'E') && (isDigit(s[j + 1]) || ((s[j + 1] === '+' || s[j + 1] === '-') && isDigit(s[j + 2])))) {
        j += 2;
        while (j < n && isDigit(s[j])) j++;
      }
      tok = { kind: 'number', start: i, end: j, text: s.slice(i, j) };
    } else if (c === ':' && c1 === '=') {
      tok = { kind: 'op', start: i, end: i + 2, text: ':=' };
    } else if (isOpChar(c)) {
      // an operator ends where a comment starts
      let j = i + 1;
      while (j < n && isOpChar(s[j]) && !(s[j] === '-' && s[j + 1] === '-') && !(s[j] === '/' && s[j + 1] === '*')) j++;
      tok = { kind: 'op', start: i, end: j, text: s.slice(i, j) };
    } else {
      tok = { kind: 'punct', start: i, end: i + 1, text: c };
    }
    out.push(tok);
    spend(tok.end - i + 1);
    i = tok.end;
    if (tok.kind === 'punct' && tok.text === ';') break;
  }
  return { toks: out, next: i };
}

// ---------------------------------------------------------------------------------------------
// Decoding: what the server reads a constant as, and where each character of that came from

export interface Decoded {
  text: string;
  /** For each UTF-16 unit of text: the offsets in the source it was read from. */
  from: number[];
  to: number[];
}

class DecodedBuilder {
  text = '';
  from: number[] = [];
  to: number[] = [];
  push(str: string, a: number, b: number): void {
    for (let k = 0; k < str.length; k++) {
      this.text += str[k];
      this.from.push(a);
      this.to.push(b);
    }
  }
}

function hexRun(s: string, i: number, end: number, max: number): string {
  let j = i;
  while (j < end && j - i < max && isHex(s[j])) j++;
  return s.slice(i, j);
}

function codePoint(cp: number): string {
  return cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
}

/** One piece's content, as the server reads it (bytes from \x and octal escapes as Latin-1 units). */
function decodePart(s: string, p: Part, form: Form, esc: string, out: DecodedBuilder): void {
  spend(p.end - p.start);
  let i = p.start;
  const end = p.end;
  while (i < end) {
    const c = s[i]!;
    if ((form === 'q' || form === 'e' || form === 'u') && c === "'" && s[i + 1] === "'" && i + 1 < end) {
      out.push("'", i, i + 2);
      i += 2;
    } else if (form === 'e' && c === '\\') {
      const d = s[i + 1];
      if (i + 1 >= end || d === undefined) {
        out.push('\\', i, end);
        i = end;
      } else if (d >= '0' && d <= '7') {
        let j = i + 1;
        while (j < end && j - i <= 3 && s[j]! >= '0' && s[j]! <= '7') j++;
        out.push(String.fromCharCode(Number.parseInt(s.slice(i + 1, j), 8) & 0xff), i, j);
        i = j;
      } else if (d === 'x' && isHex(s[i + 2]) && i + 2 < end) {
        const h = hexRun(s, i + 2, end, 2);
        out.push(String.fromCharCode(Number.parseInt(h, 16)), i, i + 2 + h.length);
        i += 2 + h.length;
      } else if ((d === 'u' || d === 'U') && hexRun(s, i + 2, end, d === 'u' ? 4 : 8).length === (d === 'u' ? 4 : 8)) {
        const len = d === 'u' ? 4 : 8;
        out.push(codePoint(Number.parseInt(s.slice(i + 2, i + 2 + len), 16)), i, i + 2 + len);
        i += 2 + len;
      } else {
        const map: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        out.push(map[d] ?? d, i, i + 2);
        i += 2;
      }
    } else if (form === 'u' && c === esc) {
      if (s[i + 1] === esc && i + 1 < end) {
        out.push(esc, i, i + 2);
        i += 2;
      } else if (s[i + 1] === '+' && hexRun(s, i + 2, end, 6).length === 6) {
        out.push(codePoint(Number.parseInt(s.slice(i + 2, i + 8), 16)), i, i + 8);
        i += 8;
      } else if (hexRun(s, i + 1, end, 4).length === 4) {
        out.push(codePoint(Number.parseInt(s.slice(i + 1, i + 5), 16)), i, i + 5);
        i += 5;
      } else {
        out.push(c, i, i + 1);
        i++;
      }
    } else {
      out.push(c, i, i + 1);
      i++;
    }
  }
}

export function decodeString(s: string, t: StringTok, esc: string): Decoded {
  const b = new DecodedBuilder();
  for (const p of t.parts) decodePart(s, p, t.form, esc, b);
  return b;
}

/** A quoted identifier's name. */
export function decodeIdent(s: string, t: IdentTok, esc: string): Decoded {
  const b = new DecodedBuilder();
  // "" is one quote; U& escapes as in U&'' strings
  let i = t.content.start;
  while (i < t.content.end) {
    if (s[i] === '"' && s[i + 1] === '"') {
      b.push('"', i, i + 2);
      i += 2;
    } else {
      const j = i;
      while (i < t.content.end && !(s[i] === '"' && s[i + 1] === '"')) i++;
      if (t.quoted === 'unicode') decodePart(s, { start: j, end: i }, 'u', esc, b);
      else for (let k = j; k < i; k++) b.push(s[k]!, k, k + 1);
    }
  }
  return b;
}
