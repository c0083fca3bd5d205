/**
 * The `GET /status` documents of connectors and agents (the server's is in
 * server/status.ts): which servers, the state of each link, its RTT, what is
 * registered or opened, flows and rates. Plain data; the program fills it.
 * Additive changes only: `ztna status` and scripts parse these.
 */
import { formatAddress } from "../net/address.ts";
import type { Link, LinkState } from "./link.ts";
import { roundRate, type SampledRates } from "../rates.ts";

export interface LinkStatus {
  address: string;
  state: LinkState;
  /** Smoothed RTT while connected, milliseconds. */
  rttMs: number | null;
  /** Largest UDP payload of the connection's QUIC packets while connected (1350, or what a path probe found). */
  udpPayload: number | null;
  /** This client's address as the server sees it. */
  observed: string | null;
}

export interface ConnectorServerStatus extends LinkStatus {
  registered: boolean;
  channel: number | null;
  /** When the current registration was accepted (ISO 8601). */
  since: string | null;
  flows: number;
}

export interface ConnectorStatusDocument {
  component: "connector";
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  draining: boolean;
  service: string;
  forward: string;
  servers: ConnectorServerStatus[];
  flows: number;
  tcpConnections: number;
  rates: {
    datagramsPerSecond: { toService: number; fromService: number };
    bytesPerSecond: { toService: number; fromService: number };
    windowSeconds: number;
  };
}

export interface AgentServerStatus extends LinkStatus {
  /** The server new flows go to. */
  active: boolean;
}

export interface AgentServiceStatus {
  name: string;
  protocol: "udp" | "tcp";
  listen: string;
  up: boolean;
  /** The NACK code of the last refused OPEN, while it is refused. */
  refused: string | null;
}

export interface AgentStatusDocument {
  component: "agent";
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  draining: boolean;
  activeServer: string | null;
  servers: AgentServerStatus[];
  services: AgentServiceStatus[];
  flows: number;
  tcpConnections: number;
  rates: {
    datagramsPerSecond: { toServer: number; fromServer: number };
    bytesPerSecond: { toServer: number; fromServer: number };
    windowSeconds: number;
  };
}

export function linkStatus(link: Link): LinkStatus {
  const ready = link.state === "ready";
  return {
    address: link.label,
    state: link.state,
    rttMs: ready ? Math.round(link.rttSeconds() * 10_000) / 10 : null,
    udpPayload: ready ? (link.connection()?.raw.maxSendUdpPayloadSize() ?? null) : null,
    observed: link.observed ? formatAddress(link.observed) : null,
  };
}

/** version, startedAt and uptime, common to both documents. */
export function processFacts(version: string, startedAt: number, now = Date.now()) {
  return {
    version,
    startedAt: new Date(startedAt).toISOString(),
    uptimeSeconds: Math.round((now - startedAt) / 100) / 10,
  };
}

/** [datagrams out, datagrams in, bytes out, bytes in] per second, and the window. */
export function fourRates(sampled: SampledRates) {
  const [d0 = 0, d1 = 0, b0 = 0, b1 = 0] = sampled.rates();
  return {
    d0: roundRate(d0),
    d1: roundRate(d1),
    b0: roundRate(b0),
    b1: roundRate(b1),
    windowSeconds: Math.round(sampled.seconds()),
  };
}
