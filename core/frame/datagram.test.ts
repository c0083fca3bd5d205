import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { DatagramHeader } from "./mod.ts";
import {
  DATAGRAM_HEADER_LEN,
  datagramChannel,
  encodeDatagram,
  encodePathProbe,
  FRAME_ERROR_KINDS,
  MAX_DATAGRAM_LEN,
  MAX_TUNNEL_PAYLOAD,
  parseDatagram,
  PATH_PROBE_CHANNEL,
  writeDatagramHeader,
} from "./mod.ts";

const FC = { seed: 42, numRuns: 3000 };

const fresh = (): DatagramHeader => ({ channel: -1, flow: -1, payloadLength: -1 });

describe("datagram constants", () => {
  test("values", () => {
    expect(DATAGRAM_HEADER_LEN).toBe(6);
    expect(MAX_TUNNEL_PAYLOAD).toBe(1300);
    expect(MAX_DATAGRAM_LEN).toBe(1306);
  });
});

describe("encode and parse", () => {
  test("exact wire layout", () => {
    expect(encodeDatagram(0x0102, 0x03040506, Uint8Array.of(7, 8))).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  });

  const cases: [number, number, number][] = [
    [0, 0, 0],
    [0xffff, 0xffffffff, MAX_TUNNEL_PAYLOAD],
    [1, 0x80000000, 1],
    [0x8000, 0x7fffffff, 100],
    [42, 1, 1199],
  ];
  for (const [channel, flow, size] of cases) {
    test(`channel ${channel} flow ${flow} payload ${size}`, () => {
      const payload = Uint8Array.from({ length: size }, (_, i) => i & 0xff);
      const wire = encodeDatagram(channel, flow, payload);
      expect(wire.length).toBe(DATAGRAM_HEADER_LEN + size);
      const h = fresh();
      expect(parseDatagram(wire, wire.length, h)).toBeNull();
      expect(h).toEqual({ channel, flow, payloadLength: size });
      expect(wire.subarray(DATAGRAM_HEADER_LEN)).toEqual(payload);
    });
  }

  test("parses a prefix of a larger reused receive buffer", () => {
    const buf = new Uint8Array(2048).fill(0xaa);
    writeDatagramHeader(buf, 7, 9);
    const h = fresh();
    expect(parseDatagram(buf, 10, h)).toBeNull();
    expect(h).toEqual({ channel: 7, flow: 9, payloadLength: 4 });
    // Larger than a datagram may be, even though the buffer holds it.
    expect(parseDatagram(buf, MAX_DATAGRAM_LEN + 1, h)?.kind).toBe("oversized");
  });

  test("writeDatagramHeader writes bytes 0..5 only", () => {
    const out = new Uint8Array(10).fill(0xee);
    writeDatagramHeader(out, 0xabcd, 0x01234567);
    expect(out).toEqual(Uint8Array.of(0xab, 0xcd, 0x01, 0x23, 0x45, 0x67, 0xee, 0xee, 0xee, 0xee));
  });

  test("writeDatagramHeader overwrites an earlier header completely", () => {
    const out = new Uint8Array(6);
    writeDatagramHeader(out, 0xffff, 0xffffffff);
    writeDatagramHeader(out, 0, 0);
    expect(out).toEqual(new Uint8Array(6));
  });
});

describe("malformed datagrams", () => {
  test("shorter than the header is truncated", () => {
    const buf = new Uint8Array(6);
    for (let len = 0; len < DATAGRAM_HEADER_LEN; len++) {
      const h = fresh();
      expect(parseDatagram(buf, len, h)?.kind).toBe("truncated");
      expect(h).toEqual(fresh()); // untouched on error
    }
    expect(parseDatagram(new Uint8Array(0), 0, fresh())?.kind).toBe("truncated");
  });

  test("payload over MAX_TUNNEL_PAYLOAD is oversized", () => {
    const wire = new Uint8Array(DATAGRAM_HEADER_LEN + MAX_TUNNEL_PAYLOAD + 1);
    const h = fresh();
    const err = parseDatagram(wire, wire.length, h);
    expect(err?.kind).toBe("oversized");
    expect(err?.message).toContain("1300");
    expect(h).toEqual(fresh());
    expect(parseDatagram(new Uint8Array(65536), 65536, h)?.kind).toBe("oversized");
  });

  test("nonsense lengths are errors, not exceptions", () => {
    const buf = new Uint8Array(8);
    for (const len of [-1, Number.NaN, Number.NEGATIVE_INFINITY]) {
      expect(parseDatagram(buf, len, fresh())?.kind).toBe("truncated");
    }
    // A length beyond the buffer cannot be read: treat it like a short datagram.
    expect(parseDatagram(buf, 9, fresh())?.kind).toBe("truncated");
    expect(parseDatagram(buf, Number.POSITIVE_INFINITY, fresh())?.kind).toBe("truncated");
  });

  test("errors are preallocated, so junk floods allocate nothing", () => {
    const a = parseDatagram(new Uint8Array(2), 2, fresh());
    const b = parseDatagram(new Uint8Array(3), 3, fresh());
    expect(a).not.toBeNull();
    expect(a).toBe(b);
  });
});

