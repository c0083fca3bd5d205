import { expect, test } from "bun:test";
import { createFlushPacer, MAX_BATCH_WAIT_MS } from "./flush-pacer.ts";

/** A pacer whose flush counts its runs (and reports work, as a real flush would). */
function counted(work = () => true, maxBatchWaitMs = MAX_BATCH_WAIT_MS) {
  const counter = { flushes: 0 };
  const pacer = createFlushPacer(() => {
    pacer.begin(work());
    counter.flushes++;
  }, maxBatchWaitMs);
  return { pacer, counter };
}

const microtask = () => new Promise<void>((resolve) => queueMicrotask(resolve));

/** Flushes back to back, far closer than BUSY_GAP_MS, until the smoothed gap is below it. */
async function makeBusy(pacer: ReturnType<typeof createFlushPacer>) {
  for (let i = 0; i < 1_000 && !pacer.busy; i++) {
    pacer.request();
    await microtask();
  }
  expect(pacer.busy).toBe(true);
}

test("idle, a request flushes right after the current callback, once for all requests of it", async () => {
  const { pacer, counter } = counted();
  pacer.request();
  pacer.request();
  pacer.request();
  expect(counter.flushes).toBe(0);
  await microtask();
  expect(counter.flushes).toBe(1);
});

test("busy, requests gather until a timer, not a microtask, and leave in one flush", async () => {
  // A long batch wait, so that only the timer can end this batch however slow the machine.
  const { pacer, counter } = counted(() => true, 10_000);
  // It turns busy at a flush, so no batch is left waiting.
  await makeBusy(pacer);
  const before = counter.flushes;
  pacer.request();
  await microtask();
  pacer.request();
  await microtask();
  // Without the busy rule each of these would have flushed on its own.
  expect(counter.flushes).toBe(before);
  // The zero timer (a millisecond or so); bounded at about a second.
  for (let i = 0; i < 1_000 && counter.flushes === before; i++) await new Promise((r) => setTimeout(r, 1));
  expect(counter.flushes).toBe(before + 1);
});

test("busy, a batch older than MAX_BATCH_WAIT_MS is flushed by the next request (a starved timer cannot hold it)", async () => {
  const { pacer, counter } = counted();
  await makeBusy(pacer);
  // The first may flush a batch left from making it busy; then the second starts one.
  pacer.request();
  pacer.request();
  const before = counter.flushes;
  // Block the loop: the zero timer cannot run meanwhile.
  const until = performance.now() + MAX_BATCH_WAIT_MS + 0.2;
  while (performance.now() < until);
  pacer.request();
  expect(counter.flushes).toBe(before + 1);
});

test("flushes that found no work do not count as load", async () => {
  const { pacer, counter } = counted(() => false);
  // Back-to-back empty flushes (a microtask after a flush already done) leave the pacer idle.
  for (let i = 0; i < 100; i++) {
    pacer.request();
    await microtask();
  }
  expect(counter.flushes).toBe(100);
  expect(pacer.busy).toBe(false);
});
