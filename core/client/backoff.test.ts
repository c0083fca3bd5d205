import { describe, expect, test } from "bun:test";
import { createBackoff, sleep } from "./backoff.ts";

/** A `random` that returns the given values in turn (then the last one). */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
}

describe("createBackoff", () => {
  test("the n-th wait is drawn from [0, base * 2^n), capped", () => {
    // random() just below 1 shows each ceiling; 0.5 shows the draw scales it.
    const top = createBackoff({ baseMs: 100, capMs: 1_000, maxAttempts: 0 }, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6].map(() => top.next())).toEqual([99, 199, 399, 799, 999, 999]);
    const half = createBackoff({ baseMs: 100, capMs: 1_000, maxAttempts: 0 }, () => 0.5);
    expect([1, 2, 3].map(() => half.next())).toEqual([50, 100, 200]);
  });

  test("full jitter: a draw of 0 waits 0 ms (a fleet spreads over the whole interval)", () => {
    const b = createBackoff({ baseMs: 100, capMs: 1_000, maxAttempts: 0 }, sequence(0, 0.25));
    expect(b.next()).toBe(0);
    expect(b.next()).toBe(50);
  });

  test("counts attempts and gives up after maxAttempts", () => {
    const b = createBackoff({ baseMs: 10, capMs: 100, maxAttempts: 3 }, () => 0.5);
    expect(b.attempts).toBe(0);
    expect(b.next()).not.toBeNull();
    expect(b.next()).not.toBeNull();
    expect(b.next()).not.toBeNull();
    expect(b.attempts).toBe(3);
    expect(b.next()).toBeNull();
    // Giving up does not count as another attempt.
    expect(b.attempts).toBe(3);
  });

  test("maxAttempts 0 retries forever, and the exponent stops growing (no Infinity, no NaN)", () => {
    const b = createBackoff({ baseMs: 1, capMs: 60_000, maxAttempts: 0 }, () => 0.999999);
    let last = 0;
    for (let i = 0; i < 2_000; i++) last = b.next()!;
    expect(b.attempts).toBe(2_000);
    expect(last).toBe(59_999);
  });

  test("reset starts again from the base delay and gives the attempts back", () => {
    const b = createBackoff({ baseMs: 100, capMs: 10_000, maxAttempts: 2 }, () => 0.999999);
    b.next();
    b.next();
    expect(b.next()).toBeNull();
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(99);
  });
});

describe("sleep", () => {
  test("resolves true once the time has passed", async () => {
    const started = performance.now();
    expect(await sleep(20)).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
  });

  test("resolves false at once when the signal aborts during the wait", async () => {
    const stop = new AbortController();
    const started = performance.now();
    const slept = sleep(10_000, stop.signal);
    setTimeout(() => stop.abort(), 10);
    expect(await slept).toBe(false);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  test("resolves false without waiting when the signal has already aborted", async () => {
    const stop = new AbortController();
    stop.abort();
    expect(await sleep(10_000, stop.signal)).toBe(false);
  });

  test("removes its abort listener when it completes (a long-lived signal does not collect them)", async () => {
    const stop = new AbortController();
    let added = 0;
    let removed = 0;
    const add = stop.signal.addEventListener.bind(stop.signal);
    const remove = stop.signal.removeEventListener.bind(stop.signal);
    stop.signal.addEventListener = ((...args: Parameters<typeof add>) => (added++, add(...args))) as typeof add;
    stop.signal.removeEventListener =
      ((...args: Parameters<typeof remove>) => (removed++, remove(...args))) as typeof remove;
    for (let i = 0; i < 3; i++) expect(await sleep(1, stop.signal)).toBe(true);
    expect(added).toBe(3);
    expect(removed).toBe(3);
  });
});
