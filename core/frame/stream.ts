// Framing of TCP tunnel streams. Every bidirectional QUIC stream other than
// the control stream starts with a 3-byte header naming the channel it belongs
// to (u8 STREAM_OPEN, u16 BE channel), then carries the TCP bytes as segments
// (u32 BE length, then that many bytes), ended by an empty segment (END)
// written together with the QUIC FIN. Errors on a stream travel as QUIC stream
// reset codes (RESET_STREAM / STOP_SENDING), not as bytes.
//
// Why segments rather than raw bytes up to the FIN: the QUIC library (quiche
// 0.18) may drop a FIN written on its own once all earlier data was
// acknowledged and the peer's side is finished (it forgets the stream before
// the FIN goes out), so a half-closed TCP connection would never see its EOF.
// END gives every FIN data to travel with.

import type { Decoded, FrameError } from "./errors.ts";

/**
 * Type byte of the stream header; other values are reserved for later stream
 * kinds. Layout: u8 STREAM_OPEN, u16 channel (never 0), in the direction of
 * the peer that opened the stream; then segments [u32 n][n bytes] each way,
 * ended by END ([u32 0]) written with the QUIC FIN.
 */
export const STREAM_OPEN = 0x01;
export const STREAM_HEADER_LEN = 3;

/** Application error codes carried in RESET_STREAM / STOP_SENDING on tunnel streams. */
export const StreamResetCode = {
  /** No live connector offers the service (or the agent has no channel for it). */
  SERVICE_DOWN: 0x10,
  /** The connector could not connect to its forward address. */
  CONNECT_FAILED: 0x11,
  /** One end went away abruptly (TCP reset, socket error, tunnel lost). */
  ABORTED: 0x12,
  /** The stream header was malformed or missing. */
  PROTOCOL: 0x13,
  /** The channel in the header was not granted to this connection. */
  NOT_ALLOWED: 0x14,
  /** No stream could be opened towards a connector (QUIC stream limit). */
  LIMIT_EXCEEDED: 0x15,
  /** The server is draining and accepts no new streams. */
  DRAINING: 0x16,
} as const;
export type StreamResetCode = (typeof StreamResetCode)[keyof typeof StreamResetCode];

const NAMES = new Map<number, string>(
  Object.entries(StreamResetCode).map(([name, code]) => [code, name.toLowerCase()]),
);

/** Names of the codes (lower case) plus "other": the closed label set for metrics. */
export const STREAM_RESET_NAMES: readonly string[] = [...NAMES.values(), "other"];

/** Lower-case name of a reset code for logs and metric labels; "other" for codes we do not define. */
export function streamResetName(code: number): string {
  return NAMES.get(code) ?? "other";
}

/** A code received from a peer, passed on unchanged only if it is one of ours. */
export function normaliseResetCode(code: number): StreamResetCode {
  return NAMES.has(code) ? (code as StreamResetCode) : StreamResetCode.ABORTED;
}

/** Writes the header into out[0..2]. Throws only on programmer error. */
export function writeStreamHeader(out: Uint8Array, channel: number): void {
  if (channel >>> 0 !== channel || channel < 1 || channel > 0xffff) {
    throw new Error(`stream channel must be a u16 other than 0, got ${channel}`);
  }
  if (out.length < STREAM_HEADER_LEN) throw new Error(`stream header needs ${STREAM_HEADER_LEN} bytes`);
  out[0] = STREAM_OPEN;
  out[1] = channel >>> 8;
  out[2] = channel;
}

export function encodeStreamHeader(channel: number): Uint8Array {
  const out = new Uint8Array(STREAM_HEADER_LEN);
  writeStreamHeader(out, channel);
  return out;
}

/** Decodes a complete 3-byte header. */
export function decodeStreamHeader(bytes: Uint8Array): Decoded<{ channel: number }> {
  if (bytes.length < STREAM_HEADER_LEN) {
    return fail("truncated", `stream header truncated: need ${STREAM_HEADER_LEN} bytes, have ${bytes.length}`);
  }
  if (bytes[0] !== STREAM_OPEN) return badType(bytes[0]!);
  const channel = (bytes[1]! << 8) | bytes[2]!;
  if (channel === 0) return fail("bad_value", "stream header channel 0 is never granted");
  return { ok: true, value: { channel } };
}

export type StreamHeaderResult =
  /** More bytes are needed. */
  | null
  | { ok: true; channel: number; /** Bytes after the header in this chunk (a view of it). */ rest: Uint8Array }
  | { ok: false; error: FrameError };

