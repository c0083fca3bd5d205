/**
 * Gives memory back after a burst of ended connections. quiche's connections
 * live in native memory the JavaScript collector does not see, so a flood of
 * refused handshakes leaves it waiting for a collection that has no reason to
 * run; and glibc keeps freed pages unless asked. Bun: a collection, then
 * malloc_trim. Elsewhere: nothing (the runtime's collector decides).
 */
import { loadLibc } from "./libc.ts";

declare const Bun: { gc(force: boolean): void } | undefined;

/** At most one release per this long; calls in between are folded into one later release. */
const MIN_GAP_MS = 2_000;

/** Long enough after a collection for the native finalizers it queued to have run. */
const FINALIZE_WAIT_MS = 100;
/** Collections before the trim (see collectThenTrim). */
const COLLECTIONS = 2;

let last = 0;
let pending: ReturnType<typeof setTimeout> | null = null;

export function releaseNativeMemory(): void {
  if (pending !== null) return;
  const wait = Math.max(0, last + MIN_GAP_MS - Date.now());
  pending = setTimeout(run, wait);
  (pending as { unref?: () => void }).unref?.();
}

function run() {
  pending = null;
  last = Date.now();
  if (typeof Bun === "undefined") return;
  collectThenTrim(COLLECTIONS);
}

/**
 * A collection only queues the native objects' finalizers, which run on a
 * later turn of the loop, and what they free can let go of more: so collect,
 * wait a turn, collect again, wait, then trim. Trimming right after one
 * collection left a handshake flood's 70 MiB in glibc's heap.
 */
function collectThenTrim(rounds: number) {
  Bun!.gc(true);
  const next = rounds > 1 ? () => collectThenTrim(rounds - 1) : mallocTrim;
  const timer = setTimeout(next, FINALIZE_WAIT_MS);
  (timer as { unref?: () => void }).unref?.();
}

function mallocTrim() {
  loadLibc()?.mallocTrim();
}
