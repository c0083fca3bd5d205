/**
 * Restarts that clients expect: a server drained by SIGTERM says in GOAWAY
 * that it restarts and for how long to keep trying; connectors and agents then
 * dial at a short fixed interval and are back within 1 s of the new process
 * listening. Any other loss keeps the exponential backoff. Real processes,
 * real QUIC on loopback; the times come from the programs' own log stamps.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { addressOf, type LogEntry, type Program } from "../scripts/programs.ts";
import { cleanup, startEcho, waitFor } from "./harness.ts";
import { createFleet, steadyTraffic } from "./procs.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

const at = (e: LogEntry) => Date.parse(String(e.ts));
const count = (p: Program, event: string) => p.logs.filter((e) => e.event === event).length;

/** Production backoff (100 ms doubling to 30 s), so only the restart window can be quick. */
const PRODUCTION_BACKOFF = { base: "100ms", cap: "30s" };

/** The `n`-th (1-based) log line of `event`, waited for. */
function nth(p: Program, event: string, n: number, timeoutMs: number): Promise<LogEntry> {
  return p.waitForLog(event, timeoutMs, (e) => p.logs.filter((x) => x.event === event).indexOf(e) === n - 1);
}

describe("planned restart (SIGTERM drain)", () => {
  test("away 3 s, connector and agent are back within 1 s of the new server listening", async () => {
    const fleet = teardown.add(createFleet(), (f) => f.stopAll());
    const echo = teardown.add(await startEcho(), (e) => e.close());
    const serverFlags = ["--grace", "300ms", "--restart-try-for", "30s"];
    const first = await fleet.server(0, serverFlags);
    const args = await fleet.clientArgs([first.port], PRODUCTION_BACKOFF);
    const connector = fleet.start("connector", [
      ...args,
      "--service",
      "echo",
      "--forward",
      `127.0.0.1:${echo.address.port}`,
    ]);
    const agent = fleet.start("agent", [...args, "--map", "echo=udp://127.0.0.1:0"]);
    await connector.waitForLog("registered");
    const listen = addressOf(await agent.waitForLog("listening"));
    await agent.waitForLog("service_opened");

    expect(await first.program.stop("SIGTERM", 10_000)).toBe(0);
    const goaway = await connector.waitForLog("server_goaway", 2_000);
    expect(goaway).toMatchObject({ restart_try_for_ms: 30_000, restart_reconnect_in_ms: 0 });
    await connector.waitForLog("server_restarting", 2_000);
    await agent.waitForLog("server_restarting", 2_000);
    // Long enough for a backoff from 100 ms to have grown past a second.
    await new Promise((r) => setTimeout(r, 3_000));

    const second = await fleet.server(first.port, serverFlags);
    const listening = second.program.logs.find((e) => e.event === "listening")!;
    const registered = await nth(connector, "registered", 2, 5_000);
    const reopened = await nth(agent, "service_opened", 2, 5_000);
    const connectorMs = at(registered) - at(listening);
    const agentMs = at(reopened) - at(listening);
    console.log(
      `planned restart: connector registered ${connectorMs} ms, agent reopened ${agentMs} ms after the new server listened`,
    );
    expect(connectorMs).toBeLessThan(1_000);
    expect(agentMs).toBeLessThan(1_000);

    // Every retry in between was at the fixed interval, none an exponential backoff.
    for (const p of [connector, agent]) {
      const retries = p.logs.filter((e) => e.event === "link_backoff" && at(e) >= at(goaway));
      expect(retries.every((e) => e.mode === "restart")).toBe(true);
    }
    // The server saw the connector's build in HELLO (protocol 2).
    expect(second.program.logs.find((e) => e.event === "peer_hello" && e.role === "connector")).toMatchObject({
      protocol: 2,
    });

    const traffic = await steadyTraffic(listen, 100);
    await waitFor(() => traffic.answered >= 20, 3_000, "traffic through the restarted server");
    expect((await traffic.stop()).lost).toEqual([]);
  }, 30_000);

  test("a restart that outlasts its window falls back to the backoff", async () => {
    const fleet = teardown.add(createFleet(), (f) => f.stopAll());
    const echo = teardown.add(await startEcho(), (e) => e.close());
    const serverFlags = ["--grace", "200ms", "--restart-try-for", "1s"];
    const first = await fleet.server(0, serverFlags);
    const args = await fleet.clientArgs([first.port], PRODUCTION_BACKOFF);
    const connector = fleet.start("connector", [
      ...args,
      "--service",
      "echo",
      "--forward",
      `127.0.0.1:${echo.address.port}`,
    ]);
    await connector.waitForLog("registered");
    expect(await first.program.stop("SIGTERM", 10_000)).toBe(0);
    const restarting = await connector.waitForLog("server_restarting", 2_000);
    // After the 1 s window the link is back on its backoff.
    const backoff = await connector.waitForLog("link_backoff", 5_000, (e) => e.mode === "backoff");
    expect(at(backoff) - at(restarting)).toBeGreaterThanOrEqual(900);
    expect(Number(backoff.attempt)).toBeGreaterThanOrEqual(1);
    await fleet.server(first.port, serverFlags);
    await waitFor(() => count(connector, "registered") >= 2, 10_000, "re-registration by backoff");
  }, 30_000);
});

describe("losses that were not announced as restarts keep the backoff", () => {
  test("a drain with --restart-try-for 0, and a kill -9", async () => {
    const fleet = teardown.add(createFleet(), (f) => f.stopAll());
    const echo = teardown.add(await startEcho(), (e) => e.close());
    const first = await fleet.server(0, ["--grace", "200ms", "--restart-try-for", "0"]);
    const args = await fleet.clientArgs([first.port], PRODUCTION_BACKOFF);
    const connector = fleet.start("connector", [
      ...args,
      "--service",
      "echo",
      "--forward",
      `127.0.0.1:${echo.address.port}`,
      "--keepalive",
      "200ms",
      "--idle-timeout",
      "1s",
    ]);
    await connector.waitForLog("registered");

    expect(await first.program.stop("SIGTERM", 10_000)).toBe(0);
    expect(await connector.waitForLog("server_goaway", 2_000)).toMatchObject({ restart_try_for_ms: 0 });
    await connector.waitForLog("link_backoff", 5_000, (e) => Number(e.attempt) >= 3);
    const second = await fleet.server(first.port);
    await waitFor(() => count(connector, "registered") >= 2, 20_000, "re-registration after the drain");

    await second.program.stop("SIGKILL");
    const since = connector.logs.length;
    await connector.waitForLog(
      "link_backoff",
      10_000,
      (e) => connector.logs.indexOf(e) >= since && Number(e.attempt) >= 2,
    );
    await fleet.server(first.port);
    await waitFor(() => count(connector, "registered") >= 3, 20_000, "re-registration after the kill");

    expect(count(connector, "server_restarting")).toBe(0);
    const modes = new Set(connector.logs.filter((e) => e.event === "link_backoff").map((e) => e.mode));
    expect([...modes]).toEqual(["backoff"]);
  }, 60_000);
});
