/**
 * Stateless retry tokens (RFC 9000 §8.1.2): the server proves a client owns its
 * source address before keeping any state for it. A token binds the client's
 * address and original destination connection ID to a timestamp under an HMAC key.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const MAC_LEN = 16;

export interface RetryTokenCodec {
  mint(host: string, port: number, odcid: Uint8Array, nowMs?: number): Uint8Array;
  /** Returns the original destination connection ID, or null for a bad or expired token. */
  verify(token: Uint8Array, host: string, port: number, nowMs?: number): Uint8Array | null;
}

export function createRetryTokens(key: Uint8Array, lifetimeMs = 60_000): RetryTokenCodec {
  const mac = (body: Uint8Array, host: string, port: number) =>
    createHmac("sha256", key).update(body).update(`${host}|${port}`).digest().subarray(0, MAC_LEN);

  return {
    mint(host, port, odcid, nowMs = Date.now()) {
      // layout: u32 seconds | u8 odcid length | odcid | mac
      const body = new Uint8Array(5 + odcid.length);
      new DataView(body.buffer).setUint32(0, Math.floor(nowMs / 1000));
      body[4] = odcid.length;
      body.set(odcid, 5);
      const token = new Uint8Array(body.length + MAC_LEN);
      token.set(body);
      token.set(mac(body, host, port), body.length);
      return token;
    },
    verify(token, host, port, nowMs = Date.now()) {
      if (token.length < 5 + MAC_LEN) return null;
      const odcidLen = token[4]!;
      if (odcidLen > 20 || token.length !== 5 + odcidLen + MAC_LEN) return null;
      const body = token.subarray(0, 5 + odcidLen);
      const given = token.subarray(5 + odcidLen);
      if (!timingSafeEqual(mac(body, host, port), given)) return null;
      const issued = new DataView(token.buffer, token.byteOffset).getUint32(0) * 1000;
      if (nowMs - issued > lifetimeMs || issued - nowMs > 5_000) return null;
      return token.slice(5, 5 + odcidLen);
    },
  };
}
