/**
 * The connector's TCP side: every stream the server opens on a link carries
 * one TCP connection. After the stream header names our registration channel
 * we dial `forward` and splice the connection to the stream (core/client/tcp-pipe.ts).
 * Bytes that arrive while dialing wait with the stream paused; a refused dial
 * resets the stream with CONNECT_FAILED.
 */
import net from "node:net";
import {
  createStreamHeaderReader,
  type StreamHeaderReader,
  StreamResetCode,
  streamResetName,
} from "../core/frame/mod.ts";
import type { Address } from "../core/net/address.ts";
import type { Link } from "../core/client/link.ts";
import { createTcpPipe, type PipeEnd, resetSocket, type TcpPipe } from "../core/client/tcp-pipe.ts";
import type { Logger } from "../core/log.ts";
import { createLogThrottle, type LogThrottle } from "../core/log-repeats.ts";
import type { CounterCell } from "../core/metrics/cells.ts";
import type { QuicConnection } from "../core/quic/endpoint.ts";
import type { ConnectorMetrics, ConnectorTcpResult } from "./metrics.ts";

export interface TcpForwarderSettings {
  forward: Address;
  /** The registration channel on this link, or null while not registered. */
  channelOf(link: Link): number | null;
  metrics: ConnectorMetrics;
  log: Logger;
}

export interface TcpForwarder {
  onStreamData(link: Link, conn: QuicConnection, streamId: number, data: Uint8Array, fin: boolean): void;
  onStreamDrained(link: Link, conn: QuicConnection, streamId: number): void;
  onStreamReset(link: Link, conn: QuicConnection, streamId: number, code: number): void;
  /** The link lost its connection: its streams are gone, so reset their sockets. */
  linkDown(link: Link): void;
  /**
   * Resets every connection (shutdown). Resolves a moment later when there
   * were any, so the resets leave before the QUIC connection closes.
   */
  close(): Promise<void>;
  /** TCP connections in progress (dialing or open). */
  readonly active: number;
}

interface Entry {
  streamId: number;
  reader: StreamHeaderReader | null;
  socket: net.Socket | null;
  pipe: TcpPipe | null;
  /** Stream bytes that arrived while the socket was connecting. */
  backlog: Uint8Array[];
  backlogFin: boolean;
}

interface ConnStreams {
  link: Link;
  streams: Map<number, Entry>;
}

const EMPTY = new Uint8Array(0);
/** Time for stream resets to be sent before a closing connection drops them. */
const RESET_FLUSH_MS = 20;

/** The forwarder's state: every stream by connection and id, and its counters. */
interface ForwarderState {
  readonly settings: TcpForwarderSettings;
  /** Every stream a server opened, by connection, with the link it came on. */
  readonly byConn: Map<QuicConnection, ConnStreams>;
  /** Connections dialing or open (the tcp_connections_active gauge). */
  active: number;
  readonly bytesTo: CounterCell;
  readonly bytesFrom: CounterCell;
  /** At most one tcp_refused line per result per second: a dead service and a retrying client must not flood the log. */
  readonly refusals: LogThrottle;
}

export function createTcpForwarder(settings: TcpForwarderSettings): TcpForwarder {
  const s: ForwarderState = {
    settings,
    byConn: new Map(),
    active: 0,
    bytesTo: settings.metrics.tcpBytes.child({ direction: "to_service" }),
    bytesFrom: settings.metrics.tcpBytes.child({ direction: "from_service" }),
    refusals: createLogThrottle(1_000),
  };
  return {
    get active() {
      return s.active;
    },
    onStreamData: (link, conn, streamId, data, fin) => handleStreamData(s, link, conn, streamId, data, fin),
    onStreamDrained(_link, conn, streamId) {
      s.byConn.get(conn)?.streams.get(streamId)?.pipe?.drained();
    },
    onStreamReset(_link, conn, streamId, code) {
      const entry = s.byConn.get(conn)?.streams.get(streamId);
      if (!entry) return;
      if (entry.pipe) return entry.pipe.remoteReset(code);
      abort(s, conn, entry, StreamResetCode.ABORTED);
    },
    linkDown(link) {
      for (const [conn, c] of [...s.byConn]) {
        if (c.link !== link) continue;
        for (const entry of [...c.streams.values()]) abort(s, conn, entry, StreamResetCode.ABORTED);
        s.byConn.delete(conn);
      }
    },
    async close() {
      const any = s.byConn.size > 0;
      for (const [conn, c] of [...s.byConn]) {
        for (const entry of [...c.streams.values()]) abort(s, conn, entry, StreamResetCode.ABORTED);
      }
      s.byConn.clear();
      if (any) await new Promise((r) => setTimeout(r, RESET_FLUSH_MS));
    },
  };
}

