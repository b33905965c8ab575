/**
 * Help text at the terminal's width: commander wraps the option and command descriptions (its
 * helpWidth, set from the terminal through configureOutput); this wraps what it leaves long (the
 * examples and exit codes added after the help, a description beside a very wide term), each
 * continuation indented under the text it continues. A printed command that is too long is broken
 * between its words with " \" continuations, so it still pastes as one command.
 */
import { displayWidth } from './width.js';

/** The column where a line's text continues: after "term  " (two or more spaces), else its indent. */
function hangingIndent(line: string): number {
  const lead = /^\s*/.exec(line)?.[0].length ?? 0;
  if (lead === 0) return 0; // prose
  const item = /^(\s*\S(?:\S| (?! ))*\s{2,})\S/.exec(line);
  if (item && item[1]!.length < line.length / 2 + 10) return displayWidth(item[1]!);
  return lead + 2;
}

function wrapOne(line: string, width: number): string[] {
  if (displayWidth(line) <= width) return [line];
  const trimmed = line.trimStart();
  const lead = line.length - trimmed.length;
  // A command on a line of its own ("  dbdoctor terminate ..."): broken with shell continuations.
  if (/^dbdoctor /.test(trimmed) && !/\s{2,}/.test(trimmed)) {
    const out: string[] = [];
    let cur = ' '.repeat(lead);
    // Shell words, a quoted one whole ("idle in transaction" is one word, never broken).
    for (const word of trimmed.match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g) ?? []) {
      const candidate = cur.trim() === '' ? `${cur}${word}` : `${cur} ${word}`;
      if (displayWidth(candidate) + 2 > width && cur.trim() !== '') {
        out.push(`${cur} \\`);
        cur = `${' '.repeat(lead + 2)}${word}`;
      } else cur = candidate;
    }
    out.push(cur);
    return out;
  }
  // A comment ("  # in cron ...") goes on as a comment.
  const prefix = trimmed.startsWith('# ') ? `${' '.repeat(lead)}# ` : ' '.repeat(Math.min(hangingIndent(line), Math.floor(width / 2)));
  const out: string[] = [];
  let cur = '';
  for (const token of line.match(/ *[^ ]+/g) ?? []) {
    if (cur.trim() !== '' && displayWidth(cur) + displayWidth(token) > width) {
      out.push(cur);
      cur = prefix + token.trimStart();
    } else cur += token;
  }
  if (cur) out.push(cur);
  return out;
}

/** Every line of `text` within `width` columns (words longer than a line are left whole). */
export function wrapHelp(text: string, width: number): string {
  return text
    .split('\n')
    .flatMap((l) => wrapOne(l, width))
    .join('\n');
}

/** The width help is written at: the terminal's, at least 40, at most 120 (long lines read badly). */
export function helpWidth(columns: number): number {
  return Math.max(40, Math.min(Number.isFinite(columns) && columns > 0 ? columns : 80, 120));
}
