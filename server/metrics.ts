// The server's metric set: plain data built once at startup and passed to the
// code that counts. Hot-path series (per datagram) are pre-created cells.
import type { Registry } from "prom-client";
import { CERTIFICATE_EXPIRY, certificateMetrics } from "../core/metrics/certificates.ts";
import { computedGauge, counter, counterFamily, each, gauge, gaugeFamily, preset } from "../core/metrics/cells.ts";
import { histogram } from "../core/metrics/histogram.ts";
import type { ResultLabels } from "../core/metrics/labels.ts";
import { type Role, STREAM_RESET_NAMES } from "../core/frame/mod.ts";

export const SERVER_ROLES = ["connector", "agent"] as const satisfies readonly Role[];
export type ServerRole = (typeof SERVER_ROLES)[number];

export const RELAY_DIRECTIONS = ["agent_to_connector", "connector_to_agent"] as const;
export type RelayDirection = (typeof RELAY_DIRECTIONS)[number];

/** What became of a TCP stream an agent opened: spliced to a connector, or refused and why. */
export const SERVER_STREAM_RESULTS = [
  "opened",
  "service_down", // no live connector
  "not_allowed", // header named a channel not granted to that agent
  "protocol", // malformed header, or a stream from the wrong peer or id
  "draining", // the server is draining
  "limit_exceeded", // the connector connection has no stream left
] as const;
export type ServerStreamResult = (typeof SERVER_STREAM_RESULTS)[number];

/**
 * Why a QUIC handshake did not complete: the TLS alert that ended it (ours or
 * the client's), `timeout` when the client went quiet, `other` for the rest.
 */
export const HANDSHAKE_FAILURE_REASONS = [
  "certificate_required",
  "unknown_ca",
  "certificate_expired",
  "bad_certificate",
  "no_application_protocol",
  "timeout",
  "other",
] as const;
export type HandshakeFailureReason = (typeof HANDSHAKE_FAILURE_REASONS)[number];

export const SERVER_STREAM_ENDS = ["fin", "reset", "connection_lost"] as const;
export type ServerStreamEnd = (typeof SERVER_STREAM_ENDS)[number];

const N = {
  certificateExpiry: CERTIFICATE_EXPIRY,
  connectionsActive: "ztna_server_connections_active",
  connectionsTotal: "ztna_server_connections_total",
  registrations: "ztna_server_registrations_total",
  opens: "ztna_server_opens_total",
  deregistrations: "ztna_server_deregistrations_total",
  flowsActive: "ztna_server_flows_active",
  flowsOpened: "ztna_server_flows_opened_total",
  datagramsRelayed: "ztna_server_datagrams_relayed_total",
  bytesRelayed: "ztna_server_bytes_relayed_total",
  drops: "ztna_server_drops_total",
  handshakeDuration: "ztna_server_handshake_duration_seconds",
  handshakeFailures: "ztna_server_handshake_failures_total",
  draining: "ztna_server_draining",
  uptime: "ztna_server_uptime_seconds",
  protocolErrors: "ztna_server_protocol_errors_total",
  servicesRegistered: "ztna_server_services_registered",
  streamsActive: "ztna_server_streams_active",
  streamsTotal: "ztna_server_streams_total",
  streamsClosed: "ztna_server_streams_closed_total",
  streamResets: "ztna_server_stream_resets_total",
  streamBytes: "ztna_server_stream_bytes_total",
} as const;

/** Every metric name the server defines (excluding default process metrics). */
export const SERVER_METRIC_NAMES: readonly string[] = Object.values(N);

