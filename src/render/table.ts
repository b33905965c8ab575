import Table from 'cli-table3';

type TableOptions = ConstructorParameters<typeof Table>[0];

/** A compact cli-table3 table: no lines between rows, no default red headers. */
export function table(opts: TableOptions = {}): InstanceType<typeof Table> {
  return new Table({
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    style: { head: [], border: [], 'padding-left': 1, 'padding-right': 1 },
    ...opts,
  });
}

/**
 * Rows per cli-table3 table in `longTable`. Its layout looks, for every cell, at every cell above it
 * (for row and column spans we never use), so one table of N rows costs N²: 4,000 session rows took
 * ~1 s to draw (cli-table3 0.6.5). Slices of 50 rather than 200: `connections --list` over 1,500
 * sessions 0.855x the wall time (farm-bench, 15 pairs, Node 24); 25 drew no faster than 50. What
 * is left is cli-table3's work per cell (its string widths, truncation and options per cell).
 */
export const SLICE_ROWS = 50;

/**
 * A compact table of any length, in linear time and with the same text as one table: drawn in
 * slices of SLICE_ROWS rows that share `colWidths`, the head on the first slice only; with
 * `bordered`, the bottom line of every slice but the last and the top line of every slice but the
 * first are left out (a compact table has no line between rows).
 */
export function longTable(opts: TableOptions & { head: string[]; colWidths: number[] }, rows: string[][], bordered: boolean): string {
  // Slices join exactly only where no line is drawn between rows (the chars as cli-table3 merged
  // them with its defaults, as `table` leaves them) and nothing is set per row.
  const first = table(opts);
  const { chars } = first.options;
  if (chars.mid || chars['left-mid'] || chars['mid-mid'] || chars['right-mid'] || opts.rowHeights || opts.rowAligns) {
    for (const r of rows) first.push(r);
    return first.toString();
  }
  const lines: string[] = [];
  for (let start = 0; start === 0 || start < rows.length; start += SLICE_ROWS) {
    const t = start === 0 ? first : table({ ...opts, head: [] });
    for (const r of rows.slice(start, start + SLICE_ROWS)) t.push(r);
    const drawn = t.toString().split('\n');
    const last = start + SLICE_ROWS >= rows.length;
    lines.push(...drawn.slice(bordered && start > 0 ? 1 : 0, bordered && !last ? -1 : drawn.length));
  }
  return lines.join('\n');
}
