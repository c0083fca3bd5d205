/**
 * The connector's public shapes: how it is started (ConnectorSettings) and
 * what a caller holds once it runs (Connector).
 */
import type { BackoffSettings } from "../core/client/backoff.ts";
import type { ConnectorStatusDocument } from "../core/client/status.ts";
import type { Address } from "../core/net/address.ts";
import type { Config } from "../core/quic/native.ts";

export interface ConnectorSettings {
  servers: Address[];
  serverName?: string;
  service: string;
  forward: Address;
  quicConfig: Config;
  flowIdleMs: number;
  graceMs: number;
  keepaliveMs: number;
  connectTimeoutMs: number;
  /** Largest QUIC packet sent: a fixed size, or auto (default; see core/client/path-probe.ts). */
  maxUdpPayload?: number | "auto";
  backoff: BackoffSettings;
  /** Dial interval inside a server's announced restart window (default RESTART_RETRY_MS). */
  restartRetryMs?: number;
  name?: string;
}

export interface Connector {
  /** The resolved forward address replies must come from. */
  readonly forward: Address;
  ready(): { ready: boolean; reason?: string };
  /** Servers this connector is registered with right now. */
  registeredWith(): string[];
  /** Local flow sockets, for tests that need to inject into one. */
  flowSockets(): Address[];
  /** The `GET /status` document (core/client/status.ts). */
  status(): ConnectorStatusDocument;
  /** New TLS configuration (SIGHUP) for the next connection to each server; live connections keep theirs. */
  reloadTls(config: Config): void;
  /** Graceful: deregister everywhere (acknowledged), finish in-flight flows, close. */
  drain(): Promise<void>;
  close(): Promise<void>;
}
