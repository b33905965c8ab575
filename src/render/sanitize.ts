/**
 * Text from other clients (query, application_name, user and host names) is data. Before it
 * reaches a terminal: line breaks and tabs become spaces, and every other control character (ESC
 * and the 8-bit C1 controls that begin escape sequences among them) and every hidden character
 * (zero-width, bidirectional, not text: src/core/text.ts) is shown as its escape (`\u001b`,
 * `\u0007`, `\u200b`), so nothing a client wrote can move the cursor, set the title, write the
 * clipboard, recolour, reorder or hide part of the screen. An escape sequence is shown, never
 * removed: removing one took what followed its introducer with it (an OSC runs to its terminator
 * or the end of the text, a CSI its parameters and one more character), so a statement showed
 * other than it runs. The one exception is a colour code exactly as dbdoctor writes its own
 * (OWN_SGR), which hides nothing but itself: it is removed, so text dbdoctor styled and then
 * passes through here (a prompt's choices) reads as plain text.
 *
 * `terminalText` is what the one writer (src/ui/output.ts) applies to every byte it writes: the
 * same rules, except that line breaks stay and dbdoctor's own colour codes pass.
 */
import { escapeCodePoint, hasHidden, revealHidden } from '../core/text.js';
import { displayWidth, headToWidth } from './width.js';

/** The SGR sequences chalk writes for the styles dbdoctor uses (weight, italic, underline, inverse, colours, reset). */
const OWN_SGR_ANYWHERE = /\u001b\[(?:0|1|2|3|4|7|22|23|24|27|3[0-7]|39|9[0-7])m/g;
const OWN_SGR = new RegExp(`^${OWN_SGR_ANYWHERE.source}$`);
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

/** Every control character but a line feed (tabs, carriage returns, ESC, the C1 controls, ...). */
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

/**
 * No control character but line breaks, and no hidden character: what `terminalText` returns as
 * it is (text beyond ASCII, a report with an ellipsis or a name in another script, without
 * splitting it into lines).
 */
function nothingToShow(text: string): boolean {
  return plainLines(text) || (!CONTROLS_BUT_NEWLINE.test(text) && !hasHidden(text));
}

export function sanitize(text: string | null | undefined): string {
  if (text === null || text === undefined) return '';
  if (!SUSPECT.test(text)) return text;
  return revealHidden(text.replace(OWN_SGR_ANYWHERE, '').replace(BREAKS, ' ').replace(CONTROLS, escapeCodePoint));
}

/** Sanitized, whitespace collapsed, and cut to `max` columns with an ellipsis (never inside a character). */
export function oneLine(text: string | null | undefined, max = Number.POSITIVE_INFINITY): string {
  const s = sanitize(text).replace(/\s+/g, ' ').trim();
  if (max === Number.POSITIVE_INFINITY || displayWidth(s) <= max) return s;
  return max <= 1 ? headToWidth(s, max) : `${headToWidth(s, max - 1)}…`;
}

const SGR_SPLIT = /(\u001b\[[0-9;]*m)/;

/**
 * Text for the terminal, whoever built it: every line sanitized; line breaks kept; dbdoctor's own
 * colour codes kept with `colour` (removed without); any other escape shown. Idempotent.
 */
export function terminalText(text: string, colour: boolean): string {
  if (nothingToShow(text)) return text;
  const parts = text.split(SGR_SPLIT);
  let out = '';
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (i % 2 === 1) out += OWN_SGR.test(part) ? (colour ? part : '') : sanitize(part);
    else out += part.split('\n').map(sanitize).join('\n');
  }
  return out;
}
