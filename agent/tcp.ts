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
import { createRepeatLog } from "../core/log-repeats.ts";
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

/** The agent's TCP side; it accepts nothing until `listen`. */
export function createAgentTcp(settings: AgentTcpSettings): AgentTcp {
  const { metrics, log } = settings;
  const byConn = new Map<QuicConnection, ConnPipes>();
  const servers: net.Server[] = [];
  const listeners: { service: string; address: Address }[] = [];
  let active = 0;
  const bytesTo = metrics.tcpBytes.child({ direction: "to_server" });
  const bytesFrom = metrics.tcpBytes.child({ direction: "from_server" });
  const count = (result: AgentTcpResult) => metrics.tcpConnections.child({ result }).inc();
  const setActive = (delta: number) => metrics.tcpActive.set(active += delta);

  // A client retrying in a loop must not flood the log: once per service and reason, then a count a minute.
  const refusals = createRepeatLog(log);
  function refuse(socket: net.Socket, service: string, result: AgentTcpResult) {
    count(result);
    socket.on("error", () => {});
    resetSocket(socket);
    refusals.log("info", "tcp_refused", `${service}|${result}`, {
      service,
      reason: result,
      client: formatAddress({ host: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 }),
    });
  }

  function accept(service: string, socket: net.Socket) {
    socket.setNoDelay(true);
    const route = settings.route(service);
    if (typeof route === "string") return refuse(socket, service, route);
    const { link, conn } = route;
    // Streams beyond the server's limit would be refused by QUIC itself; say so here instead.
    if (conn.raw.peerStreamsLeftBidi() < 1) return refuse(socket, service, "limit_exceeded");
    const streamId = conn.openStream();
    conn.writeStream(streamId, encodeStreamHeader(route.channel));
    let entry = byConn.get(conn);
    if (!entry) byConn.set(conn, entry = { link, pipes: new Map() });
    const pipes = entry.pipes;
    count("ok");
    setActive(1);
    const pipe = createTcpPipe({
      conn,
      streamId,
      socket,
      onBytes: (direction, n) => (direction === "to_stream" ? bytesTo : bytesFrom).inc(n),
      onEnd: (end: PipeEnd) => {
        pipes.delete(streamId);
        if (pipes.size === 0 && byConn.get(conn)?.pipes === pipes) byConn.delete(conn);
        setActive(-1);
        metrics.tcpClosed.child({ how: end.how }).inc();
        if (end.how !== "fin") {
          log.debug("tcp_reset", {
            service,
            stream: streamId,
            how: end.how,
            code: streamResetName(end.code),
            error: end.how === "local_reset" ? end.error : undefined,
          });
        }
      },
    });
    pipes.set(streamId, pipe);
  }

  async function listen(maps: { service: string; listen: Address }[]) {
    for (const map of maps) {
      const server = net.createServer({ allowHalfOpen: true }, (socket) => accept(map.service, socket));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(map.listen.port, map.listen.host, () => {
            server.off("error", reject);
            resolve();
          });
        });
      } catch (error) {
        for (const s of servers) s.close();
        throw bindError(error, "--map", "TCP", map.listen, `--map ${map.service}=tcp://${formatAddress(map.listen)}`);
      }
      server.on("error", (error) => log.warn("listener_error", { service: map.service, error: error.message }));
      const bound = server.address() as net.AddressInfo;
      const address = { host: bound.address, port: bound.port };
      servers.push(server);
      listeners.push({ service: map.service, address });
    }
  }

  const pipeOf = (conn: QuicConnection, streamId: number) => byConn.get(conn)?.pipes.get(streamId);

  function abortAll(filter: (c: ConnPipes) => boolean) {
    for (const [conn, c] of [...byConn]) {
      if (!filter(c)) continue;
      byConn.delete(conn);
      for (const pipe of [...c.pipes.values()]) pipe.abort(StreamResetCode.ABORTED, "tunnel closed");
    }
  }

  return {
    listen,
    listeners,
    get active() {
      return active;
    },
    onStreamData(_link, conn, streamId, data, fin) {
      const pipe = pipeOf(conn, streamId);
      // The server never opens streams to agents, and ended streams get no more bytes.
      if (pipe === undefined) return conn.shutdownStream(streamId, StreamResetCode.PROTOCOL);
      pipe.fromStream(data, fin);
    },
    onStreamDrained(_link, conn, streamId) {
      pipeOf(conn, streamId)?.drained();
    },
    onStreamReset(_link, conn, streamId, code) {
      pipeOf(conn, streamId)?.remoteReset(code);
    },
    linkDown(link) {
      abortAll((c) => c.link === link);
    },
    async close() {
      refusals.close();
      const any = byConn.size > 0;
      abortAll(() => true);
      if (any) await new Promise((r) => setTimeout(r, RESET_FLUSH_MS));
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
