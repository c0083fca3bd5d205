/**
 * The agent's TCP listeners (`--map NAME=tcp://HOST:PORT`): every accepted
 * connection becomes one QUIC stream to the active server, headed by the
 * agent's channel for the service, and is spliced to it (core/client/tcp-pipe.ts).
 * When the service cannot be reached right now the connection is refused at
 * once with a TCP reset rather than left hanging.
 */
import net from "node:net";
import { encodeStreamHeader, StreamResetCode, streamResetName } from "../core/frame/mod.ts";
import { type Address, formatAddress } from "../core/net/address.ts";
import type { Link } from "../core/client/link.ts";
import { createTcpPipe, type PipeEnd, resetSocket, type TcpPipe } from "../core/client/tcp-pipe.ts";
import type { Logger } from "../core/log.ts";
import { createRepeatLog, type RepeatLog } from "../core/log-repeats.ts";
import type { CounterCell } from "../core/metrics/cells.ts";
import { bindError } from "../core/startup.ts";
import type { QuicConnection } from "../core/quic/endpoint.ts";
import type { AgentMetrics, AgentTcpResult } from "./metrics.ts";

/** Where a new connection to a service goes now, or why it cannot. */
export type TcpRoute =
  | { link: Link; conn: QuicConnection; channel: number }
  | "service_down"
  | "not_connected"
  | "draining";

export interface AgentTcpSettings {
  route(service: string): TcpRoute;
  metrics: AgentMetrics;
  log: Logger;
}

export interface AgentTcp {
  /** Binds a listener per map, in order; a port that cannot be bound closes those bound and throws a StartupError. */
  listen(maps: { service: string; listen: Address }[]): Promise<void>;
  /** Bound listeners, in the order of the maps. */
  readonly listeners: { service: string; address: Address }[];
  /** Tunnelled connections in progress. */
  readonly active: number;
  onStreamData(link: Link, conn: QuicConnection, streamId: number, data: Uint8Array, fin: boolean): void;
  onStreamDrained(link: Link, conn: QuicConnection, streamId: number): void;
  onStreamReset(link: Link, conn: QuicConnection, streamId: number, code: number): void;
  /** The link lost its connection: reset the local connections that used it. */
  linkDown(link: Link): void;
  /**
   * Resets every connection and closes the listeners; waits a moment when
   * there were connections, so the resets leave before the QUIC connection closes.
   */
  close(): Promise<void>;
}

/** Time for stream resets to be sent before a closing connection drops them. */
const RESET_FLUSH_MS = 20;

interface ConnPipes {
  link: Link;
  pipes: Map<number, TcpPipe>;
}

/** The agent's TCP side: its listeners, every tunnelled connection by QUIC connection, and its counters. */
interface AgentTcpState {
  /** Routes, metrics and log, as given. */
  readonly settings: AgentTcpSettings;
  /** Every tunnelled connection's pipe, by QUIC connection and stream id, with the link it went out on. */
  readonly byConn: Map<QuicConnection, ConnPipes>;
  /** One per bound map, in order; closed together. */
  readonly servers: net.Server[];
  /** Bound listeners, in the order of the maps (AgentTcp.listeners). */
  readonly listeners: { service: string; address: Address }[];
  /** Tunnelled connections in progress (the tcp_connections_active gauge). */
  active: number;
  /** Payload bytes from local clients towards the server. */
  readonly bytesTo: CounterCell;
  /** Payload bytes from the server back to local clients. */
  readonly bytesFrom: CounterCell;
  /** A client retrying in a loop must not flood the log: once per service and reason, then a count a minute. */
  readonly refusals: RepeatLog;
}

/** The agent's TCP side; it accepts nothing until `listen`. */
export function createAgentTcp(settings: AgentTcpSettings): AgentTcp {
  const s: AgentTcpState = {
    settings,
    byConn: new Map(),
    servers: [],
    listeners: [],
    active: 0,
    bytesTo: settings.metrics.tcpBytes.child({ direction: "to_server" }),
    bytesFrom: settings.metrics.tcpBytes.child({ direction: "from_server" }),
    refusals: createRepeatLog(settings.log),
  };
  return {
    listen: (maps) => listen(s, maps),
    listeners: s.listeners,
    get active() {
      return s.active;
    },
    onStreamData: (_link, conn, streamId, data, fin) => handleStreamData(s, conn, streamId, data, fin),
    onStreamDrained(_link, conn, streamId) {
      pipeOf(s, conn, streamId)?.drained();
    },
    onStreamReset(_link, conn, streamId, code) {
      pipeOf(s, conn, streamId)?.remoteReset(code);
    },
    linkDown(link) {
      abortAll(s, (c) => c.link === link);
    },
    close: () => close(s),
  };
}

