// Source of ztna-dashboard.json. The JSON is what users import; this file is
// what humans edit: panels are declared as data and laid out on Grafana's
// 24-column grid here, so ids and positions never drift by hand.
//
//   bun observability/grafana/dashboard.ts   # rewrites ztna-dashboard.json
//
// tests/observability.test.ts fails if the committed JSON differs from this
// output, and checks every query against the metrics the programs export.

const DS = { type: "prometheus", uid: "${DS_PROMETHEUS}" } as const;
const RATE = "$__rate_interval";

interface Target {
  expr: string;
  legend: string;
}

interface PanelSpec {
  title: string;
  description: string;
  kind: "timeseries" | "stat" | "state-timeline";
  unit: string;
  targets: Target[];
  /** Grid width (of 24); height is per line. */
  w: number;
  /** Value → text/colour, for enumerated gauges. */
  mappings?: Record<string, { text: string; color: string }>;
  /** Colour steps: [value, colour]; the first value is the base (null). */
  thresholds?: [number | null, string][];
  stack?: boolean;
  min?: number;
}

interface RowSpec {
  title: string;
  /** Panels in lines; each line's widths sum to 24. */
  lines: { h: number; panels: PanelSpec[] }[];
}

const t = (expr: string, legend: string): Target => ({ expr, legend });

const CONNECTION_STATES = {
  "0": { text: "disconnected", color: "red" },
  "1": { text: "connecting", color: "yellow" },
  "2": { text: "connected", color: "green" },
  "3": { text: "draining", color: "blue" },
};

const S = 'instance=~"$server"';
const C = 'instance=~"$connector"';
const A = 'instance=~"$agent"';
const J = 'job=~"$job"';

/** p50 and p99 of a histogram, plus the mean, over `window`. */
function quantiles(metric: string, sel: string, window: string): Target[] {
  return [
    ...[0.5, 0.99].map((q) =>
      t(`histogram_quantile(${q}, sum by (le) (rate(${metric}_bucket{${sel}}[${window}])))`, `p${q * 100}`)
    ),
    t(`sum(rate(${metric}_sum{${sel}}[${window}])) / sum(rate(${metric}_count{${sel}}[${window}]))`, "mean"),
  ];
}