export interface StreamHeaderReader {
  /**
   * Feeds the stream's next chunk. Returns null until the header is complete
   * (QUIC may split even 3 bytes), then the header and the rest of that chunk.
   * Call it no more after a non-null result.
   */
  push(chunk: Uint8Array): StreamHeaderResult;
  /** For a stream that ended (FIN) before its header was complete. */
  truncated(): FrameError;
}

export function createStreamHeaderReader(): StreamHeaderReader {
  const buf = new Uint8Array(STREAM_HEADER_LEN);
  let have = 0;
  return {
    push(chunk) {
      const n = Math.min(STREAM_HEADER_LEN - have, chunk.length);
      buf.set(chunk.subarray(0, n), have);
      have += n;
      if (have < STREAM_HEADER_LEN) {
        // A wrong type byte is wrong however many bytes follow: report it now.
        if (have > 0 && buf[0] !== STREAM_OPEN) return badType(buf[0]!);
        return null;
      }
      const decoded = decodeStreamHeader(buf);
      if (!decoded.ok) return decoded;
      return { ok: true, channel: decoded.value.channel, rest: chunk.subarray(n) };
    },
    truncated() {
      return { kind: "truncated", message: `stream ended after ${have} of the ${STREAM_HEADER_LEN} header bytes` };
    },
  };
}

function badType(type: number): { ok: false; error: FrameError } {
  return fail("unknown_type", `stream header type 0x${type.toString(16).padStart(2, "0")} is not STREAM_OPEN (0x01)`);
}

function fail(kind: FrameError["kind"], message: string): { ok: false; error: FrameError } {
  return { ok: false, error: { kind, message } };
}

/** Bytes of a segment's length prefix. */
export const SEGMENT_PREFIX_LEN = 4;
/** Largest segment payload (a u32 length; 0 is END). */
export const MAX_SEGMENT = 0xffffffff;

/** The 4-byte prefix of a segment of `length` payload bytes (1..MAX_SEGMENT). */
export function encodeSegmentPrefix(length: number): Uint8Array {
  if (length >>> 0 !== length || length === 0) {
    throw new Error(`segment length must be 1..${MAX_SEGMENT}, got ${length}`);
  }
  const out = new Uint8Array(SEGMENT_PREFIX_LEN);
  out[0] = length >>> 24;
  out[1] = length >>> 16;
  out[2] = length >>> 8;
  out[3] = length;
  return out;
}

/** The END segment: the sender's last bytes on a stream, always written with the FIN. */
export function encodeEndSegment(): Uint8Array {
  return new Uint8Array(SEGMENT_PREFIX_LEN);
}

export interface SegmentReader {
  /**
   * Feeds the stream's next chunk (after the header). Payload bytes go to
   * `onPayload` as views of `chunk`, in order, as soon as they arrive (a
   * segment is never buffered whole). Returns 'end' once END was read, null
   * while more may come, or an error: bytes after END are `trailing_bytes`.
   */
  push(chunk: Uint8Array, onPayload: (bytes: Uint8Array) => void): "end" | null | FrameError;
  /** The QUIC FIN arrived: null if END came first, else `truncated`. */
  finish(): FrameError | null;
  readonly ended: boolean;
}

export function createSegmentReader(): SegmentReader {
  /** Payload bytes still to come in the current segment. */
  let remaining = 0;
  /** Length prefix bytes collected so far (a prefix may be split across chunks). */
  let prefixHave = 0;
  let prefix = 0;
  let ended = false;
  return {
    get ended() {
      return ended;
    },
    push(chunk, onPayload) {
      let off = 0;
      while (off < chunk.length) {
        if (ended) {
          return { kind: "trailing_bytes", message: `${chunk.length - off} bytes after the END segment` };
        }
        if (remaining > 0) {
          const n = Math.min(remaining, chunk.length - off);
          onPayload(chunk.subarray(off, off + n));
          remaining -= n;
          off += n;
          continue;
        }
        // `* 256 + byte` rather than shifts: a u32 must not turn negative.
        prefix = prefix * 256 + chunk[off++]!;
        if (++prefixHave < SEGMENT_PREFIX_LEN) continue;
        remaining = prefix;
        prefix = 0;
        prefixHave = 0;
        if (remaining === 0) ended = true;
      }
      return ended ? "end" : null;
    },
    finish() {
      if (ended) return null;
      return {
        kind: "truncated",
        message: remaining > 0 || prefixHave > 0
          ? `stream finished inside a segment (${remaining} payload bytes or ${
            SEGMENT_PREFIX_LEN - prefixHave
          } prefix bytes missing)`
          : "stream finished without an END segment",
      };
    },
  };
}
