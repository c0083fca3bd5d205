/**
 * The public shapes of a client's link to one server: how it is started
 * (LinkSettings, LinkEvents) and what its owner holds (Link).
 */
import type { ControlMessage, NackCode, Role } from "../frame/mod.ts";
import type { Logger } from "../log.ts";
import type { Address } from "../net/address.ts";
import type { Config } from "../quic/native.ts";
import type { QuicConnection } from "../quic/types.ts";
import type { BackoffSettings } from "./backoff.ts";

/** Default interval of the fast retries after a planned restart. */
export const RESTART_RETRY_MS = 250;

export type LinkState = "connecting" | "ready" | "backoff" | "closed";

/** Numeric form of the state, for the `connection_state` gauges. */
export const LINK_STATE_VALUE: Record<LinkState | "draining", number> = {
  closed: 0,
  backoff: 0,
  connecting: 1,
  ready: 2,
  draining: 3,
};

export type RequestResult =
  | { ok: true; channel: number }
  | { ok: false; code: NackCode | "link_down"; reason: string };

type Request = Extract<ControlMessage, { type: "register" | "deregister" | "open" }>;
/** A request as its sender writes it: the link adds the request id. */
export type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, "req"> : never) : never;

export interface LinkSettings {
  server: Address;
  /** TLS name to verify the server certificate against. */
  serverName: string;
  role: Role;
  name: string;
  quicConfig: Config;
  keepaliveMs: number;
  /** How long a dial may take before it counts as failed. */
  connectTimeoutMs: number;
  backoff: BackoffSettings;
  /**
   * Largest UDP payload of a QUIC packet: a number to use as is, or "auto"
   * (default): 1350 unless a probe shows the path carries more (path-probe.ts).
   */
  maxUdpPayload?: number | "auto";
  /** A connection that stayed up this long resets the backoff. */
  healthyAfterMs?: number;
  /** Interval of the retries inside a restart window (jittered by ±20 %); default RESTART_RETRY_MS. */
  restartRetryMs?: number;
  /** Protocol versions offered by ALPN, newest first; default all (tests pin [1] to play an old client). */
  versions?: readonly number[];
  /** The build named in HELLO (protocol 2); default this one's version and commit. */
  software?: string;
  log: Logger;
}

export interface LinkEvents {
  /** The server answered HELLO: (re-)register or (re-)open now. */
  onReady(link: Link): void;
  /** The connection is gone; `reason` is one of timeout, peer_closed, goaway, local, connect_failed. */
  onDown(link: Link, reason: string): void;
  /** SERVICE_STATUS and GOAWAY (requests' answers are handled by the link). */
  onControl(link: Link, msg: ControlMessage): void;
  onDatagram(link: Link, data: Uint8Array): void;
  /** A reconnection succeeded after a loss: reason of the loss, and how long it took. */
  onReconnected?(link: Link, reason: string, downMs: number): void;
  /** Backoff attempts are used up: the link stays closed. */
  onGaveUp?(link: Link): void;
  /** The QUIC engine dropped a packet or DATAGRAM; `reason` is the engine's (see `onDrop` of the endpoint). */
  onDrop?(link: Link, reason: string): void;
  /**
   * Bytes on a stream other than the control stream (TCP tunnels), on the
   * current connection only; `data` is valid only during the call. Without
   * this handler such streams are refused.
   */
  onStreamData?(link: Link, conn: QuicConnection, streamId: number, data: Uint8Array, fin: boolean): void;
  onStreamDrained?(link: Link, conn: QuicConnection, streamId: number): void;
  onStreamReset?(link: Link, conn: QuicConnection, streamId: number, code: number, how: "reset" | "stopped"): void;
}

export interface Link {
  readonly server: Address;
  readonly label: string;
  readonly state: LinkState;
  readonly observed: Address | null;
  request(body: RequestBody): Promise<RequestResult>;
  /**
   * Sends a DATAGRAM of `flow` if the link is ready (flows take fair turns
   * while the connection is congested); false otherwise (the caller counts the drop).
   */
  sendDatagram(data: Uint8Array, flow?: number): boolean;
  /** False when a DATAGRAM of `flow` would be refused now (not ready, or its queue is full). */
  canSendDatagram(flow?: number): boolean;
  /** Datagrams of this flow waiting for the congestion window (0 when not ready). */
  datagramsWaiting(flow?: number): number;
  rttSeconds(): number;
  /** The current QUIC connection while the link is ready (for opening streams), else null. */
  connection(): QuicConnection | null;
  /** Closes the current connection (reconnecting later) without stopping the link. */
  bounce(reason: string): void;
  /** New TLS files (SIGHUP) for the next connection; the current one keeps its own. */
  reconfigure(config: Config): void;
  /** Stops for good: closes the connection and ends any backoff wait at once. */
  close(code?: number, reason?: string): Promise<void>;
}
