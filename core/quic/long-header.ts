/**
 * The long header of a QUIC packet (RFC 9000 §17.2), read in JavaScript with
 * the checks quiche's own parser makes. quiche's `Header.fromSlice` is not
 * used: under Bun (1.4.5) every byte array it hands out (dcid, scid, token,
 * anew on each read) leaves 65–130 bytes of glibc heap that no collection
 * gives back. A few per handshake, scattered among the connections' memory,
 * kept malloc_trim from returning some 12 MiB of the heap after a flood of
 * refused handshakes (issue 8.8's memory after abuse).
 */
import { quiche } from "./native.ts";

/** RFC 9000 §17.2: a connection ID of QUIC v1 is at most 20 bytes. */
export const MAX_CID = 20;
/** A retry packet ends in its integrity tag (RFC 9001 §5.8). */
const RETRY_TAG_LEN = 16;

export interface LongHeader {
  /** quiche.Type: Initial, ZeroRTT, Handshake, Retry or VersionNegotiation. */
  ty: number;
  version: number;
  /** Views of the packet: valid while it is; copy what must outlive it. */
  dcid: Uint8Array;
  scid: Uint8Array;
  /** Initial packets only: the token, possibly empty. */
  token?: Uint8Array;
}

/** Packet types of a long header by its two type bits (RFC 9000 Table 5). */
const TYPES_BY_BITS = [quiche.Type.Initial, quiche.Type.ZeroRTT, quiche.Type.Handshake, quiche.Type.Retry];

/** The long header at the start of `data`, or null if it is malformed (or a short header). */
export function parseLongHeader(data: Uint8Array): LongHeader | null {
  // first byte, version (4), dcid length, scid length: the least a long header has.
  if (data.length < 7 || (data[0]! & 0x80) === 0) return null;
  const version = ((data[1]! << 24) | (data[2]! << 16) | (data[3]! << 8) | data[4]!) >>> 0;
  const ty = version === 0 ? quiche.Type.VersionNegotiation : TYPES_BY_BITS[(data[0]! >> 4) & 0x03]!;
  // An unknown version may use longer connection IDs: only v1's are bounded.
  const bounded = quiche.versionIsSupported(version);
  let at = 5;
  const dcidLen = data[at++]!;
  if ((bounded && dcidLen > MAX_CID) || at + dcidLen + 1 > data.length) return null;
  const dcid = data.subarray(at, at + dcidLen);
  at += dcidLen;
  const scidLen = data[at++]!;
  if ((bounded && scidLen > MAX_CID) || at + scidLen > data.length) return null;
  const scid = data.subarray(at, at + scidLen);
  at += scidLen;
  const rest = data.length - at;
  if (ty === quiche.Type.Retry && rest < RETRY_TAG_LEN) return null;
  // A version negotiation lists 32-bit versions.
  if (ty === quiche.Type.VersionNegotiation && rest % 4 !== 0) return null;
  if (ty !== quiche.Type.Initial) return { ty, version, dcid, scid };
  // The token's length is a variable-length integer (RFC 9000 §16): 1, 2, 4 or 8 bytes.
  if (rest < 1) return null;
  const size = 1 << (data[at]! >> 6);
  if (at + size > data.length) return null;
  let tokenLen = data[at]! & 0x3f;
  for (let i = 1; i < size; i++) tokenLen = tokenLen * 256 + data[at + i]!;
  at += size;
  if (at + tokenLen > data.length) return null;
  return { ty, version, dcid, scid, token: data.subarray(at, at + tokenLen) };
}
