// The agent's metric set: plain data built once at startup. Per-datagram
// series (direction, drop reason) are pre-created cells indexed by label value.
import type { Registry } from "prom-client";
import { CERTIFICATE_EXPIRY, certificateMetrics } from "../core/metrics/certificates.ts";
import { counter, counterFamily, each, gauge, gaugeFamily, preset } from "../core/metrics/cells.ts";
import { PIPE_END_HOWS } from "../core/client/tcp-pipe.ts";
import { forwardingMetrics } from "../core/metrics/forwarding.ts";
import { histogram } from "../core/metrics/histogram.ts";
import type { ResultLabels } from "../core/metrics/labels.ts";

export const AGENT_DIRECTIONS = ["to_server", "from_server"] as const;
export type AgentDirection = (typeof AGENT_DIRECTIONS)[number];

export const AGENT_DROP_REASONS = [
  "oversized", // larger than the server link's datagram limit
  "service_down", // service currently has no connector
  "not_connected", // no live connection to the server
  "unknown_flow", // datagram from the server for a flow we do not know
  "malformed", // unparsable datagram from the server
  "queue_full", // the flow's share of the send queue is full
  "kernel", // dropped by the kernel at a listener: an overloaded client held back, or the socket buffer full
  "draining", // arrived after shutdown began: refused rather than sent into a closing tunnel
] as const;
export type AgentDropReason = (typeof AGENT_DROP_REASONS)[number];

export type ServiceState = "up" | "down";

/** Outcome of a local TCP connection: tunnelled, or refused at once and why. */
export const AGENT_TCP_RESULTS = [
  "ok", // a stream to the server carries it
  "service_down", // the service has no connector (or was refused) on the active server
  "not_connected", // no live connection to a server
  "draining", // the agent is shutting down
  "limit_exceeded", // the server connection has no stream left
] as const;
export type AgentTcpResult = (typeof AGENT_TCP_RESULTS)[number];

const N = {
  certificateExpiry: CERTIFICATE_EXPIRY,
  datagrams: "ztna_agent_datagrams_total",
  bytes: "ztna_agent_bytes_total",
  drops: "ztna_agent_drops_total",
  flowsActive: "ztna_agent_flows_active",
  flowsOpened: "ztna_agent_flows_opened_total",
  opens: "ztna_agent_opens_total",
  serviceUp: "ztna_agent_service_up",
  serviceChanges: "ztna_agent_service_changes_total",
  reconnections: "ztna_agent_reconnections_total",
  connectionState: "ztna_agent_connection_state",
  serverRtt: "ztna_agent_server_rtt_seconds",
  reopen: "ztna_agent_reopen_seconds",
  tcpConnections: "ztna_agent_tcp_connections_total",
  tcpActive: "ztna_agent_tcp_connections_active",
  tcpBytes: "ztna_agent_tcp_bytes_total",
  tcpClosed: "ztna_agent_tcp_closed_total",
} as const;

/** Every metric name the agent defines (excluding default process metrics). */
export const AGENT_METRIC_NAMES: readonly string[] = Object.values(N);

export function createAgentMetrics(registry: Registry) {
  return {
    ...certificateMetrics(registry),
    ...forwardingMetrics(registry, N, AGENT_DIRECTIONS, AGENT_DROP_REASONS),
    flowsActive: gauge(registry, N.flowsActive, "Flows currently open through the server"),
    flowsOpened: counter(registry, N.flowsOpened, "Flows opened since start"),
    opens: counterFamily<ResultLabels>(
      registry,
      N.opens,
      "Flow-open requests by result (ack|nack) and reason (ok or nack code)",
      ["result", "reason"],
    ),
    serviceUp: gaugeFamily<{ service: string }>(
      registry,
      N.serviceUp,
      "1 while the service has a connector behind the server, else 0",
      ["service"],
    ),
    serviceChanges: counterFamily<{ service: string; state: ServiceState }>(
      registry,
      N.serviceChanges,
      "Service availability changes, by service and new state (up|down)",
      ["service", "state"],
    ),
    reconnections: counterFamily<{ reason: string }>(
      registry,
      N.reconnections,
      "Reconnections to a server achieved, by the reason the previous connection ended",
      ["reason"],
    ),
    connectionState: gaugeFamily<{ server: string }>(
      registry,
      N.connectionState,
      "Link to the server: 0 disconnected, 1 connecting, 2 connected, 3 draining",
      ["server"],
    ),
    serverRtt: gaugeFamily<{ server: string }>(registry, N.serverRtt, "Smoothed QUIC RTT to the server, in seconds", [
      "server",
    ]),
    reopen: histogram(registry, N.reopen, "Time from losing the server to flows reopened, in seconds"),
    tcpConnections: preset(
      counterFamily<{ result: AgentTcpResult }>(
        registry,
        N.tcpConnections,
        "Local TCP connections accepted, by result (ok = tunnelled, else why refused)",
        ["result"],
      ),
      each("result", AGENT_TCP_RESULTS),
    ),
    tcpActive: gauge(registry, N.tcpActive, "Local TCP connections currently tunnelled"),
    tcpBytes: preset(
      counterFamily<{ direction: AgentDirection }>(registry, N.tcpBytes, "TCP payload bytes to / from the server", [
        "direction",
      ]),
      each("direction", AGENT_DIRECTIONS),
    ),
    tcpClosed: preset(
      counterFamily<{ how: (typeof PIPE_END_HOWS)[number] }>(
        registry,
        N.tcpClosed,
        "Tunnelled TCP connections ended, by how: fin (both sides closed), local_reset (local client failed), remote_reset (tunnel side reset)",
        ["how"],
      ),
      each("how", PIPE_END_HOWS),
    ),
  };
}

export type AgentMetrics = ReturnType<typeof createAgentMetrics>;