describe("encode programmer errors", () => {
  test("out-of-range header values", () => {
    const out = new Uint8Array(6);
    for (const channel of [-1, 0x10000, 1.5, Number.NaN]) {
      expect(() => writeDatagramHeader(out, channel, 0)).toThrow(/channel/);
    }
    for (const flow of [-1, 2 ** 32, 0.5, Number.NaN]) {
      expect(() => writeDatagramHeader(out, 0, flow)).toThrow(/flow/);
    }
    expect(() => writeDatagramHeader(new Uint8Array(5), 0, 0)).toThrow(/at least 6/);
  });

  test("payload over MAX_TUNNEL_PAYLOAD", () => {
    expect(() => encodeDatagram(1, 1, new Uint8Array(MAX_TUNNEL_PAYLOAD + 1))).toThrow(/MAX_TUNNEL_PAYLOAD/);
  });
});

describe("properties", () => {
  test("header values round trip", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.uint8Array({ maxLength: MAX_TUNNEL_PAYLOAD }),
        (channel, flow, payload) => {
          const wire = encodeDatagram(channel, flow, payload);
          const h = fresh();
          expect(parseDatagram(wire, wire.length, h)).toBeNull();
          expect(h).toEqual({ channel, flow, payloadLength: payload.length });
        },
      ),
      FC,
    );
  });

  test("random buffers and lengths never throw, and agree with DataView", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: MAX_DATAGRAM_LEN + 20 }),
        fc.oneof(fc.integer({ min: -2, max: MAX_DATAGRAM_LEN + 30 }), fc.constant(-1)),
        (buf, rawLen) => {
          const h = fresh();
          const err = parseDatagram(buf, rawLen, h);
          if (err !== null) {
            expect(FRAME_ERROR_KINDS).toContain(err.kind);
            expect(h).toEqual(fresh());
            return;
          }
          expect(rawLen).toBeGreaterThanOrEqual(DATAGRAM_HEADER_LEN);
          expect(rawLen).toBeLessThanOrEqual(Math.min(buf.length, MAX_DATAGRAM_LEN));
          const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
          expect(h).toEqual({
            channel: view.getUint16(0),
            flow: view.getUint32(2),
            payloadLength: rawLen - DATAGRAM_HEADER_LEN,
          });
        },
      ),
      FC,
    );
  });
});

describe("path probes (channel 0)", () => {
  test("a probe of any size reads as channel 0, larger than a tunnelled datagram may be", () => {
    const probe = encodePathProbe(16_000, 1234);
    expect(probe.length).toBe(16_000);
    expect(datagramChannel(probe)).toBe(PATH_PROBE_CHANNEL);
    const header: DatagramHeader = { channel: -1, flow: -1, payloadLength: -1 };
    expect(parseDatagram(probe, probe.length, header)?.kind).toBe("oversized");
  });

  test("datagramChannel: other channels as written, null below the header length", () => {
    expect(datagramChannel(encodeDatagram(0x1234, 7, new Uint8Array(3)))).toBe(0x1234);
    expect(datagramChannel(new Uint8Array(DATAGRAM_HEADER_LEN - 1))).toBeNull();
    expect(datagramChannel(new Uint8Array(DATAGRAM_HEADER_LEN))).toBe(PATH_PROBE_CHANNEL);
  });
});