const serverRow: RowSpec = {
  title: "Server (relay)",
  lines: [
    {
      h: 4,
      panels: [
        {
          title: "Uptime",
          description: "Seconds since each server process started (ztna_server_uptime_seconds).",
          kind: "stat",
          unit: "s",
          w: 5,
          targets: [t(`ztna_server_uptime_seconds{${S}}`, "{{instance}}")],
        },
        {
          title: "Draining",
          description:
            "1 while a server drains for shutdown (ztna_server_draining); it refuses new registrations and flows meanwhile.",
          kind: "stat",
          unit: "none",
          w: 5,
          targets: [t(`ztna_server_draining{${S}}`, "{{instance}}")],
          mappings: { "0": { text: "serving", color: "green" }, "1": { text: "draining", color: "orange" } },
        },
        {
          title: "Services registered",
          description: "Services with at least one live (non-draining) connector (ztna_server_services_registered).",
          kind: "stat",
          unit: "none",
          w: 5,
          targets: [t(`ztna_server_services_registered{${S}}`, "{{instance}}")],
          thresholds: [[null, "red"], [1, "green"]],
        },
        {
          title: "Flows active",
          description: "Agent↔connector flows currently relayed (ztna_server_flows_active).",
          kind: "stat",
          unit: "none",
          w: 4,
          targets: [t(`sum(ztna_server_flows_active{${S}})`, "flows")],
        },
        {
          title: "Connections",
          description: "Open QUIC connections by peer role (ztna_server_connections_active).",
          kind: "stat",
          unit: "none",
          w: 5,
          targets: [t(`sum by (role) (ztna_server_connections_active{${S}})`, "{{role}}")],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Connections by role",
          description:
            "Open connections (lines) and connections accepted per second (dashed: rate of ztna_server_connections_total).",
          kind: "timeseries",
          unit: "none",
          w: 8,
          targets: [
            t(`sum by (role) (ztna_server_connections_active{${S}})`, "open {{role}}"),
            t(`sum by (role) (rate(ztna_server_connections_total{${S}}[${RATE}]))`, "accepted/s {{role}}"),
          ],
        },
        {
          title: "Registrations and opens",
          description:
            "REGISTER (connectors) and OPEN (agents) answers per second: result ack|nack, reason ok or the NACK code; plus DEREGISTERs.",
          kind: "timeseries",
          unit: "reqps",
          w: 8,
          targets: [
            t(
              `sum by (result, reason) (rate(ztna_server_registrations_total{${S}}[${RATE}]))`,
              "register {{result}} {{reason}}",
            ),
            t(`sum by (result, reason) (rate(ztna_server_opens_total{${S}}[${RATE}]))`, "open {{result}} {{reason}}"),
            t(`sum(rate(ztna_server_deregistrations_total{${S}}[${RATE}]))`, "deregister"),
          ],
        },
        {
          title: "Flows",
          description: "Flows currently relayed, and new flows per second.",
          kind: "timeseries",
          unit: "none",
          w: 8,
          targets: [
            t(`sum by (instance) (ztna_server_flows_active{${S}})`, "active {{instance}}"),
            t(`sum by (instance) (rate(ztna_server_flows_opened_total{${S}}[${RATE}]))`, "opened/s {{instance}}"),
          ],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Datagrams relayed",
          description: "Datagrams relayed per second by direction (ztna_server_datagrams_relayed_total).",
          kind: "timeseries",
          unit: "pps",
          w: 8,
          targets: [
            t(`sum by (direction) (rate(ztna_server_datagrams_relayed_total{${S}}[${RATE}]))`, "{{direction}}"),
          ],
        },
        {
          title: "Bytes relayed",
          description:
            "UDP payload bytes relayed per second by direction (ztna_server_bytes_relayed_total; excludes QUIC/UDP overhead).",
          kind: "timeseries",
          unit: "Bps",
          w: 8,
          targets: [t(`sum by (direction) (rate(ztna_server_bytes_relayed_total{${S}}[${RATE}]))`, "{{direction}}")],
        },
        {
          title: "Drops by reason",
          description:
            "Datagrams and packets the relay dropped per second. packet_* reasons are UDP packets refused before reaching a connection (stray, spoofed or over the handshake limit); the others are tunnel datagrams.",
          kind: "timeseries",
          unit: "pps",
          w: 8,
          stack: true,
          targets: [t(`sum by (reason) (rate(ztna_server_drops_total{${S}}[${RATE}]))`, "{{reason}}")],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Handshake duration",
          description: "QUIC handshake time of accepted connections (ztna_server_handshake_duration_seconds).",
          kind: "timeseries",
          unit: "s",
          w: 8,
          targets: quantiles("ztna_server_handshake_duration_seconds", S, RATE),
        },
        {
          title: "Handshake failures by reason",
          description:
            "QUIC handshakes that did not complete per second, by the TLS alert that ended them (ztna_server_handshake_failures_total): certificate_required, unknown_ca and certificate_expired are clients refused for their certificate; timeout is a client that went quiet. The handshake_failed log lines name the addresses.",
          kind: "timeseries",
          unit: "ops",
          w: 8,
          stack: true,
          targets: [t(`sum by (reason) (rate(ztna_server_handshake_failures_total{${S}}[${RATE}]))`, "{{reason}}")],
        },
        {
          title: "Protocol errors by kind",
          description: "Connections closed for protocol violations per second (ztna_server_protocol_errors_total).",
          kind: "timeseries",
          unit: "ops",
          w: 8,
          targets: [t(`sum by (kind) (rate(ztna_server_protocol_errors_total{${S}}[${RATE}]))`, "{{kind}}")],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "TCP streams",
          description:
            "TCP streams spliced between agents and connectors (ztna_server_streams_active), streams opened or refused per second by result (ztna_server_streams_total), and streams ended per second by how (ztna_server_streams_closed_total).",
          kind: "timeseries",
          unit: "none",
          w: 8,
          targets: [
            t(`sum(ztna_server_streams_active{${S}})`, "active"),
            t(`sum by (result) (rate(ztna_server_streams_total{${S}}[${RATE}]))`, "{{result}}/s"),
            t(`sum by (how) (rate(ztna_server_streams_closed_total{${S}}[${RATE}]))`, "ended {{how}}/s"),
          ],
        },
        {
          title: "TCP bytes relayed",
          description:
            "TCP stream bytes relayed per second by direction (ztna_server_stream_bytes_total; includes the 4-byte segment prefixes).",
          kind: "timeseries",
          unit: "Bps",
          w: 8,
          targets: [t(`sum by (direction) (rate(ztna_server_stream_bytes_total{${S}}[${RATE}]))`, "{{direction}}")],
        },
        {
          title: "TCP stream resets by code",
          description:
            "Stream resets received from agents and connectors per second, by code (ztna_server_stream_resets_total): connect_failed means a connector could not reach its service.",
          kind: "timeseries",
          unit: "ops",
          w: 8,
          stack: true,
          targets: [t(`sum by (code) (rate(ztna_server_stream_resets_total{${S}}[${RATE}]))`, "{{code}}")],
        },
      ],
    },
  ],
};

