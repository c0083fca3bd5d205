// Datagram framing for the hot path: u16 BE channel, u32 BE flow, payload.
// Parsing fills a caller-owned object and uses byte shifts, so a successful
// parse allocates nothing; failures return preallocated errors, so a flood of
// junk datagrams allocates nothing either.

import type { FrameError } from "./errors.ts";

/** A DATAGRAM frame's payload: u16 channel, u32 flow, then the tunnelled UDP payload unchanged. */
export const DATAGRAM_HEADER_LEN = 6;
/**
 * Largest UDP payload one datagram tunnels (what a local client sent). Not
 * the QUIC packet size (core/quic/config.ts QUIC_UDP_PAYLOAD, --max-udp-payload):
 * 1300 + the header fits a 1350-byte QUIC packet with room to spare.
 */
export const MAX_TUNNEL_PAYLOAD = 1300;
/** Largest datagram this protocol sends or accepts (header + payload). */
export const MAX_DATAGRAM_LEN = DATAGRAM_HEADER_LEN + MAX_TUNNEL_PAYLOAD;

export interface DatagramHeader {
  channel: number;
  flow: number;
  /** Payload bytes, which start at DATAGRAM_HEADER_LEN. */
  payloadLength: number;
}

const TRUNCATED: FrameError = Object.freeze({
  kind: "truncated",
  message: `datagram truncated: shorter than the ${DATAGRAM_HEADER_LEN}-byte header`,
});
const OVERSIZED: FrameError = Object.freeze({
  kind: "oversized",
  message: `datagram payload exceeds MAX_TUNNEL_PAYLOAD (${MAX_TUNNEL_PAYLOAD} bytes)`,
});
const LENGTH_BEYOND_BUFFER: FrameError = Object.freeze({
  kind: "truncated",
  message: "datagram truncated: the stated length is larger than the buffer holding it",
});

/** Writes the 6-byte header into out[0..5]. Throws only on programmer error. */
export function writeDatagramHeader(out: Uint8Array, channel: number, flow: number): void {
  // `x >>> 0 === x` is a cheap "is a uint32" test (false for NaN, fractions, negatives).
  if (channel >>> 0 !== channel || channel > 0xffff) throw new Error(`datagram channel must be a u16, got ${channel}`);
  if (flow >>> 0 !== flow) throw new Error(`datagram flow must be a u32, got ${flow}`);
  if (out.length < DATAGRAM_HEADER_LEN) {
    throw new Error(`datagram buffer must hold at least ${DATAGRAM_HEADER_LEN} bytes`);
  }
  out[0] = channel >>> 8;
  out[1] = channel;
  out[2] = flow >>> 24;
  out[3] = flow >>> 16;
  out[4] = flow >>> 8;
  out[5] = flow;
}

/**
 * Parses the first `len` bytes of `buf` (a reused receive buffer may be
 * larger). Fills `into` and returns null, or returns an error and leaves
 * `into` untouched. Never throws, never allocates.
 */
export function parseDatagram(buf: Uint8Array, len: number, into: DatagramHeader): FrameError | null {
  // Written so NaN and negative lengths fail the first test.
  if (!(len >= DATAGRAM_HEADER_LEN)) return TRUNCATED;
  if (len > buf.length) return LENGTH_BEYOND_BUFFER;
  const payloadLength = len - DATAGRAM_HEADER_LEN;
  if (payloadLength > MAX_TUNNEL_PAYLOAD) return OVERSIZED;
  into.channel = (buf[0]! << 8) | buf[1]!;
  into.flow = ((buf[2]! << 24) | (buf[3]! << 16) | (buf[4]! << 8) | buf[5]!) >>> 0;
  into.payloadLength = payloadLength;
  return null;
}

/**
 * Channel 0 is never granted to a service: a datagram on it is a path probe,
 * which the server sends back unchanged, whatever its size (docs/protocol.md).
 */
export const PATH_PROBE_CHANNEL = 0;

/**
 * The channel of a datagram, or null when it is shorter than the header.
 * Unlike parseDatagram it applies no size limit: path probes may be larger
 * than a tunnelled datagram.
 */
export function datagramChannel(buf: Uint8Array): number | null {
  return buf.length >= DATAGRAM_HEADER_LEN ? (buf[0]! << 8) | buf[1]! : null;
}

/** A path probe of `size` bytes in all: channel 0, `flow` free for the sender's own use. */
export function encodePathProbe(size: number, flow = 0): Uint8Array {
  const out = new Uint8Array(size);
  writeDatagramHeader(out, PATH_PROBE_CHANNEL, flow);
  return out;
}

/** Allocating convenience for tests and tools: header + a copy of payload. */
export function encodeDatagram(channel: number, flow: number, payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_TUNNEL_PAYLOAD) {
    throw new Error(`datagram payload of ${payload.length} bytes exceeds MAX_TUNNEL_PAYLOAD (${MAX_TUNNEL_PAYLOAD})`);
  }
  const out = new Uint8Array(DATAGRAM_HEADER_LEN + payload.length);
  writeDatagramHeader(out, channel, flow);
  out.set(payload, DATAGRAM_HEADER_LEN);
  return out;
}
