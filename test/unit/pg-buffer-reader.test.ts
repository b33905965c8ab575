import { createRequire } from 'node:module';
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { BufferReader as Ours } from '../../src/db/pg-buffer-reader.js';

// pg's own protocol reader, which the bundle replaces with src/db/pg-buffer-reader.ts
const pgs = createRequire(import.meta.url)('pg-protocol/dist/buffer-reader.js') as { BufferReader: typeof Ours };
const Theirs = pgs.BufferReader;

type Op = { op: 'int16' | 'byte' | 'int32' | 'uint32' | 'cstring' } | { op: 'string' | 'bytes'; n: number };

/** Runs the reads on one reader: each value (a Buffer as hex) or 'throws', and the offset after. */
function run(reader: Ours, buffer: Buffer, start: number, ops: Op[]): unknown[] {
  reader.setBuffer(start, buffer);
  return ops.map((o) => {
    try {
      const v = 'n' in o ? reader[o.op](o.n) : reader[o.op]();
      return Buffer.isBuffer(v) ? `hex:${v.toString('hex')}` : v;
    } catch (err) {
      return `throws ${(err as Error).name}`;
    }
  });
}

describe("dbdoctor's protocol reader in place of pg-protocol's", () => {
  test('the same class and methods', () => {
    const methods = (c: { prototype: object }) => Object.getOwnPropertyNames(c.prototype).sort();
    expect(methods(Ours)).toEqual(methods(Theirs));
  });

  test('the same values, offsets and failures on random buffers and reads, past the end included', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constantFrom<Op>({ op: 'int16' }, { op: 'byte' }, { op: 'int32' }, { op: 'uint32' }, { op: 'cstring' }),
      fc.record({ op: fc.constantFrom('string' as const, 'bytes' as const), n: fc.integer({ min: 0, max: 40 }) }),
    );
    // Text that is not ASCII too (multi-byte UTF-8, cut anywhere), and NULs for cstring.
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => new TextEncoder().encode(`${s}\0${s}`)));
    fc.assert(
      fc.property(bytes, fc.nat({ max: 8 }), fc.array(op, { maxLength: 12 }), (raw, start, ops) => {
        const buffer = Buffer.from(raw);
        const ours = new Ours();
        const theirs = new Theirs();
        expect(run(ours, buffer, start, ops)).toEqual(run(theirs, buffer, start, ops));
        // and the position after (the next read shows it)
        expect(run(ours, buffer, start, [...ops, { op: 'bytes', n: 64 }]).at(-1)).toEqual(run(theirs, buffer, start, [...ops, { op: 'bytes', n: 64 }]).at(-1));
      }),
      { numRuns: 2000 },
    );
  });

  test('a DataRow as PostgreSQL sends it: field lengths, NULL (-1) and UTF-8 text', () => {
    const fields = ['4242', null, 'idle in transaction', "SELECT 'w\u00f6rld \u{1F511}'", ''];
    const parts = [Buffer.from([0, fields.length])];
    for (const f of fields) {
      const b = f === null ? null : Buffer.from(f, 'utf8');
      const len = Buffer.alloc(4);
      len.writeInt32BE(b === null ? -1 : b.length);
      parts.push(len, ...(b ? [b] : []));
    }
    const row = Buffer.concat(parts);
    for (const reader of [new Ours(), new Theirs()]) {
      reader.setBuffer(0, row);
      const n = reader.int16();
      const got = Array.from({ length: n }, () => {
        const len = reader.int32();
        return len === -1 ? null : reader.string(len);
      });
      expect(got).toEqual(fields);
    }
  });
});
