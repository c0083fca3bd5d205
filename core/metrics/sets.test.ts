// The three component metric sets: every declared name is registered, with
// help text, and the exposition carries labels and values after use.
import { describe, expect, test } from "bun:test";
import type { Registry } from "prom-client";
import { AGENT_METRIC_NAMES, createAgentMetrics } from "../../agent/metrics.ts";
import { CONNECTOR_METRIC_NAMES, createConnectorMetrics } from "../../connector/metrics.ts";
import { createServerMetrics, SERVER_METRIC_NAMES } from "../../server/metrics.ts";
import { CERTIFICATE_EXPIRY, publishCertificates } from "./certificates.ts";
import { CONNECTION_STATE } from "./labels.ts";
import { createRegistry } from "./registry.ts";

/** A component's own metrics, plus those every program exports (certificate expiry). */
async function componentMetrics(reg: Registry, prefix: string) {
  const all = await reg.getMetricsAsJSON();
  return all.filter((m) =>
    (m.name.startsWith(prefix) || m.name === CERTIFICATE_EXPIRY) && !m.name.startsWith("ztna_process_")
  );
}

async function checkNames(reg: Registry, prefix: string, names: readonly string[]) {
  const defined = await componentMetrics(reg, prefix);
  expect(defined.map((m) => m.name).sort()).toEqual([...names].sort());
  for (const m of defined) expect(m.help.length).toBeGreaterThan(5);
  expect(new Set(names).size).toBe(names.length);
}

describe("server metrics", () => {
  test("names list matches the registry exactly", async () => {
    const reg = createRegistry("server");
    createServerMetrics(reg);
    await checkNames(reg, "ztna_server_", SERVER_METRIC_NAMES);
  });

  test("exposition after use", async () => {
    const reg = createRegistry("server");
    const m = createServerMetrics(reg);
    m.connectionsActive.child({ role: "agent" }).inc();
    m.connectionsTotal.child({ role: "connector" }).inc(2);
    m.registrations.child({ result: "ack", reason: "ok" }).inc();
    m.registrations.child({ result: "nack", reason: "unauthorized" }).inc();
    m.opens.child({ result: "nack", reason: "no_service" }).inc();
    m.deregistrations.inc();
    m.flowsActive.set(3);
    m.flowsOpened.inc(4);
    const a2c = m.datagramsRelayed.child({ direction: "agent_to_connector" });
    for (let i = 0; i < 1000; i++) a2c.inc();
    m.bytesRelayed.child({ direction: "connector_to_agent" }).inc(1200);
    m.drops.child({ reason: "unknown_flow" }).inc();
    m.handshakeDuration.observe(0.002);
    m.draining.set(1);
    m.protocolErrors.child({ kind: "bad_frame" }).inc();
    m.servicesRegistered.set(2);

    const text = await reg.metrics();
    for (
      const line of [
        'ztna_server_connections_active{role="agent"} 1',
        'ztna_server_connections_active{role="connector"} 0',
        'ztna_server_connections_total{role="connector"} 2',
        'ztna_server_registrations_total{result="ack",reason="ok"} 1',
        'ztna_server_registrations_total{result="nack",reason="unauthorized"} 1',
        'ztna_server_opens_total{result="nack",reason="no_service"} 1',
        "ztna_server_deregistrations_total 1",
        "ztna_server_flows_active 3",
        "ztna_server_flows_opened_total 4",
        'ztna_server_datagrams_relayed_total{direction="agent_to_connector"} 1000',
        'ztna_server_datagrams_relayed_total{direction="connector_to_agent"} 0',
        'ztna_server_bytes_relayed_total{direction="connector_to_agent"} 1200',
        'ztna_server_drops_total{reason="unknown_flow"} 1',
        'ztna_server_handshake_duration_seconds_bucket{le="0.0025"} 1',
        "ztna_server_handshake_duration_seconds_count 1",
        "ztna_server_draining 1",
        'ztna_server_protocol_errors_total{kind="bad_frame"} 1',
        "ztna_server_services_registered 2",
      ]
    ) {
      expect(text).toContain(line);
    }
    expect(text).toMatch(/^ztna_server_uptime_seconds [0-9.e+-]+$/m);
  });
});

