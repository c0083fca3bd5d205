/**
 * The ztna wire protocol: the one way into core/frame. Every byte on the wire
 * is encoded and decoded behind this module; docs/protocol.md is the full
 * specification, and each type constant carries its byte layout where it is
 * defined (control.ts, datagram.ts, stream.ts, close.ts).
 *
 * Protocol flow (one QUIC connection, ALPN `ztna/N`, N the newest version
 * both sides speak; u16/u32 are big-endian):
 *
 *   client                                        server
 *   HELLO(version, role, name[, software])  -->               stream 0, first
 *                                           <--  WELCOME(version, observed)
 *   connector: REGISTER(req, service)       -->
 *                                           <--  ACK(req, channel) | NACK(req, code, reason)
 *   agent:     OPEN(req, service)           -->
 *                                           <--  ACK(req, channel) | NACK(req, code, reason)
 *                                           <--  SERVICE_STATUS(service, up)   any time, to agents
 *   DATAGRAM [u16 channel][u32 flow][payload]   <->  relayed per flow between agent and connector
 *   TCP: a bidirectional stream per connection: [0x01][u16 channel], then
 *        segments [u32 n][n bytes] ... END [u32 0] with the QUIC FIN
 *   connector: DEREGISTER(req, service)     -->                a drain: no new flows
 *                                           <--  ACK(req, 0)
 *   PROBE(req, service)                     -->                ztna doctor, no side effects
 *                                           <--  PROBE_REPLY(req, time, allowed, counts, software)
 *                                           <--  GOAWAY(reason, alternate[, reconnect_in, try_for])
 *   CONNECTION_CLOSE(CloseCode)             <->
 *
 * Stream 0 carries control messages, each [u16 length][u8 type][fields];
 * a malformed one closes the connection with PROTOCOL_ERROR. Datagrams are
 * never retransmitted or reordered by ztna: UDP loss stays UDP loss.
 */

export type { Decoded, FrameError, FrameErrorKind } from "./errors.ts";
export { FRAME_ERROR_KINDS } from "./errors.ts";

export { CloseCode } from "./close.ts";

export type {
  Address,
  ControlMessage,
  ControlReader,
  ControlType,
  NackCode,
  ProbeReply,
  RestartHint,
  Role,
} from "./control.ts";
export {
  ALPN,
  alpnFor,
  CONTROL_LENGTH_PREFIX,
  CONTROL_TYPE_BYTES,
  createControlReader,
  decodeControl,
  encodeControl,
  MAX_CONTROL_MESSAGE,
  NACK_CODE_BYTES,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  ROLE_BYTES,
  ROLES,
  validateServiceName,
  versionOfAlpn,
} from "./control.ts";

export type { DatagramHeader } from "./datagram.ts";
export {
  DATAGRAM_HEADER_LEN,
  datagramChannel,
  encodeDatagram,
  encodePathProbe,
  MAX_DATAGRAM_LEN,
  MAX_TUNNEL_PAYLOAD,
  parseDatagram,
  PATH_PROBE_CHANNEL,
  writeDatagramHeader,
} from "./datagram.ts";

export type { SegmentReader, StreamHeaderReader, StreamHeaderResult } from "./stream.ts";
export {
  createSegmentReader,
  createStreamHeaderReader,
  decodeStreamHeader,
  encodeEndSegment,
  encodeSegmentPrefix,
  encodeStreamHeader,
  MAX_SEGMENT,
  normaliseResetCode,
  SEGMENT_PREFIX_LEN,
  STREAM_HEADER_LEN,
  STREAM_OPEN,
  STREAM_RESET_NAMES,
  StreamResetCode,
  streamResetName,
  writeStreamHeader,
} from "./stream.ts";
