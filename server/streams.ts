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
  StreamResetCode,
  createStreamHeaderReader,
  encodeStreamHeader,
  normaliseResetCode,
  streamResetName,
  type StreamHeaderReader,
} from "../core/frame/stream.ts";
import { formatAddress } from "../core/net/address.ts";
import type { Logger } from "../core/log.ts";
import type { QuicConnection } from "../core/quic/endpoint.ts";
import type { ServerMetrics, ServerStreamResult } from "./metrics.ts";
import { pickLiveConnector, type Peer, type Relay } from "./relay.ts";

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

export function createStreamRelay(settings: StreamRelaySettings): StreamRelay {
  const { relay, metrics, log } = settings;
  const highWater = settings.highWater ?? STREAM_HIGH_WATER;
  const byConn = new Map<QuicConnection, Map<number, Side>>();
  let active = 0;
  const bytesA2C = metrics.streamBytes.child({ direction: "agent_to_connector" });
  const bytesC2A = metrics.streamBytes.child({ direction: "connector_to_agent" });

  const setActive = (delta: number) => metrics.streamsActive.set((active += delta));

  function add(side: Side) {
    let streams = byConn.get(side.conn);
    if (!streams) byConn.set(side.conn, (streams = new Map()));
    streams.set(side.id, side);
  }

  function remove(side: Side) {
    const streams = byConn.get(side.conn);
    if (streams?.get(side.id) !== side) return;
    streams.delete(side.id);
    if (streams.size === 0) byConn.delete(side.conn);
  }

  /** Ends a pair: both halves forgotten, the gauge and the close counter updated. */
  function release(side: Side, how: "fin" | "reset" | "connection_lost") {
    remove(side);
    if (side.other === null) return; // never spliced: not counted as a stream
    remove(side.other);
    side.other.other = null;
    side.other = null;
    setActive(-1);
    metrics.streamsClosed.child({ how }).inc();
  }

  // At most one log line per refusal kind per second (counted in the metric either way).
  const lastLog = new Map<ServerStreamResult, { at: number; suppressed: number }>();
  function refuse(side: Side, code: StreamResetCode, result: ServerStreamResult, detail: string) {
    side.conn.shutdownStream(side.id, code);
    remove(side);
    metrics.streamsTotal.child({ result }).inc();
    const now = Date.now();
    const last = lastLog.get(result);
    if (last && now - last.at < 1_000) return void last.suppressed++;
    lastLog.set(result, { at: now, suppressed: 0 });
    log.info("stream_refused", {
      peer: remoteText(side.conn),
      stream: side.id,
      code: streamResetName(code),
      reason: detail,
      suppressed: last?.suppressed ?? 0,
    });
  }

  /** The agent's header is complete: find a connector and splice. */
  function route(side: Side, channel: number, rest: Uint8Array, fin: boolean) {
    const peer = settings.peerOf(side.conn);
    const binding = peer?.channels.get(channel);
    if (!peer || !binding) return refuse(side, StreamResetCode.NOT_ALLOWED, "not_allowed", `channel ${channel} not granted`);
    if (settings.draining()) return refuse(side, StreamResetCode.DRAINING, "draining", "server draining");
    const connector = pickLiveConnector(relay, binding.service);
    if (!connector) return refuse(side, StreamResetCode.SERVICE_DOWN, "service_down", `no connector for ${binding.service}`);
    const target = connector.peer.conn;
    if (target.closed || target.raw.peerStreamsLeftBidi() < 1) {
      return refuse(side, StreamResetCode.LIMIT_EXCEEDED, "limit_exceeded", "connector stream limit reached");
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
    add(other);
    setActive(1);
    metrics.streamsTotal.child({ result: "opened" }).inc();
    target.writeStream(other.id, encodeStreamHeader(connector.channel));
    forward(side, rest, fin);
  }

  function forward(src: Side, data: Uint8Array, fin: boolean) {
    const dst = src.other!;
    if (data.length > 0 || fin) dst.conn.writeStream(dst.id, data, fin);
    (src.fromAgent ? bytesA2C : bytesC2A).inc(data.length);
    if (fin) {
      src.finished = true;
      if (dst.finished) release(src, "fin");
      return;
    }
    if (!src.paused && dst.conn.pendingStreamBytes(dst.id) > highWater) {
      src.paused = true;
      src.conn.pauseStream(src.id, true);
    }
  }

  return {
    get active() {
      return active;
    },
    onData(conn, streamId, data, fin) {
      let side = byConn.get(conn)?.get(streamId);
      if (side === undefined) {
        const peer = settings.peerOf(conn);
        side = { conn, id: streamId, fromAgent: true, other: null, reader: createStreamHeaderReader(), paused: false, finished: false };
        // Only agents open tunnel streams, on client-initiated bidirectional ids (0 mod 4).
        if (!peer || peer.role !== "agent" || (streamId & 3) !== 0) {
          return refuse(side, StreamResetCode.PROTOCOL, "protocol", `unexpected stream ${streamId} from ${peer?.role ?? "peer before hello"}`);
        }
        add(side);
      }
      if (side.reader === null) return forward(side, data, fin);
      const header = side.reader.push(data);
      if (header === null) {
        if (fin) refuse(side, StreamResetCode.PROTOCOL, "protocol", side.reader.truncated().message);
        return;
      }
      side.reader = null;
      if (!header.ok) return refuse(side, StreamResetCode.PROTOCOL, "protocol", header.error.message);
      route(side, header.channel, header.rest, fin);
    },
    onDrained(conn, streamId) {
      const other = byConn.get(conn)?.get(streamId)?.other;
      if (!other?.paused) return;
      other.paused = false;
      other.conn.pauseStream(other.id, false);
    },
    onReset(conn, streamId, code, how) {
      const side = byConn.get(conn)?.get(streamId);
      if (!side) return;
      const passOn = normaliseResetCode(code);
      // Free our half too, then tell the far end with the same code.
      conn.shutdownStream(streamId, passOn);
      side.other?.conn.shutdownStream(side.other.id, passOn);
      metrics.streamResets.child({ code: streamResetName(code) }).inc();
      log.debug("stream_reset", { peer: remoteText(conn), stream: streamId, code: streamResetName(code), how });
      release(side, "reset");
    },
    onClosed(conn) {
      const streams = byConn.get(conn);
      if (!streams) return;
      byConn.delete(conn);
      for (const side of streams.values()) {
        side.other?.conn.shutdownStream(side.other.id, StreamResetCode.ABORTED);
        release(side, "connection_lost");
      }
    },
  };
}

function remoteText(conn: QuicConnection<unknown>): string {
  return formatAddress(conn.remote);
}
