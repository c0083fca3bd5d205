import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { clientFirstInitial } from "../../tests/raw-peer.ts";
import { type LongHeader, parseLongHeader } from "./long-header.ts";
import { type Header, quiche } from "./native.ts";

/** The fields both parsers give, as plain arrays (only an Initial's token matters to admission). */
function fields(h: LongHeader | Header) {
  return {
    ty: h.ty,
    version: h.version,
    dcid: Array.from(h.dcid),
    scid: Array.from(h.scid),
    token: h.ty === quiche.Type.Initial ? Array.from(h.token ?? []) : undefined,
  };
}

/** What quiche's own parser makes of `data` (null: it throws). */
function quicheReads(data: Uint8Array) {
  try {
    return fields(quiche.Header.fromSlice(data, 16));
  } catch {
    return null;
  }
}

function oursReads(data: Uint8Array) {
  const h = parseLongHeader(data);
  return h === null ? null : fields(h);
}

/** A real client's first Initial, on made-up addresses (it is only parsed). */
const clientInitial = () => clientFirstInitial({ host: "127.0.0.1", port: 1111 }, { host: "127.0.0.1", port: 2222 });

const CID_A = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const CID_B = Uint8Array.from({ length: 20 }, (_, i) => 100 + i);

function retryPacket(): Uint8Array {
  const out = new Uint8Array(256);
  const n = quiche.retry(CID_A, CID_B, CID_A, Uint8Array.of(7, 7, 7, 7), quiche.PROTOCOL_VERSION, out);
  return out.slice(0, n);
}

function versionNegotiation(): Uint8Array {
  const out = new Uint8Array(256);
  const n = quiche.negotiateVersion(CID_A, CID_B, out);
  return out.slice(0, n);
}

describe("parseLongHeader reads what quiche's parser reads", () => {
  test("a real client Initial: type, version, both connection IDs and the (empty) token", () => {
    const packet = clientInitial();
    const h = parseLongHeader(packet)!;
    expect(h.ty).toBe(quiche.Type.Initial);
    expect(h.version).toBe(quiche.PROTOCOL_VERSION);
    expect(h.dcid.length).toBeGreaterThanOrEqual(8);
    expect(h.token).toEqual(new Uint8Array(0));
    expect(oursReads(packet)).toEqual(quicheReads(packet));
  });

  test("an Initial that carries a token gives exactly the token's bytes", () => {
    // first byte, version 1, dcid, scid, token length 3 (one-byte varint), token, payload
    const packet = Uint8Array.of(0xc0, 0, 0, 0, 1, 8, ...CID_A.subarray(0, 8), 4, 9, 9, 9, 9, 3, 5, 6, 7, 0xaa, 0xbb);
    expect(Array.from(parseLongHeader(packet)!.token!)).toEqual([5, 6, 7]);
    expect(oursReads(packet)).toEqual(quicheReads(packet));
    // a two-byte varint length (0x40 0x03 = 3) reads the same
    const wide = Uint8Array.of(0xc0, 0, 0, 0, 1, 8, ...CID_A.subarray(0, 8), 0, 0x40, 3, 5, 6, 7);
    expect(Array.from(parseLongHeader(wide)!.token!)).toEqual([5, 6, 7]);
    expect(oursReads(wide)).toEqual(quicheReads(wide));
    // 0x41 0x02 = 258 bytes of token
    const long = Uint8Array.of(
      0xc0,
      0,
      0,
      0,
      1,
      8,
      ...CID_A.subarray(0, 8),
      0,
      0x41,
      2,
      ...new Uint8Array(258).fill(1),
      9,
    );
    expect(parseLongHeader(long)!.token!.length).toBe(258);
    expect(oursReads(long)).toEqual(quicheReads(long));
  });

  test("a retry and a version negotiation", () => {
    for (const packet of [retryPacket(), versionNegotiation()]) {
      expect(oursReads(packet)).not.toBeNull();
      expect(oursReads(packet)).toEqual(quicheReads(packet));
    }
    expect(parseLongHeader(versionNegotiation())!.ty).toBe(quiche.Type.VersionNegotiation);
    expect(parseLongHeader(retryPacket())!.ty).toBe(quiche.Type.Retry);
  });

  test("every truncation of real packets: both refuse the same ones, and read the same from the rest", () => {
    const withToken = Uint8Array.of(0xc0, 0, 0, 0, 1, 8, ...CID_A.subarray(0, 8), 0, 0x40, 5, 1, 2, 3, 4, 5, 6);
    for (const packet of [clientInitial(), retryPacket(), versionNegotiation(), withToken]) {
      for (let n = 0; n <= Math.min(packet.length, 120); n++) {
        const cut = packet.subarray(0, n);
        expect({ n, ours: oursReads(cut) }).toEqual({ n, ours: quicheReads(cut) });
      }
    }
  });

  test("QUIC v1 bounds connection IDs at 20 bytes; an unknown version may use longer ones", () => {
    const packet = (version: number, dcidLen: number, scidLen: number) =>
      Uint8Array.of(
        0xe0,
        0,
        0,
        0,
        version,
        dcidLen,
        ...new Uint8Array(dcidLen),
        scidLen,
        ...new Uint8Array(scidLen),
        1,
        2,
      );
    for (
      const [version, d, s, ok] of [[1, 20, 20, true], [1, 21, 4, false], [1, 4, 21, false], [7, 21, 21, true]] as const
    ) {
      const p = packet(version, d, s);
      expect({ version, d, s, ok: parseLongHeader(p) !== null }).toEqual({ version, d, s, ok });
      expect(oursReads(p)).toEqual(quicheReads(p));
    }
  });

  test("a short header is not a long one", () => {
    expect(parseLongHeader(Uint8Array.of(0x40, ...CID_A))).toBeNull();
  });

  test("random headers: the same verdict and the same fields as quiche", () => {
    const header = fc.record({
      first: fc.integer({ min: 0x80, max: 0xff }),
      version: fc.constantFrom(0, 1, 0xff00001d, 0x1a2a3a4a),
      // size "max": lengths over the whole range, past the 20-byte bound too
      dcid: fc.uint8Array({ maxLength: 24, size: "max" }),
      scid: fc.uint8Array({ maxLength: 24, size: "max" }),
      // declared lengths that may lie about what follows
      dcidLen: fc.option(fc.integer({ min: 0, max: 255 })),
      scidLen: fc.option(fc.integer({ min: 0, max: 255 })),
      rest: fc.uint8Array({ maxLength: 80, size: "max" }),
    });
    fc.assert(
      fc.property(header, (h) => {
        const packet = Uint8Array.of(
          h.first,
          h.version >>> 24,
          (h.version >>> 16) & 0xff,
          (h.version >>> 8) & 0xff,
          h.version & 0xff,
          h.dcidLen ?? h.dcid.length,
          ...h.dcid,
          h.scidLen ?? h.scid.length,
          ...h.scid,
          ...h.rest,
        );
        expect(oursReads(packet)).toEqual(quicheReads(packet));
      }),
      { numRuns: 5_000 },
    );
  });
});