/** Bytes on a stream the server opened: its header first, then the TCP connection's bytes. */
function handleStreamData(
  s: ForwarderState,
  link: Link,
  conn: QuicConnection,
  streamId: number,
  data: Uint8Array,
  fin: boolean,
): void {
  const streams = streamsOf(s, link, conn);
  let entry = streams.get(streamId);
  if (entry === undefined) {
    // Only server-initiated bidirectional streams (ids 1 mod 4) carry connections to us.
    if ((streamId & 3) !== 1) {
      conn.shutdownStream(streamId, StreamResetCode.PROTOCOL);
      count(s, "protocol");
      return;
    }
    entry = { streamId, reader: createStreamHeaderReader(), socket: null, pipe: null, backlog: [], backlogFin: false };
    streams.set(streamId, entry);
  }
  if (entry.pipe) return entry.pipe.fromStream(data, fin);
  if (entry.reader) {
    const header = entry.reader.push(data);
    if (header === null) {
      if (fin) refuse(s, conn, entry, StreamResetCode.PROTOCOL, "protocol", entry.reader.truncated().message);
      return;
    }
    entry.reader = null;
    if (!header.ok) return refuse(s, conn, entry, StreamResetCode.PROTOCOL, "protocol", header.error.message);
    return handleHeader(s, link, conn, entry, header.channel, header.rest, fin);
  }
  // Dialing: the stream is paused, but a chunk read in the same turn may still land here.
  if (data.length > 0) entry.backlog.push(data.slice());
  if (fin) entry.backlogFin = true;
}

/** The header names our channel: dial the service, and splice once it answers. */
function handleHeader(
  s: ForwarderState,
  link: Link,
  conn: QuicConnection,
  entry: Entry,
  channel: number,
  rest: Uint8Array,
  fin: boolean,
): void {
  const { forward } = s.settings;
  const expected = s.settings.channelOf(link);
  if (channel !== expected) {
    return refuse(
      s,
      conn,
      entry,
      StreamResetCode.NOT_ALLOWED,
      "not_allowed",
      `channel ${channel} is not ours (${expected ?? "not registered"})`,
    );
  }
  // Hold the stream until the backend answers; what came with the header waits here.
  conn.pauseStream(entry.streamId, true);
  if (rest.length > 0) entry.backlog.push(rest.slice());
  entry.backlogFin = fin;
  const socket = net.connect({ host: forward.host, port: forward.port, allowHalfOpen: true, noDelay: true });
  entry.socket = socket;
  setActive(s, 1);
  const onConnectError = (error: Error) => {
    setActive(s, -1);
    socket.destroy();
    refuse(
      s,
      conn,
      entry,
      StreamResetCode.CONNECT_FAILED,
      "connect_failed",
      (error as NodeJS.ErrnoException).code ?? error.message,
    );
  };
  socket.once("error", onConnectError);
  socket.once("connect", () => {
    socket.off("error", onConnectError);
    count(s, "ok");
    const pipe = createTcpPipe({
      conn,
      streamId: entry.streamId,
      socket,
      streamPaused: true,
      onBytes: (direction, n) => (direction === "to_stream" ? s.bytesFrom : s.bytesTo).inc(n),
      onEnd: (end) => ended(s, conn, entry, end),
    });
    entry.pipe = pipe;
    for (const chunk of entry.backlog) pipe.fromStream(chunk, false);
    if (entry.backlogFin) pipe.fromStream(EMPTY, true);
    entry.backlog = [];
    pipe.start();
  });
}

/** The pipe finished, cleanly or not. */
function ended(s: ForwarderState, conn: QuicConnection, entry: Entry, end: PipeEnd): void {
  forget(s, conn, entry);
  setActive(s, -1);
  s.settings.metrics.tcpClosed.child({ how: end.how }).inc();
  if (end.how !== "fin") {
    s.settings.log.debug("tcp_reset", {
      stream: entry.streamId,
      how: end.how,
      code: streamResetName(end.code),
      error: end.how === "local_reset" ? end.error : undefined,
    });
  }
}

/** Ends an entry whatever its phase, resetting the stream with `code`. */
function abort(s: ForwarderState, conn: QuicConnection, entry: Entry, code: StreamResetCode): void {
  if (entry.pipe) return entry.pipe.abort(code, "tunnel closed");
  forget(s, conn, entry);
  if (entry.socket) {
    // Still dialing: no pipe yet, so settle the bookkeeping here.
    entry.socket.removeAllListeners();
    entry.socket.on("error", () => {});
    resetSocket(entry.socket);
    setActive(s, -1);
  }
  conn.shutdownStream(entry.streamId, code);
}

/** Refuses a stream with a reset `code`, counted by result. */
function refuse(
  s: ForwarderState,
  conn: QuicConnection,
  entry: Entry,
  code: StreamResetCode,
  result: ConnectorTcpResult,
  detail: string,
): void {
  conn.shutdownStream(entry.streamId, code);
  forget(s, conn, entry);
  count(s, result);
  const suppressed = s.refusals.allow(result);
  if (suppressed === null) return;
  s.settings.log.warn("tcp_refused", {
    stream: entry.streamId,
    code: streamResetName(code),
    error: detail,
    suppressed,
  });
}

function streamsOf(s: ForwarderState, link: Link, conn: QuicConnection): Map<number, Entry> {
  let entry = s.byConn.get(conn);
  if (!entry) s.byConn.set(conn, entry = { link, streams: new Map() });
  return entry.streams;
}

function forget(s: ForwarderState, conn: QuicConnection, entry: Entry): void {
  const c = s.byConn.get(conn);
  if (!c || c.streams.get(entry.streamId) !== entry) return;
  c.streams.delete(entry.streamId);
  if (c.streams.size === 0) s.byConn.delete(conn);
}

function count(s: ForwarderState, result: ConnectorTcpResult): void {
  s.settings.metrics.tcpConnections.child({ result }).inc();
}

function setActive(s: ForwarderState, delta: number): void {
  s.active += delta;
  s.settings.metrics.tcpActive.set(s.active);
}
