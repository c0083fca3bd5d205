import { describe, expect, test } from "bun:test";
import { formatAddress } from "./address.ts";

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
