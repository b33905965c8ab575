/**
 * Which characters a terminal shows as themselves. Text from other clients (names, gids, query
 * text) may hold characters that are invisible (zero-width spaces and joiners, soft hyphens, tag
 * characters, the Hangul fillers), reorder what is around them (bidirectional controls), or are
 * not text at all (lone surrogates, private-use and unassigned code points, noncharacters). Such a
 * character is shown escaped (`\u200b`), and a value holding one is never printed inline in a
 * command or statement for someone to paste (src/core/printed.ts). Pure.
 */

/** Invisible, reordering, or not text. Control characters are handled apart (they are never shown). */
const HIDDEN = /[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Cs}\p{Co}\p{Cn}\u2028\u2029]/gu;
const HAS_HIDDEN = /[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Cs}\p{Co}\p{Cn}\u2028\u2029]/u;
/** Every hidden character is outside ASCII: only runs of such characters need the Unicode test. */
const NON_ASCII_RUN = /[^\u0000-\u007f]+/g;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const PICTOGRAPH = /\p{Extended_Pictographic}/u;
const EMOJI_MODIFIER = /\p{Emoji_Modifier}/u;
/** Spaces that look like a space and are not one (no-break, ideographic, ...). */
const OTHER_SPACE = /[\p{Zs}]/u;
const COMBINING = /^\p{M}/u;

/** The code point before `offset`, skipping one variation selector or skin-tone modifier. */
function pictographBefore(s: string, offset: number): boolean {
  const before = [...s.slice(Math.max(0, offset - 6), offset)];
  let prev = before.pop();
  if (prev !== undefined && (prev === '\ufe0f' || EMOJI_MODIFIER.test(prev))) prev = before.pop();
  return prev !== undefined && PICTOGRAPH.test(prev);
}

/**
 * Variation selectors after a pictograph and zero-width joiners between two are part of an emoji
 * (`☕️`, `👩‍💻`): the terminal draws them, they hide nothing.
 */
function partOfEmoji(ch: string, s: string, offset: number): boolean {
  if (ch === '\ufe0f' || ch === '\ufe0e') return pictographBefore(s, offset);
  if (ch !== '\u200d') return false;
  const next = String.fromCodePoint(s.codePointAt(offset + 1) ?? 0);
  return pictographBefore(s, offset) && PICTOGRAPH.test(next);
}

/**
 * `\u200b`: the escape that shows a hidden character; past U+FFFF as its surrogate pair
 * (`\udb40\udc01`), so the same escape is also valid JSON for the same character.
 */
export function escapeCodePoint(ch: string): string {
  let out = '';
  for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/**
 * Does the text hold a hidden character? The Unicode class is tested on the runs of non-ASCII
 * characters only: over a whole document (a 100 KB JSON report) that is a tenth of the time, and
 * a run keeps a surrogate pair whole.
 */
export function hasHidden(text: string): boolean {
  for (const run of text.matchAll(NON_ASCII_RUN)) if (HAS_HIDDEN.test(run[0])) return true;
  return false;
}

/** Shows every hidden character as its escape; emoji sequences stay whole. */
export function revealHidden(text: string): string {
  if (!hasHidden(text)) return text;
  return text.replace(HIDDEN, (ch: string, offset: number, s: string) => (partOfEmoji(ch, s, offset) ? ch : escapeCodePoint(ch)));
}

/**
 * Can this value be printed inline in a command or statement, and read and pasted exactly as it
 * is? No control, hidden or replacement character (U+FFFD: the text was not valid), no space other
 * than U+0020 (a no-break space looks like a space and is not one), not empty, and not starting
 * with a combining mark (it would draw onto the quote before it).
 */
export function showable(value: string): boolean {
  if (value === '' || CONTROL.test(value) || value.includes('\ufffd') || COMBINING.test(value)) return false;
  if (revealHidden(value) !== value) return false;
  for (const ch of value) if (ch !== ' ' && OTHER_SPACE.test(ch)) return false;
  return true;
}
