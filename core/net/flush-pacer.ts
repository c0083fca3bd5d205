/**
 * When a flush that gathers outgoing work runs, for the QUIC scheduler and the
 * plain-datagram send batcher alike.
 *
 * Idle, a flush runs right after the callback that asked for it (a
 * microtask; Bun drains microtasks after every received packet): lowest
 * latency. Busy, when flushes come back to back (their smoothed gap is under
 * BUSY_GAP_MS), it waits for a zero timer so that a whole batch of received
 * packets is handled first and one sendmmsg carries what they produced.
 * (setImmediate would be quicker, but a loop woken only by UDP does not always
 * run it.) That timer runs only when the loop has no socket work left, so
 * under a flood it can starve for hundreds of milliseconds: once a batch is
 * MAX_BATCH_WAIT_MS old (from its first request), the next request flushes it
 * at once.
 */

/** Flushes closer together than this (smoothed) mean the process is busy: batch. */
export const BUSY_GAP_MS = 0.1;
/** While busy, a batch waits at most this long once more work arrives. */
export const MAX_BATCH_WAIT_MS = 0.25;

export interface FlushPacer {
  /** Work was queued: make sure a flush follows (or run it now, if the batch has waited too long). */
  request(): void;
  /**
   * The flush calls this first, however it was started: the requested flush
   * is under way. A flush that found work counts toward the load signal.
   */
  begin(foundWork: boolean): void;
  /** Flushes are coming back to back: requests gather for the timer. */
  readonly busy: boolean;
}

/** A pacer's state; `flush` must call `begin` first. */
interface PacerState {
  readonly flush: () => void;
  /** MAX_BATCH_WAIT_MS unless given (tests). */
  readonly maxBatchWaitMs: number;
  /** A flush is on its way (a microtask or the zero timer): more requests only add to it. */
  scheduled: boolean;
  /** A zero timer is on its way (at most one at a time). */
  timerPending: boolean;
  /** Busy: when the batch waiting for the timer began (performance.now()). */
  batchStart: number;
  /** When the last flush with work ran (performance.now()). */
  lastFlush: number;
  /** Smoothed gap between flushes with work: the load signal. */
  gapMs: number;
  /** onZeroTimer bound once: no closure per batch. */
  readonly onZeroTimer: () => void;
}

export function createFlushPacer(flush: () => void, maxBatchWaitMs = MAX_BATCH_WAIT_MS): FlushPacer {
  const p: PacerState = {
    flush,
    maxBatchWaitMs,
    scheduled: false,
    timerPending: false,
    batchStart: 0,
    lastFlush: 0,
    gapMs: 10,
    onZeroTimer: () => onZeroTimer(p),
  };
  return {
    request: () => request(p),
    begin: (foundWork) => begin(p, foundWork),
    get busy() {
      return p.gapMs < BUSY_GAP_MS;
    },
  };
}

function request(p: PacerState): void {
  if (p.scheduled) {
    if (p.gapMs < BUSY_GAP_MS && performance.now() - p.batchStart > p.maxBatchWaitMs) p.flush();
    return;
  }
  p.scheduled = true;
  if (p.gapMs >= BUSY_GAP_MS) return queueMicrotask(p.flush);
  p.batchStart = performance.now();
  if (!p.timerPending) {
    p.timerPending = true;
    setTimeout(p.onZeroTimer, 0);
  }
}

function onZeroTimer(p: PacerState): void {
  p.timerPending = false;
  if (p.scheduled) p.flush();
}

function begin(p: PacerState, foundWork: boolean): void {
  p.scheduled = false;
  if (!foundWork) return;
  const now = performance.now();
  p.gapMs = p.gapMs * 0.9 + Math.min(now - p.lastFlush, 10) * 0.1;
  p.lastFlush = now;
}
