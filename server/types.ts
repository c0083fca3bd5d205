/**
 * The server's public shapes: how it is started (ServerSettings, ServerLimits)
 * and what a caller holds once it runs (Server).
 */
import { MAX_CONTROL_MESSAGE } from "../core/frame/mod.ts";
import type { Address } from "../core/net/address.ts";
import type { Authorise } from "./authorise.ts";
import type { ServerStatusWithRates } from "./traffic.ts";

export interface ServerSettings {
  listen: Address;
  certPem: Uint8Array;
  keyPem: Uint8Array;
  /** Client CA for mTLS; without it the server runs open. */
  clientCaPem?: Uint8Array;
  /** Authorises a peer's requests from its certificate; undefined allows all. */
  authorise?: Authorise;
  graceMs: number;
  idleTimeoutMs: number;
  /** Largest UDP payload of a QUIC packet the server sends or accepts (default 16383, what quiche can); each connection uses what its client probed. */
  maxUdpPayload?: number;
  keepaliveMs: number;
  flowIdleMs: number;
  retryKey?: Uint8Array;
  /** Key for stateless reset tokens; keep it across restarts so old peers are reset at once. */
  resetKey?: Uint8Array;
  limits?: Partial<ServerLimits>;
  /**
   * What GOAWAY says on a drain: come back after `reconnectInMs` and keep
   * trying at a short interval for `tryForMs` (0 = this is no restart).
   * Default: reconnect at once, try for 60 s.
   */
  restart?: RestartPlan;
  /** Protocol versions accepted (ALPN), default every one this code speaks; tests pin [1] to play an old server. */
  versions?: readonly number[];
}

/** GOAWAY's restart announcement; `tryForMs` 0 means the drain is no restart. */
export interface RestartPlan {
  reconnectInMs: number;
  tryForMs: number;
}

/** Abuse limits; each is counted when hit. */
export interface ServerLimits {
  flowsPerAgent: number;
  registrationsPerConnection: number;
  helloTimeoutMs: number;
  connectionsPerAddress: number;
  handshakes: number;
  /** Handshakes in progress from which new clients must prove their address with a retry first (0: always). */
  retryAbove: number;
  controlMessage: number;
  datagramsPerSecond: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  flowsPerAgent: 4096,
  registrationsPerConnection: 64,
  helloTimeoutMs: 5_000,
  connectionsPerAddress: 256,
  handshakes: 1024,
  retryAbove: 32,
  controlMessage: MAX_CONTROL_MESSAGE,
  datagramsPerSecond: 200_000,
};

export interface Server {
  readonly address: Address;
  readonly draining: boolean;
  readonly ready: () => { ready: boolean; reason?: string };
  /** Graceful: GOAWAY to everyone, relay existing flows for the grace period, then close. */
  drain(alternate?: string): Promise<void>;
  /** Immediate close of every connection and the socket. */
  close(): Promise<void>;
  /** Flows currently relayed, for tests and the drain loop. */
  flowCount(): number;
  /** New certificate, key and client CA for connections accepted from now on; existing ones are kept. */
  reloadTls(tls: ServerTls): void;
  /** The `GET /status` document (server/status.ts). */
  status(): ServerStatusWithRates;
}

/** The server's TLS material: certificate chain, key, and the client CA for mTLS. */
export interface ServerTls {
  certPem: Uint8Array;
  keyPem: Uint8Array;
  clientCaPem?: Uint8Array;
}
