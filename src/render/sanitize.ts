/**
 * Text from other clients (query, application_name, user and host names) is data. Before it
 * reaches a terminal: escape sequences (CSI, OSC, DCS, ...) are removed, every other control
 * character and line break becomes a space, and bidirectional overrides are dropped, so nothing a
 * client wrote can move the cursor, set the title, recolour or reorder the screen.
 */
// ESC [ ... final byte | ESC ] ... (BEL | ESC \) | ESC P/X/^/_ ... ESC \ | ESC + one char | 8-bit CSI/OSC
const ESCAPES =
  /\u001b\[[\u0030-\u003f]*[\u0020-\u002f]*[\u0040-\u007e]?|\u001b[\]PX^_][\s\S]*?(?:\u0007|\u001b\\|\u009c|$)|\u001b[\s\S]?|\u009b[\u0030-\u003f]*[\u0020-\u002f]*[\u0040-\u007e]?|[\u009d\u0090\u0098\u009e\u009f][\s\S]*?(?:\u0007|\u009c|$)/g;
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function sanitize(text: string | null | undefined): string {
  if (text === null || text === undefined) return '';
  return text.replace(ESCAPES, '').replace(CONTROLS, ' ').replace(BIDI, '');
}

/** Sanitized, whitespace collapsed, and cut to `max` characters with an ellipsis. */
export function oneLine(text: string | null | undefined, max = Number.POSITIVE_INFINITY): string {
  const s = sanitize(text).replace(/\s+/g, ' ').trim();
  if (s.length <= max) return s;
  return max <= 1 ? s.slice(0, max) : `${s.slice(0, max - 1)}…`;
}
