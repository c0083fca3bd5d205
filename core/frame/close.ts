/** Application error codes carried in QUIC CONNECTION_CLOSE frames (see docs/protocol.md). */
export const CloseCode = {
  /** Orderly close: shutdown finished, or the peer asked to leave. */
  NO_ERROR: 0x0,
  /** The peer sent bytes the framing layer could not decode. */
  PROTOCOL_ERROR: 0x1,
  /** The server is shutting down after its grace period. */
  SHUTDOWN: 0x2,
  /** The peer is not allowed to do what it asked (certificate, role). */
  NOT_AUTHORISED: 0x3,
  /** A configured limit was exceeded (connections per address, ...). */
  LIMIT_EXCEEDED: 0x4,
  /** HELLO did not arrive in time, or arrived twice. */
  HANDSHAKE_FAILED: 0x5,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
