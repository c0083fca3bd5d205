import { describe, expect, test } from "bun:test";
import { formatAddress, ipv4Number, ipv6Bytes } from "./address.ts";

describe("formatAddress", () => {
  test("IPv4 and names as host:port", () => {
    expect(formatAddress({ host: "127.0.0.1", port: 4433 })).toBe("127.0.0.1:4433");
    expect(formatAddress({ host: "relay.example", port: 0 })).toBe("relay.example:0");
  });

  test("IPv6 in brackets, so the port cannot be read as part of the address", () => {
    expect(formatAddress({ host: "::1", port: 4433 })).toBe("[::1]:4433");
    expect(formatAddress({ host: "2001:db8::1", port: 65535 })).toBe("[2001:db8::1]:65535");
  });
});

describe("ipv4Number", () => {
  test("dotted IPv4 as an unsigned 32-bit number", () => {
    expect(ipv4Number("127.0.0.1")).toBe(0x7f000001);
    expect(ipv4Number("255.255.255.255")).toBe(0xffffffff);
    expect(ipv4Number("0.0.0.0")).toBe(0);
  });

  test("anything else is null", () => {
    for (const host of ["::1", "1.2.3", "1.2.3.4.5", "256.0.0.1", "a.b.c.d", "1.2.3.-1"]) {
      expect(ipv4Number(host)).toBeNull();
    }
  });
});

describe("ipv6Bytes", () => {
  const hex = (b: Uint8Array | null) => b && Buffer.from(b).toString("hex");
  test("full, compressed and IPv4-tailed forms", () => {
    expect(hex(ipv6Bytes("::1"))).toBe("00000000000000000000000000000001");
    expect(hex(ipv6Bytes("::"))).toBe("00000000000000000000000000000000");
    expect(hex(ipv6Bytes("fe80::1:2"))).toBe("fe800000000000000000000000010002");
    expect(hex(ipv6Bytes("2001:db8:0:0:1:0:0:1"))).toBe("20010db8000000000001000000000001");
    expect(hex(ipv6Bytes("2001:DB8::"))).toBe("20010db8000000000000000000000000");
    expect(hex(ipv6Bytes("::ffff:192.0.2.1"))).toBe("00000000000000000000ffffc0000201");
  });

  test("anything else is null", () => {
    for (
      const bad of [
        "",
        "1.2.3.4",
        "1::2::3",
        "12345::",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8:9",
        "::g",
        "1:2:3:4:5:6:7::8:9",
      ]
    ) {
      expect(ipv6Bytes(bad)).toBeNull();
    }
  });
});