const connectorRow: RowSpec = {
  title: "Connector",
  lines: [
    {
      h: 6,
      panels: [
        {
          title: "Registered per server",
          description: "1 while the connector's service is registered with that server (ztna_connector_registered).",
          kind: "stat",
          unit: "none",
          w: 8,
          targets: [t(`ztna_connector_registered{${C}}`, "{{instance}} → {{server}}")],
          mappings: { "0": { text: "not registered", color: "red" }, "1": { text: "registered", color: "green" } },
        },
        {
          title: "Source mismatch drops (range)",
          description:
            "Replies that came from an address other than the service's, over the dashboard range. Anything above 0 deserves a look: someone may be injecting datagrams towards the connector.",
          kind: "stat",
          unit: "none",
          w: 4,
          targets: [
            t(`sum(increase(ztna_connector_drops_total{${C}, reason="source_mismatch"}[$__range]))`, "source_mismatch"),
          ],
          thresholds: [[null, "green"], [1, "red"]],
        },
        {
          title: "Connection state",
          description:
            "Link to each server (ztna_connector_connection_state): disconnected, connecting, connected, draining.",
          kind: "state-timeline",
          unit: "none",
          w: 12,
          targets: [t(`ztna_connector_connection_state{${C}}`, "{{instance}} → {{server}}")],
          mappings: CONNECTION_STATES,
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Datagrams forwarded",
          description: "Datagrams per second to / from the private service (ztna_connector_datagrams_total).",
          kind: "timeseries",
          unit: "pps",
          w: 8,
          targets: [t(`sum by (direction) (rate(ztna_connector_datagrams_total{${C}}[${RATE}]))`, "{{direction}}")],
        },
        {
          title: "Bytes forwarded",
          description: "Payload bytes per second to / from the private service (ztna_connector_bytes_total).",
          kind: "timeseries",
          unit: "Bps",
          w: 8,
          targets: [t(`sum by (direction) (rate(ztna_connector_bytes_total{${C}}[${RATE}]))`, "{{direction}}")],
        },
        {
          title: "Drops by reason",
          description: "Datagrams dropped per second (ztna_connector_drops_total), source_mismatch included.",
          kind: "timeseries",
          unit: "pps",
          w: 8,
          stack: true,
          targets: [t(`sum by (reason) (rate(ztna_connector_drops_total{${C}}[${RATE}]))`, "{{reason}}")],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Registrations and reconnections",
          description:
            "Registration answers by result/reason, and reconnections by why the previous connection ended (timeout, peer_closed, goaway, local, reset, connect_failed), per interval.",
          kind: "timeseries",
          unit: "none",
          w: 8,
          targets: [
            t(
              `sum by (result, reason) (increase(ztna_connector_registrations_total{${C}}[${RATE}]))`,
              "register {{result}} {{reason}}",
            ),
            t(`sum by (reason) (increase(ztna_connector_reconnections_total{${C}}[${RATE}]))`, "reconnect {{reason}}"),
          ],
        },
        {
          title: "Re-registration time",
          description:
            "Time from losing a registration to being registered again (ztna_connector_reregistration_seconds), over the last hour: these are rare events.",
          kind: "timeseries",
          unit: "s",
          w: 8,
          targets: quantiles("ztna_connector_reregistration_seconds", C, "1h"),
        },
        {
          title: "RTT to server",
          description: "Smoothed QUIC round-trip time to each server (ztna_connector_server_rtt_seconds).",
          kind: "timeseries",
          unit: "s",
          w: 8,
          targets: [t(`ztna_connector_server_rtt_seconds{${C}}`, "{{instance}} → {{server}}")],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Flows",
          description:
            "Flows with a live socket to the service, flows opened and flows expired after idling, per second.",
          kind: "timeseries",
          unit: "none",
          w: 24,
          targets: [
            t(`sum by (instance) (ztna_connector_flows_active{${C}})`, "active {{instance}}"),
            t(`sum by (instance) (rate(ztna_connector_flows_opened_total{${C}}[${RATE}]))`, "opened/s {{instance}}"),
            t(`sum by (instance) (rate(ztna_connector_flows_expired_total{${C}}[${RATE}]))`, "expired/s {{instance}}"),
          ],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "TCP connections to the service",
          description:
            "Connections in progress (ztna_connector_tcp_connections_active) and stream outcomes per second (ztna_connector_tcp_connections_total): ok, or connect_failed when the service refuses.",
          kind: "timeseries",
          unit: "none",
          w: 8,
          targets: [
            t(`sum by (instance) (ztna_connector_tcp_connections_active{${C}})`, "active {{instance}}"),
            t(`sum by (result) (rate(ztna_connector_tcp_connections_total{${C}}[${RATE}]))`, "{{result}}/s"),
          ],
        },
        {
          title: "TCP bytes",
          description: "TCP payload bytes per second to / from the private service (ztna_connector_tcp_bytes_total).",
          kind: "timeseries",
          unit: "Bps",
          w: 8,
          targets: [t(`sum by (direction) (rate(ztna_connector_tcp_bytes_total{${C}}[${RATE}]))`, "{{direction}}")],
        },
        {
          title: "TCP connections ended",
          description:
            "TCP connections ended per second by how (ztna_connector_tcp_closed_total): fin, local_reset (the service side failed), remote_reset (reset through the tunnel).",
          kind: "timeseries",
          unit: "ops",
          w: 8,
          stack: true,
          targets: [t(`sum by (how) (rate(ztna_connector_tcp_closed_total{${C}}[${RATE}]))`, "{{how}}")],
        },
      ],
    },
  ],
};

