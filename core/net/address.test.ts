import { describe, expect, test } from "bun:test";
import { formatAddress, ipv4Number } from "./address.ts";

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
