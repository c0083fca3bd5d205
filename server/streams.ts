/**
 * TCP tunnels through the server: an agent opens a QUIC stream whose header
 * names one of its channels; the server opens a stream to a live connector of
 * that service (round-robin, like flows), writes the connector's channel, and
 * splices the two streams byte for byte.
 *
 * Backpressure: when one side's stream has more than `highWater` bytes queued
 * beyond QUIC flow control, the server stops reading the other side (its
 * peer's flow control then holds it back) until the queue drains. FIN passes
 * through per direction (half-close); a reset or STOP_SENDING on either side
 * resets the other with the same code. Refusals are stream resets with a code
 * from core/frame/stream.ts, counted by result.
 */
import {
  createStreamHeaderReader,
  encodeStreamHeader,
  normaliseResetCode,
  type StreamHeaderReader,
  StreamResetCode,
  streamResetName,
} from "../core/frame/mod.ts";
import type { Logger } from "../core/log.ts";
import { createLogThrottle, type LogThrottle } from "../core/log-repeats.ts";
import type { CounterCell } from "../core/metrics/cells.ts";
import { formatAddress } from "../core/net/address.ts";
import type { QuicConnection } from "../core/quic/endpoint.ts";
import type { ServerMetrics, ServerStreamResult } from "./metrics.ts";
import { type Peer, pickLiveConnector, type Relay } from "./relay.ts";

/** Bytes queued towards one side before the other side is no longer read. */
export const STREAM_HIGH_WATER = 1024 * 1024;

export interface StreamRelaySettings {
  relay: Relay<QuicConnection>;
  metrics: ServerMetrics;
  log: Logger;
  /** The peer on a connection once it said HELLO, else null. */
  peerOf(conn: QuicConnection): Peer<QuicConnection> | null;
  draining(): boolean;
  highWater?: number;
}

export interface StreamRelay {
  onData(conn: QuicConnection, streamId: number, data: Uint8Array, fin: boolean): void;
  onDrained(conn: QuicConnection, streamId: number): void;
  onReset(conn: QuicConnection, streamId: number, code: number, how: "reset" | "stopped"): void;
  /** The connection is gone: reset the other half of each of its streams. */
  onClosed(conn: QuicConnection): void;
  /** Spliced stream pairs. */
  readonly active: number;
}

/** One half of a spliced pair: a stream on one connection. */
interface Side {
  readonly conn: QuicConnection;
  readonly id: number;
  readonly fromAgent: boolean;
  /** The other half; null while the agent's header is still being read. */
  other: Side | null;
  /** Header reader, on the agent half until the header is complete. */
  reader: StreamHeaderReader | null;
  /** We stopped reading this stream because the other half is backed up. */
  paused: boolean;
  /** FIN received on this stream (and passed on). */
  finished: boolean;
}

/** The stream relay's state: every stream half by connection and id, and its counters. */
interface StreamRelayState {
  readonly settings: StreamRelaySettings;
  /** Bytes queued towards one side before the other side is no longer read. */
  readonly highWater: number;
  /** Every half we know, by connection, then stream id (an agent's half from its first byte). */
  readonly byConn: Map<QuicConnection, Map<number, Side>>;
  /** Spliced pairs (the streams_active gauge). */
  active: number;
  readonly bytesA2C: CounterCell;
  readonly bytesC2A: CounterCell;
  /** At most one stream_refused line per result per second. */
  readonly refusals: LogThrottle;
}

export function createStreamRelay(settings: StreamRelaySettings): StreamRelay {
  const s: StreamRelayState = {
    settings,
    highWater: settings.highWater ?? STREAM_HIGH_WATER,
    byConn: new Map(),
    active: 0,
    bytesA2C: settings.metrics.streamBytes.child({ direction: "agent_to_connector" }),
    bytesC2A: settings.metrics.streamBytes.child({ direction: "connector_to_agent" }),
    refusals: createLogThrottle(1_000),
  };
  return {
    get active() {
      return s.active;
    },
    onData: (conn, streamId, data, fin) => handleData(s, conn, streamId, data, fin),
    onDrained: (conn, streamId) => handleDrained(s, conn, streamId),
    onReset: (conn, streamId, code, how) => handleReset(s, conn, streamId, code, how),
    onClosed: (conn) => handleClosed(s, conn),
  };
}

/** Bytes on a stream: an agent's new stream is read up to its header, then spliced; spliced bytes pass on. */
function handleData(s: StreamRelayState, conn: QuicConnection, streamId: number, data: Uint8Array, fin: boolean): void {
  let side = s.byConn.get(conn)?.get(streamId);
  if (side === undefined) {
    const peer = s.settings.peerOf(conn);
    side = {
      conn,
      id: streamId,
      fromAgent: true,
      other: null,
      reader: createStreamHeaderReader(),
      paused: false,
      finished: false,
    };
    // Only agents open tunnel streams, on client-initiated bidirectional ids (0 mod 4).
    if (!peer || peer.role !== "agent" || (streamId & 3) !== 0) {
      return refuse(
        s,
        side,
        StreamResetCode.PROTOCOL,
        "protocol",
        `unexpected stream ${streamId} from ${peer?.role ?? "peer before hello"}`,
      );
    }
    add(s, side);
  }
  if (side.reader === null) return forward(s, side, data, fin);
  const header = side.reader.push(data);
  if (header === null) {
    if (fin) refuse(s, side, StreamResetCode.PROTOCOL, "protocol", side.reader.truncated().message);
    return;
  }
  side.reader = null;
  if (!header.ok) return refuse(s, side, StreamResetCode.PROTOCOL, "protocol", header.error.message);
  route(s, side, header.channel, header.rest, fin);
}

