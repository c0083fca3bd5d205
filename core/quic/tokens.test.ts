import { describe, expect, test } from "bun:test";
import { createRetryTokens } from "./tokens.ts";

const KEY = new Uint8Array(32).fill(7);
const ODCID = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const T0 = 1_700_000_000_000;

describe("retry tokens", () => {
  test("a token minted for an address verifies there and gives back the original DCID", () => {
    const tokens = createRetryTokens(KEY);
    const token = tokens.mint("192.0.2.1", 4433, ODCID, T0);
    expect(tokens.verify(token, "192.0.2.1", 4433, T0 + 1_000)).toEqual(ODCID);
  });

  test("layout: u32 seconds, u8 DCID length, the DCID, a 16-byte MAC", () => {
    const token = createRetryTokens(KEY).mint("192.0.2.1", 4433, ODCID, T0);
    expect(token.length).toBe(4 + 1 + ODCID.length + 16);
    expect(new DataView(token.buffer, token.byteOffset).getUint32(0)).toBe(Math.floor(T0 / 1000));
    expect(token[4]).toBe(ODCID.length);
    expect(token.subarray(5, 5 + ODCID.length)).toEqual(ODCID);
  });

  test("the address is bound: another host or port is refused", () => {
    const tokens = createRetryTokens(KEY);
    const token = tokens.mint("192.0.2.1", 4433, ODCID, T0);
    expect(tokens.verify(token, "192.0.2.2", 4433, T0)).toBeNull();
    expect(tokens.verify(token, "192.0.2.1", 4434, T0)).toBeNull();
    // host|port is one string: "1.2.3.4" port 15 must not pass for "1.2.3.41" port 5.
    const t2 = tokens.mint("1.2.3.4", 15, ODCID, T0);
    expect(tokens.verify(t2, "1.2.3.41", 5, T0)).toBeNull();
  });

  test("a token from another key is refused (a restarted server without the key sends a new retry)", () => {
    const token = createRetryTokens(KEY).mint("192.0.2.1", 4433, ODCID, T0);
    expect(createRetryTokens(new Uint8Array(32).fill(8)).verify(token, "192.0.2.1", 4433, T0)).toBeNull();
  });

  test("every changed byte is refused: time, length, DCID, MAC", () => {
    const tokens = createRetryTokens(KEY);
    const token = tokens.mint("192.0.2.1", 4433, ODCID, T0);
    for (let i = 0; i < token.length; i++) {
      const bad = token.slice();
      bad[i] ^= 0x01;
      expect(tokens.verify(bad, "192.0.2.1", 4433, T0)).toBeNull();
    }
  });

  test("expires after its lifetime, and refuses a token from more than 5 s in the future", () => {
    const tokens = createRetryTokens(KEY, 10_000);
    const token = tokens.mint("192.0.2.1", 4433, ODCID, T0);
    expect(tokens.verify(token, "192.0.2.1", 4433, T0 + 10_000)).not.toBeNull();
    expect(tokens.verify(token, "192.0.2.1", 4433, T0 + 11_000)).toBeNull();
    expect(tokens.verify(token, "192.0.2.1", 4433, T0 - 5_000)).not.toBeNull();
    expect(tokens.verify(token, "192.0.2.1", 4433, T0 - 6_000)).toBeNull();
  });

  test("the default lifetime is a minute", () => {
    const tokens = createRetryTokens(KEY);
    const token = tokens.mint("192.0.2.1", 4433, ODCID, T0);
    expect(tokens.verify(token, "192.0.2.1", 4433, T0 + 60_000)).not.toBeNull();
    expect(tokens.verify(token, "192.0.2.1", 4433, T0 + 61_000)).toBeNull();
  });

  test("malformed tokens are refused without throwing: short, empty, a length past the end, a DCID over 20 bytes", () => {
    const tokens = createRetryTokens(KEY);
    const token = tokens.mint("192.0.2.1", 4433, ODCID, T0);
    expect(tokens.verify(new Uint8Array(0), "192.0.2.1", 4433, T0)).toBeNull();
    expect(tokens.verify(token.subarray(0, 20), "192.0.2.1", 4433, T0)).toBeNull();
    expect(tokens.verify(token.subarray(0, token.length - 1), "192.0.2.1", 4433, T0)).toBeNull();
    const longer = new Uint8Array(token.length + 1);
    longer.set(token);
    expect(tokens.verify(longer, "192.0.2.1", 4433, T0)).toBeNull();
    const big = tokens.mint("192.0.2.1", 4433, new Uint8Array(21), T0);
    expect(tokens.verify(big, "192.0.2.1", 4433, T0)).toBeNull();
  });

  test("a token inside a larger buffer (a view into a received packet) verifies, and the DCID is a copy", () => {
    const tokens = createRetryTokens(KEY);
    const token = tokens.mint("192.0.2.1", 4433, ODCID, T0);
    const packet = new Uint8Array(token.length + 7);
    packet.set(token, 3);
    const view = packet.subarray(3, 3 + token.length);
    const odcid = tokens.verify(view, "192.0.2.1", 4433, T0)!;
    expect(odcid).toEqual(ODCID);
    packet.fill(0);
    expect(odcid).toEqual(ODCID);
  });

  test("an empty DCID round-trips", () => {
    const tokens = createRetryTokens(KEY);
    const token = tokens.mint("::1", 1, new Uint8Array(0), T0);
    expect(tokens.verify(token, "::1", 1, T0)).toEqual(new Uint8Array(0));
  });
});
