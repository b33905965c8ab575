/**
 * Long tables (a row per session: connections --list, the queries sections, the terminate plan)
 * are drawn in slices, since cli-table3 lays one table out in rows² time; the text must be exactly
 * what one table of the same rows gives, bordered or not, at every slice boundary.
 */
import { describe, expect, test } from '@jest/globals';
import { Chalk } from 'chalk';
import { fittedTable, fitWidths, listTable, type ColumnSpec } from '../../src/render/connections.js';
import { longTable, SLICE_ROWS, table } from '../../src/render/table.js';

const c = new Chalk({ level: 3 });
const WORDS = ['x', 'idle in transaction', c.yellow('idle in xact'), '日本語のアプリ', 'a'.repeat(70), '', c.red('12m'), '🙂 ok'];

function columns(rows: number): ColumnSpec[] {
  return ['pid', 'application', 'state', 'age', 'query'].map((head, j) => ({
    head,
    cells: Array.from({ length: rows }, (_, i) => `${WORDS[(i * (j + 3)) % WORDS.length]}${j === 0 ? i : ''}`),
    ...(j === 4 ? { min: 10 } : j === 1 ? { min: 3, max: 20 } : {}),
  }));
}

/** What one cli-table3 table of all the rows draws. */
function oneTable(cols: ColumnSpec[], widths: number[], extra: Parameters<typeof table>[0] = {}): string {
  const t = table({ head: cols.map((x) => x.head), colWidths: widths, ...extra });
  for (let i = 0; i < cols[0]!.cells.length; i++) t.push(cols.map((x) => x.cells[i] ?? ''));
  return t.toString();
}

describe('a long table is drawn as one table would be', () => {
  const sizes = [0, 1, SLICE_ROWS - 1, SLICE_ROWS, SLICE_ROWS + 1, 2 * SLICE_ROWS, 2 * SLICE_ROWS + 1];
  test.each(sizes)('%i rows, bordered (fittedTable)', (rows) => {
    const cols = columns(rows);
    for (const width of [60, 120]) {
      const widths = fitWidths(cols, width, cols.length * 3 + 1).map((w) => w + 2);
      expect(fittedTable(cols, width)).toBe(oneTable(cols, widths));
      const align: Array<'left' | 'right'> = ['right', 'left', 'left', 'right', 'left'];
      expect(fittedTable(cols, width, align)).toBe(oneTable(cols, widths, { colAligns: align }));
    }
  });

  test.each(sizes)('%i rows, borderless (longTable as listTable uses it)', (rows) => {
    const cols = columns(rows);
    const widths = fitWidths(cols, 100, cols.length - 1);
    const blank = { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' ' };
    const opts = { chars: blank, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 } };
    const rowsOf = cols[0]!.cells.map((_, i) => cols.map((x) => x.cells[i] ?? ''));
    expect(longTable({ head: cols.map((x) => x.head), colWidths: widths, ...opts }, rowsOf, false)).toBe(oneTable(cols, widths, opts));
    // and listTable is that, each line without trailing blanks and within the width
    const listed = listTable(cols, 100).split('\n');
    expect(listed).toHaveLength(rows + 1);
    for (const l of listed) expect(l).not.toMatch(/\s$/);
  });

  test('lines between rows (cli-table3\'s default chars for those not given) or alignment per row: drawn as one table', () => {
    const cols = columns(2 * SLICE_ROWS + 1);
    const widths = fitWidths(cols, 100, cols.length * 3 + 1).map((w) => w + 2);
    const rowsOf = cols[0]!.cells.map((_, i) => cols.map((x) => x.cells[i] ?? ''));
    // only the top line given: cli-table3 draws its own lines between rows
    const topOnly = { chars: { top: '-' } };
    expect(longTable({ head: cols.map((x) => x.head), colWidths: widths, ...topOnly }, rowsOf, true)).toBe(oneTable(cols, widths, topOnly));
    const perRow = { rowAligns: rowsOf.map((_, i): 'top' | 'bottom' => (i % 2 ? 'top' : 'bottom')) };
    expect(longTable({ head: cols.map((x) => x.head), colWidths: widths, ...perRow }, rowsOf, true)).toBe(oneTable(cols, widths, perRow));
  });
});
