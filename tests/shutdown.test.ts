/**
 * Graceful shutdown: SIGTERM each component while traffic flows. It exits 0
 * within grace + 1 s, and no datagram it had already accepted is lost.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { addressOf } from "../scripts/programs.ts";
import { cleanup, startEcho, startTestAgent, waitFor } from "./harness.ts";
import { createFleet, steadyTraffic } from "./procs.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

const GRACE_MS = 2_000;

async function topology() {
  const fleet = teardown.add(createFleet(), (f) => f.stopAll());
  const echo = teardown.add(await startEcho(), (e) => e.close());
  const server = await fleet.server(0, ["--grace", `${GRACE_MS}ms`, "--alternate", "relay-b.example:4433"]);
  const args = await fleet.clientArgs([server.port]);
  const connector = fleet.start("connector", [
    ...args,
    "--service",
    "echo",
    "--forward",
    `127.0.0.1:${echo.address.port}`,
    "--grace",
    `${GRACE_MS}ms`,
  ]);
  await connector.waitForLog("registered");
  return { fleet, server, args, connector };
}

describe("graceful shutdown", () => {
  test("server: GOAWAY, relays existing flows through the grace period, exits 0", async () => {
    const { server, args, fleet } = await topology();
    const agent = fleet.start("agent", [...args, "--map", "echo=udp://127.0.0.1:0"]);
    const listen = addressOf(await agent.waitForLog("listening"));
    await agent.waitForLog("service_opened");
    const traffic = await steadyTraffic(listen, 200);
    await waitFor(() => traffic.answered > 50, 5_000, "traffic");
    const signalled = Date.now();
    const exited = server.program.stop("SIGTERM", 10_000);
    // Everything sent during most of the grace period is still relayed.
    await new Promise((r) => setTimeout(r, GRACE_MS - 300));
    const sentDuringGrace = traffic.sent;
    const code = await exited;
    const elapsed = Date.now() - signalled;
    const result = await traffic.stop(300);
    expect(code).toBe(0);
    expect(elapsed).toBeLessThan(GRACE_MS + 1_000);
    expect(result.lost.filter((seq) => seq < sentDuringGrace)).toEqual([]);
    expect(agent.logs.find((e) => e.event === "server_goaway")?.alternate).toBe("relay-b.example:4433");
    expect(server.program.logs.some((e) => e.event === "draining")).toBe(true);
  });

  test("connector: deregisters (acknowledged), finishes in-flight requests, agents are told, exits 0", async () => {
    const { server, connector } = await topology();
    // An in-process agent, so its counters can be read.
    const a = teardown.add(
      await startTestAgent([{ host: "127.0.0.1", port: server.port }], ["echo"]),
      (x) => x.agent.close(),
    );
    await waitFor(() => a.agent.ready().ready, 5_000, "agent ready");
    const traffic = await steadyTraffic(a.listen("echo"), 200);
    await waitFor(() => traffic.answered > 50, 5_000, "traffic");
    const signalled = Date.now();
    const code = await connector.stop("SIGTERM", 10_000);
    const elapsed = Date.now() - signalled;
    await waitFor(() => !a.agent.serviceUp("echo"), 2_000, "agent told the service is down");
    const result = await traffic.stop(300);
    expect(code).toBe(0);
    expect(elapsed).toBeLessThan(GRACE_MS + 1_000);
    expect(connector.logs.find((e) => e.event === "deregistered")?.ok).toBe(true);
    // Nothing vanished: every request was answered or refused at the agent, and counted.
    const refused = a.metrics.drops.child({ reason: "service_down" }).value +
      a.metrics.drops.child({ reason: "not_connected" }).value;
    expect(result.answered + refused).toBe(result.sent);
    expect(a.agent.ready().ready).toBe(false);
  });

  test("agent: refuses new datagrams, delivers replies already on their way, exits 0", async () => {
    const { args, fleet } = await topology();
    const agent = fleet.start("agent", [...args, "--map", "echo=udp://127.0.0.1:0", "--grace", `${GRACE_MS}ms`]);
    const listen = addressOf(await agent.waitForLog("listening"));
    await agent.waitForLog("service_opened");
    const traffic = await steadyTraffic(listen, 200);
    await waitFor(() => traffic.answered > 50, 5_000, "traffic");
    const sentBeforeSignal = traffic.sent;
    const signalled = Date.now();
    const code = await agent.stop("SIGTERM", 10_000);
    const elapsed = Date.now() - signalled;
    const result = await traffic.stop(200);
    expect(code).toBe(0);
    expect(elapsed).toBeLessThan(GRACE_MS + 1_000);
    expect(result.lost.filter((seq) => seq < sentBeforeSignal)).toEqual([]);
  });

  test("a second signal exits at once", async () => {
    const { server, args, fleet } = await topology();
    // With a live flow the server would wait out its grace period.
    const agent = fleet.start("agent", [...args, "--map", "echo=udp://127.0.0.1:0"]);
    const listen = addressOf(await agent.waitForLog("listening"));
    await agent.waitForLog("service_opened");
    const traffic = await steadyTraffic(listen, 50);
    await waitFor(() => traffic.answered > 5, 5_000, "a flow");
    const signalled = Date.now();
    const exited = server.program.exited;
    process.kill(server.program.pid, "SIGTERM");
    await server.program.waitForLog("draining");
    process.kill(server.program.pid, "SIGTERM");
    const code = await exited;
    expect(code).toBe(130);
    expect(Date.now() - signalled).toBeLessThan(1_000);
    await traffic.stop(0);
  });
});
