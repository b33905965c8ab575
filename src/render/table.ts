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
