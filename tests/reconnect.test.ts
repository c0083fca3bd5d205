/**
 * Reconnection: a server killed and restarted, a server away for seconds, and
 * a signal during backoff. Real processes, real QUIC on loopback.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { addressOf } from "../scripts/programs.ts";
import { cleanup, startEcho, udpClient, waitFor } from "./harness.ts";
import { createFleet } from "./procs.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

async function roundTrip(target: { host: string; port: number }, timeoutMs: number): Promise<boolean> {
  const client = await udpClient();
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      client.send(new TextEncoder().encode("ping"), target);
      try {
        await client.next(100);
        return true;
      } catch {
        // not yet: try again
      }
    }
    return false;
  } finally {
    client.close();
  }
}

describe("reconnection", () => {
  test("kill -9 of the server, restart on the same port: re-registered and flowing within 2 s", async () => {
    const fleet = teardown.add(createFleet(), (f) => f.stopAll());
    const echo = teardown.add(await startEcho(), (e) => e.close());
    const first = await fleet.server();
    // Idle peers learn of the restart from their next packet: the keepalive.
    const args = [...(await fleet.clientArgs([first.port])), "--keepalive", "500ms"];
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
    expect(await roundTrip(listen, 2_000)).toBe(true);

    await first.program.stop("SIGKILL");
    await fleet.server(first.port);
    // The clock starts when the new process listens: from then on the old
    // connections must be reset, re-registered and carrying traffic within 2 s.
    const restartedAt = Date.now();
    await connector.waitForLog(
      "registered",
      2_000,
      () => connector.logs.filter((e) => e.event === "registered").length >= 2,
    );
    expect(await roundTrip(listen, Math.max(100, 2_000 - (Date.now() - restartedAt)))).toBe(true);
    const elapsed = Date.now() - restartedAt;
    expect(elapsed).toBeLessThan(2_000);
    // The old connection ended by a stateless reset from the new process, not by a timeout.
    const closed = connector.logs.find((e) => e.event === "link_closed");
    expect(closed?.reason).not.toBe("timeout");
  });

  test("a server away for 3 s: backoff grows, then the connector recovers", async () => {
    const fleet = teardown.add(createFleet(), (f) => f.stopAll());
    const echo = teardown.add(await startEcho(), (e) => e.close());
    const first = await fleet.server();
    const args = await fleet.clientArgs([first.port]);
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
    await first.program.stop("SIGKILL");
    await new Promise((r) => setTimeout(r, 3_000));
    await fleet.server(first.port);
    await waitFor(() => connector.logs.filter((e) => e.event === "registered").length >= 2, 5_000, "re-registration");
    const attempts = connector.logs.filter((e) => e.event === "link_backoff").map((e) => Number(e.attempt));
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    // Attempts count up (the ceiling doubles each time; full jitter picks below it).
    for (let i = 1; i < attempts.length; i++) expect(attempts[i]).toBe(attempts[i - 1]! + 1);
  });

  test("SIGTERM during backoff exits promptly with status 0", async () => {
    const fleet = teardown.add(createFleet(), (f) => f.stopAll());
    const echo = teardown.add(await startEcho(), (e) => e.close());
    // Nothing listens on this port: the connector can only back off.
    const dead = await fleet.server();
    await dead.program.stop("SIGKILL");
    const args = await fleet.clientArgs([dead.port]);
    const connector = fleet.start("connector", [
      ...args,
      "--service",
      "echo",
      "--forward",
      `127.0.0.1:${echo.address.port}`,
      "--reconnect-cap",
      "10s",
    ]);
    await connector.waitForLog("link_backoff", 10_000, (e) => Number(e.attempt) >= 2);
    const signalled = Date.now();
    const code = await connector.stop("SIGTERM", 5_000);
    expect(code).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(1_000);
  });
});