describe("connector metrics", () => {
  test("names list matches the registry exactly", async () => {
    const reg = createRegistry("connector");
    createConnectorMetrics(reg);
    await checkNames(reg, "ztna_connector_", CONNECTOR_METRIC_NAMES);
  });

  test("exposition after use; drop reasons exported at 0 up front", async () => {
    const reg = createRegistry("connector");
    const m = createConnectorMetrics(reg);
    m.datagrams.child({ direction: "to_service" }).inc(5);
    m.bytes.child({ direction: "from_service" }).inc(999);
    m.drops.child({ reason: "source_mismatch" }).inc();
    m.flowsActive.inc();
    m.flowsOpened.inc();
    m.flowsExpired.inc();
    m.registered.child({ server: "relay-1:4433" }).set(1);
    m.registrations.child({ result: "ack", reason: "ok" }).inc();
    m.reconnections.child({ reason: "idle_timeout" }).inc();
    m.connectionState.child({ server: "relay-1:4433" }).set(CONNECTION_STATE.draining);
    m.reregistration.observe(0.4);
    m.serverRtt.child({ server: "relay-1:4433" }).set(0.0125);

    const text = await reg.metrics();
    for (
      const line of [
        'ztna_connector_datagrams_total{direction="to_service"} 5',
        'ztna_connector_datagrams_total{direction="from_service"} 0',
        'ztna_connector_bytes_total{direction="from_service"} 999',
        'ztna_connector_drops_total{reason="source_mismatch"} 1',
        'ztna_connector_drops_total{reason="send_error"} 0',
        "ztna_connector_flows_active 1",
        "ztna_connector_flows_opened_total 1",
        "ztna_connector_flows_expired_total 1",
        'ztna_connector_registered{server="relay-1:4433"} 1',
        'ztna_connector_registrations_total{result="ack",reason="ok"} 1',
        'ztna_connector_reconnections_total{reason="idle_timeout"} 1',
        'ztna_connector_connection_state{server="relay-1:4433"} 3',
        'ztna_connector_reregistration_seconds_bucket{le="0.5"} 1',
        'ztna_connector_server_rtt_seconds{server="relay-1:4433"} 0.0125',
      ]
    ) {
      expect(text).toContain(line);
    }
  });
});

describe("agent metrics", () => {
  test("names list matches the registry exactly", async () => {
    const reg = createRegistry("agent");
    createAgentMetrics(reg);
    await checkNames(reg, "ztna_agent_", AGENT_METRIC_NAMES);
  });

  test("exposition after use", async () => {
    const reg = createRegistry("agent");
    const m = createAgentMetrics(reg);
    m.datagrams.child({ direction: "from_server" }).inc(2);
    m.bytes.child({ direction: "to_server" }).inc(64);
    m.drops.child({ reason: "service_down" }).inc();
    m.flowsActive.set(2);
    m.flowsOpened.inc(2);
    m.opens.child({ result: "nack", reason: "service_down" }).inc();
    m.serviceUp.child({ service: "dns" }).set(1);
    m.serviceChanges.child({ service: "dns", state: "up" }).inc();
    m.reconnections.child({ reason: "server_closed" }).inc();
    m.connectionState.child({ server: "relay-1:4433" }).set(CONNECTION_STATE.connected);
    m.serverRtt.child({ server: "relay-1:4433" }).set(0.001);
    m.reopen.observe(0.05);

    const text = await reg.metrics();
    for (
      const line of [
        'ztna_agent_datagrams_total{direction="from_server"} 2',
        'ztna_agent_bytes_total{direction="to_server"} 64',
        'ztna_agent_drops_total{reason="service_down"} 1',
        'ztna_agent_drops_total{reason="not_connected"} 0',
        "ztna_agent_flows_active 2",
        "ztna_agent_flows_opened_total 2",
        'ztna_agent_opens_total{result="nack",reason="service_down"} 1',
        'ztna_agent_service_up{service="dns"} 1',
        'ztna_agent_service_changes_total{service="dns",state="up"} 1',
        'ztna_agent_reconnections_total{reason="server_closed"} 1',
        'ztna_agent_connection_state{server="relay-1:4433"} 2',
        'ztna_agent_server_rtt_seconds{server="relay-1:4433"} 0.001',
        'ztna_agent_reopen_seconds_bucket{le="0.05"} 1',
      ]
    ) {
      expect(text).toContain(line);
    }
  });
});

describe("certificate expiry", () => {
  test("own certificate and CAs by role and subject; a reload replaces the series", async () => {
    const reg = createRegistry("connector");
    const m = createConnectorMetrics(reg);
    publishCertificates(m.certificateExpiry, [
      { role: "connector", subject: "CN=connector-db", notAfter: new Date("2030-01-02T03:04:05Z") },
      { role: "ca", subject: "CN=ztna CA", notAfter: new Date("2035-01-01T00:00:00Z") },
    ]);
    let text = await reg.metrics();
    expect(text).toContain(
      'ztna_certificate_expiry_timestamp_seconds{role="connector",subject="CN=connector-db"} 1893553445',
    );
    expect(text).toContain('ztna_certificate_expiry_timestamp_seconds{role="ca",subject="CN=ztna CA"} 2051222400');
    publishCertificates(m.certificateExpiry, [{
      role: "connector",
      subject: "CN=connector-db-2",
      notAfter: new Date("2031-01-01T00:00:00Z"),
    }]);
    text = await reg.metrics();
    expect(text).not.toContain('subject="CN=connector-db"');
    expect(text).not.toContain('role="ca"');
    expect(text).toContain(
      'ztna_certificate_expiry_timestamp_seconds{role="connector",subject="CN=connector-db-2"} 1924992000',
    );
  });
});
