// The connector's metric set: plain data built once at startup. Per-datagram
// series (direction, drop reason) are pre-created cells indexed by label value.
import type { Registry } from "prom-client";
import { CERTIFICATE_EXPIRY, certificateMetrics } from "../core/metrics/certificates.ts";
import { counter, counterFamily, each, gauge, gaugeFamily, preset } from "../core/metrics/cells.ts";
import { PIPE_END_HOWS } from "../core/client/tcp-pipe.ts";
import { forwardingMetrics } from "../core/metrics/forwarding.ts";
import { histogram } from "../core/metrics/histogram.ts";
import type { ResultLabels } from "../core/metrics/labels.ts";

export const CONNECTOR_DIRECTIONS = ["to_service", "from_service"] as const;
export type ConnectorDirection = (typeof CONNECTOR_DIRECTIONS)[number];

export const CONNECTOR_DROP_REASONS = [
  "source_mismatch", // reply from an address other than the service's
  "oversized", // larger than the server link's datagram limit
  "malformed", // unparsable datagram from the server
  "unknown_channel", // datagram for a flow/channel we do not know
  "queue_full", // local send queue full
  "send_error", // socket/QUIC send failed
] as const;
export type ConnectorDropReason = (typeof CONNECTOR_DROP_REASONS)[number];

/** Outcome of a TCP stream the server opened: dialled, or refused and why. */
export const CONNECTOR_TCP_RESULTS = [
  "ok", // connected to the forward address
  "connect_failed", // the forward address refused or was unreachable
  "not_allowed", // stream header named a channel that is not our registration
  "protocol", // malformed or missing stream header
] as const;
export type ConnectorTcpResult = (typeof CONNECTOR_TCP_RESULTS)[number];

const N = {
  certificateExpiry: CERTIFICATE_EXPIRY,
  datagrams: "ztna_connector_datagrams_total",
  bytes: "ztna_connector_bytes_total",
  drops: "ztna_connector_drops_total",
  flowsActive: "ztna_connector_flows_active",
  flowsOpened: "ztna_connector_flows_opened_total",
  flowsExpired: "ztna_connector_flows_expired_total",
  registered: "ztna_connector_registered",
  registrations: "ztna_connector_registrations_total",
  reconnections: "ztna_connector_reconnections_total",
  connectionState: "ztna_connector_connection_state",
  reregistration: "ztna_connector_reregistration_seconds",
  serverRtt: "ztna_connector_server_rtt_seconds",
  tcpConnections: "ztna_connector_tcp_connections_total",
  tcpActive: "ztna_connector_tcp_connections_active",
  tcpBytes: "ztna_connector_tcp_bytes_total",
  tcpClosed: "ztna_connector_tcp_closed_total",
} as const;

/** Every metric name the connector defines (excluding default process metrics). */
export const CONNECTOR_METRIC_NAMES: readonly string[] = Object.values(N);

export function createConnectorMetrics(registry: Registry) {
  return {
    ...certificateMetrics(registry),
    ...forwardingMetrics(registry, N, CONNECTOR_DIRECTIONS, CONNECTOR_DROP_REASONS),
    flowsActive: gauge(registry, N.flowsActive, "Flows with a live local socket to the service"),
    flowsOpened: counter(registry, N.flowsOpened, "Flows opened since start"),
    flowsExpired: counter(registry, N.flowsExpired, "Flows closed after idling past their timeout"),
    registered: gaugeFamily<{ server: string }>(
      registry,
      N.registered,
      "1 while the service is registered with this server, else 0",
      ["server"],
    ),
    registrations: counterFamily<ResultLabels>(
      registry,
      N.registrations,
      "Registration attempts by result (ack|nack) and reason (ok or nack code)",
      ["result", "reason"],
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
    reregistration: histogram(
      registry,
      N.reregistration,
      "Time from losing a registration to being registered again, in seconds",
    ),
    serverRtt: gaugeFamily<{ server: string }>(registry, N.serverRtt, "Smoothed QUIC RTT to the server, in seconds", [
      "server",
    ]),
    tcpConnections: preset(
      counterFamily<{ result: ConnectorTcpResult }>(
        registry,
        N.tcpConnections,
        "TCP streams from the server, by result (ok = connected to the service, else why refused)",
        ["result"],
      ),
      each("result", CONNECTOR_TCP_RESULTS),
    ),
    tcpActive: gauge(registry, N.tcpActive, "TCP connections to the service in progress (dialing or open)"),
    tcpBytes: preset(
      counterFamily<{ direction: ConnectorDirection }>(
        registry,
        N.tcpBytes,
        "TCP payload bytes to / from the service",
        [
          "direction",
        ],
      ),
      each("direction", CONNECTOR_DIRECTIONS),
    ),
    tcpClosed: preset(
      counterFamily<{ how: (typeof PIPE_END_HOWS)[number] }>(
        registry,
        N.tcpClosed,
        "TCP connections ended, by how: fin (both sides closed), local_reset (service side failed), remote_reset (tunnel side reset)",
        ["how"],
      ),
      each("how", PIPE_END_HOWS),
    ),
  };
}

export type ConnectorMetrics = ReturnType<typeof createConnectorMetrics>;
