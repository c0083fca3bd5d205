import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  createSegmentReader,
  createStreamHeaderReader,
  decodeStreamHeader,
  encodeEndSegment,
  encodeSegmentPrefix,
  encodeStreamHeader,
  MAX_SEGMENT,
  normaliseResetCode,
  SEGMENT_PREFIX_LEN,
  STREAM_HEADER_LEN,
  STREAM_OPEN,
  StreamResetCode,
  streamResetName,
  writeStreamHeader,
} from "./stream.ts";

const FC = { seed: 42, numRuns: 2000 };

describe("stream header", () => {
  test("exact wire layout", () => {
    expect(STREAM_OPEN).toBe(0x01);
    expect(STREAM_HEADER_LEN).toBe(3);
    expect(encodeStreamHeader(0x0102)).toEqual(Uint8Array.of(0x01, 0x01, 0x02));
    expect(encodeStreamHeader(0xffff)).toEqual(Uint8Array.of(0x01, 0xff, 0xff));
  });

  test("encoder rejects channels that are not granted u16s", () => {
    for (const bad of [0, -1, 0x10000, 1.5, Number.NaN]) expect(() => encodeStreamHeader(bad)).toThrow();
    expect(() => writeStreamHeader(new Uint8Array(2), 1)).toThrow();
  });

  test("decode: truncated, unknown type, channel 0", () => {
    expect(decodeStreamHeader(Uint8Array.of(1, 0))).toMatchObject({ ok: false, error: { kind: "truncated" } });
    expect(decodeStreamHeader(Uint8Array.of(2, 0, 1))).toMatchObject({ ok: false, error: { kind: "unknown_type" } });
    expect(decodeStreamHeader(Uint8Array.of(1, 0, 0))).toMatchObject({ ok: false, error: { kind: "bad_value" } });
    expect(decodeStreamHeader(Uint8Array.of(1, 0, 7))).toEqual({ ok: true, value: { channel: 7 } });
  });

  test("reader: whole header and payload in one chunk", () => {
    const r = createStreamHeaderReader();
    const result = r.push(Uint8Array.of(1, 0, 9, 0xaa, 0xbb));
    expect(result).toEqual({ ok: true, channel: 9, rest: Uint8Array.of(0xaa, 0xbb) });
  });

  test("reader: split one byte at a time, rest is empty", () => {
    const r = createStreamHeaderReader();
    expect(r.push(Uint8Array.of(1))).toBeNull();
    expect(r.push(new Uint8Array(0))).toBeNull();
    expect(r.push(Uint8Array.of(0x12))).toBeNull();
    expect(r.push(Uint8Array.of(0x34))).toEqual({ ok: true, channel: 0x1234, rest: new Uint8Array(0) });
  });

  test("reader: a wrong type byte fails at once, without waiting for the rest", () => {
    const r = createStreamHeaderReader();
    expect(r.push(Uint8Array.of(0x47))).toMatchObject({ ok: false, error: { kind: "unknown_type" } });
  });

  test("reader: channel 0 is bad_value; FIN mid-header is truncated", () => {
    expect(createStreamHeaderReader().push(Uint8Array.of(1, 0, 0, 5))).toMatchObject({
      ok: false,
      error: { kind: "bad_value" },
    });
    const r = createStreamHeaderReader();
    r.push(Uint8Array.of(1, 0));
    expect(r.truncated()).toMatchObject({ kind: "truncated", message: expect.stringContaining("2 of the 3") });
  });

  test("reader: any split of header + payload yields the same channel and payload", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffff }),
        fc.uint8Array({ maxLength: 64 }),
        fc.array(fc.integer({ min: 0, max: 80 }), { maxLength: 6 }),
        (channel, payload, cuts) => {
          const wire = new Uint8Array(STREAM_HEADER_LEN + payload.length);
          writeStreamHeader(wire, channel);
          wire.set(payload, STREAM_HEADER_LEN);
          const points = [...new Set(cuts.map((c) => Math.min(c, wire.length)))].sort((a, b) => a - b);
          const r = createStreamHeaderReader();
          let got: { channel: number; rest: Uint8Array } | null = null;
          const after: number[] = [];
          let prev = 0;
          for (const end of [...points, wire.length]) {
            const chunk = wire.subarray(prev, end);
            prev = end;
            if (got) {
              after.push(...chunk);
              continue;
            }
            const result = r.push(chunk);
            if (result === null) continue;
            if (!result.ok) throw new Error(result.error.message);
            got = { channel: result.channel, rest: result.rest.slice() };
          }
          expect(got).not.toBeNull();
          expect(got!.channel).toBe(channel);
          expect(Uint8Array.from([...got!.rest, ...after])).toEqual(payload);
        },
      ),
      FC,
    );
  });

  test("reader never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 5 }), { maxLength: 5 }), (chunks) => {
        const r = createStreamHeaderReader();
        for (const c of chunks) if (r.push(c) !== null) break;
      }),
      FC,
    );
  });
});

