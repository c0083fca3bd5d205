// Public surface of the framing layer: every byte on the wire goes through here.

export type { Decoded, FrameError, FrameErrorKind } from './errors.ts';
export { FRAME_ERROR_KINDS } from './errors.ts';

export type { Address, ControlMessage, ControlReader, ControlType, NackCode, ProbeReply, RestartHint, Role } from './control.ts';
export {
  ALPN,
  PROTOCOL_VERSIONS,
  alpnFor,
  versionOfAlpn,
  CONTROL_LENGTH_PREFIX,
  CONTROL_TYPE_BYTES,
  MAX_CONTROL_MESSAGE,
  NACK_CODE_BYTES,
  PROTOCOL_VERSION,
  ROLE_BYTES,
  createControlReader,
  decodeControl,
  encodeControl,
  validateServiceName,
} from './control.ts';

export type { DatagramHeader } from './datagram.ts';
export {
  DATAGRAM_HEADER_LEN,
  MAX_DATAGRAM_LEN,
  MAX_UDP_PAYLOAD,
  encodeDatagram,
  parseDatagram,
  writeDatagramHeader,
} from './datagram.ts';

export type { SegmentReader, StreamHeaderReader, StreamHeaderResult } from './stream.ts';
export {
  MAX_SEGMENT,
  SEGMENT_PREFIX_LEN,
  STREAM_HEADER_LEN,
  STREAM_OPEN,
  STREAM_RESET_NAMES,
  StreamResetCode,
  createSegmentReader,
  createStreamHeaderReader,
  decodeStreamHeader,
  encodeEndSegment,
  encodeSegmentPrefix,
  encodeStreamHeader,
  normaliseResetCode,
  streamResetName,
  writeStreamHeader,
} from './stream.ts';