const agentRow: RowSpec = {
  title: "Agent",
  lines: [
    {
      h: 6,
      panels: [
        {
          title: "Service up",
          description: "Per mapped service: up while a connector stands behind the server (ztna_agent_service_up).",
          kind: "state-timeline",
          unit: "none",
          w: 12,
          targets: [t(`ztna_agent_service_up{${A}}`, "{{instance}} {{service}}")],
          mappings: { "0": { text: "down", color: "red" }, "1": { text: "up", color: "green" } },
        },
        {
          title: "Connection state",
          description:
            "Link to each server (ztna_agent_connection_state); with several servers only the active one is connected.",
          kind: "state-timeline",
          unit: "none",
          w: 12,
          targets: [t(`ztna_agent_connection_state{${A}}`, "{{instance}} → {{server}}")],
          mappings: CONNECTION_STATES,
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Datagrams forwarded",
          description: "Datagrams per second to / from the server (ztna_agent_datagrams_total).",
          kind: "timeseries",
          unit: "pps",
          w: 8,
          targets: [t(`sum by (direction) (rate(ztna_agent_datagrams_total{${A}}[${RATE}]))`, "{{direction}}")],
        },
        {
          title: "Bytes forwarded",
          description: "Payload bytes per second to / from the server (ztna_agent_bytes_total).",
          kind: "timeseries",
          unit: "Bps",
          w: 8,
          targets: [t(`sum by (direction) (rate(ztna_agent_bytes_total{${A}}[${RATE}]))`, "{{direction}}")],
        },
        {
          title: "Drops by reason",
          description:
            "Datagrams dropped per second (ztna_agent_drops_total); service_down and not_connected rise during outages.",
          kind: "timeseries",
          unit: "pps",
          w: 8,
          stack: true,
          targets: [t(`sum by (reason) (rate(ztna_agent_drops_total{${A}}[${RATE}]))`, "{{reason}}")],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Opens, service changes, reconnections",
          description:
            "OPEN answers by result/reason, service up/down transitions, and reconnections or server switches by reason, per interval.",
          kind: "timeseries",
          unit: "none",
          w: 8,
          targets: [
            t(
              `sum by (result, reason) (increase(ztna_agent_opens_total{${A}}[${RATE}]))`,
              "open {{result}} {{reason}}",
            ),
            t(
              `sum by (service, state) (increase(ztna_agent_service_changes_total{${A}}[${RATE}]))`,
              "{{service}} → {{state}}",
            ),
            t(`sum by (reason) (increase(ztna_agent_reconnections_total{${A}}[${RATE}]))`, "reconnect {{reason}}"),
          ],
        },
        {
          title: "Reopen time",
          description:
            "Time from losing the server to the flows being reopened (ztna_agent_reopen_seconds), over the last hour.",
          kind: "timeseries",
          unit: "s",
          w: 8,
          targets: quantiles("ztna_agent_reopen_seconds", A, "1h"),
        },
        {
          title: "RTT to server",
          description: "Smoothed QUIC round-trip time to the active server (ztna_agent_server_rtt_seconds).",
          kind: "timeseries",
          unit: "s",
          w: 8,
          targets: [t(`ztna_agent_server_rtt_seconds{${A}}`, "{{instance}} → {{server}}")],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Flows",
          description: "Flows open through the server, and new flows per second.",
          kind: "timeseries",
          unit: "none",
          w: 24,
          targets: [
            t(`sum by (instance) (ztna_agent_flows_active{${A}})`, "active {{instance}}"),
            t(`sum by (instance) (rate(ztna_agent_flows_opened_total{${A}}[${RATE}]))`, "opened/s {{instance}}"),
          ],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "TCP connections",
          description:
            "Local TCP connections tunnelled now (ztna_agent_tcp_connections_active) and accepted per second by result (ztna_agent_tcp_connections_total): ok, or refused at once (service_down, not_connected, draining, limit_exceeded).",
          kind: "timeseries",
          unit: "none",
          w: 8,
          targets: [
            t(`sum by (instance) (ztna_agent_tcp_connections_active{${A}})`, "active {{instance}}"),
            t(`sum by (result) (rate(ztna_agent_tcp_connections_total{${A}}[${RATE}]))`, "{{result}}/s"),
          ],
        },
        {
          title: "TCP bytes",
          description: "TCP payload bytes per second to / from the server (ztna_agent_tcp_bytes_total).",
          kind: "timeseries",
          unit: "Bps",
          w: 8,
          targets: [t(`sum by (direction) (rate(ztna_agent_tcp_bytes_total{${A}}[${RATE}]))`, "{{direction}}")],
        },
        {
          title: "TCP connections ended",
          description:
            "Tunnelled TCP connections ended per second by how (ztna_agent_tcp_closed_total): fin, local_reset (the local client failed), remote_reset (reset through the tunnel).",
          kind: "timeseries",
          unit: "ops",
          w: 8,
          stack: true,
          targets: [t(`sum by (how) (rate(ztna_agent_tcp_closed_total{${A}}[${RATE}]))`, "{{how}}")],
        },
      ],
    },
  ],
};

