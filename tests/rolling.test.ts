/**
 * Zero-downtime restarts under continuous request/response traffic (200
 * requests/s, no retries by the client): every request must be answered.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { addressOf, type Program } from "../scripts/programs.ts";
import { cleanup, startEcho, waitFor } from "./harness.ts";
import { createFleet, steadyTraffic } from "./procs.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

const registrations = (p: Program) => p.logs.filter((e) => e.event === "registered").length;

describe("zero-downtime restarts", () => {
  test("rolling restart of two connector replicas loses no response", async () => {
    const fleet = teardown.add(createFleet(), (f) => f.stopAll());
    const echo = teardown.add(await startEcho(), (e) => e.close());
    const server = await fleet.server();
    const args = await fleet.clientArgs([server.port]);
    const connectorArgs = [
      ...args,
      "--service",
      "echo",
      "--forward",
      `127.0.0.1:${echo.address.port}`,
      "--grace",
      "5s",
    ];
    const replicas = [fleet.start("connector", connectorArgs), fleet.start("connector", connectorArgs)];
    await Promise.all(replicas.map((r) => r.waitForLog("registered")));
    const agent = fleet.start("agent", [...args, "--map", "echo=udp://127.0.0.1:0"]);
    const listen = addressOf(await agent.waitForLog("listening"));
    await agent.waitForLog("service_opened");

    const traffic = await steadyTraffic(listen, 200);
    await waitFor(() => traffic.answered > 100, 5_000, "traffic flowing");
    for (let i = 0; i < replicas.length; i++) {
      const code = await replicas[i]!.stop("SIGTERM", 8_000);
      expect(code).toBe(0);
      const replacement = fleet.start("connector", connectorArgs);
      await replacement.waitForLog("registered");
      replicas[i] = replacement;
      const before = traffic.answered;
      await waitFor(() => traffic.answered > before + 100, 5_000, "traffic after the restart");
    }
    // Traffic keeps running on the new replicas for a while before the count.
    const after = traffic.answered;
    await waitFor(() => traffic.answered > after + 300, 5_000, "traffic after the roll");
    const result = await traffic.stop();
    console.log(
      `connector rolling restart: sent ${result.sent}, answered ${result.answered}, lost ${result.lost.length}`,
    );
    expect(result.sent).toBeGreaterThan(600);
    expect(result.lost).toEqual([]);
  }, 60_000);

  test("rolling restart of two servers loses no response", async () => {
    const fleet = teardown.add(createFleet(), (f) => f.stopAll());
    const echo = teardown.add(await startEcho(), (e) => e.close());
    const servers = [await fleet.server(), await fleet.server()];
    const ports = servers.map((s) => s.port);
    const args = await fleet.clientArgs(ports);
    const connector = fleet.start("connector", [
      ...args,
      "--service",
      "echo",
      "--forward",
      `127.0.0.1:${echo.address.port}`,
    ]);
    await waitFor(() => registrations(connector) >= 2, 10_000, "connector registered with both servers");
    const agent = fleet.start("agent", [...args, "--map", "echo=udp://127.0.0.1:0"]);
    const listen = addressOf(await agent.waitForLog("listening"));
    await agent.waitForLog("service_opened");

    const traffic = await steadyTraffic(listen, 200);
    await waitFor(() => traffic.answered > 100, 5_000, "traffic flowing");
    for (let i = 0; i < servers.length; i++) {
      const registered = registrations(connector);
      const code = await servers[i]!.program.stop("SIGTERM", 15_000);
      expect(code).toBe(0);
      servers[i] = await fleet.server(ports[i]);
      // Before rolling the next one, the connector must be back on the restarted server.
      await waitFor(() => registrations(connector) > registered, 10_000, "connector re-registered");
      const before = traffic.answered;
      await waitFor(() => traffic.answered > before + 100, 5_000, "traffic after the restart");
    }
    const result = await traffic.stop();
    console.log(`server rolling restart: sent ${result.sent}, answered ${result.answered}, lost ${result.lost.length}`);
    expect(result.sent).toBeGreaterThan(600);
    expect(result.lost).toEqual([]);
    expect(agent.logs.some((e) => e.event === "switched_server")).toBe(true);
  }, 90_000);
});
