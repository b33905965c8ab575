/**
 * How wide text is on a terminal, and how to cut it: by display columns (string-width: a CJK
 * character or an emoji takes two, a combining mark none), never inside a character (grapheme
 * clusters, Intl.Segmenter), keeping dbdoctor's own colour codes intact. Every renderer measures
 * and cuts through these, so names and queries in any script align in tables and are never cut in
 * half.
 */
import stringWidth from 'string-width';

const PRINTABLE_ASCII = /^[\u0020-\u007e]*$/;
const SGR = /\u001b\[[0-9;]*m/y;

/** Columns the text takes on a terminal (colour codes take none). */
export function displayWidth(text: string): number {
  return PRINTABLE_ASCII.test(text) ? text.length : stringWidth(text);
}

let graphemes: Intl.Segmenter | undefined;

/**
 * The longest head of `text` that fits in `width` columns: whole characters only, colour codes
 * kept (they take no column).
 */
export function headToWidth(text: string, width: number): string {
  if (PRINTABLE_ASCII.test(text)) return text.slice(0, Math.max(0, width));
  graphemes ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  let out = '';
  let used = 0;
  let i = 0;
  while (i < text.length) {
    SGR.lastIndex = i;
    const sgr = SGR.exec(text);
    if (sgr) {
      out += sgr[0];
      i += sgr[0].length;
      continue;
    }
    const next = text.indexOf('\u001b[', i);
    const run = text.slice(i, next < 0 ? text.length : next);
    for (const { segment } of graphemes.segment(run)) {
      const w = stringWidth(segment);
      if (used + w > width) return out;
      out += segment;
      used += w;
    }
    i += run.length;
  }
  return out;
}

/** The text cut to `width` columns with an ellipsis when it does not fit (a colour left open is closed). */
export function fitWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  const head = headToWidth(text, Math.max(0, width - 1));
  return `${head}…${head.includes('\u001b[') ? '\u001b[0m' : ''}`;
}

/** The text padded with spaces to `width` columns (as String#padEnd, by columns). */
export function padWidth(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}
