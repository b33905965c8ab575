/**
 * Property-based tests (fast-check) for the pure pieces every command leans on: duration parsing,
 * statement normalization, the terminal sanitizer and the blocking-tree builder. Each property is
 * stated against an independent model in this file, never against the implementation's helpers.
 */
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import type { ActivitySnapshot, PreparedXact, SessionRow } from '../../src/core/activity.js';
import { buildBlockingReport, type BlockNode } from '../../src/core/blocking.js';
import { formatDuration, MAX_DURATION_MS, parseDuration } from '../../src/core/duration.js';
import { UsageError } from '../../src/core/errors.js';
import { normalizeStatement } from '../../src/core/normalize.js';
import { emptyFilters, type Fingerprint, planTermination, plannedPids, TERMINABLE_STATES, type TerminateFilters } from '../../src/core/terminate.js';
import { sqlLiteral } from '../../src/core/printed.js';
import { hasHidden, revealHidden, showable } from '../../src/core/text.js';
import { oneLine, sanitize, terminalText } from '../../src/render/sanitize.js';
import { displayWidth } from '../../src/render/width.js';
import { sessionRow } from '../support/session-row.js';

const RUNS = { numRuns: 400 };

// ---------------------------------------------------------------------------------------------
// Durations

const UNITS: Array<[string, number]> = [
  ['ms', 1],
  ['s', 1000],
  ['m', 60_000],
  ['min', 60_000],
  ['h', 3_600_000],
  ['d', 86_400_000],
];

describe('parseDuration', () => {
  test('any string: a whole number of ms within [0, a year], or a UsageError; nothing else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary-ascii' }), fc.string({ unit: 'binary' }), fc.stringMatching(/^[-+ .\d]*(ms|min|s|m|h|d|x|e)?[\d.]*$/)), (text) => {
        let ms: number;
        try {
          ms = parseDuration(text, '--flag');
        } catch (err) {
          expect(err).toBeInstanceOf(UsageError);
          expect((err as UsageError).exitCode).toBe(64);
          expect((err as UsageError).message).toContain('--flag');
          expect((err as UsageError).message).not.toContain('\n');
          return;
        }
        expect(Number.isInteger(ms)).toBe(true);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(MAX_DURATION_MS);
      }),
      RUNS,
    );
  });

  test('a sum of number+unit parts is their total, rounded (or a UsageError past a year)', () => {
    const part = fc.tuple(fc.integer({ min: 0, max: 100_000 }), fc.option(fc.integer({ min: 0, max: 999 }), { nil: undefined }), fc.constantFrom(...UNITS));
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), fc.boolean(), (parts, upper) => {
        let text = '';
        let total = 0;
        for (const [whole, frac, [unit, factor]] of parts) {
          const num = frac === undefined ? `${whole}` : `${whole}.${frac}`;
          text += `${num}${upper ? unit.toUpperCase() : unit}`;
          total += Number(num) * factor;
        }
        if (total > MAX_DURATION_MS) {
          expect(() => parseDuration(text)).toThrow(UsageError);
        } else {
          expect(parseDuration(text)).toBe(Math.round(total));
        }
      }),
      RUNS,
    );
  });

  test('a bare number is seconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 31_536_000 }), (secs) => {
        expect(parseDuration(String(secs))).toBe(secs * 1000);
      }),
      RUNS,
    );
  });

  test.each(['5x', '-1m', '', '1e309', '1e3', ' ', '-0', '+5s', '5s-', 'ms', '5 ms', '1..5s', 'Infinity', 'NaN', '0x10', '1_000s', '９s'])(
    'malformed %p is a UsageError',
    (text) => {
      expect(() => parseDuration(text)).toThrow(UsageError);
    },
  );

  test('what formatDuration prints, a user can paste back into a flag (within its rounding)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_DURATION_MS }), (ms) => {
        const printed = formatDuration(ms);
        const back = parseDuration(printed);
        // formatDuration truncates to its two largest units.
        expect(back).toBeLessThanOrEqual(ms + 1);
        expect(ms - back).toBeLessThan(ms < 1000 ? 1 : ms < 3_600_000 ? 1000 : ms < 86_400_000 ? 60_000 : 3_600_000);
      }),
      RUNS,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Statement normalization

