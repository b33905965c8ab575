/**
 * Secrets in text that other clients control, masked where they are: statement texts from
 * pg_stat_activity and pg_stat_statements, and error messages and targets that may hold a URL or a
 * conninfo string. Pure: no I/O.
 *
 * A statement is read as PostgreSQL's lexer (src/backend/parser/scan.l) reads it, by
 * src/core/sql-lexer.ts, not by patterns over its text: string constants in every form ('', E''
 * with backslash escapes, U&'' with UESCAPE, N'', B'', X'', dollar quotes with tags), doubled
 * quotes, constants split over lines that the server joins, quoted identifiers (U&"" too), `--`
 * and nested block comments anywhere between tokens, and no whitespace needed between a word and
 * a literal (`PASSWORD'x'`). The text may be cut anywhere (track_activity_query_size): a literal
 * or comment left open runs to the end.
 *
 * What is masked (the secret's characters replaced by `***`, the statement's shape kept):
 * - the literal (or, after `=`/`TO`, the word) that follows a name holding "password" or "secret":
 *   `CREATE/ALTER ROLE|USER|GROUP ... PASSWORD '...'`, `USER MAPPING ... OPTIONS (password '...')`,
 *   `ADD`/`SET password '...'`, `SET app.password = ...`;
 * - every constant (string or number) of a statement that names, anywhere, a column, option or
 *   setting whose name ends in one (password, db_password, client_secret, password_hash): which
 *   one is the secret depends on where the name stands (`'x' = password`, `password = crypt('x',
 *   password)`, `INSERT INTO users (name, password) VALUES ('bob', 'x')`);
 * - inside every literal, quoted identifier and comment: conninfo values of `password=`,
 *   `sslpassword=`, `oauth_client_secret=` (quoted values with spaces and `\'` as libpq allows),
 *   values under such a key in JSON or YAML-like text (`"password": "..."`, `password: ...`), the
 *   password of a `scheme://user:password@` URL of any scheme and password query parameters;
 * - inside every literal and comment again, read as SQL (a DO block, an EXECUTE string, a
 *   commented-out statement), a few levels deep;
 * - a literal built by concatenation or format() after a text that ends where a password starts
 *   (`'... password=' || '...'`, `format('... PASSWORD %L', ...)`): the literals after it, up to
 *   the end of the call or statement.
 * Whether the client had standard_conforming_strings on or off is not known, so a text with a
 * backslash is read both ways and what either reading finds is masked; likewise with a dollar quote
 * glued to a word, and from every `;` on, so that one misread (or failed, or garbled) statement does
 * not hide the next. Over-masking a literal that merely follows such a name is accepted; leaving
 * part of a secret is not.
 *
 * The work per statement is bounded (any client can write a text built to make the readings
 * diverge, and dbdoctor reads thousands at once): past the bound, the statement is not shown at all.
 */

import { type Decoded, decodeIdent, decodeString, dollarDelimAt, type IdentTok, isSpace, lex, type Mode, type OtherTok, OverBudget, spend, type StringTok, type Tok, withWorkBudget } from './sql-lexer.js';

type Span = [number, number];

const MASK = '***';
/** Literals inside literals (a DO block's EXECUTE '...''...''...') are read this many levels deep. */
const MAX_DEPTH = 4;

/**
 * The work one statement may cost (characters lexed, decoded and searched), per character of it:
 * far above what any statement takes, and a bound on what a text built to make the readings
 * diverge can cost (any client can write one, and dbdoctor reads thousands at once). Past it the
 * statement is not shown at all (TOO_CONVOLUTED).
 */
const WORK_PER_CHAR = 200;
const TOO_CONVOLUTED = '*** (statement not shown: too convoluted to mask its secrets safely)';
/** A name whose value is a secret: password, sslpassword, oauth_client_secret, "password" ... */
const SECRET_NAME = /password|secret/i;
const SECRET_WORDS = /password|secret|postgres|:\/\//i;
const SECRET_HINTS = /password|secret|postgres|:\/\/|\\|&/i;
const CONTINUED = /'[ \t\f\v]*(?:--[^\n\r]*)?[\n\r]/;
/** Any of the above, to find the last place in a text where a secret may start. */
const ANY_HINT = /password|secret|postgres|:\/\/|\\|&|'[ \t\f\v]*(?:--[^\n\r]*)?[\n\r]/gi;

