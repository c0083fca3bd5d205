import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { ControlMessage, Decoded, FrameErrorKind, NackCode } from "./mod.ts";
import {
  ALPN,
  alpnFor,
  CONTROL_TYPE_BYTES,
  createControlReader,
  decodeControl,
  encodeControl,
  FRAME_ERROR_KINDS,
  MAX_CONTROL_MESSAGE,
  NACK_CODE_BYTES,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  validateServiceName,
  versionOfAlpn,
} from "./mod.ts";

const FC = { seed: 42, numRuns: 3000 };

// ---------------------------------------------------------------- helpers

type Part = number | number[] | Uint8Array | string;

/** Concatenates bytes; strings are written as u8 length + UTF-8. */
function bytes(...parts: Part[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else if (typeof p === "string") {
      const b = new TextEncoder().encode(p);
      out.push(b.length, ...b);
    } else out.push(...p);
  }
  return Uint8Array.from(out);
}

const u16 = (v: number): number[] => [v >>> 8, v & 0xff];
const u32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
/** Raw string field with arbitrary (possibly invalid) UTF-8 bytes. */
const rawStr = (b: number[]): number[] => [b.length, ...b];

/** Encoded body: the message without its 2-byte length prefix. */
const body = (m: ControlMessage): Uint8Array => encodeControl(m).subarray(2);

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function expectError(d: Decoded<ControlMessage>, kind: FrameErrorKind): string {
  if (d.ok) throw new Error(`expected ${kind}, decoded ${JSON.stringify(d.value)}`);
  expect(d.error.kind).toBe(kind);
  expect(d.error.message.length).toBeGreaterThan(10);
  return d.error.message;
}

function expectValue(d: Decoded<ControlMessage>): ControlMessage {
  if (!d.ok) throw new Error(`expected a message, got ${d.error.kind}: ${d.error.message}`);
  return d.value;
}

const isKnownKind = (k: string): boolean => (FRAME_ERROR_KINDS as readonly string[]).includes(k);

// ---------------------------------------------------------------- samples

const s255 = "x".repeat(255);
const s255multi = "é".repeat(127) + "a"; // 127 * 2 + 1 = 255 bytes
const svc63 = "a".repeat(63);
const NACK_CODES = Object.keys(NACK_CODE_BYTES) as NackCode[];

