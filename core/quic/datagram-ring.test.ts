import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createRing, MAX_RECORD, peekLength, push, shift } from "./datagram-ring.ts";

const record = (n: number, tag: number) => new Uint8Array(n).map((_, i) => (tag + i) & 0xff);

describe("datagram ring", () => {
  test("first in, first out, copies taken, empty datagrams too", () => {
    const r = createRing();
    const buf = record(10, 1);
    expect(push(r, buf)).toBe(true);
    buf.fill(9); // the caller reuses its buffer
    expect(push(r, new Uint8Array(0))).toBe(true);
    expect(push(r, buf)).toBe(true);
    expect(peekLength(r)).toBe(10);
    expect([...shift(r)!]).toEqual([...record(10, 1)]);
    expect(shift(r)!.length).toBe(0);
    expect([...shift(r)!]).toEqual(new Array(10).fill(9));
    expect(shift(r)).toBeUndefined();
    expect(r.count).toBe(0);
  });

  test("wraps around its end and keeps the order", () => {
    const r = createRing(new Uint8Array(100));
    // 30-byte records (32 with the prefix): three fit, the fourth wraps once two have left.
    for (let i = 0; i < 3; i++) expect(push(r, record(30, i))).toBe(true);
    expect(shift(r)![0]).toBe(0);
    expect(shift(r)![0]).toBe(1);
    expect(push(r, record(30, 3))).toBe(true);
    expect(r.wrapAt).toBe(96);
    expect(push(r, record(30, 4))).toBe(true);
    expect(r.bytes.length).toBe(100); // room was found without growing: the ring is full now
    expect(push(r, record(30, 5))).toBe(true); // grows while wrapped
    expect(r.bytes.length).toBeGreaterThan(100);
    const out = [shift(r)!, shift(r)!, shift(r)!, shift(r)!];
    expect(out.map((d) => [...d])).toEqual([2, 3, 4, 5].map((tag) => [...record(30, tag)]));
  });

  test("grows when full, never beyond the limit, and refuses over it", () => {
    const r = createRing(new Uint8Array(64));
    const limit = 10 * 102;
    let accepted = 0;
    for (let i = 0; i < 20; i++) if (push(r, record(100, i), limit)) accepted++;
    expect(accepted).toBe(10);
    expect(r.bytes.length).toBeLessThanOrEqual(limit + 102);
    for (let i = 0; i < 10; i++) expect(shift(r)![0]).toBe(i);
    expect(push(r, new Uint8Array(MAX_RECORD + 1))).toBe(false);
  });

  test("a ring kept full by a steady flow is never copied again", () => {
    // What the fair queue does under a flood: a flow at its limit loses a
    // datagram and gains one. An earlier version regrew to the same size on
    // every wrap of a full ring (5 MB copied per wrap).
    const r = createRing();
    const limit = 4096 * 1202;
    const pkt = record(1200, 7);
    while (push(r, pkt, limit));
    expect(r.count).toBe(4096);
    const bytes = r.bytes;
    for (let i = 0; i < 20_000; i++) {
      shift(r);
      expect(push(r, pkt, limit)).toBe(true);
    }
    expect(r.bytes).toBe(bytes);
    expect(r.count).toBe(4096);
  });

  test("any mix of sizes, pushes and shifts: what comes out is what went in, in order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constant(-1)), { maxLength: 300 }),
        fc.integer({ min: 0, max: 20_000 }),
        (ops, limit) => {
          const r = createRing(new Uint8Array(256));
          const model: Uint8Array[] = [];
          let tag = 0;
          for (const op of ops) {
            if (op < 0) {
              const out = shift(r);
              const want = model.shift();
              if (want === undefined) expect(out).toBeUndefined();
              else expect([...out!]).toEqual([...want]);
            } else {
              const data = record(op, tag++);
              const used = model.reduce((n, d) => n + d.length + 2, 0);
              const ok = push(r, data, limit);
              expect(ok).toBe(used + op + 2 <= limit);
              if (ok) model.push(data);
            }
            expect(r.count).toBe(model.length);
            expect(r.bytes.length).toBeLessThanOrEqual(Math.max(256, limit + 3002));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