/** SQL literals of every kind the lexer knows, with hostile contents (comment markers, quotes, $n). */
const hostileText = fc.oneof(
  fc.string({ unit: 'binary-ascii', maxLength: 20 }),
  fc.constantFrom('--', '/*', '*/', "'", "''", '$1', '$$', 'e', ' e', 'E', '\\', '"', '\n', ';', '?', ' IN (1, 2)', 'true'),
  fc.string({ unit: fc.constantFrom('-', '/', '*', "'", '$', 'e', ' ', '\\', '"', '1', '\n', 'a'), maxLength: 12 }),
);

const literal = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 }).map((d) => String(d)),
  hostileText.map((s) => `'${s.replace(/'/g, "''")}'`),
  hostileText.map((s) => `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`),
  // (a dollar sign inside would end or extend the quote, as in PostgreSQL)
  hostileText.filter((s) => !s.includes('$')).map((s) => `$q$${s}$q$`),
  hostileText.filter((s) => !s.includes('$')).map((s) => `$$${s}$$`),
  fc.integer({ min: 1, max: 99 }).map((n) => `$${n}`),
  fc.constantFrom('true', 'FALSE', 'null', 'NULL'),
);

/** Statements with literal slots; the same template filled two ways must group together. */
const TEMPLATES: Array<(l: string[]) => string> = [
  (l) => `SELECT * FROM orders WHERE id = ${l[0]} AND note = ${l[1]}`,
  (l) => `UPDATE t1 SET v = ${l[0]}, w=${l[1]} WHERE k IN (${l[2]}, ${l[3]})`,
  (l) => `select a,\n  b from "Weird -- name" where x=${l[0]} -- trailing ${l[1]?.replace(/\n/g, ' ')}\n  and y = ${l[2]}`,
  (l) => `INSERT INTO log (a, b, c) VALUES (${l[0]}, ${l[1]}, ${l[2]}) /* batch */`,
  (l) => `SELECT f(${l[0]})::text, g(${l[1]}, col_2) FROM s.t2 WHERE z BETWEEN ${l[2]} AND ${l[3]}`,
];

describe('normalizeStatement', () => {
  test('total: any text gives a single-line, trimmed string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii' }), hostileText), (sql) => {
        const n = normalizeStatement(sql);
        expect(typeof n).toBe('string');
        expect(n).not.toMatch(/\s\s|[\n\r\t]|^\s|\s$/);
      }),
      RUNS,
    );
  });

  test('idempotent', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary-ascii' }), hostileText, fc.tuple(fc.constantFrom(...TEMPLATES), fc.array(literal, { minLength: 4, maxLength: 4 })).map(([t, l]) => t(l))), (sql) => {
        const once = normalizeStatement(sql);
        expect(normalizeStatement(once)).toBe(once);
      }),
      RUNS,
    );
  });

  test('the same statement with different literals normalizes the same (whatever the literals hold)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...TEMPLATES),
        fc.array(literal, { minLength: 4, maxLength: 4 }),
        fc.array(literal, { minLength: 4, maxLength: 4 }),
        (template, a, b) => {
          expect(normalizeStatement(template(a))).toBe(normalizeStatement(template(b)));
        },
      ),
      RUNS,
    );
  });

  test('no literal survives: the output holds no quote-delimited text and no numbers outside identifiers', () => {
    fc.assert(
      fc.property(fc.constantFrom(...TEMPLATES), fc.array(literal, { minLength: 4, maxLength: 4 }), (template, l) => {
        const n = normalizeStatement(template(l));
        // Identifiers (t1, col_2, "Weird -- name") keep their digits; nothing else does.
        expect(n.replace(/"[^"]*"/g, '').replace(/\b[A-Za-z_][A-Za-z0-9_]*\b/g, '')).not.toMatch(/[0-9']/);
      }),
      RUNS,
    );
  });

  test('different statements stay apart', () => {
    fc.assert(
      fc.property(fc.array(literal, { minLength: 4, maxLength: 4 }), (l) => {
        const outs = TEMPLATES.map((t) => normalizeStatement(t(l)));
        expect(new Set(outs).size).toBe(TEMPLATES.length);
        expect(normalizeStatement(`SELECT a FROM t1 WHERE x = ${l[0]}`)).not.toBe(normalizeStatement(`SELECT a FROM t2 WHERE x = ${l[0]}`));
      }),
      RUNS,
    );
  });

  test.each([
    ["SELECT '--x' FROM a WHERE id = 1", "SELECT '--y' FROM b WHERE id = 2", false],
    ["SELECT 'a e', 1 FROM t WHERE x = 'b'", 'SELECT ?, ? FROM t WHERE x = ?', true],
    ['SELECT 1 -- a comment', 'SELECT 2', true],
    ["SELECT * FROM t WHERE note = 'it''s' AND id = $1", 'SELECT * FROM t WHERE note = ? AND id = ?', true],
    // query text cut by track_activity_query_size often ends inside a literal
    ["SELECT * FROM t WHERE note = 'abc", "SELECT * FROM t WHERE note = 'abcdef", true],
  ])('%p vs %p: same group = %p', (a, b, same) => {
    expect(normalizeStatement(a) === normalizeStatement(b)).toBe(same);
  });
});

