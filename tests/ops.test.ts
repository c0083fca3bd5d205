/**
 * The ops endpoints of the real programs (runServer/runConnector/runAgent as
 * the CLI starts them): /healthz, /readyz through each program's life, and
 * /metrics in Prometheus text.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runAgent } from "../agent/main.ts";
import { parseAgentOptions } from "../agent/options.ts";
import { runConnector } from "../connector/main.ts";
import { parseConnectorOptions } from "../connector/options.ts";
import { runServer } from "../server/main.ts";
import { parseServerOptions } from "../server/options.ts";
import { captureLogger, cleanup, devCerts, devServerFlags, startEcho, udpClient, waitFor } from "./harness.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

async function get(url: string, path: string) {
  const response = await fetch(new URL(path, url));
  return { status: response.status, type: response.headers.get("content-type") ?? "", body: await response.text() };
}

describe("ops endpoints of the programs", () => {
  test("server, connector and agent: healthz, readyz through their life, metrics", async () => {
    const c = await devCerts();
    const server = await runServer(
      parseServerOptions([...devServerFlags(c, { ops: "127.0.0.1:0" }), "--grace", "300ms"], {}),
      captureLogger("server"),
    );
    teardown.add(server, (p) => p.server.close().then(() => p.ops?.stop()));
    const serverOps = server.ops!.url;
    expect(await get(serverOps, "/healthz")).toMatchObject({ status: 200 });
    expect(await get(serverOps, "/readyz")).toMatchObject({ status: 200, body: '{"ready":true}' });

    const echo = teardown.add(await startEcho(), (e) => e.close());
    const client = [
      "--server",
      `127.0.0.1:${server.server.address.port}`,
      "--server-name",
      "localhost",
      "--ca",
      join(c.dir, "ca.pem"),
      "--ops",
      "127.0.0.1:0",
      "--state-dir",
      c.dir,
    ];
    const connector = await runConnector(
      parseConnectorOptions([
        ...client,
        "--service",
        "echo",
        "--forward",
        `127.0.0.1:${echo.address.port}`,
        "--grace",
        "300ms",
      ], {}),
      captureLogger("connector"),
    );
    teardown.add(connector, (p) => p.connector.close().then(() => p.ops?.stop()));
    const agent = await runAgent(
      parseAgentOptions([...client, "--map", "echo=udp://127.0.0.1:0"], {}),
      captureLogger("agent"),
    );
    teardown.add(agent, (p) => p.agent.close().then(() => p.ops?.stop()));

    await waitFor(
      () => connector.connector.ready().ready && agent.agent.ready().ready,
      5_000,
      "connector and agent ready",
    );
    for (const program of [connector, agent]) {
      expect(await get(program.ops!.url, "/healthz")).toMatchObject({ status: 200 });
      expect(await get(program.ops!.url, "/readyz")).toMatchObject({ status: 200 });
    }

    // /status: the service with its connector (as the server sees it), the agent, a flow once one exists.
    const user = teardown.add(await udpClient(), (x) => x.close());
    user.send(new TextEncoder().encode("status"), agent.agent.listeners[0]!.address);
    await user.next(2_000);
    const status = await get(serverOps, "/status");
    expect(status.status).toBe(200);
    expect(status.type).toStartWith("application/json");
    const doc = JSON.parse(status.body);
    expect(doc).toMatchObject({ component: "server", draining: false, connectors: 1, agents: 1, flows: 1 });
    expect(doc.version).toMatch(/^\d+\.\d+\.\d+ \(.+\)$/);
    expect(Date.parse(doc.startedAt)).toBeLessThanOrEqual(Date.now());
    expect(doc.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(doc.services).toHaveLength(1);
    const [svc] = doc.services;
    expect(svc).toMatchObject({ name: "echo", agents: 1, flows: 1 });
    expect(svc.connectors).toHaveLength(1);
    expect(svc.connectors[0]).toMatchObject({ identity: null, draining: false });
    expect(svc.connectors[0].address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(Date.now() - Date.parse(svc.connectors[0].since)).toBeLessThan(60_000);
    // No secrets: nothing key- or token-like anywhere in the document.
    expect(status.body).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE|token|secret/i);

    // Prometheus text with the component's own series and the process metrics.
    const metrics = await get(serverOps, "/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain("text/plain");
    expect(metrics.body).toContain('ztna_server_connections_active{role="connector"} 1');
    expect(metrics.body).toContain('ztna_server_registrations_total{result="ack",reason="ok"} 1');
    expect(metrics.body).toContain("ztna_process_resident_memory_bytes");
    expect((await get(connector.ops!.url, "/metrics")).body).toContain("ztna_connector_registered{");
    expect((await get(agent.ops!.url, "/metrics")).body).toContain('ztna_agent_service_up{service="echo"} 1');

    // The connector leaves: it is not ready, and the agent's readiness names the service.
    const leaving = connector.shutdown();
    await waitFor(() => !agent.agent.ready().ready, 5_000, "agent told the service is down");
    const agentReady = await get(agent.ops!.url, "/readyz");
    expect(agentReady.status).toBe(503);
    expect(JSON.parse(agentReady.body)).toEqual({ ready: false, reason: "services down: echo" });
    await leaving;

    // The server turns 503 the moment draining begins.
    const draining = server.server.drain();
    expect(server.server.ready().ready).toBe(false);
    // With no flow left to relay the drain may already be over: 503 either way.
    const serverReady = await get(serverOps, "/readyz");
    expect(serverReady.status).toBe(503);
    expect(["draining", "closed"]).toContain(JSON.parse(serverReady.body).reason);
    expect((await get(serverOps, "/metrics")).body).toContain("ztna_server_draining 1");
    await draining;
  });

  test("--ops off starts no listener", async () => {
    const c = await devCerts();
    const server = await runServer(
      parseServerOptions(devServerFlags(c), {}),
      captureLogger("server"),
    );
    teardown.add(server, (p) => p.server.close());
    expect(server.ops).toBeNull();
  });
});