describe("stream reset codes", () => {
  test("values and names", () => {
    expect(StreamResetCode).toEqual({
      SERVICE_DOWN: 0x10,
      CONNECT_FAILED: 0x11,
      ABORTED: 0x12,
      PROTOCOL: 0x13,
      NOT_ALLOWED: 0x14,
      LIMIT_EXCEEDED: 0x15,
      DRAINING: 0x16,
    });
    expect(streamResetName(0x11)).toBe("connect_failed");
    expect(streamResetName(0)).toBe("other");
    expect(normaliseResetCode(0x14)).toBe(0x14);
    // Codes from a foreign or future peer become ABORTED when passed on.
    expect(normaliseResetCode(0)).toBe(StreamResetCode.ABORTED);
    expect(normaliseResetCode(0x99)).toBe(StreamResetCode.ABORTED);
  });
});

/** Frames payloads as segments followed by END, as a sender does. */
function frame(payloads: Uint8Array[]): Uint8Array {
  const parts = payloads.filter((p) => p.length > 0).flatMap((p) => [encodeSegmentPrefix(p.length), p]);
  parts.push(encodeEndSegment());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

describe("segments", () => {
  test("exact wire layout", () => {
    expect(SEGMENT_PREFIX_LEN).toBe(4);
    expect(encodeSegmentPrefix(0x01020304)).toEqual(Uint8Array.of(1, 2, 3, 4));
    expect(encodeSegmentPrefix(MAX_SEGMENT)).toEqual(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    expect(encodeEndSegment()).toEqual(Uint8Array.of(0, 0, 0, 0));
    for (const bad of [0, -1, 2 ** 32, 0.5]) expect(() => encodeSegmentPrefix(bad)).toThrow();
  });

  test("payload passes through unbuffered; END then FIN is a clean end", () => {
    const r = createSegmentReader();
    const got: number[] = [];
    const on = (b: Uint8Array) => got.push(...b);
    expect(r.push(Uint8Array.of(0, 0, 0, 3, 7), on)).toBeNull();
    expect(got).toEqual([7]); // delivered before the segment is complete
    expect(r.push(Uint8Array.of(8, 9, 0, 0), on)).toBeNull();
    expect(r.push(Uint8Array.of(0, 0), on)).toBe("end");
    expect(got).toEqual([7, 8, 9]);
    expect(r.ended).toBe(true);
    expect(r.finish()).toBeNull();
    expect(r.push(new Uint8Array(0), on)).toBe("end");
  });

  test("bytes after END are trailing_bytes; FIN without END is truncated", () => {
    const r = createSegmentReader();
    expect(r.push(Uint8Array.of(0, 0, 0, 0, 1), () => {})).toMatchObject({ kind: "trailing_bytes" });
    const open = createSegmentReader();
    open.push(Uint8Array.of(0, 0, 0, 2, 1), () => {});
    expect(open.finish()).toMatchObject({ kind: "truncated", message: expect.stringContaining("inside a segment") });
    const boundary = createSegmentReader();
    boundary.push(Uint8Array.of(0, 0, 0, 1, 1), () => {});
    expect(boundary.finish()).toMatchObject({ kind: "truncated", message: expect.stringContaining("without an END") });
  });

  test("lengths above 2^31 stay positive", () => {
    const r = createSegmentReader();
    let n = 0;
    r.push(Uint8Array.of(0x80, 0, 0, 0, 1, 2), (b) => (n += b.length));
    expect(n).toBe(2);
    expect(r.finish()?.message).toContain(`${0x80000000 - 2} payload bytes`);
  });

  test("any payloads, any split: the same bytes come out, then END", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 8 }),
        (payloads, cuts) => {
          const wire = frame(payloads);
          const points = [...new Set(cuts.map((c) => Math.min(c, wire.length)))].sort((a, b) => a - b);
          const r = createSegmentReader();
          const got: number[] = [];
          let status: ReturnType<typeof r.push> = null;
          let prev = 0;
          for (const end of [...points, wire.length]) {
            status = r.push(wire.subarray(prev, end), (b) => got.push(...b));
            prev = end;
          }
          expect(status).toBe("end");
          expect(Uint8Array.from(got)).toEqual(Uint8Array.from(payloads.flatMap((p) => [...p])));
        },
      ),
      FC,
    );
  });
});
