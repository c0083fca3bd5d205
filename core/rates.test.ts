import { describe, expect, test } from "bun:test";
import { createRateWindow, roundRate } from "./rates.ts";

describe("createRateWindow", () => {
  test("per-second rates over the window, per value", () => {
    const w = createRateWindow(10_000);
    expect(w.rate("x")).toEqual([]);
    w.sample(new Map([["x", [0, 0]]]), 0);
    expect(w.rate("x")).toEqual([0, 0]);
    w.sample(new Map([["x", [100, 10]]]), 1_000);
    expect(w.rate("x")).toEqual([100, 10]);
    for (let t = 2; t <= 20; t++) w.sample(new Map([["x", [t * 100, t * 10 + (t > 15 ? 500 : 0)]]]), t * 1_000);
    // Window of 10 s: from t=10 to t=20; the second value jumped by 500 at t=16.
    expect(w.seconds()).toBe(10);
    expect(w.rate("x")).toEqual([100, 60]);
  });

  test("a counter newer than the window is rated from its first sample; a reset never goes negative", () => {
    const w = createRateWindow(10_000);
    w.sample(new Map([["a", [0]]]), 0);
    w.sample(new Map([["a", [50]], ["b", [0]]]), 1_000);
    w.sample(new Map([["a", [100]], ["b", [30]]]), 2_000);
    expect(w.rate("b")).toEqual([30]);
    expect(w.rate("a")).toEqual([50]);
    w.sample(new Map([["a", [0]], ["b", [30]]]), 3_000);
    expect(w.rate("a")).toEqual([0]);
    expect(w.rate("gone")).toEqual([]);
  });

  test("roundRate", () => {
    expect(roundRate(1234.56)).toBe(1235);
    expect(roundRate(3.14159)).toBe(3.1);
  });
});
