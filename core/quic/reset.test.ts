import { describe, expect, test } from "bun:test";
import { buildReset, RESET_TOKEN_LEN, resetToken, resetTokenValue } from "./reset.ts";

const KEY = new Uint8Array(32).fill(3);
const CID = Uint8Array.from([9, 8, 7, 6, 5, 4, 3, 2]);

describe("stateless reset tokens", () => {
  test("the same key and connection ID give the same 16-byte token (a restarted server computes it again)", () => {
    const a = resetToken(KEY, CID);
    expect(a.length).toBe(RESET_TOKEN_LEN);
    expect(resetToken(new Uint8Array(KEY), Uint8Array.from(CID))).toEqual(a);
  });

  test("another connection ID or another key gives another token", () => {
    const a = resetToken(KEY, CID);
    expect(resetToken(KEY, Uint8Array.from([9, 8, 7, 6, 5, 4, 3, 3]))).not.toEqual(a);
    expect(resetToken(new Uint8Array(32).fill(4), CID)).not.toEqual(a);
  });

  test("the token is its own array, not a view of a larger digest", () => {
    const token = resetToken(KEY, CID);
    expect(token.byteOffset).toBe(0);
    expect(token.buffer.byteLength).toBe(RESET_TOKEN_LEN);
  });

  test("resetTokenValue reads the token as a big-endian u128, as quiche takes it", () => {
    const token = new Uint8Array(16);
    expect(resetTokenValue(token)).toBe(0n);
    token[15] = 1;
    expect(resetTokenValue(token)).toBe(1n);
    token[0] = 0x80;
    expect(resetTokenValue(token)).toBe((1n << 127n) + 1n);
    const full = new Uint8Array(16).fill(0xff);
    expect(resetTokenValue(full)).toBe((1n << 128n) - 1n);
  });
});

describe("buildReset", () => {
  const token = resetToken(KEY, CID);

  test("ends with the token and looks like a short-header packet (fixed bit set, long-header bit clear)", () => {
    for (let i = 0; i < 50; i++) {
      const packet = buildReset(token, 1200)!;
      expect(packet[0]! & 0x80).toBe(0);
      expect(packet[0]! & 0x40).toBe(0x40);
      expect(packet.subarray(packet.length - RESET_TOKEN_LEN)).toEqual(token);
    }
  });

  test("is always shorter than the packet that triggered it (no reset loops), and at most 43 bytes", () => {
    expect(buildReset(token, 1200)!.length).toBe(43);
    expect(buildReset(token, 44)!.length).toBe(43);
    expect(buildReset(token, 40)!.length).toBe(39);
    expect(buildReset(token, 26)!.length).toBe(25);
  });

  test("a trigger too small to answer with 4 unpredictable bytes + the token gets no reset", () => {
    expect(buildReset(token, 25)).toBeNull();
    expect(buildReset(token, 1)).toBeNull();
    expect(buildReset(token, 0)).toBeNull();
  });

  test("the bytes before the token are random (two resets differ)", () => {
    const a = buildReset(token, 1200)!;
    const b = buildReset(token, 1200)!;
    expect(a.subarray(1, a.length - RESET_TOKEN_LEN)).not.toEqual(b.subarray(1, b.length - RESET_TOKEN_LEN));
  });
});
