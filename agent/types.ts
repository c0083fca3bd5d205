/**
 * The agent's public shapes: how it is started (AgentSettings, AgentMapping)
 * and what a caller holds once it runs (Agent).
 */
import type { BackoffSettings } from "../core/client/backoff.ts";
import type { AgentStatusDocument } from "../core/client/status.ts";
import type { Address } from "../core/net/address.ts";
import type { Config } from "../core/quic/native.ts";

export interface AgentMapping {
  service: string;
  protocol: "udp" | "tcp";
  listen: Address;
}

export interface AgentSettings {
  servers: Address[];
  serverName?: string;
  maps: AgentMapping[];
  quicConfig: Config;
  flowIdleMs: number;
  keepaliveMs: number;
  connectTimeoutMs: number;
  /** Largest QUIC packet sent: a fixed size, or auto (default; see core/client/path-probe.ts). */
  maxUdpPayload?: number | "auto";
  backoff: BackoffSettings;
  /** Dial interval inside a server's announced restart window (default RESTART_RETRY_MS). */
  restartRetryMs?: number;
  /** How long an abandoned link stays open for replies already on their way. */
  lingerMs?: number;
  /** How often an OPEN refused as unknown_service is asked again. */
  reopenMs?: number;
  name?: string;
}

export interface Agent {
  /** Bound local listeners, in the order of the maps. */
  readonly listeners: { service: string; address: Address; protocol: "udp" | "tcp" }[];
  ready(): { ready: boolean; reason?: string };
  /** The server currently in use, if connected. */
  currentServer(): string | null;
  /** The `GET /status` document (core/client/status.ts). */
  status(): AgentStatusDocument;
  /** New TLS configuration (SIGHUP) for every connection made from now on; live ones keep theirs. */
  reloadTls(config: Config): void;
  serviceUp(service: string): boolean;
  /** Graceful: refuse new datagrams, deliver replies still on their way (up to `graceMs`), close. */
  drain(graceMs: number): Promise<void>;
  close(): Promise<void>;
}
