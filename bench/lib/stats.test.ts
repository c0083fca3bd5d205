import { describe, expect, test } from "bun:test";
import { percentile, summarize } from "./stats.ts";

describe("bench stats", () => {
  test("nearest-rank percentiles", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 0.5)).toBe(50);
    expect(percentile(xs, 0.99)).toBe(99);
    expect(percentile(xs, 1)).toBe(100);
    expect(percentile([7], 0.99)).toBe(7);
    expect(Number.isNaN(percentile([], 0.5))).toBe(true);
  });

  test("summary sorts its input and does not mutate it", () => {
    const xs = [5, 1, 3, 2, 4];
    const s = summarize(xs);
    expect(s).toMatchObject({ samples: 5, min: 1, p50: 3, max: 5, mean: 3 });
    expect(xs).toEqual([5, 1, 3, 2, 4]);
  });
});
