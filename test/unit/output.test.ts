/** The one writer (src/ui/output.ts): long texts in pieces, the line break on its own. */
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { captureOutput } from '../support/output.js';
import { pieces, WRITE_PIECE } from '../../src/ui/output.js';

/** A high surrogate with no low one after it, or a low one with no high one before it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('pieces', () => {
  test('a text up to one piece long is written whole', () => {
    const text = 'x'.repeat(WRITE_PIECE);
    expect(pieces(text)).toEqual([text]);
    expect(pieces('')).toEqual(['']);
  });

  test('a 1.7 MB document goes in pieces of at most 64 KiB that join back to it', () => {
    const text = `${'{\n  "pid": 12345,\n'.repeat(100_000)}}`;
    const parts = pieces(text);
    expect(parts.length).toBe(Math.ceil(text.length / WRITE_PIECE));
    expect(parts.every((p) => p.length > 0 && p.length <= WRITE_PIECE)).toBe(true);
    expect(parts.join('')).toBe(text);
  });

  test('a surrogate pair across a boundary stays whole: the piece before it ends one unit early', () => {
    const text = `${'a'.repeat(WRITE_PIECE - 1)}👩‍💻${'b'.repeat(10)}`;
    const parts = pieces(text);
    expect(parts[0]).toBe('a'.repeat(WRITE_PIECE - 1));
    expect(parts[1]?.startsWith('👩')).toBe(true);
    // each piece is well-formed UTF-16 on its own, so each encodes to the same bytes as in the whole
    expect(Buffer.concat(parts.map((p) => Buffer.from(p))).equals(Buffer.from(text))).toBe(true);
  });

  test('any text, any piece size: joined back exactly, and no piece ends inside a pair (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.integer({ min: 2, max: 40 }), (text, size) => {
        const parts = pieces(text, size);
        expect(parts.join('')).toBe(text);
        for (const p of parts) {
          expect(p.length).toBeLessThanOrEqual(size);
          expect(LONE_SURROGATE.test(p)).toBe(false);
        }
      }),
    );
  });
  test('the size is an integer, 2 or more: anything else is refused, never a loop or a split pair', () => {
    for (const size of [1, 0, -1, Number.NaN, 2.5]) expect(() => pieces('a😀b', size)).toThrow(RangeError);
    expect(pieces('a😀b', 2)).toEqual(['a', '😀', 'b']);
    expect(pieces('\ud800😀x', 2)).toEqual(['\ud800', '😀', 'x']);
  });
});

describe('out', () => {
  test('a block and its line break in one write; nothing more when it has one', () => {
    const a = captureOutput();
    a.output.out('{\n  "a": 1\n}');
    expect(a.out).toEqual(['{\n  "a": 1\n}\n']);
    const b = captureOutput();
    b.output.out('one line\n');
    expect(b.out).toEqual(['one line\n']);
  });

  test('after a long text, the line break in a write of its own (joined, it would copy the text)', () => {
    const doc = `{\n${'  "pid": 12345,\n'.repeat(10_000)}}`;
    const c = captureOutput();
    c.output.out(doc);
    expect(c.out).toHaveLength(2);
    expect(c.out[0]).toBe(doc);
    expect(c.out[1]).toBe('\n');
  });

  test('still sanitizes what it writes', () => {
    const c = captureOutput();
    c.output.out('evil \u001b]0;title\u0007 app');
    // shown, never removed (removing an OSC took what followed it)
    expect(c.out.join('')).toBe('evil \\u001b]0;title\\u0007 app\n');
  });
});