const processRow: RowSpec = {
  title: "Processes",
  lines: [
    {
      h: 8,
      panels: [
        {
          title: "Scrape targets up",
          description: "Prometheus' view of each ztna target (1 = scraped successfully).",
          kind: "timeseries",
          unit: "none",
          w: 8,
          min: 0,
          targets: [t(`up{${J}}`, "{{job}} {{instance}}")],
        },
        {
          title: "Resident memory",
          description: "RSS of each process (ztna_process_resident_memory_bytes).",
          kind: "timeseries",
          unit: "bytes",
          w: 8,
          targets: [t(`ztna_process_resident_memory_bytes{${J}}`, "{{job}} {{instance}}")],
        },
        {
          title: "CPU",
          description: "CPU time per second, user + system (rate of ztna_process_cpu_seconds_total); 100% = one core.",
          kind: "timeseries",
          unit: "percentunit",
          w: 8,
          targets: [t(`rate(ztna_process_cpu_seconds_total{${J}}[${RATE}])`, "{{job}} {{instance}}")],
        },
      ],
    },
    {
      h: 8,
      panels: [
        {
          title: "Event loop lag p99",
          description:
            "p99 event-loop delay (ztna_nodejs_eventloop_lag_p99_seconds): a busy relay shows it here first.",
          kind: "timeseries",
          unit: "s",
          w: 8,
          targets: [t(`ztna_nodejs_eventloop_lag_p99_seconds{${J}}`, "{{job}} {{instance}}")],
        },
        {
          title: "JS heap used",
          description: "JavaScript heap in use (ztna_nodejs_heap_size_used_bytes).",
          kind: "timeseries",
          unit: "bytes",
          w: 8,
          targets: [t(`ztna_nodejs_heap_size_used_bytes{${J}}`, "{{job}} {{instance}}")],
        },
        {
          title: "Open file descriptors",
          description: "Open fds against the limit (ztna_process_open_fds / ztna_process_max_fds).",
          kind: "timeseries",
          unit: "percentunit",
          w: 8,
          targets: [t(`ztna_process_open_fds{${J}} / ztna_process_max_fds{${J}}`, "{{job}} {{instance}}")],
        },
      ],
    },
    {
      h: 6,
      panels: [
        {
          title: "Certificate expiry",
          description:
            "Time left until each certificate a program uses expires (ztna_certificate_expiry_timestamp_seconds): its own (role = the program) and the CAs it trusts (role = ca). Orange within 14 days (ZtnaCertificateExpiringSoon fires), red within 3. Rotation without downtime: docs/certificates.md.",
          kind: "stat",
          unit: "s",
          w: 24,
          targets: [
            t(`ztna_certificate_expiry_timestamp_seconds{${J}} - time()`, "{{job}} {{instance}} {{role}} {{subject}}"),
          ],
          thresholds: [[null, "red"], [3 * 86400, "orange"], [14 * 86400, "green"]],
        },
      ],
    },
  ],
};