const samples: ControlMessage[] = [
  { type: "hello", version: PROTOCOL_VERSION, role: "agent", name: "laptop-7", software: "0.1.0 (4aeb86c)" },
  { type: "hello", version: 0, role: "connector", name: "" },
  { type: "hello", version: 255, role: "agent", name: s255, software: s255multi },
  { type: "hello", version: 2, role: "connector", name: "", software: "" },
  { type: "hello", version: 1, role: "connector", name: s255multi },
  { type: "hello", version: 1, role: "agent", name: "\uFEFFstarts with a BOM, 日本語 🚀" },
  { type: "welcome", version: 1, observed: { host: "203.0.113.7", port: 4433 } },
  { type: "welcome", version: 0, observed: { host: "0.0.0.0", port: 0 } },
  { type: "welcome", version: 255, observed: { host: "255.255.255.255", port: 65535 } },
  { type: "welcome", version: 1, observed: { host: "2001:db8::1", port: 65535 } },
  { type: "observed", observed: { host: "::", port: 0 } },
  { type: "observed", observed: { host: "::1", port: 1 } },
  { type: "observed", observed: { host: "1:2:3:4:5:6:7:8", port: 65535 } },
  { type: "observed", observed: { host: "fe80::1:0:0:2", port: 51820 } },
  { type: "observed", observed: { host: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", port: 0 } },
  { type: "observed", observed: { host: "10.0.0.1", port: 0 } },
  { type: "register", req: 0, service: "a" },
  { type: "register", req: 0xffffffff, service: svc63 },
  { type: "deregister", req: 42, service: "db.internal_1-x" },
  { type: "deregister", req: 0xffffffff, service: "9" },
  { type: "open", req: 1, service: "Web-01" },
  { type: "open", req: 0xffffffff, service: svc63 },
  { type: "ack", req: 0, channel: 0 },
  { type: "ack", req: 0xffffffff, channel: 0xffff },
  { type: "ack", req: 12, channel: 1 },
  ...NACK_CODES.map((code, i): ControlMessage => ({ type: "nack", req: i, code, reason: `because ${code}` })),
  { type: "nack", req: 0xffffffff, code: "duplicate", reason: "" },
  { type: "nack", req: 0, code: "draining", reason: s255 },
  { type: "service_status", service: "db", up: true },
  { type: "service_status", service: svc63, up: false },
  { type: "goaway", reason: "", alternate: "" },
  { type: "goaway", reason: "shutting down", alternate: "192.0.2.10:4433" },
  { type: "goaway", reason: s255, alternate: s255multi },
  { type: "goaway", reason: "restarting", alternate: "", restart: { reconnectInMs: 0, tryForMs: 60_000 } },
  { type: "goaway", reason: s255, alternate: s255multi, restart: { reconnectInMs: 0xffffffff, tryForMs: 0xffffffff } },
  { type: "goaway", reason: "", alternate: "b:1", restart: { reconnectInMs: 500, tryForMs: 1 } },
  { type: "probe", req: 7, service: "" },
  { type: "probe", req: 0xffffffff, service: svc63 },
  {
    type: "probe_reply",
    req: 7,
    serverTimeMs: 1_767_225_600_123,
    allowed: null,
    connectors: 0,
    draining: 0,
    software: "0.1.0 (source)",
  },
  { type: "probe_reply", req: 0, serverTimeMs: 0, allowed: true, connectors: 0xffff, draining: 1, software: "" },
  {
    type: "probe_reply",
    req: 1,
    serverTimeMs: Number.MAX_SAFE_INTEGER,
    allowed: false,
    connectors: 0,
    draining: 0xffff,
    software: s255,
  },
];

/** What a message becomes on a version-1 connection: the fields version 1 lacks are left out. */
function asV1(msg: ControlMessage): ControlMessage {
  if (msg.type !== "goaway") return msg;
  const { restart: _dropped, ...v1 } = msg;
  return v1;
}

const ALL_TYPES = Object.keys(CONTROL_TYPE_BYTES) as ControlMessage["type"][];

// ---------------------------------------------------------------- tests

describe("constants", () => {
  test("protocol identifiers", () => {
    expect(PROTOCOL_VERSION).toBe(2);
    expect(PROTOCOL_VERSIONS).toEqual([2, 1]);
    expect(ALPN).toBe("ztna/2");
    expect(MAX_CONTROL_MESSAGE).toBe(4096);
  });

  test("ALPN identifiers: offered newest first, read back to their version", () => {
    expect(alpnFor()).toEqual(["ztna/2", "ztna/1"]);
    expect(alpnFor([1])).toEqual(["ztna/1"]);
    expect(versionOfAlpn("ztna/1")).toBe(1);
    expect(versionOfAlpn(new TextEncoder().encode("ztna/2"))).toBe(2);
    for (const other of ["", "ztna/3", "ztna/0", "ztna/01", "ztna/2 ", "h3", "ztna/", "ZTNA/1"]) {
      expect(versionOfAlpn(other)).toBeUndefined();
    }
    expect(() => alpnFor([3])).toThrow(/protocol version 3/);
  });

  test("a version this code does not speak is a programmer error", () => {
    for (const v of [0, 3, 1.5]) {
      expect(() => encodeControl({ type: "ack", req: 1, channel: 1 }, v)).toThrow(/protocol version/);
      expect(() => decodeControl(bytes(0x20, u32(1), u16(1)), v)).toThrow(/protocol version/);
      expect(() => createControlReader(MAX_CONTROL_MESSAGE, v)).toThrow(/protocol version/);
    }
  });

  test("samples cover every message type", () => {
    expect(new Set(samples.map((m) => m.type))).toEqual(new Set(ALL_TYPES));
  });
});

describe("round trip", () => {
  for (const msg of samples) {
    const label = JSON.stringify(msg).slice(0, 90);
    test(label, () => {
      const wire = encodeControl(msg);
      // Length prefix counts type + body.
      expect((wire[0]! << 8) | wire[1]!).toBe(wire.length - 2);
      expect(wire[2]).toBe(CONTROL_TYPE_BYTES[msg.type]);
      expect(expectValue(decodeControl(wire.subarray(2)))).toEqual(msg);
    });
  }

  for (const msg of samples) {
    const label = `version 1: ${JSON.stringify(msg).slice(0, 80)}`;
    test(label, () => {
      const wire = encodeControl(msg, 1);
      expect(expectValue(decodeControl(wire.subarray(2), 1))).toEqual(asV1(msg));
    });
  }

  test("encode returns a fresh copy each time", () => {
    const a = encodeControl(samples[0]!);
    const b = encodeControl(samples[15]!);
    expect(a).not.toBe(b);
    expect(expectValue(decodeControl(a.subarray(2)))).toEqual(samples[0]!);
  });
});

describe("exact wire layout", () => {
  const cases: [ControlMessage, Uint8Array][] = [
    [{ type: "hello", version: 1, role: "agent", name: "ab" }, bytes(0, 6, 0x01, 1, 1, "ab")],
    [{ type: "hello", version: 1, role: "connector", name: "" }, bytes(0, 4, 0x01, 1, 2, 0)],
    [
      { type: "welcome", version: 1, observed: { host: "192.0.2.1", port: 443 } },
      bytes(0, 9, 0x02, 1, 4, [192, 0, 2, 1], u16(443)),
    ],
    [
      { type: "observed", observed: { host: "2001:db8::ff", port: 0x1234 } },
      bytes(0, 20, 0x03, 6, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff], 0x12, 0x34),
    ],
    [{ type: "register", req: 1, service: "db" }, bytes(0, 8, 0x10, u32(1), "db")],
    [{ type: "deregister", req: 0x01020304, service: "db" }, bytes(0, 8, 0x11, 1, 2, 3, 4, "db")],
    [{ type: "open", req: 0xffffffff, service: "x" }, bytes(0, 7, 0x12, u32(0xffffffff), "x")],
    [{ type: "ack", req: 5, channel: 0x0102 }, bytes(0, 7, 0x20, u32(5), 1, 2)],
    [{ type: "nack", req: 5, code: "unknown_service", reason: "no" }, bytes(0, 9, 0x21, u32(5), 3, "no")],
    [{ type: "service_status", service: "db", up: true }, bytes(0, 5, 0x30, "db", 1)],
    [{ type: "service_status", service: "db", up: false }, bytes(0, 5, 0x30, "db", 0)],
    [{ type: "goaway", reason: "bye", alternate: "h:1" }, bytes(0, 17, 0x31, "bye", "h:1", u32(0), u32(0))],
    [
      { type: "goaway", reason: "bye", alternate: "", restart: { reconnectInMs: 250, tryForMs: 60_000 } },
      bytes(0, 14, 0x31, "bye", "", u32(250), u32(60_000)),
    ],
    [
      { type: "hello", version: 2, role: "connector", name: "c", software: "0.1" },
      bytes(0, 9, 0x01, 2, 2, "c", "0.1"),
    ],
    [{ type: "probe", req: 2, service: "db" }, bytes(0, 8, 0x13, u32(2), "db")],
    [{ type: "probe", req: 2, service: "" }, bytes(0, 6, 0x13, u32(2), 0)],
    [
      {
        type: "probe_reply",
        req: 3,
        serverTimeMs: 2 ** 32 + 5,
        allowed: true,
        connectors: 2,
        draining: 1,
        software: "v",
      },
      bytes(0, 20, 0x22, u32(3), u32(1), u32(5), 1, u16(2), u16(1), "v"),
    ],
  ];
  for (const [msg, wire] of cases) {
    test(`${msg.type} ${wire.length}`, () => {
      expect(encodeControl(msg)).toEqual(wire);
      expect(expectValue(decodeControl(wire.subarray(2)))).toEqual(msg);
    });
  }

  // Version 1 is frozen: these bytes are what deployed version-1 peers send and expect.
  const v1: [ControlMessage, Uint8Array][] = [
    [{ type: "hello", version: 1, role: "agent", name: "ab" }, bytes(0, 6, 0x01, 1, 1, "ab")],
    [{ type: "goaway", reason: "bye", alternate: "h:1" }, bytes(0, 9, 0x31, "bye", "h:1")],
    [{ type: "ack", req: 5, channel: 0x0102 }, bytes(0, 7, 0x20, u32(5), 1, 2)],
  ];
  for (const [msg, wire] of v1) {
    test(`version 1 ${msg.type}`, () => {
      expect(encodeControl(msg, 1)).toEqual(wire);
      expect(expectValue(decodeControl(wire.subarray(2), 1))).toEqual(msg);
    });
  }

  test("version 1 leaves the restart out of GOAWAY; version 2 needs its fields", () => {
    const restarting: ControlMessage = {
      type: "goaway",
      reason: "bye",
      alternate: "h:1",
      restart: { reconnectInMs: 1, tryForMs: 2 },
    };
    expect(encodeControl(restarting, 1)).toEqual(bytes(0, 9, 0x31, "bye", "h:1"));
    // A version-1 GOAWAY on a version-2 connection is cut short.
    expect(expectError(decodeControl(bytes(0x31, "bye", "h:1"), 2), "truncated")).toContain("reconnect_in");
    // And a version-2 GOAWAY on a version-1 connection has bytes left over.
    expectError(decodeControl(body(restarting), 1), "trailing_bytes");
  });

  test("HELLO layout follows its own version field", () => {
    expect(encodeControl({ type: "hello", version: 1, role: "agent", name: "a", software: "ignored" })).toEqual(
      bytes(0, 5, 0x01, 1, 1, "a"),
    );
    expect(encodeControl({ type: "hello", version: 2, role: "agent", name: "a" })).toEqual(
      bytes(0, 6, 0x01, 2, 1, "a", ""),
    );
    // The same bytes decode alike whatever the connection's version.
    for (const v of PROTOCOL_VERSIONS) {
      expect(expectValue(decodeControl(bytes(0x01, 2, 1, "a", "sw"), v))).toEqual({
        type: "hello",
        version: 2,
        role: "agent",
        name: "a",
        software: "sw",
      });
    }
  });

  test("every NACK code maps to its number", () => {
    const expected: Record<NackCode, number> = {
      invalid_request: 1,
      not_authorised: 2,
      unknown_service: 3,
      limit_exceeded: 4,
      draining: 5,
      duplicate: 6,
    };
    for (const code of NACK_CODES) {
      const wire = encodeControl({ type: "nack", req: 0, code, reason: "" });
      expect(wire[7]).toBe(expected[code]);
    }
  });
});

describe("addresses", () => {
  const observed = (host: string): string => {
    const msg = expectValue(decodeControl(body({ type: "observed", observed: { host, port: 1 } })));
    if (msg.type !== "observed") throw new Error("wrong type");
    return msg.observed.host;
  };

  test("IPv4-mapped IPv6 is sent as family 4", () => {
    const wire = encodeControl({ type: "observed", observed: { host: "::ffff:198.51.100.9", port: 80 } });
    expect(wire).toEqual(bytes(0, 8, 0x03, 4, [198, 51, 100, 9], u16(80)));
    expect(observed("::ffff:198.51.100.9")).toBe("198.51.100.9");
    expect(observed("::FFFF:c633:6409")).toBe("198.51.100.9");
  });

  test("IPv6 decodes to canonical RFC 5952 text", () => {
    expect(observed("2001:0DB8:0000:0000:0000:0000:0000:0001")).toBe("2001:db8::1");
    expect(observed("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1"); // first of equal runs
    expect(observed("2001:0:0:1:0:0:0:1")).toBe("2001:0:0:1::1"); // longest run wins
    expect(observed("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1"); // single 0 is not compressed
    expect(observed("0:0:0:0:0:0:0:0")).toBe("::");
    expect(observed("1::")).toBe("1::");
    expect(observed("::2:3:4:5:6:7:8")).toBe("0:2:3:4:5:6:7:8");
    expect(observed("1:2:3:4:5:6:7::")).toBe("1:2:3:4:5:6:7:0");
    expect(observed("64:ff9b::192.0.2.33")).toBe("64:ff9b::c000:221");
  });

  test("IPv6 formatting matches the WHATWG URL serializer", () => {
    let compared = 0;
    let mapped = 0;
    fc.assert(
      fc.property(fc.oneof(fc.ipV6(), fc.ipV4().map((v4) => `::ffff:${v4}`)), (host) => {
        const text = observed(host);
        let url: string;
        try {
          url = new URL(`http://[${host}]/`).hostname.slice(1, -1);
        } catch {
          return; // Bun's URL parser rejects a few valid forms such as "0:0::0:0:0.0.0.0"
        }
        compared++;
        if (!text.includes(":")) {
          // IPv4-mapped: travels (and comes back) as plain IPv4
          expect(url).toMatch(/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/);
          mapped++;
          return;
        }
        expect(text).toBe(url);
      }),
      FC,
    );
    expect(compared).toBeGreaterThan(FC.numRuns / 2);
    expect(mapped).toBeGreaterThan(0);
  });

  test("IPv4 text round trips", () => {
    fc.assert(
      fc.property(fc.ipV4(), (host) => {
        expect(observed(host)).toBe(host);
      }),
      FC,
    );
  });

  test("encode rejects hosts that are not IP addresses", () => {
    for (
      const host of [
        "",
        "example.com",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.-4",
        " 1.2.3.4",
        "1::2::3",
        ":::",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7:8::",
        "12345::",
        "fe80::1%eth0",
        "[::1]",
        "::1.2.3.4:5",
        "g::",
      ]
    ) {
      expect(() => encodeControl({ type: "observed", observed: { host, port: 1 } })).toThrow(/not an IPv4 or IPv6/);
    }
  });

  test("encode rejects out-of-range ports", () => {
    for (const port of [-1, 65536, 1.5, Number.NaN]) {
      expect(() => encodeControl({ type: "observed", observed: { host: "::1", port } })).toThrow(/port/);
    }
  });
});

describe("encode programmer errors", () => {
  test("numbers out of range", () => {
    for (const version of [-1, 256, 0.5]) {
      expect(() => encodeControl({ type: "hello", version, role: "agent", name: "" })).toThrow(/HELLO version/);
    }
    expect(() => encodeControl({ type: "register", req: 2 ** 32, service: "a" })).toThrow(/REGISTER req/);
    expect(() => encodeControl({ type: "open", req: -1, service: "a" })).toThrow(/OPEN req/);
    expect(() => encodeControl({ type: "ack", req: 0, channel: 0x10000 })).toThrow(/ACK channel/);
    const restart = (reconnectInMs: number, tryForMs: number): ControlMessage => ({
      type: "goaway",
      reason: "",
      alternate: "",
      restart: { reconnectInMs, tryForMs },
    });
    expect(() => encodeControl(restart(0, 0))).toThrow(/tryForMs must be a whole number > 0/);
    expect(() => encodeControl(restart(0, 1.5))).toThrow(/tryForMs/);
    expect(() => encodeControl(restart(-1, 10))).toThrow(/GOAWAY reconnect_in/);
    expect(() => encodeControl(restart(0, 2 ** 32))).toThrow(/GOAWAY try_for/);
  });

  test("strings over 255 bytes", () => {
    expect(() => encodeControl({ type: "hello", version: 1, role: "agent", name: "x".repeat(256) })).toThrow(
      /HELLO name is longer than 255/,
    );
    expect(() => encodeControl({ type: "nack", req: 0, code: "draining", reason: "é".repeat(128) })).toThrow(
      /NACK reason/,
    );
    expect(() => encodeControl({ type: "goaway", reason: "", alternate: "🚀".repeat(64) })).toThrow(/GOAWAY alternate/);
    expect(() => encodeControl({ type: "hello", version: 2, role: "agent", name: "", software: "x".repeat(256) }))
      .toThrow(
        /HELLO software/,
      );
  });

  test("invalid service names and enum values", () => {
    expect(() => encodeControl({ type: "register", req: 0, service: "a b" })).toThrow(/REGISTER service "a b"/);
    expect(() => encodeControl({ type: "service_status", service: "", up: true })).toThrow(/SERVICE_STATUS/);
    const badRole = { type: "hello", version: 1, role: "admin", name: "" } as unknown as ControlMessage;
    expect(() => encodeControl(badRole)).toThrow(/role/);
    const badCode = { type: "nack", req: 0, code: "nope", reason: "" } as unknown as ControlMessage;
    expect(() => encodeControl(badCode)).toThrow(/NACK code/);
    const badType = { type: "ping" } as unknown as ControlMessage;
    expect(() => encodeControl(badType)).toThrow(/unknown control message type/);
  });

  test("a failed encode does not corrupt the next one", () => {
    expect(() => encodeControl({ type: "goaway", reason: "r", alternate: "x".repeat(300) })).toThrow();
    const msg: ControlMessage = { type: "ack", req: 3, channel: 4 };
    expect(encodeControl(msg)).toEqual(bytes(0, 7, 0x20, u32(3), u16(4)));
  });
});

describe("validateServiceName", () => {
  test("accepts", () => {
    for (const n of ["a", "Z", "0", "db", "db.internal", "a_b-c.d", "9lives", svc63, "a-", "a."]) {
      expect(validateServiceName(n)).toBeUndefined();
    }
  });
  test("rejects with a reason", () => {
    for (const n of ["", "a".repeat(64), "-a", ".a", "_a", "a b", "a/b", "a:b", "é", "a\n", "a\u0000", "ａ"]) {
      expect(validateServiceName(n)).toBeString();
    }
  });
});

describe("malformed input", () => {
  test("example error sentence", () => {
    const msg = expectError(decodeControl(bytes(0x10, 0, 0)), "truncated");
    expect(msg).toBe("REGISTER truncated: need 4 bytes for req at offset 1, have 2");
  });

  test("empty body is truncated", () => {
    expectError(decodeControl(new Uint8Array(0)), "truncated");
  });

  test("truncated at every cut point, for every sample", () => {
    for (const msg of samples) {
      const b = body(msg);
      for (let cut = 0; cut < b.length; cut++) {
        const d = decodeControl(b.subarray(0, cut));
        if (d.ok || d.error.kind !== "truncated") {
          throw new Error(`${msg.type} cut at ${cut}: ${JSON.stringify(d)}`);
        }
      }
    }
  });

  test("truncated at every cut point, for every sample, on version 1", () => {
    for (const msg of samples) {
      const b = encodeControl(msg, 1).subarray(2);
      for (let cut = 0; cut < b.length; cut++) {
        const d = decodeControl(b.subarray(0, cut), 1);
        if (d.ok || d.error.kind !== "truncated") throw new Error(`${msg.type} cut at ${cut}: ${JSON.stringify(d)}`);
      }
    }
  });

  test("trailing bytes, for every sample", () => {
    for (const msg of samples) {
      const b = body(msg);
      for (const extra of [[0], [0xff, 0xff], [1, 2, 3, 4, 5]]) {
        const m = expectError(decodeControl(bytes(b, extra)), "trailing_bytes");
        expect(m).toContain(`${extra.length} trailing byte`);
      }
    }
  });

  test("unknown type for every unassigned type byte", () => {
    const known = new Set<number>(Object.values(CONTROL_TYPE_BYTES));
    for (let t = 0; t < 256; t++) {
      if (known.has(t)) continue;
      expect(expectError(decodeControl(bytes(t)), "unknown_type")).toContain(`0x${t.toString(16).padStart(2, "0")}`);
      expectError(decodeControl(bytes(t, 1, 2, 3)), "unknown_type");
    }
  });

  test("oversized body", () => {
    expectError(decodeControl(new Uint8Array(MAX_CONTROL_MESSAGE + 1).fill(0x10)), "oversized");
  });

  describe("bad UTF-8 in each string field", () => {
    const invalid: number[][] = [
      [0xff],
      [0x80],
      [0xc3], // lead byte with no continuation
      [0x61, 0xc3, 0x28], // bad continuation
      [0xc0, 0xaf], // overlong '/'
      [0xed, 0xa0, 0x80], // UTF-16 surrogate
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
    ];
    const fields: [string, (s: number[]) => Uint8Array][] = [
      ["HELLO name", (s) => bytes(0x01, 1, 1, rawStr(s))],
      ["HELLO software", (s) => bytes(0x01, 2, 1, "n", rawStr(s))],
      ["REGISTER service", (s) => bytes(0x10, u32(1), rawStr(s))],
      ["DEREGISTER service", (s) => bytes(0x11, u32(1), rawStr(s))],
      ["OPEN service", (s) => bytes(0x12, u32(1), rawStr(s))],
      ["NACK reason", (s) => bytes(0x21, u32(1), 1, rawStr(s))],
      ["SERVICE_STATUS service", (s) => bytes(0x30, rawStr(s), 1)],
      ["GOAWAY reason", (s) => bytes(0x31, rawStr(s), "ok", u32(0), u32(0))],
      ["GOAWAY alternate", (s) => bytes(0x31, "ok", rawStr(s), u32(0), u32(0))],
      ["PROBE_REPLY software", (s) => bytes(0x22, u32(1), u32(0), u32(1), 1, u16(0), u16(0), rawStr(s))],
    ];
    for (const [field, build] of fields) {
      test(field, () => {
        for (const s of invalid) {
          expect(expectError(decodeControl(build(s)), "bad_utf8")).toStartWith(field);
        }
        // The same frame with valid UTF-8 decodes, so the string is the only fault.
        expectValue(decodeControl(build([0x61])));
      });
    }
  });

  describe("bad enum values", () => {
    test("HELLO role", () => {
      for (const role of [0, 3, 255]) {
        expect(expectError(decodeControl(bytes(0x01, 1, role, "n")), "bad_value")).toContain("role");
      }
    });
    test("SERVICE_STATUS up", () => {
      for (const up of [2, 0x80, 255]) {
        expect(expectError(decodeControl(bytes(0x30, "db", up)), "bad_value")).toContain("up");
      }
    });
    test("PROBE_REPLY allowed and time", () => {
      for (const allowed of [3, 255]) {
        expect(
          expectError(decodeControl(bytes(0x22, u32(1), u32(0), u32(1), allowed, u16(0), u16(0), "v")), "bad_value"),
        ).toContain("allowed");
      }
      expect(expectError(decodeControl(bytes(0x22, u32(1), u32(2 ** 21), u32(0), 1, u16(0), u16(0), "v")), "bad_value"))
        .toContain("2^53");
    });
    test("NACK code", () => {
      for (const code of [0, 7, 255]) {
        expect(expectError(decodeControl(bytes(0x21, u32(1), code, "r")), "bad_value")).toContain("code");
      }
    });
    test("address family in WELCOME and OBSERVED", () => {
      for (const family of [0, 5, 46, 255]) {
        const addr = [family, 1, 2, 3, 4, 0, 80];
        expect(expectError(decodeControl(bytes(0x02, 1, addr)), "bad_value")).toContain("family");
        expect(expectError(decodeControl(bytes(0x03, addr)), "bad_value")).toContain("family");
      }
    });
    test("IPv4-mapped address sent as family 6", () => {
      const mapped = [6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4, 0, 80];
      expectError(decodeControl(bytes(0x03, mapped)), "bad_value");
    });
    test("GOAWAY reconnect_in without try_for", () => {
      for (const reconnectIn of [1, 500, 0xffffffff]) {
        const m = expectError(decodeControl(bytes(0x31, "", "", u32(reconnectIn), u32(0))), "bad_value");
        expect(m).toContain("reconnect_in");
      }
      // try_for alone is a restart that may begin at once.
      expect(expectValue(decodeControl(bytes(0x31, "", "", u32(0), u32(1))))).toEqual({
        type: "goaway",
        reason: "",
        alternate: "",
        restart: { reconnectInMs: 0, tryForMs: 1 },
      });
    });
    test("the first fault wins over later ones", () => {
      // bad role and trailing bytes: the role comes first
      expectError(decodeControl(bytes(0x01, 1, 9, "n", 0)), "bad_value");
      // bad role, then the frame ends early: the role comes first
      expectError(decodeControl(bytes(0x01, 1, 9)), "bad_value");
    });
  });

  describe("invalid service names", () => {
    const names = ["", "-db", ".db", "_db", "d b", "db/1", "db:1", "é", "db\n", "a".repeat(64), "x".repeat(255)];
    const builders: [string, (s: string) => Uint8Array][] = [
      ["REGISTER", (s) => bytes(0x10, u32(1), s)],
      ["DEREGISTER", (s) => bytes(0x11, u32(1), s)],
      ["OPEN", (s) => bytes(0x12, u32(1), s)],
      ["SERVICE_STATUS", (s) => bytes(0x30, s, 1)],
      ["PROBE", (s) => bytes(0x13, u32(1), s)],
    ];
    for (const [name, build] of builders) {
      test(name, () => {
        // PROBE may name no service at all ('').
        for (const s of names.filter((n) => !(name === "PROBE" && n === ""))) {
          expect(expectError(decodeControl(build(s)), "bad_value")).toStartWith(`${name} service`);
        }
      });
    }
  });
});

describe("stream reader", () => {
  const stream = concat(samples.map((m) => encodeControl(m)));
  const decodeAll = (chunks: Uint8Array[]): Decoded<ControlMessage>[] => {
    const reader = createControlReader();
    return chunks.flatMap((c) => reader.push(c));
  };
  const expected = samples.map((value): Decoded<ControlMessage> => ({ ok: true, value }));

  test("one chunk with every sample", () => {
    expect(decodeAll([stream])).toEqual(expected);
  });

  test("split into two chunks at every byte boundary", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const got = decodeAll([stream.subarray(0, cut), stream.subarray(cut)]);
      if (got.length !== expected.length) throw new Error(`cut ${cut}: ${got.length} results`);
      expect(got).toEqual(expected);
    }
  });

  test("one byte at a time", () => {
    const chunks = Array.from(stream, (b) => Uint8Array.of(b));
    expect(decodeAll(chunks)).toEqual(expected);
  });

  test("every single message split at every byte, with empty chunks in between", () => {
    for (const msg of samples) {
      const wire = encodeControl(msg);
      for (let cut = 0; cut <= wire.length; cut++) {
        const reader = createControlReader();
        expect(reader.push(wire.subarray(0, cut))).toEqual(cut === wire.length ? [{ ok: true, value: msg }] : []);
        expect(reader.push(new Uint8Array(0))).toEqual([]);
        expect(reader.pending()).toBe(cut === wire.length ? 0 : cut);
        const rest = reader.push(wire.subarray(cut));
        expect(rest).toEqual(cut === wire.length ? [] : [{ ok: true, value: msg }]);
        expect(reader.pending()).toBe(0);
      }
    }
  });

  test("many messages per chunk", () => {
    const many: ControlMessage[] = Array.from(
      { length: 2000 },
      (_, i) => ({ type: "ack", req: i, channel: i & 0xffff }),
    );
    const got = decodeAll([concat(many.map((m) => encodeControl(m)))]);
    expect(got).toEqual(many.map((value): Decoded<ControlMessage> => ({ ok: true, value })));
  });

  test("random chunking reproduces the message sequence", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 20 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
        const chunks = points.slice(1).map((end, i) => stream.subarray(points[i]!, end));
        expect(decodeAll(chunks)).toEqual(expected);
      }),
      { ...FC, numRuns: 300 },
    );
  });

  test("buffered partial data is copied, so the caller may reuse its chunk", () => {
    const wire = encodeControl({ type: "register", req: 9, service: "db" });
    const reader = createControlReader();
    const chunk = wire.slice(0, 5);
    expect(reader.push(chunk)).toEqual([]);
    chunk.fill(0xee);
    expect(reader.push(wire.subarray(5))).toEqual([{ ok: true, value: { type: "register", req: 9, service: "db" } }]);
  });

  test("a malformed message is reported in order and does not stop the stream", () => {
    const ack = encodeControl({ type: "ack", req: 1, channel: 2 });
    const got = decodeAll([concat([ack, bytes(0, 2, 0x7f, 0), ack])]);
    expect(got.length).toBe(3);
    expect(got[0]!.ok).toBe(true);
    expectError(got[1]!, "unknown_type");
    expect(got[2]!.ok).toBe(true);
  });

  test("zero length prefix is truncated and the stream continues", () => {
    const ack = encodeControl({ type: "ack", req: 1, channel: 2 });
    for (let cut = 0; cut <= 4; cut++) {
      const all = concat([bytes(0, 0), ack]);
      const got = decodeAll([all.subarray(0, cut), all.subarray(cut)]);
      expect(got.length).toBe(2);
      expect(expectError(got[0]!, "truncated")).toContain("length prefix is 0");
      expect(got[1]).toEqual({ ok: true, value: { type: "ack", req: 1, channel: 2 } });
    }
  });

  test("oversized length prefix poisons the reader", () => {
    const ack = encodeControl({ type: "ack", req: 1, channel: 2 });
    const wire = concat([ack, bytes(u16(MAX_CONTROL_MESSAGE + 1)), ack]);
    for (let cut = 0; cut <= wire.length; cut++) {
      const reader = createControlReader();
      const got = [...reader.push(wire.subarray(0, cut)), ...reader.push(wire.subarray(cut))];
      expect(got[0]!.ok).toBe(true);
      const poison = got[got.length - 1]!;
      expect(expectError(poison, "oversized")).toContain(String(MAX_CONTROL_MESSAGE + 1));
      // Once the prefix is seen, the second push already answers with the poison.
      expect(got.length).toBe(cut >= ack.length + 2 ? 3 : 2);
      for (const d of got.slice(1)) expect(d).toBe(poison);
      // Every later push returns the same error, whatever it carries.
      expect(reader.push(ack)).toEqual([poison]);
      expect(reader.push(new Uint8Array(0))[0]).toBe(poison);
    }
  });

  test("the maximum length is accepted by the framer", () => {
    // A 4096-byte frame is framed (then rejected by the decoder as trailing bytes),
    // and the reader keeps going.
    const big = new Uint8Array(2 + MAX_CONTROL_MESSAGE);
    big.set(u16(MAX_CONTROL_MESSAGE), 0);
    big.set(bytes(0x20, u32(1), u16(2)), 2);
    const ack = encodeControl({ type: "ack", req: 1, channel: 2 });
    const got = decodeAll([big.subarray(0, 100), big.subarray(100), ack]);
    expect(got.length).toBe(2);
    expectError(got[0]!, "trailing_bytes");
    expect(got[1]!.ok).toBe(true);
  });

  test("a lower per-stream limit", () => {
    const reader = createControlReader(8);
    expect(reader.push(encodeControl({ type: "ack", req: 1, channel: 2 }))[0]!.ok).toBe(true); // 7 bytes
    expectError(reader.push(encodeControl({ type: "register", req: 1, service: "abcd" }))[0]!, "oversized"); // 10
  });

  test("invalid limits are programmer errors", () => {
    for (const n of [0, -1, 1.5, MAX_CONTROL_MESSAGE + 1]) expect(() => createControlReader(n)).toThrow();
  });
});