function count(s: AgentTcpState, result: AgentTcpResult): void {
  s.settings.metrics.tcpConnections.child({ result }).inc();
}

function setActive(s: AgentTcpState, delta: number): void {
  s.settings.metrics.tcpActive.set(s.active += delta);
}

function pipeOf(s: AgentTcpState, conn: QuicConnection, streamId: number): TcpPipe | undefined {
  return s.byConn.get(conn)?.pipes.get(streamId);
}

/** Binds a listener per map, in order; a port that cannot be bound closes those bound and throws a StartupError. */
async function listen(s: AgentTcpState, maps: { service: string; listen: Address }[]): Promise<void> {
  const { log } = s.settings;
  for (const map of maps) {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => accept(s, map.service, socket));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(map.listen.port, map.listen.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      for (const opened of s.servers) opened.close();
      throw bindError(error, "--map", "TCP", map.listen, `--map ${map.service}=tcp://${formatAddress(map.listen)}`);
    }
    server.on("error", (error) => log.warn("listener_error", { service: map.service, error: error.message }));
    const bound = server.address() as net.AddressInfo;
    const address = { host: bound.address, port: bound.port };
    s.servers.push(server);
    s.listeners.push({ service: map.service, address });
  }
}

/** A local client connected: open a stream for it to the service's route, or reset it at once. */
function accept(s: AgentTcpState, service: string, socket: net.Socket): void {
  socket.setNoDelay(true);
  const route = s.settings.route(service);
  if (typeof route === "string") return refuse(s, socket, service, route);
  const { link, conn } = route;
  // Streams beyond the server's limit would be refused by QUIC itself; say so here instead.
  if (conn.raw.peerStreamsLeftBidi() < 1) return refuse(s, socket, service, "limit_exceeded");
  const streamId = conn.openStream();
  conn.writeStream(streamId, encodeStreamHeader(route.channel));
  let entry = s.byConn.get(conn);
  if (!entry) s.byConn.set(conn, entry = { link, pipes: new Map() });
  const pipes = entry.pipes;
  count(s, "ok");
  setActive(s, 1);
  const pipe = createTcpPipe({
    conn,
    streamId,
    socket,
    onBytes: (direction, n) => (direction === "to_stream" ? s.bytesTo : s.bytesFrom).inc(n),
    onEnd: (end) => handleEnd(s, service, conn, pipes, streamId, end),
  });
  pipes.set(streamId, pipe);
}

/** A tunnelled connection ended, by FIN both ways or by a reset on either side. */
function handleEnd(
  s: AgentTcpState,
  service: string,
  conn: QuicConnection,
  pipes: Map<number, TcpPipe>,
  streamId: number,
  end: PipeEnd,
): void {
  pipes.delete(streamId);
  if (pipes.size === 0 && s.byConn.get(conn)?.pipes === pipes) s.byConn.delete(conn);
  setActive(s, -1);
  s.settings.metrics.tcpClosed.child({ how: end.how }).inc();
  if (end.how !== "fin") {
    s.settings.log.debug("tcp_reset", {
      service,
      stream: streamId,
      how: end.how,
      code: streamResetName(end.code),
      error: end.how === "local_reset" ? end.error : undefined,
    });
  }
}

function refuse(s: AgentTcpState, socket: net.Socket, service: string, result: AgentTcpResult): void {
  count(s, result);
  socket.on("error", () => {});
  resetSocket(socket);
  s.refusals.log("info", "tcp_refused", `${service}|${result}`, {
    service,
    reason: result,
    client: formatAddress({ host: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 }),
  });
}

/** Bytes from the server on a stream we opened. */
function handleStreamData(
  s: AgentTcpState,
  conn: QuicConnection,
  streamId: number,
  data: Uint8Array,
  fin: boolean,
): void {
  const pipe = pipeOf(s, conn, streamId);
  // The server never opens streams to agents, and ended streams get no more bytes.
  if (pipe === undefined) return conn.shutdownStream(streamId, StreamResetCode.PROTOCOL);
  pipe.fromStream(data, fin);
}

function abortAll(s: AgentTcpState, filter: (c: ConnPipes) => boolean): void {
  for (const [conn, c] of [...s.byConn]) {
    if (!filter(c)) continue;
    s.byConn.delete(conn);
    for (const pipe of [...c.pipes.values()]) pipe.abort(StreamResetCode.ABORTED, "tunnel closed");
  }
}

/** Resets every connection and closes the listeners, waiting a moment first when there were connections. */
async function close(s: AgentTcpState): Promise<void> {
  s.refusals.close();
  const any = s.byConn.size > 0;
  abortAll(s, () => true);
  if (any) await new Promise((r) => setTimeout(r, RESET_FLUSH_MS));
  await Promise.all(s.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
}
