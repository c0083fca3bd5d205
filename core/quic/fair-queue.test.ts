import { describe, expect, test } from "bun:test";
import { clear, createFairQueue, dequeue, enqueue, MAX_FLOW_QUEUE, MAX_QUEUED } from "./fair-queue.ts";

const bytes = (n: number, tag: number) => new Uint8Array(n).fill(tag);

function drain(q: ReturnType<typeof createFairQueue>): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let d = dequeue(q); d !== undefined; d = dequeue(q)) out.push(d);
  return out;
}

describe("fair queue", () => {
  test("one source, one flow: first in, first out, copies taken", () => {
    const q = createFairQueue();
    const buf = bytes(10, 1);
    enqueue(q, 1, 1, buf);
    buf.fill(2); // the caller reuses its buffer
    enqueue(q, 1, 1, buf);
    expect(drain(q).map((d) => d[0])).toEqual([1, 2]);
    expect(q.size).toBe(0);
  });

  test("a sparse source is served within one round of a flood", () => {
    const q = createFairQueue();
    for (let i = 0; i < 100; i++) enqueue(q, 1, 1, bytes(1200, 1));
    enqueue(q, 2, 7, bytes(64, 2));
    const order = drain(q).map((d) => d[0]);
    expect(order.length).toBe(101);
    // The ping leaves after at most one quantum (~one full packet) of the flood.
    expect(order.indexOf(2)).toBeLessThanOrEqual(2);
  });

  test("bytes, not packets, are shared between sources", () => {
    const q = createFairQueue();
    for (let i = 0; i < 100; i++) enqueue(q, 1, 1, bytes(1200, 1));
    for (let i = 0; i < 100; i++) enqueue(q, 2, 1, bytes(300, 2));
    // While both have something waiting, they get about the same bytes.
    const first = drain(q).slice(0, 100);
    const big = first.filter((d) => d[0] === 1).reduce((n, d) => n + d.length, 0);
    const small = first.filter((d) => d[0] === 2).reduce((n, d) => n + d.length, 0);
    expect(big / small).toBeGreaterThan(0.7);
    expect(big / small).toBeLessThan(1.4);
  });

  test("flows of one source take turns", () => {
    const q = createFairQueue();
    for (let i = 0; i < 5; i++) enqueue(q, 1, 1, bytes(100, 1));
    for (let i = 0; i < 5; i++) enqueue(q, 1, 2, bytes(100, 2));
    expect(drain(q).map((d) => d[0])).toEqual([1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
  });

  test("a flooding flow loses its own excess, not others' datagrams", () => {
    const q = createFairQueue();
    let accepted = 0;
    for (let i = 0; i < MAX_FLOW_QUEUE + 50; i++) if (enqueue(q, 1, 1, bytes(100, 1))) accepted++;
    expect(accepted).toBe(MAX_FLOW_QUEUE);
    expect(enqueue(q, 2, 1, bytes(100, 2))).toBe(true);
    expect(enqueue(q, 1, 2, bytes(100, 3))).toBe(true);
  });

  test("the whole queue is bounded", () => {
    const q = createFairQueue();
    let accepted = 0;
    for (let flow = 0; flow < 100; flow++) {
      for (let i = 0; i < 100; i++) if (enqueue(q, flow % 7, flow, bytes(10, 1))) accepted++;
    }
    expect(accepted).toBe(MAX_QUEUED);
    expect(drain(q).length).toBe(MAX_QUEUED);
    clear(q);
    expect(dequeue(q)).toBeUndefined();
  });
});