// ---------------------------------------------------------------- properties

const arbString = fc.string({ unit: "binary", maxLength: 60 }); // at most 240 bytes
const arbService = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/);
const arbU32 = fc.integer({ min: 0, max: 0xffffffff });
const arbAddress = fc.record({
  host: fc.oneof(fc.ipV4(), fc.ipV6()),
  port: fc.integer({ min: 0, max: 0xffff }),
});
const arbMessage: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc
    .record({
      type: fc.constant("hello" as const),
      version: fc.integer({ min: 0, max: 255 }),
      role: fc.constantFrom("agent" as const, "connector" as const),
      name: arbString,
      software: arbString,
    })
    .map((
      m,
    ): ControlMessage => (m.version >= 2 ? m : { type: m.type, version: m.version, role: m.role, name: m.name })),
  fc.record({ type: fc.constant("welcome" as const), version: fc.integer({ min: 0, max: 255 }), observed: arbAddress }),
  fc.record({ type: fc.constant("observed" as const), observed: arbAddress }),
  fc.record({
    type: fc.constantFrom("register" as const, "deregister" as const, "open" as const),
    req: arbU32,
    service: arbService,
  }),
  fc.record({ type: fc.constant("ack" as const), req: arbU32, channel: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({
    type: fc.constant("nack" as const),
    req: arbU32,
    code: fc.constantFrom(...NACK_CODES),
    reason: arbString,
  }),
  fc.record({ type: fc.constant("service_status" as const), service: arbService, up: fc.boolean() }),
  fc.record({ type: fc.constant("goaway" as const), reason: arbString, alternate: arbString }),
  fc.record({
    type: fc.constant("goaway" as const),
    reason: arbString,
    alternate: arbString,
    restart: fc.record({ reconnectInMs: arbU32, tryForMs: fc.integer({ min: 1, max: 0xffffffff }) }),
  }),
  fc.record({ type: fc.constant("probe" as const), req: arbU32, service: fc.oneof(fc.constant(""), arbService) }),
  fc.record({
    type: fc.constant("probe_reply" as const),
    req: arbU32,
    serverTimeMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    allowed: fc.constantFrom(null, true, false),
    connectors: fc.integer({ min: 0, max: 0xffff }),
    draining: fc.integer({ min: 0, max: 0xffff }),
    software: arbString,
  }),
);

type Mutation =
  | { op: "set"; at: number; value: number }
  | { op: "insert"; at: number; value: number }
  | { op: "delete"; at: number }
  | { op: "truncate"; at: number };

const arbMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
);

