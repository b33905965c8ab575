/**
 * node-postgres's protocol reader (pg-protocol/dist/buffer-reader.js) with cheaper integer and
 * string reads. The bundle (scripts/bundle.js) puts this module in its place; the unbundled dist/
 * keeps pg's.
 *
 * Why: every field of every row goes through int32() (its length) and string() (its text). pg's
 * reader calls Buffer#readInt32BE, which validates its argument through Node's error-wrapping
 * helpers, and Buffer#toString with an encoding name, which checks and looks it up again; at
 * incident scale (1,500 sessions x 24 columns, read once, cold) that was ~2 ms of `diagnose`
 * (measured by `npm run bench`). The bytes are read directly here, and the text is decoded by
 * utf8Slice, which toString itself ends in.
 *
 * Same values and same failures as pg's, byte for byte: test/unit/pg-buffer-reader.test.ts
 * compares the two on random buffers and reads, out-of-range ones included. The class and its
 * methods must stay those of pg's module: scripts/bundle.js checks the names at build time.
 */

/** Buffer's own UTF-8 decoder, what Buffer#toString('utf-8', start, end) calls in the end. */
type Utf8Buffer = Buffer & { utf8Slice(start: number, end: number): string };

function outOfRange(offset: number, size: number, length: number): RangeError {
  return new RangeError(`Attempt to read ${size} bytes at offset ${offset} of a ${length}-byte buffer`);
}

export class BufferReader {
  private buffer: Buffer = Buffer.allocUnsafe(0);

  constructor(private offset = 0) {}

  setBuffer(offset: number, buffer: Buffer): void {
    this.offset = offset;
    this.buffer = buffer;
  }

  int16(): number {
    const b = this.buffer;
    const o = this.offset;
    if (o < 0 || o + 2 > b.length) throw outOfRange(o, 2, b.length);
    this.offset = o + 2;
    return ((b[o]! << 24) | (b[o + 1]! << 16)) >> 16;
  }

  byte(): number {
    // as pg's: past the end this is undefined, typed as a number
    return this.buffer[this.offset++] as number;
  }

  int32(): number {
    const b = this.buffer;
    const o = this.offset;
    if (o < 0 || o + 4 > b.length) throw outOfRange(o, 4, b.length);
    this.offset = o + 4;
    return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
  }

  uint32(): number {
    return this.int32() >>> 0;
  }

  string(length: number): string {
    const b = this.buffer;
    const start = this.offset;
    this.offset = start + length;
    // as Buffer#toString: the end is clamped to the buffer, and an empty range is ''
    const from = Math.max(start, 0);
    const end = Math.min(start + length, b.length);
    return from >= end ? '' : (b as Utf8Buffer).utf8Slice(from, end);
  }

  cstring(): string {
    const start = this.offset;
    let end = start;
    while (this.buffer[end++]) {
      // to the NUL, as pg's
    }
    this.offset = end;
    return this.buffer.toString('utf-8', start, end - 1);
  }

  bytes(length: number): Buffer {
    const result = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return result;
  }
}