export const ROWS: readonly RowSpec[] = [serverRow, connectorRow, agentRow, processRow];

function fieldConfig(p: PanelSpec) {
  const steps = (p.thresholds ?? [[null, "green"]]).map(([value, color]) => ({ color, value }));
  const defaults: Record<string, unknown> = {
    unit: p.unit,
    color: { mode: p.mappings || p.thresholds ? "thresholds" : "palette-classic" },
    thresholds: { mode: "absolute", steps },
    mappings: p.mappings
      ? [
        {
          type: "value",
          options: Object.fromEntries(
            Object.entries(p.mappings).map(([v, m], index) => [v, { text: m.text, color: m.color, index }]),
          ),
        },
      ]
      : [],
  };
  if (p.min !== undefined) defaults.min = p.min;
  if (p.kind === "timeseries") {
    defaults.custom = {
      drawStyle: "line",
      lineWidth: 1,
      fillOpacity: p.stack ? 30 : 10,
      showPoints: "never",
      spanNulls: false,
      stacking: { mode: p.stack ? "normal" : "none", group: "A" },
    };
  } else if (p.kind === "state-timeline") {
    defaults.custom = { fillOpacity: 80, lineWidth: 0 };
  }
  return { defaults, overrides: [] };
}

function options(p: PanelSpec) {
  const legend = { displayMode: "list", placement: "bottom", showLegend: true, calcs: [] };
  if (p.kind === "stat") {
    return {
      reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
      colorMode: "value",
      graphMode: "none",
      justifyMode: "auto",
      orientation: "auto",
      textMode: "auto",
    };
  }
  if (p.kind === "state-timeline") {
    return {
      showValue: "never",
      mergeValues: true,
      alignValue: "left",
      rowHeight: 0.9,
      legend,
      tooltip: { mode: "single", sort: "none" },
    };
  }
  return { legend, tooltip: { mode: "multi", sort: "desc" } };
}