function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  const b = Array.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + (m.op === "insert" ? 1 : 0));
    if (m.op === "set" && b.length > 0) b[at] = m.value;
    else if (m.op === "insert") b.splice(at, 0, m.value);
    else if (m.op === "delete") b.splice(at, 1);
    else if (m.op === "truncate") b.length = at;
  }
  return Uint8Array.from(b);
}

/** Decodes without throwing, fails only with a known kind, and success is canonical. */
function checkDecode(input: Uint8Array, version = PROTOCOL_VERSION): void {
  const d = decodeControl(input, version);
  if (d.ok) {
    // One value, one encoding: what decodes re-encodes to the same bytes.
    expect(encodeControl(d.value, version).subarray(2)).toEqual(input);
  } else {
    expect(isKnownKind(d.error.kind)).toBe(true);
    expect(typeof d.error.message).toBe("string");
  }
}

describe("properties", () => {
  test("arbitrary valid messages round trip, on every version", () => {
    fc.assert(
      fc.property(arbMessage, fc.constantFrom(...PROTOCOL_VERSIONS), (msg, version) => {
        const d = expectValue(decodeControl(encodeControl(msg, version).subarray(2), version));
        // Hosts come back canonical, so compare through a second encoding.
        expect(encodeControl(d, version)).toEqual(encodeControl(msg, version));
        if (msg.type !== "welcome" && msg.type !== "observed") expect(d).toEqual(version === 1 ? asV1(msg) : msg);
      }),
      FC,
    );
  });

  test("random bytes never throw out of decodeControl", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => checkDecode(b)), FC);
  });

  test("random bytes behind a known type byte never throw, on every version", () => {
    const types = Object.values(CONTROL_TYPE_BYTES);
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        fc.uint8Array({ maxLength: 80 }),
        fc.constantFrom(...PROTOCOL_VERSIONS),
        (t, rest, version) => checkDecode(bytes(t, rest), version),
      ),
      FC,
    );
  });

  test("mutations of valid encodings never throw, on every version", () => {
    fc.assert(
      fc.property(
        arbMessage,
        fc.array(arbMutation, { minLength: 1, maxLength: 4 }),
        fc.constantFrom(...PROTOCOL_VERSIONS),
        (msg, muts, version) => {
          checkDecode(mutate(encodeControl(msg, version).subarray(2), muts), version);
        },
      ),
      FC,
    );
  });

  test("a message of one version read as the other never throws", () => {
    fc.assert(
      fc.property(arbMessage, fc.constantFrom(...PROTOCOL_VERSIONS), (msg, version) => {
        const other = version === 1 ? 2 : 1;
        checkDecode(encodeControl(msg, version).subarray(2), other);
      }),
      FC,
    );
  });

  test("the reader never throws on random bytes in random chunks", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const reader = createControlReader();
        for (const c of chunks) {
          for (const d of reader.push(c)) {
            if (!d.ok) expect(isKnownKind(d.error.kind)).toBe(true);
          }
        }
      }),
      FC,
    );
  });

  test("the reader never throws on mutated message streams", () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { minLength: 1, maxLength: 5 }),
        fc.array(arbMutation, { maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        (msgs, muts, cuts) => {
          const wire = mutate(concat(msgs.map((m) => encodeControl(m))), muts);
          const points = [0, ...cuts.map((c) => c % (wire.length + 1)).sort((a, b) => a - b), wire.length];
          const reader = createControlReader();
          for (let i = 1; i < points.length; i++) {
            for (const d of reader.push(wire.subarray(points[i - 1]!, points[i]!))) {
              if (!d.ok) expect(isKnownKind(d.error.kind)).toBe(true);
            }
          }
          if (muts.length === 0) expect(reader.pending()).toBe(0);
        },
      ),
      FC,
    );
  });
});
