// Datagrams dropped, counted by reason: the one way every program builds its
// drop counters. A hot path holds the cell of each reason it knows
// (`drops.cells.queue_full.inc()`: one field add, no lookup); reasons that
// arrive as data (the engine's packet drops, the relay's route results) go
// through `count`, which makes a reason's cell on first use and keeps it.
import type { CounterCell, CounterFamily } from "./cells.ts";

export interface DropCounter<R extends string> {
  /** The cell of each reason named when the counter was made. */
  readonly cells: { readonly [K in R]: CounterCell };
  /** Counts `n` drops for `reason`: a named one, or one that arrives as data (made on first use). */
  count(reason: string, n?: number): void;
}

/** The engine's drops that are about a datagram or a limit keep their names; the rest are stray packets. */
const ENGINE_DROPS_KEPT = new Set(["rate_limited", "address_limit", "handshake_limit", "oversized", "queue_full"]);

/** The drop label of a reason the QUIC engine reports (`onDrop`): `packet_*` for packets refused before any connection. */
export function engineDropLabel(reason: string): string {
  return ENGINE_DROPS_KEPT.has(reason) ? reason : `packet_${reason}`;
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
      // An open reason: the family's label type names only the closed set.
      if (cell === undefined) byReason.set(reason, cell = family.child({ reason: reason as R }));
      cell.inc(n);
    },
  };
}