/**
 * Whether a text (or a literal, read again as SQL) may hold a secret at all: every form masked
 * needs one of these words, a backslash or U& escape, or a word split over a constant continued
 * on the next line (`'pass'` newline `'word=...'`: the text without quotes, whitespace and `--`
 * comments then holds the word). Most statements hold none and are passed through at once.
 */
function mayHoldSecret(text: string): boolean {
  if (SECRET_HINTS.test(text)) return true;
  return CONTINUED.test(text) && SECRET_WORDS.test(text.replace(/['\s]|--[^\n\r]*/g, ''));
}

/**
 * The escape characters to read the U& token at sig[i] with: its UESCAPE '<c>' when one follows;
 * else `\`, and (the clause may be cut off with the text) every character that stands before four
 * or +six hex digits in it.
 */
function uescapesOf(s: string, sig: Tok[], i: number): string[] {
  const kw = sig[i + 1];
  const lit = sig[i + 2];
  if (kw?.kind === 'ident' && kw.quoted === 'no' && s.slice(kw.start, kw.end).toLowerCase() === 'uescape' && lit?.kind === 'string' && lit.form !== 'u') {
    const d = decodeString(s, lit, '\\').text;
    if (d.length === 1) return [d];
  }
  const t = sig[i]!;
  const out = new Set(['\\']);
  const body = s.slice(t.start, t.end);
  for (const m of body.matchAll(/([^0-9A-Fa-f+'"\s])(?:\+[0-9A-Fa-f]{6}|[0-9A-Fa-f]{4})/g)) out.add(m[1]!);
  return [...out];
}

// ---------------------------------------------------------------------------------------------
// Secrets inside one value (a literal's content, a quoted identifier, a comment, a message)

interface Found {
  spans: Span[];
  /** The secret certainly goes on after this text (an empty value at the end, a placeholder). */
  wantsNext: boolean;
  /** A secret value runs to the end of this text: it goes on if the text is concatenated. */
  openEnd: boolean;
  /** A URL's user:password cut off before its '@': masked when the text goes on. */
  tails: Span[];
}

function found(): Found {
  return { spans: [], wantsNext: false, openEnd: false, tails: [] };
}

const PLACEHOLDER = /^(?:%(?:\d+\$)?-?\d*[sILl]|\$\d+|\?)$/;

/**
 * Conninfo `password=` values (and sslpassword=, oauth_client_secret=, ...), read as libpq reads
 * them: a value in single quotes with `\'` and `\\`, or a word up to whitespace with `\` escapes.
 * `withQuotes` masks a quoted value's quotes too (messages: `password=***`).
 */
function conninfoSecrets(v: string, f: Found, opts: { withQuotes: boolean }): void {
  const re = /(?:password|secret)\s*=(?!>)\s*/gi;
  const n = v.length;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    const k = m.index + m[0].length;
    if (v[k] === "'") {
      let j = k + 1;
      while (j < n && v[j] !== "'") j += v[j] === '\\' ? 2 : 1;
      const end = Math.min(j, n);
      if (opts.withQuotes) f.spans.push([k, Math.min(j + 1, n)]);
      else f.spans.push([k + 1, end]);
      if (j >= n) {
        f.wantsNext = true;
      } else if (PLACEHOLDER.test(v.slice(k + 1, end))) {
        f.wantsNext = true;
      }
    } else {
      let j = k;
      while (j < n && !isSpace(v[j])) j += v[j] === '\\' ? 2 : 1;
      const end = Math.min(j, n);
      f.spans.push([k, end]);
      if (end === k && end >= n) f.wantsNext = true;
      else if (end >= n) f.openEnd = true;
      if (PLACEHOLDER.test(v.slice(k, end))) f.wantsNext = true;
    }
    re.lastIndex = Math.max(re.lastIndex, k);
  }
}

/**
 * A value after a secret-named key and a colon, as JSON and YAML-like text write it
 * (`{"password": "x"}`, `db_password: x y`): a JSON string up to its closing quote (`\"` escaped),
 * else up to the end of the line (a YAML value may hold spaces). A string left open runs to the end.
 */
function keyValueSecrets(v: string, f: Found): void {
  const re = /(?:password|secret)[\w-]*"?\s*:(?![:=/])\s*/gi;
  const n = v.length;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    const k = m.index + m[0].length;
    let j = k;
    if (v[k] === '"') {
      j = k + 1;
      while (j < n && v[j] !== '"') j += v[j] === '\\' ? 2 : 1;
      f.spans.push([k + 1, Math.min(j, n)]);
    } else {
      while (j < n && v[j] !== '\n' && v[j] !== '\r') j++;
      f.spans.push([k, j]);
    }
    spend(j - k);
    if (j >= n) f.openEnd = true;
    re.lastIndex = Math.max(re.lastIndex, k);
  }
}

/**
 * `scheme://user:password@...` URLs of any scheme (postgres, postgresql, mysql, https, amqp,
 * redis, ...): the password and any query parameter whose name, decoded, holds "password" or
 * "secret". A postgres URL is read as libpq reads one: in a value it runs to the value's end, in raw
 * text to whitespace, and its password up to the last '@' (an unencoded '@' in it is masked whole).
 * Any other URL runs to whitespace, and its user:password is in its authority (up to the first '/',
 * '?' or '#'): `http://host:8080/path@v2` and prose after a URL hold none. A URL cut off before its
 * '@' (`open`) has what follows its ':' masked.
 */
function urlSecrets(v: string, f: Found, opts: { raw: boolean; open: boolean }): void {
  const re = /[a-z][a-z0-9+.-]*:\/\//gi;
  const n = v.length;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    const k = m.index + m[0].length;
    const libpq = /postgres(?:ql)?:\/\/$/i.test(m[0]);
    let end = n;
    if (opts.raw || !libpq) {
      // up to whitespace only: libpq takes quotes in a URL as they are
      end = k;
      while (end < n && !isSpace(v[end])) end++;
    }
    spend(end - k);
    const seg = v.slice(k, end);
    const stop = libpq ? -1 : seg.search(/[/?#]/);
    const authority = stop < 0 ? seg : seg.slice(0, stop);
    const at = authority.lastIndexOf('@');
    const colon = authority.indexOf(':');
    if (at >= 0) {
      if (colon >= 0 && colon < at) f.spans.push([k + colon + 1, k + at]);
    } else if (colon >= 0 && end === n && stop < 0 && !seg.slice(0, colon).includes('/')) {
      // no '@' (yet): a password cut off, or one that goes on in a concatenated literal
      if (opts.open) f.spans.push([k + colon + 1, n]);
      else f.tails.push([k + colon + 1, n]);
    }
    // a parameter's value ends at whitespace, and in raw text at a quote (the literal's end)
    const params = opts.raw ? /[?&]([^=&\s#]*)=([^&\s#'"]*)/g : /[?&]([^=&\s#]*)=([^&\s#]*)/g;
    for (let p = params.exec(seg); p !== null; p = params.exec(seg)) {
      let key = p[1]!;
      try {
        key = decodeURIComponent(key);
      } catch {
        // keep it as written
      }
      if (SECRET_NAME.test(key)) {
        const vs = k + p.index + p[0].length - p[2]!.length;
        f.spans.push([vs, k + p.index + p[0].length]);
        if (k + p.index + p[0].length >= n) f.openEnd = true;
      }
    }
    re.lastIndex = Math.max(re.lastIndex, k);
  }
}

/** A decoded literal, quoted identifier or comment body: conninfo, URLs, and (a level down) SQL. */
function valueSecrets(v: string, depth: number, open: boolean): Found {
  spend(v.length);
  const f = found();
  conninfoSecrets(v, f, { withQuotes: false });
  keyValueSecrets(v, f);
  urlSecrets(v, f, { raw: false, open });
  if (depth + 1 >= MAX_DEPTH) {
    // too deep to read further: whatever could hold a secret goes whole, and so do the literals
    // after it (it may end where a password starts: format('... PASSWORD %L', ...))
    if (mayHoldSecret(v)) {
      f.spans.push([0, v.length]);
      f.wantsNext = true;
    }
  } else if (mayHoldSecret(v)) {
    const inner = sqlSecrets(v, depth + 1, open);
    f.spans.push(...inner.spans);
    if (inner.pending) f.wantsNext = true;
  }
  return f;
}

/** Spans found by the readings of one text, each kept once (the readings find the same ones). */
class SpanSet {
  readonly list: Span[] = [];
  private readonly seen = new Set<number>();
  /** `size`: the length of the text the spans are in (a span's key is start * (size + 1) + end). */
  constructor(private readonly size: number) {}
  push(span: Span): void {
    const key = span[0] * (this.size + 1) + span[1];
    if (this.seen.has(key)) return;
    spend(1);
    this.seen.add(key);
    this.list.push(span);
  }
}

/** Decoded-text spans back to source offsets. */
function mapSpans(d: Decoded, spans: Span[], out: SpanSet): void {
  for (const [a, b] of spans) {
    if (b <= a || a >= d.text.length) continue;
    out.push([d.from[a]!, d.to[Math.min(b, d.text.length) - 1]!]);
  }
}

// ---------------------------------------------------------------------------------------------
// A statement

/** What follows a secret-named word: a literal, a word after `=`/`TO`, a placeholder, nothing. */
function valueAfterName(s: string, sig: Tok[], i: number): { kind: 'string'; tok: StringTok } | { kind: 'word'; tok: Tok } | { kind: 'open' } | { kind: 'none' } {
  let sep = false;
  for (let j = i + 1; j <= i + 4; j++) {
    const u = sig[j];
    if (!u) return { kind: 'open' };
    if (u.kind === 'string') return { kind: 'string', tok: u };
    if (u.kind === 'param') return { kind: 'open' };
    if (u.kind === 'op') {
      if (u.text === '=' || u.text === ':=' || u.text === '=>') {
        sep = true;
        continue;
      }
      // PASSWORDU&'x': the U went into the word, the & is an operator
      if (u.text === '&') continue;
      // format() placeholders: PASSWORD %L, password=%s
      if (u.text.startsWith('%') || u.text === '?') return { kind: 'open' };
      return { kind: 'none' };
    }
    if (u.kind === 'ident') {
      const w = u.quoted === 'no' ? s.slice(u.start, u.end).toLowerCase() : '';
      if (w === 'to') {
        sep = true;
        continue;
      }
      if (sep) return { kind: 'word', tok: u };
      // a literal's prefix split off by a space (PASSWORD E 'x' is an error, and still shown)
      if (w === 'e' || w === 'n' || w === 'b' || w === 'x' || w === 'u') continue;
      return { kind: 'none' };
    }
    if (u.kind === 'number') return sep ? { kind: 'word', tok: u } : { kind: 'none' };
    return { kind: 'none' };
  }
  return { kind: 'none' };
}

/**
 * `PASSWORD$$x$$` is one word to the lexer (`$` continues a word) and a syntax error, yet shown:
 * what follows the name's `$` is masked as the dollar quote it was meant to be.
 */
function dollarAfterName(s: string, t: IdentTok, out: SpanSet): void {
  const word = s.slice(t.start, t.end);
  const m = /password|secret/i.exec(word);
  if (!m) return;
  const d = word.indexOf('$', m.index);
  if (d < 0) return;
  const at = t.start + d;
  const delim = dollarDelimAt(s, at);
  if (delim) {
    const close = s.indexOf(delim, at + delim.length);
    out.push([at + delim.length, close < 0 ? s.length : close]);
  } else {
    out.push([at + 1, t.end]);
  }
}

/**
 * A name that holds a secret as a whole: password, db_password, client_secret, password_hash, ...
 * (not password_changed_at, secrets, secretary: a statement naming those shows its constants).
 */
const SECRET_COLUMN = /(?:password|passwd|secret)(?:_?(?:hash|digest))?$/i;

/** A quoted identifier at sig[i], decoded in each way its escapes may read; none for an unquoted one. */
function identReadings(s: string, sig: Tok[], i: number): Decoded[] {
  const t = sig[i] as IdentTok;
  return t.quoted === 'no' ? [] : (t.quoted === 'unicode' ? uescapesOf(s, sig, i) : ['\\']).map((esc) => decodeIdent(s, t, esc));
}

/** Whether the identifier `t` is such a name (as written, or in each of its `readings` when quoted). */
function namesSecret(s: string, t: IdentTok, readings: Decoded[], name: RegExp): boolean {
  return t.quoted === 'no' ? name.test(s.slice(t.start, t.end)) : readings.some((d) => name.test(d.text));
}

/** One reading of the statement (standard_conforming_strings on or off). Returns: a secret goes on past the end. */
function readStatement(s: string, toks: Tok[], depth: number, open: boolean, out: SpanSet): boolean {
  const sig: Tok[] = [];
  for (const t of toks) {
    if (t.kind !== 'comment') {
      sig.push(t);
      continue;
    }
    const body = s.slice(t.body.start, t.body.end);
    const f = valueSecrets(body, depth, open && t.end >= s.length);
    for (const [a, b] of f.spans) out.push([t.body.start + a, t.body.start + b]);
  }
  // A statement that names a password or a secret (a column, an option, a setting) shows none of
  // its constants: which of them is the secret depends on where the name is (password = 'x',
  // 'x' = password, password <> 'x', t.password::text = 'x', password = crypt('x', password),
  // INSERT INTO users (name, password) VALUES ('bob', 'x'), (password, id) = ('x', 1), ...).
  if (sig.some((t, i) => t.kind === 'ident' && namesSecret(s, t, identReadings(s, sig, i), SECRET_COLUMN))) {
    for (const t of sig) {
      if (t.kind === 'string') for (const p of t.parts) out.push([p.start, p.end]);
      else if (t.kind === 'number') out.push([t.start, t.end]);
    }
  }
  const whole = new Set<Tok>();
  let paren = 0;
  // A secret that goes on in later literals: up to the end of the enclosing call or statement
  // (format('... PASSWORD %L', r, 'x'), concat('password=', 'x')), or along a || chain only, up to
  // the next argument ('password=' || 'x', 'not this').
  let pending = null as { paren: number; chain: boolean } | null;
  const carry = (chain: boolean) => {
    if (pending === null || (pending.chain && !chain)) pending = { paren, chain };
  };
  let openAtEnd = false;
  // A literal that leaves a secret open, followed at once by a word: a quote too many before it
  // made the password a word (`PASSWORD $a$x$a$` after a stray `$a$`). The word goes too.
  let wordAfterOpen = false;
  for (let i = 0; i < sig.length; i++) {
    const t = sig[i]!;
    if (wordAfterOpen && (t.kind === 'ident' || t.kind === 'number')) out.push([t.start, t.end]);
    wordAfterOpen = false;
    if (t.kind === 'punct') {
      if (t.text === '(') paren++;
      else if (t.text === ')') {
        paren--;
        if (pending !== null && paren < pending.paren) pending = null;
      } else if (t.text === ';') pending = null;
      else if (t.text === ',' && pending?.chain && paren <= pending.paren) pending = null;
      continue;
    }
    if (t.kind === 'ident') {
      const ds = identReadings(s, sig, i);
      if (namesSecret(s, t, ds, SECRET_NAME)) {
        if (t.quoted === 'no') dollarAfterName(s, t, out);
        const v = valueAfterName(s, sig, i);
        if (v.kind === 'string') whole.add(v.tok);
        else if (v.kind === 'word') out.push([v.tok.start, v.tok.end]);
        else if (v.kind === 'open') carry(false);
      }
      for (const d of ds) {
        const f = found();
        conninfoSecrets(d.text, f, { withQuotes: false });
        urlSecrets(d.text, f, { raw: false, open: false });
        mapSpans(d, f.spans, out);
      }
      continue;
    }
    if (t.kind !== 'string') continue;
    const concatenated = sig[i + 1]?.kind === 'op' && (sig[i + 1] as OtherTok).text === '||';
    const masked = whole.has(t) || (pending !== null && paren >= pending.paren);
    if (masked) {
      for (const p of t.parts) out.push([p.start, p.end]);
      if (t.open) openAtEnd = true;
      if (concatenated) carry(true);
    }
    if (t.form === 'b' || t.form === 'x') continue;
    // the decoded text holds no more than the source when read without escapes: skip the decoding
    if (t.form !== 'u' && !mayHoldSecret(s.slice(t.start, t.end))) continue;
    for (const esc of t.form === 'u' ? uescapesOf(s, sig, i) : ['\\']) {
      const d = decodeString(s, t, esc);
      const f = valueSecrets(d.text, depth, t.open);
      mapSpans(d, f.spans, out);
      if (f.wantsNext) {
        carry(concatenated);
        wordAfterOpen = true;
      }
      if (concatenated && (f.openEnd || f.tails.length > 0)) {
        mapSpans(d, f.tails, out);
        carry(true);
      }
      if (t.open && (f.wantsNext || f.openEnd)) openAtEnd = true;
    }
  }
  return pending !== null || openAtEnd;
}

/** Readings of the same text at the same depth, within one statement (its readings repeat literals). */
let memo = new Map<string, { spans: Span[]; pending: boolean }>();

function sqlSecrets(s: string, depth: number, open: boolean): { spans: Span[]; pending: boolean } {
  const key = `${depth}${open ? '+' : '-'}${s}`;
  const known = memo.get(key);
  if (known) return known;
  const result = readAll(s, depth, open);
  memo.set(key, result);
  return result;
}

function readAll(s: string, depth: number, open: boolean): { spans: Span[]; pending: boolean } {
  spend(100 + s.length);
  const spans = new SpanSet(s.length);
  let pending = false;
  // A backslash reads differently with standard_conforming_strings off, and a SET between two
  // statements of one text may switch it; a dollar quote glued to a word is read as a word. A quote
  // or comment start too many (a failed statement: a URL with a quote in it, a typo) turns what
  // follows inside out. So every statement is read each way that can differ, and from every place a
  // statement can start: the start of the text and after every `;` (in a literal or comment too, as
  // long as something a secret needs still follows), so no misread statement hides the next one.
  const modes: Mode[] = [{ scsOff: false, gluedDollar: false }];
  if (s.includes('\\')) modes.push({ scsOff: true, gluedDollar: false });
  if (/[A-Za-z0-9_\u0080-\uffff]\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.test(s)) {
    for (const m of [...modes]) modes.push({ ...m, gluedDollar: true });
  }
  let lastHint = -1;
  for (const m of s.matchAll(ANY_HINT)) lastHint = m.index;
  const starts = [0];
  for (let k = s.indexOf(';'); k >= 0 && k < lastHint; k = s.indexOf(';', k + 1)) starts.push(k + 1);
  for (const from of starts) {
    for (const mode of modes) {
      spend(20);
      const { toks, next } = lex(s, mode, from);
      if (readStatement(s, toks, depth, open && next >= s.length, spans) && next >= s.length) pending = true;
    }
  }
  // and as plain text: a URL anywhere (bare in the text, too)
  spend(s.length);
  const f = found();
  urlSecrets(s, f, { raw: true, open });
  for (const sp of f.spans) spans.push(sp);
  return { spans: spans.list, pending };
}

function applySpans(text: string, spans: Span[]): string {
  const sorted = spans.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  if (sorted.length === 0) return text;
  let out = '';
  let at = 0;
  let i = 0;
  while (i < sorted.length) {
    let [a, b] = sorted[i]!;
    i++;
    while (i < sorted.length && sorted[i]![0] <= b) {
      b = Math.max(b, sorted[i]![1]);
      i++;
    }
    a = Math.max(a, at);
    out += text.slice(at, a) + MASK;
    at = Math.min(b, text.length);
  }
  return out + text.slice(at);
}

// The same statement is shown by several views of one run, and many sessions run the same one:
// each text is masked once (bounded; dropped whole when full).
const RESULTS_LIMIT = 2000;
const results = new Map<string, string>();

/**
 * Statement text from other clients (pg_stat_activity, pg_stat_statements), with every secret it
 * carries masked as `***`. The text may be cut anywhere. Every view that shows a statement shows
 * it through this.
 */
export function redactStatement(text: string): string {
  if (!mayHoldSecret(text)) return text;
  let out = results.get(text);
  if (out !== undefined) return out;
  memo = new Map();
  try {
    out = withWorkBudget(WORK_PER_CHAR * text.length + 10_000, () => applySpans(text, sqlSecrets(text, 0, true).spans));
  } catch (err) {
    if (!(err instanceof OverBudget)) throw err;
    out = TOO_CONVOLUTED;
  } finally {
    memo = new Map();
  }
  if (results.size >= RESULTS_LIMIT) results.clear();
  results.set(text, out);
  return out;
}


/** Removes passwords from any URL or conninfo string inside `text` (messages, targets). */
export function redactSecrets(text: string): string {
  if (!mayHoldSecret(text)) return text;
  const f = found();
  urlSecrets(text, f, { raw: true, open: false });
  conninfoSecrets(text, f, { withQuotes: true });
  return applySpans(text, f.spans);
}