function layout(rows: readonly RowSpec[]): object[] {
  const panels: object[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    panels.push({
      type: "row",
      title: row.title,
      collapsed: false,
      id: id++,
      gridPos: { x: 0, y, w: 24, h: 1 },
      panels: [],
    });
    y += 1;
    for (const line of row.lines) {
      const width = line.panels.reduce((sum, p) => sum + p.w, 0);
      if (width !== 24) throw new Error(`${row.title}: a line is ${width} columns wide, not 24`);
      let x = 0;
      for (const p of line.panels) {
        panels.push({
          type: p.kind,
          title: p.title,
          description: p.description,
          id: id++,
          datasource: DS,
          gridPos: { x, y, w: p.w, h: line.h },
          targets: p.targets.map((target, i) => ({
            datasource: DS,
            refId: String.fromCharCode(65 + i),
            expr: target.expr,
            legendFormat: target.legend,
            range: true,
            instant: false,
            editorMode: "code",
          })),
          fieldConfig: fieldConfig(p),
          options: options(p),
        });
        x += p.w;
      }
      y += line.h;
    }
  }
  return panels;
}

function instanceVariable(name: string, label: string, metric: string) {
  const query = `label_values(${metric}, instance)`;
  return {
    type: "query",
    name,
    label,
    datasource: DS,
    definition: query,
    query: { query, refId: `${name}-instances` },
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: ".*",
    current: { selected: true, text: ["All"], value: ["$__all"] },
    options: [],
    sort: 1,
    hide: 0,
  };
}

export function buildDashboard(): Record<string, unknown> {
  return {
    __inputs: [
      {
        name: "DS_PROMETHEUS",
        label: "Prometheus",
        description: "Prometheus that scrapes the ztna-server, ztna-connector and ztna-agent jobs",
        type: "datasource",
        pluginId: "prometheus",
        pluginName: "Prometheus",
      },
    ],
    __requires: [
      { type: "grafana", id: "grafana", name: "Grafana", version: "10.3.0" },
      { type: "datasource", id: "prometheus", name: "Prometheus", version: "1.0.0" },
      { type: "panel", id: "timeseries", name: "Time series", version: "" },
      { type: "panel", id: "stat", name: "Stat", version: "" },
      { type: "panel", id: "state-timeline", name: "State timeline", version: "" },
    ],
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: "grafana", uid: "-- Grafana --" },
          enable: true,
          hide: true,
          iconColor: "rgba(0, 211, 255, 1)",
          name: "Annotations & Alerts",
          type: "dashboard",
        },
      ],
    },
    description:
      "ztna relay, connectors and agents: traffic, drops, registrations, links and processes. Built from observability/grafana/dashboard.ts.",
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: [],
    panels: layout(ROWS),
    refresh: "30s",
    schemaVersion: 39,
    tags: ["ztna", "quic", "relay"],
    templating: {
      list: [
        {
          // Also a variable (not only an import input) so file provisioning works unchanged.
          type: "datasource",
          name: "DS_PROMETHEUS",
          label: "Data source",
          query: "prometheus",
          current: {},
          hide: 0,
          includeAll: false,
          multi: false,
          options: [],
          refresh: 1,
          regex: "",
        },
        instanceVariable("server", "Server", "ztna_server_uptime_seconds"),
        instanceVariable("connector", "Connector", "ztna_connector_datagrams_total"),
        instanceVariable("agent", "Agent", "ztna_agent_datagrams_total"),
        {
          type: "query",
          name: "job",
          label: "Job (processes)",
          datasource: DS,
          definition: "label_values(ztna_process_resident_memory_bytes, job)",
          query: { query: "label_values(ztna_process_resident_memory_bytes, job)", refId: "job-values" },
          refresh: 2,
          includeAll: true,
          multi: true,
          allValue: ".*",
          current: { selected: true, text: ["All"], value: ["$__all"] },
          options: [],
          sort: 1,
          hide: 0,
        },
      ],
    },
    time: { from: "now-6h", to: "now" },
    timepicker: {},
    timezone: "",
    title: "ZTNA relay",
    uid: "ztna-relay",
    version: 1,
    weekStart: "",
  };
}

/** The file's text: stable key order as declared, two-space indent, trailing newline. */
export function dashboardText(): string {
  return JSON.stringify(buildDashboard(), null, 2) + "\n";
}

if (import.meta.main) {
  const path = new URL("./ztna-dashboard.json", import.meta.url);
  await Bun.write(path, dashboardText());
  console.log(`wrote ${path.pathname}`);
}
