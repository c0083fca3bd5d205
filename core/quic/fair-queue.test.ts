import { describe, expect, test } from "bun:test";
import {
  clear,
  createFairQueue,
  dequeue,
  enqueue,
  idleSinceLastLook,
  MAX_FLOW_QUEUE,
  MAX_QUEUED,
} from "./fair-queue.ts";

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

  test("a datagram too large for a record is refused and leaves no empty flow behind", () => {
    const q = createFairQueue();
    expect(enqueue(q, 3, 3, new Uint8Array(70_000))).toBe(false);
    expect(q.bySource.size).toBe(0);
    expect(q.active.length).toBe(0);
    enqueue(q, 1, 1, bytes(10, 1));
    expect(drain(q).map((d) => d[0])).toEqual([1]);
  });

  test("a flow that empties and fills again keeps its order and contents", () => {
    const q = createFairQueue();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 50; i++) enqueue(q, 1, 1, bytes(1200, round * 50 + i));
      for (let i = 0; i < 50; i++) {
        const d = dequeue(q)!;
        expect(d.length).toBe(1200);
        expect(d.every((b) => b === round * 50 + i)).toBe(true);
      }
      expect(dequeue(q)).toBeUndefined();
    }
  });

  test("an emptied flow's ring serves the next flow; a queue is idle once a whole look passed without use", () => {
    const q = createFairQueue();
    enqueue(q, 1, 1, bytes(100, 1));
    dequeue(q);
    expect(q.spare.length).toBe(1);
    enqueue(q, 2, 2, bytes(100, 2));
    expect(q.spare.length).toBe(0);
    expect(idleSinceLastLook(q)).toBe(false); // something waits
    expect(dequeue(q)![0]).toBe(2);
    expect(idleSinceLastLook(q)).toBe(true); // nothing queued since the last look
    enqueue(q, 3, 3, bytes(10, 3));
    dequeue(q);
    expect(idleSinceLastLook(q)).toBe(false); // empty now, but used since the last look
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