// ---------------------------------------------------------------------------------------------
// The terminal sanitizer

const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Escape sequences a hostile client may plant: CSI, OSC (BEL and ST), DCS, APC, 8-bit forms, hyperlinks. */
const TERMINATED_ESCAPES = [
  '\u001b[31m',
  '\u001b[0m',
  '\u001b[2J',
  '\u001b[H',
  '\u001b[10;20H',
  '\u001b[38;5;196m',
  '\u001b[?1049h',
  '\u001b]0;pwned\u0007',
  '\u001b]2;title\u001b\\',
  '\u001b]8;;https://evil.example/\u0007',
  '\u001b]52;c;ZXZpbA==\u0007',
  '\u001bP+q544e\u001b\\',
  '\u001b_apc\u001b\\',
  '\u001b^pm\u001b\\',
  '\u001bc',
  '\u001b7',
  '\u009b31m',
  '\u009d0;x\u009c',
];
const escapeSeq = fc.oneof(
  fc.constantFrom(...TERMINATED_ESCAPES),
  fc.constantFrom('\u001b', '\u001b[', '\u001b]', '\u001bP', '\u009b', '\u009d', '\u0007', '\r', '\b', '\u0000', '\u007f', '\u0085', '\u202e', '\u2066', '\u200f', '\u061c', '\n', '\t', '\u001b(0'),
);
const hostile = fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), escapeSeq), { maxLength: 12 }).map((parts) => parts.join(''));
/** Text with no control, escape, bidi or other hidden character at all (src/core/text.ts). */
const safeText = fc
  .string({ unit: 'binary', maxLength: 30 })
  .map((s) => [...s.replace(new RegExp(CONTROL.source, 'g'), '')].filter((ch) => revealHidden(ch) === ch).join(''))
  .filter((s) => revealHidden(s) === s);
/** Zero-width, bidi and other characters a terminal does not show as themselves. */
const HIDDEN = /[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Cs}\p{Co}\p{Cn}\u2028\u2029]/u;