/** A stream drained its queued writes: read the other half again. */
function handleDrained(s: StreamRelayState, conn: QuicConnection, streamId: number): void {
  const other = s.byConn.get(conn)?.get(streamId)?.other;
  if (!other?.paused) return;
  other.paused = false;
  other.conn.pauseStream(other.id, false);
}

/** A peer reset or stopped a stream: the other half is reset with the same code. */
function handleReset(
  s: StreamRelayState,
  conn: QuicConnection,
  streamId: number,
  code: number,
  how: "reset" | "stopped",
): void {
  const side = s.byConn.get(conn)?.get(streamId);
  if (!side) return;
  const passOn = normaliseResetCode(code);
  // Free our half too, then tell the far end with the same code.
  conn.shutdownStream(streamId, passOn);
  side.other?.conn.shutdownStream(side.other.id, passOn);
  s.settings.metrics.streamResets.child({ code: streamResetName(code) }).inc();
  s.settings.log.debug("stream_reset", {
    peer: formatAddress(conn.remote),
    stream: streamId,
    code: streamResetName(code),
    how,
  });
  release(s, side, "reset");
}

/** The connection is gone: reset the other half of each of its streams. */
function handleClosed(s: StreamRelayState, conn: QuicConnection): void {
  const streams = s.byConn.get(conn);
  if (!streams) return;
  s.byConn.delete(conn);
  for (const side of streams.values()) {
    side.other?.conn.shutdownStream(side.other.id, StreamResetCode.ABORTED);
    release(s, side, "connection_lost");
  }
}

/** The agent's header is complete: find a connector and splice. */
function route(s: StreamRelayState, side: Side, channel: number, rest: Uint8Array, fin: boolean): void {
  const { settings } = s;
  const peer = settings.peerOf(side.conn);
  const binding = peer?.channels.get(channel);
  if (!peer || !binding) {
    return refuse(s, side, StreamResetCode.NOT_ALLOWED, "not_allowed", `channel ${channel} not granted`);
  }
  if (settings.draining()) return refuse(s, side, StreamResetCode.DRAINING, "draining", "server draining");
  const connector = pickLiveConnector(settings.relay, binding.service);
  if (!connector) {
    return refuse(s, side, StreamResetCode.SERVICE_DOWN, "service_down", `no connector for ${binding.service}`);
  }
  const target = connector.peer.conn;
  if (target.closed || target.raw.peerStreamsLeftBidi() < 1) {
    return refuse(s, side, StreamResetCode.LIMIT_EXCEEDED, "limit_exceeded", "connector stream limit reached");
  }
  const other: Side = {
    conn: target,
    id: target.openStream(),
    fromAgent: false,
    other: side,
    reader: null,
    paused: false,
    finished: false,
  };
  side.other = other;
  add(s, other);
  setActive(s, 1);
  settings.metrics.streamsTotal.child({ result: "opened" }).inc();
  target.writeStream(other.id, encodeStreamHeader(connector.channel));
  forward(s, side, rest, fin);
}

/** Bytes of one half to the other; the source is paused while the destination has too much queued. */
function forward(s: StreamRelayState, src: Side, data: Uint8Array, fin: boolean): void {
  const dst = src.other!;
  if (data.length > 0 || fin) dst.conn.writeStream(dst.id, data, fin);
  (src.fromAgent ? s.bytesA2C : s.bytesC2A).inc(data.length);
  if (fin) {
    src.finished = true;
    if (dst.finished) release(s, src, "fin");
    return;
  }
  if (!src.paused && dst.conn.pendingStreamBytes(dst.id) > s.highWater) {
    src.paused = true;
    src.conn.pauseStream(src.id, true);
  }
}

/** Refuses an agent's stream with a reset `code`, counted by result. */
function refuse(
  s: StreamRelayState,
  side: Side,
  code: StreamResetCode,
  result: ServerStreamResult,
  detail: string,
): void {
  side.conn.shutdownStream(side.id, code);
  remove(s, side);
  s.settings.metrics.streamsTotal.child({ result }).inc();
  const suppressed = s.refusals.allow(result);
  if (suppressed === null) return;
  s.settings.log.info("stream_refused", {
    peer: formatAddress(side.conn.remote),
    stream: side.id,
    code: streamResetName(code),
    reason: detail,
    suppressed,
  });
}

function add(s: StreamRelayState, side: Side): void {
  let streams = s.byConn.get(side.conn);
  if (!streams) s.byConn.set(side.conn, streams = new Map());
  streams.set(side.id, side);
}

function remove(s: StreamRelayState, side: Side): void {
  const streams = s.byConn.get(side.conn);
  if (streams?.get(side.id) !== side) return;
  streams.delete(side.id);
  if (streams.size === 0) s.byConn.delete(side.conn);
}

/** Ends a pair: both halves forgotten, the gauge and the close counter updated. */
function release(s: StreamRelayState, side: Side, how: "fin" | "reset" | "connection_lost"): void {
  remove(s, side);
  if (side.other === null) return; // never spliced: not counted as a stream
  remove(s, side.other);
  side.other.other = null;
  side.other = null;
  setActive(s, -1);
  s.settings.metrics.streamsClosed.child({ how }).inc();
}

function setActive(s: StreamRelayState, delta: number): void {
  s.active += delta;
  s.settings.metrics.streamsActive.set(s.active);
}
