/**
 * Statements that carry a secret, in the spellings PostgreSQL's lexer accepts, with the place of
 * the secret's encoding in the text known: for the masking property test (pure) and for the real
 * sessions of the masking reliability test (whose servers also check that each literal form reads
 * back as the secret).
 */
import fc from 'fast-check';

export interface Rng {
  next(): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

/** A small seeded PRNG (mulberry32): the statement's random choices follow from fast-check's seed. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

/**
 * Characters a password may hold, with every one that quoting treats specially. No `*`: the
 * mask is `***`. The fixed start and end make the secret distinctive.
 */
const SECRET_CHARS = [..."abcXYZ0189'\"\\ $@:/%=&?#;(),-_.!~+<>|`{}[]^\téжü€", '😀', '\n'];
export const secretArb = fc.array(fc.constantFrom(...SECRET_CHARS), { minLength: 1, maxLength: 14 }).map((cs) => `Kq7${cs.join('')}Zv`);

// ---------------------------------------------------------------------------------------------
// String constants

/** q: '...'; n: N'...'; cont: '...' split over lines; e: E'...'; off: '...' read with
 * standard_conforming_strings off; u: U&'...' [UESCAPE]; dollar: $tag$...$tag$. */
export const LITERAL_FORMS = ['q', 'n', 'cont', 'e', 'off', 'u', 'dollar'] as const;
export type LiteralForm = (typeof LITERAL_FORMS)[number];

/** Text in pieces; `secret` marks the piece whose encoding is the secret's. */
export interface Piece {
  text: string;
  secret?: boolean;
}

/** A string constant and where the secret's encoding sits in it. */
export interface Lit {
  text: string;
  secretStart: number;
  secretEnd: number;
  /** Pieces of the text inside the secret's place that are not the secret (a continuation's quote-newline-quote). */
  holes: Array<[number, number]>;
}

const hex = (n: number, w: number) => n.toString(16).toUpperCase().padStart(w, '0');
const codepoints = (s: string) => [...s];

/** One character inside E'' (or '' read with standard_conforming_strings off). */
function escapeE(c: string, r: Rng): string {
  const cp = c.codePointAt(0)!;
  if (c === "'") return r.pick(["''", "\\'"]);
  if (c === '\\') return '\\\\';
  const options: string[] = [];
  if (c !== '\n' || r.chance(0.5)) options.push(c);
  if (cp < 0x80) {
    options.push(`\\x${hex(cp, 2)}`, `\\${cp.toString(8).padStart(3, '0')}`);
    // (\v is a vertical tab from PostgreSQL 16 on, a v before)
    if (!/[0-7xuUbfnrtv]/.test(c)) options.push(`\\${c}`);
  }
  if (c === '\n') options.push('\\n');
  if (c === '\t') options.push('\\t');
  if (cp <= 0xffff) options.push(`\\u${hex(cp, 4)}`);
  options.push(`\\U${hex(cp, 8)}`);
  return r.pick(options);
}

/** One character inside U&'' with escape character `esc`. */
function escapeU(c: string, esc: string, r: Rng): string {
  const cp = c.codePointAt(0)!;
  if (c === "'") return "''";
  if (c === esc) return esc + esc;
  const options = [c, `${esc}+${hex(cp, 6)}`];
  if (cp <= 0xffff) options.push(`${esc}${hex(cp, 4)}`);
  return r.pick(options);
}

/** A string constant of `form` whose value is the pieces joined. */
export function literal(form: LiteralForm, pieces: Piece[], r: Rng): Lit {
  const value = pieces.map((p) => p.text).join('');
  if (form === 'dollar') {
    const tag = r.pick(['', 'a', 'x_1', 'tag', 'ü', 'Body']);
    let delim = `$${tag}$`;
    for (let k = 0; (value + delim).indexOf(delim) !== value.length; k++) delim = `$t${k}$`;
    let text = delim;
    let secretStart = 0;
    let secretEnd = 0;
    for (const p of pieces) {
      if (p.secret) secretStart = text.length;
      text += p.text;
      if (p.secret) secretEnd = text.length;
    }
    return { text: text + delim, secretStart, secretEnd, holes: [] };
  }
  const esc = form === 'u' ? r.pick(['\\', '!', '#', '~', '^', ':']) : '\\';
  let text = form === 'n' ? `${r.pick(['N', 'n'])}'` : form === 'e' ? `${r.pick(['E', 'e'])}'` : form === 'u' ? `${r.pick(['U', 'u'])}&'` : "'";
  let secretStart = 0;
  let secretEnd = 0;
  const holes: Array<[number, number]> = [];
  for (const p of pieces) {
    if (p.secret) secretStart = text.length;
    for (const c of codepoints(p.text)) {
      // a constant continued on the next line: quote, newline (comments allowed), quote
      if (form === 'cont' && r.chance(0.15)) {
        const join = r.pick(["'\n'", "'\n  '", "' \r\n'", "'  -- more\n'", "'\n-- x\n\t'"]);
        if (p.secret) holes.push([text.length, text.length + join.length]);
        text += join;
      }
      if (form === 'q' || form === 'n' || form === 'cont') text += c === "'" ? "''" : c;
      else if (form === 'e' || form === 'off') text += escapeE(c, r);
      else text += escapeU(c, esc, r);
    }
    if (p.secret) secretEnd = text.length;
  }
  text += "'";
  if (form === 'u' && (esc !== '\\' || r.chance(0.3))) text += `${r.pick([' ', '\n', ' /* e */ '])}${r.pick(['UESCAPE', 'uescape'])}${r.pick([' ', ' -- e\n'])}'${esc}'`;
  return { text, secretStart, secretEnd, holes };
}

// ---------------------------------------------------------------------------------------------
// Secrets inside literals: conninfo values and URLs

/** A libpq conninfo value: single-quoted with \' and \\, or a word with \ before what would end it. */
export function conninfoValue(secret: string, r: Rng): { text: string; inner: [number, number] } {
  if (r.chance(0.5) || /\s/.test(secret)) {
    const body = secret.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    return { text: `'${body}'`, inner: [1, 1 + body.length] };
  }
  let body = '';
  for (const [i, c] of codepoints(secret).entries()) body += c === '\\' || /\s/.test(c) || (i === 0 && c === "'") || r.chance(0.1) ? `\\${c}` : c;
  return { text: body, inner: [0, body.length] };
}

/** A URL password: percent-encoded, with some characters left as libpq takes them (in a query value, not & = #). */
export function urlPassword(secret: string, r: Rng, inQuery = false): string {
  return codepoints(secret)
    .map((c) => ((inQuery ? /^[A-Za-z0-9\-._~!$'()+,;]$/ : /^[A-Za-z0-9\-._~!$&'()+,;=]$/).test(c) && r.chance(0.7) ? c : encodeURIComponent(c)))
    .join('');
}

// ---------------------------------------------------------------------------------------------
// Statements

export const STATEMENT_KINDS = ['role', 'user_mapping', 'conninfo', 'url', 'url_param', 'bare_url', 'do_block', 'execute', 'format', 'concat', 'column', 'json_key'] as const;
export type StatementKind = (typeof STATEMENT_KINDS)[number];

export interface Encoded extends Lit {
  kind: StatementKind;
  form: LiteralForm;
  secret: string;
  /** The length of the secret's whole encoding (before any cut). */
  encodedLength: number;
}

/** Where a literal may stand after a keyword: whitespace, none, comments, newlines. */
const SEPARATORS = [' ', '', '/*c*/', ' /* a /* nested */ b */ ', ' -- c\n', '\n\t', '--\n', '/**/ '];

/** A dollar-quote delimiter that does not occur in `body` (a real DO block is written so). */
function dollarTag(body: string, r: Rng): string {
  const tags = [r.pick(['$$', '$do$', '$body$']), '$$', '$do$', '$body$', '$q1$', '$q2$'];
  return tags.find((t) => !body.includes(t) && !(body + t).slice(0, -1).endsWith('$')) ?? '$zz9$';
}

/** Joins pieces around a literal, keeping the secret's place. */
function around(before: string, lit: Lit, after: string): Lit {
  const k = before.length;
  return { text: before + lit.text + after, secretStart: k + lit.secretStart, secretEnd: k + lit.secretEnd, holes: lit.holes.map(([a, b]) => [k + a, k + b]) };
}

/** A statement of `kind` carrying `secret`, its literals written in `form` (where it has any). */
export function encodeStatement(kind: StatementKind, form: LiteralForm, secret: string, r: Rng): Encoded {
  // with no separator a U&, E or N prefix joins the keyword (PASSWORDE'...' is a syntax error,
  // and still shown: masked all the same)
  const sep = () => r.pick(SEPARATORS);
  const pre = r.pick(['', 'SELECT 1; ', '/* job 7 */ ', '-- migrate\n', 'BEGIN;\n']);
  let lit: Lit;
  switch (kind) {
    case 'role': {
      const l = literal(form, [{ text: secret, secret: true }], r);
      lit = around(
        `${pre}${r.pick(['CREATE', 'ALTER', 'create', 'Alter'])} ${r.pick(['ROLE', 'USER', 'GROUP', 'role'])} ${r.pick(['app_user', '"Weird Name"', 'x'])} ${r.pick(['', 'WITH ', 'with login ', 'LOGIN ', 'NOSUPERUSER '])}${r.pick(['', 'ENCRYPTED ', 'encrypted '])}${r.pick(['PASSWORD', 'password', 'PassWord'])}${sep()}`,
        l,
        r.pick(['', " VALID UNTIL 'infinity'", ' CONNECTION LIMIT 3', ';', "; SELECT 'done'"]),
      );
      break;
    }
    case 'user_mapping': {
      const l = literal(form, [{ text: secret, secret: true }], r);
      const name = r.pick(['password', '"password"', 'PASSWORD', 'U&"p\\0061ssword"']);
      lit = r.chance(0.5)
        ? around(`${pre}CREATE USER MAPPING FOR ${r.pick(['app_user', 'CURRENT_USER', 'PUBLIC'])} SERVER s1 OPTIONS (${r.pick(["user 'bob', ", '', "user 'bob',"])}${name}${sep()}`, l, `${r.pick(['', ", sslmode 'require'"])})`)
        : around(`${pre}ALTER USER MAPPING FOR app_user SERVER s1 OPTIONS (${r.pick(["SET user 'bob', ", ''])}${r.pick(['ADD', 'SET', 'add', 'set'])} ${name}${sep()}`, l, ')');
      break;
    }
    case 'conninfo': {
      const v = conninfoValue(secret, r);
      const key = r.pick(['password', 'password', 'sslpassword']);
      const before = `${r.pick(['host=db port=5432 ', '', 'dbname=app user=bob '])}${key}${r.pick(['=', ' = ', '= '])}`;
      const l = literal(form, [{ text: before + v.text.slice(0, v.inner[0]) }, { text: v.text.slice(v.inner[0], v.inner[1]), secret: true }, { text: v.text.slice(v.inner[1]) + r.pick(['', ' dbname=app', ' sslmode=require application_name=x']) }], r);
      const [head, tail] = r.pick([
        ['SELECT dblink_connect(', ')'],
        ["SELECT dblink_connect('c1', ", ')'],
        ['SELECT * FROM dblink(', ", 'SELECT 1') AS t(x int)"],
        ['CREATE SUBSCRIPTION sub1 CONNECTION ', ' PUBLICATION pub1'],
        ['ALTER SUBSCRIPTION sub1 CONNECTION ', ''],
        ['ALTER SYSTEM SET primary_conninfo = ', ''],
        ['ALTER SYSTEM SET primary_conninfo TO ', ''],
      ] as const);
      lit = around(pre + head, l, tail);
      break;
    }
    case 'url': {
      const pw = urlPassword(secret, r);
      const l = literal(form, [{ text: `${r.pick(['postgres', 'postgresql', 'mysql', 'https', 'amqp', 'redis'])}://${r.pick(['bob', 'app_user', 'a.b'])}:` }, { text: pw, secret: true }, { text: `@${r.pick(['db.example', '10.0.0.5', '[::1]'])}${r.pick([':5432', ''])}/${r.pick(['app', ''])}${r.pick(['', '?sslmode=require'])}` }], r);
      const [head, tail] = r.pick([
        ['SELECT dblink_connect(', ')'],
        ['SELECT ', ' AS url'],
        ['ALTER SYSTEM SET primary_conninfo = ', ''],
        ['INSERT INTO cfg VALUES (1, ', ')'],
      ] as const);
      lit = around(pre + head, l, tail);
      break;
    }
    case 'url_param': {
      const pw = urlPassword(secret, r, true);
      const l = literal(form, [{ text: `postgresql://db.example/app?user=bob&${r.pick(['password', 'pass%77ord', 'sslpassword'])}=` }, { text: pw, secret: true }, { text: r.pick(['', '&sslmode=require']) }], r);
      lit = around(`${pre}SELECT dblink_connect(`, l, ')');
      break;
    }
    case 'bare_url': {
      const pw = encodeURIComponent(secret);
      const url: Lit = { text: `postgres://bob:${pw}@db/app`, secretStart: 'postgres://bob:'.length, secretEnd: 'postgres://bob:'.length + pw.length, holes: [] };
      const [head, tail] = r.pick([
        ['SELECT 1 -- ', ''],
        ['SELECT 1 /* ', ' */'],
        ['SELECT 1; ', ''],
        ['/* see ', ' */ SELECT 2'],
      ] as const);
      lit = around(pre + head, url, tail);
      break;
    }
    case 'do_block': {
      // the role statement inside a DO block's dollar-quoted body
      const inner = encodeStatement('role', form === 'dollar' ? 'q' : form, secret, r);
      const tag = dollarTag(`${inner.text}; END `, r);
      lit = around(`${pre}DO ${tag} BEGIN `, inner, `; END ${tag}`);
      break;
    }
    case 'execute': {
      // the role statement as a string constant, run by EXECUTE in a DO block
      const inner = encodeStatement('role', r.pick(['q', 'e', 'dollar'] as const), secret, r);
      const l = literal(form === 'dollar' ? 'q' : form, [{ text: inner.text.slice(0, inner.secretStart) }, { text: inner.text.slice(inner.secretStart, inner.secretEnd), secret: true }, { text: inner.text.slice(inner.secretEnd) }], r);
      const tag = dollarTag(`${l.text}; END `, r);
      lit = around(`${pre}DO ${tag} BEGIN EXECUTE `, l, `; END ${tag}`);
      break;
    }
    case 'format': {
      const l = literal(form, [{ text: secret, secret: true }], r);
      const tag = dollarTag(`${l.text}); END `, r);
      lit = around(`${pre}DO ${tag} BEGIN EXECUTE format(${r.pick(["'ALTER ROLE %I PASSWORD %L', 'app_user', ", "'ALTER ROLE app_user WITH PASSWORD %L', "])}`, l, `); END ${tag}`);
      break;
    }
    case 'concat': {
      const v = conninfoValue(secret, r);
      const l = literal(form, [{ text: v.text.slice(0, v.inner[0]) }, { text: v.text.slice(v.inner[0], v.inner[1]), secret: true }, { text: v.text.slice(v.inner[1]) }], r);
      lit = r.chance(0.5) ? around(`${pre}SELECT dblink_connect('host=db password=' || `, l, ')') : around(`${pre}SELECT dblink_connect(concat('host=db password=', `, l, '))');
      break;
    }
    case 'column': {
      // a column named for a password, compared with (or given) the literal after it. (Not before
      // it: the text may be cut anywhere, and one cut between the literal and the name holds
      // nothing that says the literal is a secret; the spellings test has 'x' = password whole.)
      const l = literal(form, [{ text: secret, secret: true }], r);
      const col = r.pick(['password', 'u.password', '"password"', 'password_hash', 'u.password::text', 'api_secret']);
      const [head, tail] = r.pick([
        [`SELECT id FROM users u WHERE ${col} = `, ''],
        [`SELECT id FROM users u WHERE ${col} <> `, ' LIMIT 1'],
        [`SELECT id FROM users u WHERE ${col} IS NOT DISTINCT FROM `, ''],
        [`SELECT id FROM users u WHERE name = 'bob' AND ${col} = crypt(`, `, ${col})`],
        [`SELECT id FROM users u WHERE ${col} = ANY (ARRAY[`, '])'],
        [`SELECT id FROM users u WHERE (${col}, id) = (`, ', 1)'],
        [`INSERT INTO users (name, ${col.replace(/^u\.|::text$/g, '')}) VALUES ('bob', `, ')'],
        [`UPDATE users SET ${col.replace(/^u\.|::text$/g, '')} = `, ' WHERE id = 3'],
      ] as const);
      lit = around(pre + head, l, tail);
      break;
    }
    case 'json_key': {
      // a secret under a key in JSON held in a literal; the secret JSON-escaped
      const inner = JSON.stringify(secret).slice(1, -1);
      const key = r.pick(['password', 'db_password', 'client_secret', 'Password']);
      const l = literal(form, [{ text: `{"user": "bob", "${key}"${r.pick([':', ': ', ' : '])}"` }, { text: inner, secret: true }, { text: `"${r.pick(['}', ', "port": 5432}'])}` }], r);
      lit = around(`${pre}${r.pick(['SELECT ', 'INSERT INTO cfg VALUES (1, ', "SELECT pg_notify('cfg', "])}`, l, r.pick(['::jsonb', ')', '::json)']));
      break;
    }
  }
  return { ...lit, kind, form, secret, encodedLength: lit.secretEnd - lit.secretStart };
}
