/**
 * Text from other clients (query, application_name, user and host names) is data. Before it
 * reaches a terminal: escape sequences (CSI, OSC, DCS, ...) are removed, line breaks and tabs
 * become spaces, every other control character and every hidden character (zero-width,
 * bidirectional, not text: src/core/text.ts) is shown as its escape (`\u0007`, `\u200b`), so
 * nothing a client wrote can move the cursor, set the title, write the clipboard, recolour,
 * reorder or hide part of the screen.
 *
 * `terminalText` is what the one writer (src/ui/output.ts) applies to every byte it writes: the
 * same rules, except that line breaks stay and dbdoctor's own colour codes pass.
 */
import { escapeCodePoint, revealHidden } from '../core/text.js';
import { displayWidth, headToWidth } from './width.js';

// ESC [ ... final byte | ESC ] ... (BEL | ESC \) | ESC P/X/^/_ ... ESC \ | ESC + one char | 8-bit CSI/OSC
const ESCAPES =
  /\u001b\[[\u0030-\u003f]*[\u0020-\u002f]*[\u0040-\u007e]?|\u001b[\]PX^_][\s\S]*?(?:\u0007|\u001b\\|\u009c|$)|\u001b[\s\S]?|\u009b[\u0030-\u003f]*[\u0020-\u002f]*[\u0040-\u007e]?|[\u009d\u0090\u0098\u009e\u009f][\s\S]*?(?:\u0007|\u009c|$)/g;
const BREAKS = /[\t\n\u000b\u000c\r\u0085]/g;
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
/** Printable ASCII is returned as it is (most text); anything else is looked at. */
const SUSPECT = /[^\u0020-\u007e]/;
/** The same, line breaks aside: text of printable ASCII lines (a JSON document, say) is written as it is. */
const SUSPECT_BUT_BREAKS = /[^\n\u0020-\u007e]/;

/** Printable ASCII and line breaks only: nothing in it for a terminal to act on, nothing to escape. */
export function plainLines(text: string): boolean {
  return !SUSPECT_BUT_BREAKS.test(text);
}

export function sanitize(text: string | null | undefined): string {
  if (text === null || text === undefined) return '';
  if (!SUSPECT.test(text)) return text;
  return revealHidden(text.replace(ESCAPES, '').replace(BREAKS, ' ').replace(CONTROLS, escapeCodePoint));
}

/** Sanitized, whitespace collapsed, and cut to `max` columns with an ellipsis (never inside a character). */
export function oneLine(text: string | null | undefined, max = Number.POSITIVE_INFINITY): string {
  const s = sanitize(text).replace(/\s+/g, ' ').trim();
  if (max === Number.POSITIVE_INFINITY || displayWidth(s) <= max) return s;
  return max <= 1 ? headToWidth(s, max) : `${headToWidth(s, max - 1)}…`;
}

/** The SGR sequences chalk writes for the styles dbdoctor uses (weight, italic, underline, colours, reset). */
const OWN_SGR = /^\u001b\[(?:0|1|2|3|4|22|23|24|3[0-7]|39|9[0-7])m$/;
const SGR_SPLIT = /(\u001b\[[0-9;]*m)/;

/**
 * Text for the terminal, whoever built it: every line sanitized; line breaks kept; with `colour`,
 * dbdoctor's own colour codes kept (and any other escape removed). Idempotent.
 */
export function terminalText(text: string, colour: boolean): string {
  if (plainLines(text)) return text;
  const parts = text.split(SGR_SPLIT);
  let out = '';
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (i % 2 === 1) out += colour && OWN_SGR.test(part) ? part : '';
    else out += part.split('\n').map(sanitize).join('\n');
  }
  return out;
}