export function createServerMetrics(registry: Registry) {
  const startedAt = performance.now();
  computedGauge(
    registry,
    N.uptime,
    "Seconds since the server metrics were created (process start)",
    () => (performance.now() - startedAt) / 1000,
  );
  return {
    ...certificateMetrics(registry),
    connectionsActive: preset(
      gaugeFamily<{ role: ServerRole }>(registry, N.connectionsActive, "Open QUIC connections by peer role", ["role"]),
      each("role", SERVER_ROLES),
    ),
    connectionsTotal: preset(
      counterFamily<{ role: ServerRole }>(registry, N.connectionsTotal, "QUIC connections accepted by peer role", [
        "role",
      ]),
      each("role", SERVER_ROLES),
    ),
    registrations: counterFamily<ResultLabels>(
      registry,
      N.registrations,
      "Connector service registrations by result (ack|nack) and reason (ok or nack code)",
      ["result", "reason"],
    ),
    opens: counterFamily<ResultLabels>(
      registry,
      N.opens,
      "Agent flow-open requests by result (ack|nack) and reason (ok or nack code)",
      ["result", "reason"],
    ),
    deregistrations: counter(registry, N.deregistrations, "Connector service deregistrations"),
    flowsActive: gauge(registry, N.flowsActive, "Flows currently relayed between an agent and a connector"),
    flowsOpened: counter(registry, N.flowsOpened, "Flows opened since start"),
    datagramsRelayed: preset(
      counterFamily<{ direction: RelayDirection }>(registry, N.datagramsRelayed, "Datagrams relayed by direction", [
        "direction",
      ]),
      each("direction", RELAY_DIRECTIONS),
    ),
    bytesRelayed: preset(
      counterFamily<{ direction: RelayDirection }>(
        registry,
        N.bytesRelayed,
        "Datagram payload bytes relayed by direction",
        ["direction"],
      ),
      each("direction", RELAY_DIRECTIONS),
    ),
    drops: counterFamily<{ reason: string }>(registry, N.drops, "Datagrams dropped by the relay, by reason", [
      "reason",
    ]),
    handshakeDuration: histogram(
      registry,
      N.handshakeDuration,
      "QUIC handshake duration of accepted connections, in seconds",
    ),
    handshakeFailures: preset(
      counterFamily<{ reason: HandshakeFailureReason }>(
        registry,
        N.handshakeFailures,
        "QUIC handshakes that did not complete, by reason (the TLS alert, timeout, other)",
        ["reason"],
      ),
      each("reason", HANDSHAKE_FAILURE_REASONS),
    ),
    draining: gauge(registry, N.draining, "1 while the server is draining for shutdown, else 0"),
    protocolErrors: counterFamily<{ kind: string }>(
      registry,
      N.protocolErrors,
      "Protocol violations by peers, by kind",
      [
        "kind",
      ],
    ),
    servicesRegistered: gauge(registry, N.servicesRegistered, "Services with at least one registered connector"),
    streamsActive: gauge(registry, N.streamsActive, "TCP streams currently spliced between an agent and a connector"),
    streamsTotal: preset(
      counterFamily<{ result: ServerStreamResult }>(
        registry,
        N.streamsTotal,
        "TCP streams opened by agents, by result (opened, or the reason it was refused)",
        ["result"],
      ),
      each("result", SERVER_STREAM_RESULTS),
    ),
    streamsClosed: preset(
      counterFamily<{ how: ServerStreamEnd }>(
        registry,
        N.streamsClosed,
        "Spliced TCP streams ended, by how: fin (both directions), reset (either side), connection_lost",
        ["how"],
      ),
      each("how", SERVER_STREAM_ENDS),
    ),
    streamResets: preset(
      counterFamily<{ code: string }>(registry, N.streamResets, "Stream resets received from peers, by code name", [
        "code",
      ]),
      each("code", STREAM_RESET_NAMES),
    ),
    streamBytes: preset(
      counterFamily<{ direction: RelayDirection }>(registry, N.streamBytes, "TCP payload bytes relayed by direction", [
        "direction",
      ]),
      each("direction", RELAY_DIRECTIONS),
    ),
  };
}

export type ServerMetrics = ReturnType<typeof createServerMetrics>;
