/**
 * The QUIC engine's public shapes: what an application sees of a connection,
 * the callbacks it gives, and the options of an endpoint.
 */
import type { Address } from "../net/address.ts";
import type { Config, Connection, ConnectionError } from "./native.ts";

export interface CloseInfo {
  local: ConnectionError | null;
  peer: ConnectionError | null;
  timedOut: boolean;
  /** The peer's reason (or ours) decoded as text, for logs. */
  reason: string;
}

export interface ConnectionHandlers<Ctx = unknown> {
  onEstablished?(conn: QuicConnection<Ctx>): void;
  /** Bytes read from a stream; `data` is a view into a reused buffer, valid during the call. */
  onStreamData?(conn: QuicConnection<Ctx>, streamId: number, data: Uint8Array, fin: boolean): void;
  /** A stream that had queued writes has drained them all. */
  onStreamDrained?(conn: QuicConnection<Ctx>, streamId: number): void;
  /**
   * The peer abandoned a stream: `reset` (RESET_STREAM: no more data will come)
   * or `stopped` (STOP_SENDING: it will not read what we write).
   */
  onStreamReset?(conn: QuicConnection<Ctx>, streamId: number, code: number, how: "reset" | "stopped"): void;
  /**
   * One DATAGRAM. `data` is a view of a reused buffer, valid only during the
   * call; the handler may rewrite it in place and pass it to `sendDatagram`.
   */
  onDatagram?(conn: QuicConnection<Ctx>, data: Uint8Array): void;
  /**
   * The connection is over. `conn.established` tells a refused or abandoned
   * handshake (false) from the end of a working connection.
   */
  onClosed?(conn: QuicConnection<Ctx>, info: CloseInfo): void;
}

export interface QuicConnection<Ctx = unknown> {
  readonly id: number;
  readonly remote: Address;
  /** When the connection was created (ms since epoch), for handshake timing. */
  readonly createdAt: number;
  readonly established: boolean;
  readonly closed: boolean;
  /** Application data hung on the connection by its owner. */
  context: Ctx | undefined;
  /**
   * Queues a DATAGRAM; false when it is dropped: too large, or its flow's
   * share of the queue is full (counted by callers). `data` may be a reused
   * buffer: it is copied. While the connection keeps up, datagrams go
   * straight to quiche; once its congestion window holds them back, they
   * wait per `source` and `flow` and are sent in fair turns, so one flood
   * cannot starve a sparse sender (source: e.g. the sending connection's id).
   */
  sendDatagram(data: Uint8Array, source?: number, flow?: number): boolean;
  /** False while a datagram of this source and flow would be dropped now: callers drop before preparing one. */
  canSendDatagram(source?: number, flow?: number): boolean;
  /** Datagrams of this source and flow waiting for the congestion window (at most MAX_FLOW_QUEUE). */
  datagramsWaiting(source?: number, flow?: number): number;
  /** Writes to a stream, queueing whatever flow control does not take yet; never drops bytes. */
  writeStream(streamId: number, data: Uint8Array, fin?: boolean): void;
  /** Bytes queued on a stream that quiche has not accepted yet (for backpressure). */
  pendingStreamBytes(streamId: number): number;
  shutdownStream(streamId: number, error: number): void;
  /** Allocates the next bidirectional stream id this side may open. */
  openStream(): number;
  /**
   * Stops (true) or resumes (false) reading a stream. While paused, unread data
   * stays in quiche and flow control holds the peer back: backpressure.
   */
  pauseStream(streamId: number, paused: boolean): void;
  /**
   * Servers: the peer has proven itself (it said HELLO), so it no longer
   * counts against its address's limit of unproven connections.
   */
  markProven(): void;
  /** Closes with an application error code and a reason the peer can read. */
  close(code: number, reason: string): void;
  peerCertificate(): Uint8Array | null;
  /** Smoothed RTT in seconds, 0 before the first sample. */
  rttSeconds(): number;
  /** Largest DATAGRAM payload quiche accepts right now (0 before the handshake). */
  maxDatagramSize(): number;
  readonly raw: Connection;
}

export interface EndpointOptions<Ctx = unknown> {
  bind: Address;
  /**
   * The transport configuration. One is shared by every connection; a server
   * stamps each accepted connection's own stateless reset token into it
   * just before accepting (quiche copies the parameters at that moment).
   */
  config: Config;
  /** Servers: key for per-connection stateless reset tokens; enables sending resets. */
  statelessResetKey?: Uint8Array;
  handlers: ConnectionHandlers<Ctx>;
  /** Servers accept incoming connections; clients only dial. */
  server: boolean;
  /** Require address validation with a retry token before keeping state (servers). */
  retry?: boolean;
  retryKey?: Uint8Array;
  /**
   * With `retry`: handshakes in progress from which new clients get a retry
   * first; below it they connect a round trip sooner. Default 0: always.
   */
  retryAbove?: number;
  /** Send a PING on connections idle for this long, so NATs and idle timers stay open. */
  keepaliveMs?: number;
  /** Upper bound on handshakes in progress (servers); new Initials beyond it are ignored. */
  maxHandshakes?: number;
  /** Largest QUIC packet this endpoint sends (the transport's max UDP payload). */
  maxUdpPayload?: number;
  /**
   * Servers: most connections one source address may hold that have not
   * proven themselves yet (handshaking, or established without a HELLO).
   * When full, the oldest of them is closed to make room, so a crowd of silent
   * connections behind one NAT cannot lock an honest peer out. Proven peers
   * never count.
   */
  maxUnprovenPerAddress?: number;
  /** Most DATAGRAMs per second a connection may deliver; the excess is dropped (counted). */
  maxDatagramsPerSecond?: number;
  /** Called for socket-level errors (ICMP unreachable and friends): never fatal. */
  onSocketError?(error: Error): void;
  /**
   * Called for what the engine drops itself: packets refused before they
   * reach a connection, DATAGRAMs over the rate limit, and a waiting DATAGRAM
   * that no longer fits the path (`oversized`).
   */
  onDrop?(reason: string): void;
}

export interface Endpoint<Ctx = unknown> {
  readonly address: Address;
  connect(remote: Address, serverName: string): QuicConnection<Ctx>;
  /** Uses a new configuration (e.g. reloaded certificates) for connections made from now on. */
  reconfigure(config: Config): void;
  /** Closes every connection, waits briefly for the close frames to leave, then the socket. */
  close(code?: number, reason?: string): Promise<void>;
}
