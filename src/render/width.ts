/**
 * How wide text is on a terminal, and how to cut it: by display columns (string-width: a CJK
 * character or an emoji takes two, a combining mark none), never inside a character (grapheme
 * clusters, Intl.Segmenter), keeping dbdoctor's own colour codes intact. Every renderer measures
 * and cuts through these, so names and queries in any script align in tables and are never cut in
 * half.
 *
 * string-width is loaded by `loadWidths()`, which the CLI awaits before any command whose output
 * is for people (src/cli.ts): loading it builds an Intl.Segmenter and compiles its Unicode property
 * expressions, 20-40 ms of every start-up (`npm run bench`), which a `--json` run, whose output no
 * one measures, never pays. Printable ASCII (most text) never needs it. Before it is loaded, other
 * text counts one column per character: only a machine run gets there, and nothing of it aligns.
 */

type Measure = (text: string) => number;
let stringWidth: Measure | undefined;

/** Loads string-width (once); until then widths of non-ASCII text are counted per character. */
export async function loadWidths(): Promise<void> {
  stringWidth ??= (await import('string-width')).default;
}

const PRINTABLE_ASCII = /^[\u0020-\u007e]*$/;
const SGR = /\u001b\[[0-9;]*m/y;
/**
 * Printable ASCII, the ellipsis we cut with (one column) and colour codes (none): what a table
 * line of ASCII names and cut statements is. Measured without string-width, which took ~0.8 s of
 * `connections --list` at 5,000 sessions (every line ends in a cut statement).
 */
const PLAIN_CUT = /^(?:[\u0020-\u007e\u2026]|\u001b\[[0-9;]*m)*$/;
const SGR_ALL = /\u001b\[[0-9;]*m/g;

function measure(text: string): number {
  if (stringWidth) return stringWidth(text);
  let n = 0;
  for (const _ of text.replace(/\u001b\[[0-9;]*m/g, '')) n++;
  return n;
}

/** Columns the text takes on a terminal (colour codes take none). */
export function displayWidth(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length;
  return PLAIN_CUT.test(text) ? text.replace(SGR_ALL, '').length : measure(text);
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
    // from i + 1: an ESC [ at i that is no colour code is a character of the run (searched from i,
    // the run was empty and the loop never moved on)
    const next = text.indexOf('\u001b[', i + 1);
    const run = text.slice(i, next < 0 ? text.length : next);
    for (const { segment } of graphemes.segment(run)) {
      const w = measure(segment);
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
