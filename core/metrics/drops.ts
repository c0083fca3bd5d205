// Datagrams dropped, counted by reason: the one way every program builds its
// drop counters. A hot path holds the cell of each reason it knows
// (`drops.cells.queue_full.inc()`: one field add, no lookup); reasons that
// arrive as data (the engine's packet drops, the relay's route results) go
// through `count`, which makes a reason's cell on first use and keeps it.
import type { CounterCell, CounterFamily } from "./cells.ts";

export interface DropCounter<R extends string> {
  /** The cell of each reason named when the counter was made. */
  readonly cells: { readonly [K in R]: CounterCell };
  /** Counts `n` drops for `reason`. */
  count(reason: R, n?: number): void;
}

export function dropCounter<R extends string>(
  family: CounterFamily<{ reason: R }>,
  reasons: readonly R[],
): DropCounter<R> {
  const byReason = new Map<string, CounterCell>();
  const cells = {} as Record<R, CounterCell>;
  for (const reason of reasons) {
    cells[reason] = family.child({ reason });
    byReason.set(reason, cells[reason]);
  }
  return {
    cells,
    count(reason, n = 1) {
      let cell = byReason.get(reason);
      if (cell === undefined) byReason.set(reason, cell = family.child({ reason }));
      cell.inc(n);
    },
  };
}