describe('sanitize / oneLine', () => {
  test('no ESC, C0, C1 or bidi control survives', () => {
    fc.assert(
      fc.property(fc.oneof(hostile, fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii' })), (text) => {
        for (const out of [sanitize(text), oneLine(text), oneLine(text, 10)]) {
          expect(out).not.toMatch(CONTROL);
          expect(out).not.toMatch(BIDI);
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('idempotent', () => {
    fc.assert(
      fc.property(hostile, fc.integer({ min: 1, max: 40 }), (text, max) => {
        expect(sanitize(sanitize(text))).toBe(sanitize(text));
        expect(oneLine(oneLine(text))).toBe(oneLine(text));
        expect(oneLine(oneLine(text, max), max)).toBe(oneLine(text, max));
      }),
      RUNS,
    );
  });

  test('text with nothing dangerous is left exactly as it is', () => {
    fc.assert(
      fc.property(safeText, (text) => {
        expect(sanitize(text)).toBe(text);
      }),
      RUNS,
    );
  });

  test("an escape sequence is shown, never removed: its controls as escapes, every other character of it and around it kept (a colour code of dbdoctor's own form, which hides nothing, aside)", () => {
    fc.assert(
      fc.property(safeText, fc.constantFrom(...TERMINATED_ESCAPES, '\u001b]0;title with no end', '\u009d0;T', '\u0090q'), safeText, (before, esc, after) => {
        const shown = /^\u001b\[(?:0|31)m$/.test(esc) ? '' : esc.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
        expect(sanitize(`${before}${esc}${after}`)).toBe(`${before}${shown}${after}`);
      }),
      RUNS,
    );
  });

  test("displayWidth: ASCII, the ellipsis and colour codes measured without string-width, exactly as string-width measures them", async () => {
    const { default: stringWidth } = await import('string-width');
    const part = fc.oneof(fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 12 }), fc.constantFrom('…', '\u001b[33m', '\u001b[0m', '\u001b[1;31m', '\u001b[m', '\u001b[', 'é', '日', '\u001b'));
    fc.assert(
      fc.property(fc.array(part, { maxLength: 10 }).map((parts) => parts.join('')), (text) => {
        expect(displayWidth(text)).toBe(stringWidth(text));
      }),
      RUNS,
    );
  });

  test('oneLine: one line, no runs of spaces, never longer than asked', () => {
    fc.assert(
      fc.property(hostile, fc.integer({ min: 1, max: 60 }), (text, max) => {
        const out = oneLine(text, max);
        expect(displayWidth(out)).toBeLessThanOrEqual(max);
        expect(out).not.toMatch(/\s\s|\n|^\s|\s$/);
      }),
      RUNS,
    );
  });

  test('hidden characters are shown as their escapes, never passed (emoji sequences aside)', () => {
    fc.assert(
      fc.property(hostile, (text) => {
        const out = sanitize(text).replace(/\u200d|\ufe0f|\ufe0e/g, '');
        expect(out).not.toMatch(HIDDEN);
      }),
      RUNS,
    );
    expect(sanitize('a\u200bb\u202ec\u2066d')).toBe('a\\u200bb\\u202ec\\u2066d');
    expect(sanitize('bell\u0007')).toBe('bell\\u0007');
    expect(sanitize('coder 👩‍💻 ☕️')).toBe('coder 👩‍💻 ☕️');
  });

  test('hasHidden finds a hidden character wherever the Unicode class finds one (it tests only the runs beyond ASCII)', () => {
    fc.assert(
      fc.property(fc.oneof(hostile, fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme-composite' })), (text) => {
        expect(hasHidden(text)).toBe(HIDDEN.test(text));
      }),
      { numRuns: 1000 },
    );
  });

  test('terminalText, with no escape sequence in the text: every line sanitized, line feeds kept (a text with nothing to show is returned whole)', () => {
    const line = fc.oneof(safeText, hostile, fc.constantFrom('…', 'café', '日本語', '\u2026', 'a\tb', 'x\r', '\u0085'));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 6 }).map((lines) => lines.join('\n').replace(/\u001b/g, '')), fc.boolean(), (text, colour) => {
        expect(terminalText(text, colour)).toBe(text.split('\n').map(sanitize).join('\n'));
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The blocking tree

function row(pid: number, over: Partial<SessionRow> = {}): SessionRow {
  return sessionRow({
    pid,
    application_name: 'app',
    client_addr: '10.0.0.1',
    client_port: 5000,
    backend_start: '2024-01-01 00:00:00.000001+00',
    state: 'active',
    wait_event_type: null,
    wait_event: null,
    backend_age_ms: 1000,
    xact_age_ms: 1000,
    query_age_ms: 1000,
    state_age_ms: 1000,
    ...over,
  });
}

const STATES = ['active', 'idle', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call', 'disabled', 'starting', 'some future state', null];

/** Random lock graphs: cycles, self-edges, pid 0, vanished blockers, parallel workers, hidden rows. */
const snapshotArb = fc
  .record({
    pids: fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 25 }),
    seed: fc.array(
      fc.record({
        blockedBy: fc.option(fc.array(fc.integer({ min: 0, max: 45 }), { maxLength: 4 }), { nil: null }),
        worker: fc.boolean(),
        leaderPick: fc.nat(),
        state: fc.constantFrom(...STATES),
        wait: fc.option(fc.nat({ max: 100_000 }), { nil: null }),
      }),
      { minLength: 25, maxLength: 25 },
    ),
    prepared: fc.array(fc.string({ unit: 'binary-ascii', maxLength: 10 }), { maxLength: 3 }),
  })
  .map(({ pids, seed, prepared }): ActivitySnapshot => {
    const rows = pids.map((pid, i) => {
      const s = seed[i]!;
      const leader = s.worker ? pids[s.leaderPick % pids.length]! : null;
      return row(pid, {
        leader_pid: leader,
        backend_type: leader !== null && leader !== pid ? 'parallel worker' : 'client backend',
        state: s.state,
        blocked_by: s.blockedBy,
        wait_event_type: s.blockedBy?.length ? 'Lock' : null,
        wait_lock: s.blockedBy?.length ? { locktype: 'relation', mode: 'AccessExclusiveLock', relation: 't', wait_ms: s.wait } : null,
      });
    });
    const prep: PreparedXact[] = prepared.map((gid, i) => ({ gid, owner: 'o', database: 'app', transaction: String(1000 + i), age_ms: 1 }));
    return { server_version_num: 180000, taken_at: '2024-01-01T00:00:00Z', database: 'app', rows, prepared: prep };
  });

/** The model: waiter -> blockers, parallel workers folded into their leader, self-edges dropped. */
function modelEdges(s: ActivitySnapshot): Map<number, Set<number>> {
  const byPid = new Map(s.rows.map((r) => [r.pid, r]));
  const fold = (pid: number) => {
    const r = byPid.get(pid);
    return r && r.leader_pid !== null && r.leader_pid !== r.pid ? r.leader_pid : pid;
  };
  const edges = new Map<number, Set<number>>();
  for (const r of s.rows) {
    for (const b of r.blocked_by ?? []) {
      const w = fold(r.pid);
      const bb = fold(b);
      if (w === bb) continue;
      if (!edges.has(w)) edges.set(w, new Set());
      edges.get(w)!.add(bb);
    }
  }
  return edges;
}

/** Everything that waits, directly or transitively, on `root`. */
function transitiveWaiters(edges: Map<number, Set<number>>, root: number): Set<number> {
  const out = new Set<number>();
  let frontier = [root];
  while (frontier.length) {
    const next: number[] = [];
    for (const [w, bs] of edges) {
      if (out.has(w) || w === root) continue;
      if (frontier.some((f) => bs.has(f))) {
        out.add(w);
        next.push(w);
      }
    }
    frontier = next;
  }
  return out;
}

function treePids(node: BlockNode, out: number[] = []): number[] {
  out.push(node.pid);
  for (const c of node.children) treePids(c, out);
  return out;
}

function treeEdges(node: BlockNode, out: Array<[number, number]> = []): Array<[number, number]> {
  for (const c of node.children) {
    out.push([node.pid, c.pid]);
    treeEdges(c, out);
  }
  return out;
}

describe('buildBlockingReport over random lock graphs', () => {
  test('never throws; roots are exactly the blockers that wait on nobody', () => {
    fc.assert(
      fc.property(snapshotArb, (snap) => {
        const report = buildBlockingReport(snap);
        const edges = modelEdges(snap);
        const blockers = new Set([...edges.values()].flatMap((b) => [...b]));
        const expected = [...blockers].filter((b) => !edges.has(b)).sort((a, b) => a - b);
        expect(report.roots.map((r) => r.pid).sort((a, b) => a - b)).toEqual(expected);
        expect(report.waiting).toBe(edges.size);
        for (const r of report.roots) {
          expect(edges.has(r.pid)).toBe(false);
          expect(r.direct.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 600 },
    );
  });

  test('every waiter appears exactly once in each tree that holds it, or in exactly one cycle, never both', () => {
    fc.assert(
      fc.property(snapshotArb, (snap) => {
        const report = buildBlockingReport(snap);
        const edges = modelEdges(snap);
        for (const r of report.roots) {
          const pids = treePids(r.tree);
          expect(pids[0]).toBe(r.pid);
          expect(new Set(pids).size).toBe(pids.length);
          const below = pids.slice(1).sort((a, b) => a - b);
          expect(below).toEqual(r.all);
          // exactly the sessions that wait on this root, directly or behind others
          expect(new Set(r.all)).toEqual(transitiveWaiters(edges, r.pid));
          expect(r.all).not.toContain(r.pid);
          for (const d of r.direct) expect(r.all).toContain(d);
          // every tree edge is a real blocking edge
          for (const [parent, child] of treeEdges(r.tree)) expect(edges.get(child)?.has(parent)).toBe(true);
        }
        // Cycle members: each waits (directly or not) for every other member, and none is in two cycles.
        const members = report.cycles.flatMap((c) => c.members);
        expect(new Set(members).size).toBe(members.length);
        for (const c of report.cycles) {
          expect(c.members.length).toBeGreaterThan(1);
          for (const p of c.members) for (const q of c.members) if (p !== q) expect(transitiveWaiters(edges, q).has(p)).toBe(true);
          // stuck: waiters outside the cycle that wait (through others) for a member
          for (const p of c.stuck) {
            expect(c.members).not.toContain(p);
            expect(c.members.some((m) => transitiveWaiters(edges, m).has(p))).toBe(true);
          }
        }
        // Every waiter is under a root, in a cycle or stuck behind one.
        for (const w of edges.keys()) {
          const placed = report.roots.some((r) => r.all.includes(w)) || report.cycles.some((c) => c.members.includes(w) || c.stuck.includes(w));
          expect(placed).toBe(true);
        }
      }),
      { numRuns: 600 },
    );
  });

  test('pid 0 is a prepared transaction: resolve it, never terminate it; actions match states', () => {
    fc.assert(
      fc.property(snapshotArb, (snap) => {
        for (const r of buildBlockingReport(snap).roots) {
          if (r.pid === 0) {
            expect(r.action).toBe('resolve_prepared');
            expect(r.session).toBeNull();
            expect(r.advice).not.toMatch(/terminate --pid 0/);
            // The oldest one, by its gid when it can be shown, else selected by its xid.
            const p = snap.prepared[0];
            if (p) expect(r.advice).toContain(showable(p.gid) ? sqlLiteral(p.gid) : `transaction = '${p.transaction}'::xid`);
          } else if (r.session === null) {
            expect(r.action).toBe('investigate');
          } else if (r.session.state === 'active') {
            expect(r.action).toBe('cancel_then_terminate');
          } else if (r.session.state?.startsWith('idle in transaction')) {
            expect(r.action).toBe('terminate');
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  test('a pile-up far larger than any server holds does not throw', () => {
    const rows = [row(1, { state: 'idle in transaction' })];
    for (let i = 2; i <= 150_000; i++) rows.push(row(i, { blocked_by: [i === 2 ? 1 : i - 1, 1], wait_event_type: 'Lock', wait_lock: { locktype: 'tuple', mode: 'ExclusiveLock', relation: 't', wait_ms: i } }));
    const report = buildBlockingReport({ server_version_num: 180000, taken_at: '', database: 'app', rows, prepared: [] });
    expect(report.roots).toHaveLength(1);
    expect(report.roots[0]!.all).toHaveLength(149_999);
    expect(report.roots[0]!.longest_wait_ms).toBe(150_000);
  });
});

// ---------------------------------------------------------------------------------------------
// The termination plan

const BACKEND_TYPES = ['client backend', 'client backend', 'client backend', 'autovacuum worker', 'walsender', 'background worker', 'parallel worker', 'checkpointer', null];
const PLAN_STATES = ['active', 'idle', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call', 'disabled', 'starting', null];

/** `arb` one time in four, else `usual`. */
function rarely<T>(arb: fc.Arbitrary<T>, usual: T): fc.Arbitrary<T> {
  return fc.oneof({ weight: 3, arbitrary: fc.constant(usual) }, { weight: 1, arbitrary: arb });
}

const planInputArb = fc
  .record({
    pids: fc.uniqueArray(fc.integer({ min: 100, max: 160 }), { minLength: 1, maxLength: 30 }),
    seed: fc.array(
      fc.record({
        type: fc.constantFrom(...BACKEND_TYPES),
        leader: fc.option(fc.nat(), { nil: null }),
        superuser: fc.constantFrom(true, false, null),
        state: fc.constantFrom(...PLAN_STATES),
        hidden: fc.boolean(),
        db: fc.constantFrom('app', 'other', null),
        user: fc.constantFrom('u1', 'u2', null),
        app: fc.constantFrom('worker', 'worker-2', 'api', '', 'w?rker', 'dbdoctor'),
        age: fc.option(fc.integer({ min: 0, max: 3_600_000 }), { nil: null }),
        fp: fc.constantFrom('same', 'same', 'same', 'reused', 'missing', 'moved'),
        query: fc.constantFrom('SELECT 1', 'LISTEN jobs', 'UPDATE t SET v = 1', '<insufficient privilege>'),
      }),
      { minLength: 30, maxLength: 30 },
    ),
    self: fc.option(fc.nat(), { nil: null }),
    // each filter mostly absent, so that plenty of sessions reach the exclusion rules
    states: rarely(fc.subarray([...TERMINABLE_STATES]), []),
    olderThan: rarely(fc.integer({ min: 0, max: 3_600_000 }), null),
    apps: rarely(fc.subarray(['worker*', 'api', 'w?rker', '*']), []),
    users: rarely(fc.subarray(['u1', 'u2']), []),
    dbs: rarely(fc.subarray(['app', 'other']), []),
    pickPids: rarely(fc.constant(true), false),
    blockers: rarely(fc.constant(true), false),
    allDatabases: fc.boolean(),
    includeSuperusers: fc.boolean(),
    cancelFirst: fc.boolean(),
  })
  .map((x) => {
    const rows = x.pids.map((pid, i) => {
      const s = x.seed[i]!;
      const leader = s.leader === null ? null : x.pids[s.leader % x.pids.length]!;
      const hidden = s.hidden || s.query === '<insufficient privilege>';
      return row(pid, {
        backend_type: s.type,
        leader_pid: s.type === 'parallel worker' ? leader : s.leader !== null && s.leader % 5 === 0 ? pid : null,
        superuser: s.superuser,
        state: hidden ? null : s.state,
        query: hidden ? '<insufficient privilege>' : s.query,
        datname: s.db,
        usename: s.user,
        application_name: s.app,
        backend_start: hidden ? null : `2024-01-01 00:00:${String(pid % 60).padStart(2, '0')}.123456+00`,
        state_age_ms: hidden ? null : s.age,
        query_age_ms: hidden ? null : s.age,
        is_self: x.self !== null && x.self % x.pids.length === i,
      });
    });
    const fingerprints: Fingerprint[] = rows.flatMap((r, i) => {
      const kind = x.seed[i]!.fp;
      if (kind === 'missing') return [];
      return [
        {
          pid: r.pid,
          backend_start: kind === 'reused' ? '2024-02-02 00:00:00.000001+00' : r.backend_start,
          state: kind === 'moved' ? 'active' : r.state,
          state_change: '2024-01-01 00:00:00+00',
          xact_start: null,
          query_start: null,
        },
      ];
    });
    const filters: TerminateFilters = {
      ...emptyFilters(),
      states: x.states,
      older_than_ms: x.olderThan,
      apps: x.apps,
      users: x.users,
      dbs: x.dbs,
      pids: x.pickPids ? x.pids.filter((_, i) => i % 3 === 0) : [],
      blockers: x.blockers,
    };
    const snapshot: ActivitySnapshot = { server_version_num: 180000, taken_at: '', database: 'app', rows, prepared: [] };
    return { snapshot, fingerprints, opts: { filters, allDatabases: x.allDatabases, includeSuperusers: x.includeSuperusers, cancelFirst: x.cancelFirst } };
  });

describe('planTermination over random sessions', () => {
  test('never plans dbdoctor itself, a non-client backend, a parallel worker, a hidden session, or a superuser unless allowed', () => {
    fc.assert(
      fc.property(planInputArb, ({ snapshot, fingerprints, opts }) => {
        const plan = planTermination(snapshot, fingerprints, opts);
        const byPid = new Map(snapshot.rows.map((r) => [r.pid, r]));
        expect(new Set(plan.planned.map((p) => p.pid)).size).toBe(plan.planned.length);
        for (const p of plan.planned) {
          const r = byPid.get(p.pid)!;
          expect(r.is_self).toBe(false);
          expect(r.backend_type === 'client backend' || r.backend_type === null).toBe(true);
          expect(r.leader_pid === null || r.leader_pid === r.pid).toBe(true);
          expect(r.query).not.toBe('<insufficient privilege>');
          expect(r.state).not.toBeNull();
          if (!opts.includeSuperusers) expect(r.superuser).not.toBe(true);
          if (!opts.allDatabases) expect(r.datname).toBe(snapshot.database);
          // the identity it will re-check is the one it saw
          const fp = fingerprints.find((f) => f.pid === p.pid);
          expect(fp?.backend_start).toBe(r.backend_start);
          expect(p.backend_start).toBe(r.backend_start);
        }
      }),
      { numRuns: 800 },
    );
  });

  test('everything planned matches every filter given', () => {
    fc.assert(
      fc.property(planInputArb, ({ snapshot, fingerprints, opts }) => {
        const f = opts.filters;
        const plan = planTermination(snapshot, fingerprints, opts);
        const byPid = new Map(snapshot.rows.map((r) => [r.pid, r]));
        for (const p of plan.planned) {
          const r = byPid.get(p.pid)!;
          if (f.states.length) expect(f.states).toContain(r.state);
          if (f.users.length) expect(f.users).toContain(r.usename);
          if (f.dbs.length) expect(f.dbs).toContain(r.datname);
          if (f.pids.length) expect(f.pids).toContain(r.pid);
          if (f.older_than_ms !== null) expect(r.state_age_ms ?? -1).toBeGreaterThanOrEqual(f.older_than_ms);
          if (f.apps.length) {
            const globs = f.apps.map((g) => new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's'));
            expect(globs.some((g) => g.test(r.application_name))).toBe(true);
          }
          if (f.blockers) expect(p.blocks).toBeGreaterThan(0);
        }
      }),
      { numRuns: 800 },
    );
  });

  test('a session the filters pick is either planned or listed as excluded with a reason, never silently dropped', () => {
    fc.assert(
      fc.property(planInputArb, ({ snapshot, fingerprints, opts }) => {
        const f = opts.filters;
        const plan = planTermination(snapshot, fingerprints, opts);
        const accounted = new Set([...plan.planned.map((p) => p.pid), ...plan.excluded.map((e) => e.pid)]);
        for (const r of snapshot.rows) {
          // what any role can see of a session, and nothing else selects
          if (f.states.length || f.older_than_ms !== null || f.blockers) continue;
          // a hidden row with no type and no role or database is a background process, not a session
          const hidden = r.query === '<insufficient privilege>' || r.state === null;
          if (hidden && r.backend_type === null && (r.usename === null || r.datname === null)) continue;
          const picked =
            (!f.pids.length || f.pids.includes(r.pid)) &&
            (!f.users.length || (r.usename !== null && f.users.includes(r.usename))) &&
            (!f.dbs.length || (r.datname !== null && f.dbs.includes(r.datname))) &&
            (!f.apps.length || f.apps.some((g) => new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's').test(r.application_name)));
          if (picked) expect(accounted.has(r.pid)).toBe(true);
        }
        for (const e of plan.excluded) expect(e.detail.length).toBeGreaterThan(0);
      }),
      { numRuns: 800 },
    );
  });

  test("plannedPids (diagnose's check of the terminate commands it prints) plans exactly what planTermination plans from the same snapshot's fingerprints, a pid listed twice included", () => {
    // a hand-made --from file may list a pid twice: the same row, or one with another identity or state
    const twice = fc.array(fc.record({ at: fc.nat(), change: fc.constantFrom('none', 'backend_start', 'state') }), { maxLength: 4 });
    fc.assert(
      fc.property(planInputArb, twice, ({ snapshot, opts }, dups) => {
        const rows = [...snapshot.rows];
        for (const d of dups) {
          const r = snapshot.rows[d.at % snapshot.rows.length]!;
          rows.splice(d.at % (rows.length + 1), 0, d.change === 'none' ? r : d.change === 'state' ? { ...r, state: r.state === 'idle' ? 'active' : 'idle' } : { ...r, backend_start: `${r.backend_start}0` });
        }
        const s = { ...snapshot, rows };
        const own: Fingerprint[] = rows.map((r) => ({ pid: r.pid, backend_start: r.backend_start, state: r.state, state_change: null, xact_start: null, query_start: null }));
        expect(plannedPids(s, opts)).toEqual(planTermination(s, own, opts).planned.map((p) => p.pid));
      }),
      { numRuns: 1500 },
    );
  });
});
