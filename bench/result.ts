/** The shape of one bench run, as printed and written to bench/results/*.json. */
import type { AbuseResult } from "./rows/abuse.ts";
import type { GoodputResult } from "./rows/goodput.ts";
import type { LossyResult } from "./rows/lossy.ts";
import type { MemoryResult } from "./rows/memory.ts";
import type { NaiveResult } from "./rows/naive.ts";
import type { NeighbourResult } from "./rows/neighbour.ts";
import type { RttResult } from "./rows/rtt.ts";
import type { ScaleResult } from "./rows/scale.ts";
import type { BulkResult, RrResult } from "./rows/tcp.ts";

export interface Rows {
  rtt?: RttResult;
  goodput?: GoodputResult;
  neighbour?: NeighbourResult;
  "tcp-bulk"?: BulkResult;
  "tcp-rr"?: RrResult;
  lossy?: LossyResult;
  scale?: ScaleResult;
  abuse?: AbuseResult;
  naive?: NaiveResult;
}

export interface BenchResult {
  timestamp: string;
  durationSeconds: number;
  machine: Record<string, string | number | null>;
  config: Record<string, unknown>;
  rows: Rows;
  /** RSS of the tunnel programs over the tunnel rows. */
  memory?: MemoryResult;
  /** Rows that failed, with the error: the others still ran. */
  errors: Record<string, string>;
}
