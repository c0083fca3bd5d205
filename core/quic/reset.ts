/**
 * Stateless resets (RFC 9000 §10.3): a server that lost a connection's state
 * (it restarted) can still end it at once, instead of leaving the client to
 * time out. Each connection's token is an HMAC of its connection ID under a
 * key that outlives the process, so the new process computes the same token.
 */
import { createHmac } from "node:crypto";

export const RESET_TOKEN_LEN = 16;
/** Smallest reset we send: 1 header byte, 4+ unpredictable bytes, the token. */
const MIN_RESET_LEN = 21 + 4;
const MAX_RESET_LEN = 43;

export function resetToken(key: Uint8Array, cid: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(cid).digest().subarray(0, RESET_TOKEN_LEN));
}

/** The token as quiche takes it: a u128 whose big-endian bytes are the token. */
export function resetTokenValue(token: Uint8Array): bigint {
  let v = 0n;
  for (const b of token) v = (v << 8n) | BigInt(b);
  return v;
}

/**
 * Builds a reset answering a packet of `triggerLength` bytes, or null when that
 * packet is too small to answer without risking a reset loop (a reset must be
 * shorter than what triggered it).
 */
export function buildReset(token: Uint8Array, triggerLength: number): Uint8Array | null {
  const length = Math.min(MAX_RESET_LEN, triggerLength - 1);
  if (length < MIN_RESET_LEN) return null;
  const packet = crypto.getRandomValues(new Uint8Array(length));
  // Looks like a short-header packet: fixed bit set, long-header bit clear.
  packet[0] = (packet[0]! & 0x3f) | 0x40;
  packet.set(token, length - RESET_TOKEN_LEN);
  return packet;
}
