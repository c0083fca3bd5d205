/** Abuse limits: each one holds, is counted when hit, and leaves honest peers alone. */
import { afterEach, describe, expect, test } from "bun:test";
import { PROTOCOL_VERSION } from "../core/frame/control.ts";
import { bytes, cleanup, startEcho, startTestAgent, startTestConnector, startTestServer, udpClient, waitFor } from "./harness.ts";
import { rawPeer } from "./raw-peer.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

describe("limits", () => {
  test("connections per source address", async () => {
    const s = teardown.add(await startTestServer({ limits: { connectionsPerAddress: 2 } }), (x) => x.server.close());
    const peers = [];
    for (let i = 0; i < 3; i++) peers.push(teardown.add(await rawPeer(s.server.address, { waitMs: 1_000 }), (p) => p.close()));
    expect(peers.map((p) => p.established)).toEqual([true, true, false]);
    expect(s.metrics.drops.child({ reason: "address_limit" }).value).toBeGreaterThanOrEqual(1);
  });

  test("flows per agent", async () => {
    const s = teardown.add(await startTestServer({ limits: { flowsPerAgent: 3 } }), (x) => x.server.close());
    const echo = teardown.add(await startEcho(), (x) => x.close());
    teardown.add(await startTestConnector([s.server.address], "echo", echo.address), (x) => x.connector.close());
    const a = teardown.add(await startTestAgent([s.server.address], ["echo"]), (x) => x.agent.close());
    await waitFor(() => a.agent.ready().ready, 5_000, "agent ready");
    const clients = await Promise.all(Array.from({ length: 5 }, () => udpClient()));
    for (const c of clients) teardown.add(c, (x) => x.close());
    for (const c of clients) c.send(bytes(4), a.listen("echo"));
    await waitFor(() => s.metrics.drops.child({ reason: "flow_limit" }).value === 2, 2_000, "two flows refused");
    await waitFor(() => clients.filter((c) => c.received.length === 1).length === 3, 2_000, "three flows served");
  });

  test("registrations per connection", async () => {
    const s = teardown.add(await startTestServer({ limits: { registrationsPerConnection: 1 } }), (x) => x.server.close());
    const peer = teardown.add(await rawPeer(s.server.address), (p) => p.close());
    peer.send({ type: "hello", version: PROTOCOL_VERSION, role: "connector", name: "greedy" });
    peer.send({ type: "register", req: 1, service: "one" });
    peer.send({ type: "register", req: 2, service: "two" });
    await waitFor(() => peer.messages.length === 3, 2_000, "welcome and two answers");
    expect(peer.messages[1]).toMatchObject({ type: "ack", req: 1 });
    expect(peer.messages[2]).toMatchObject({ type: "nack", req: 2, code: "limit_exceeded" });
    expect(s.metrics.registrations.child({ result: "nack", reason: "limit_exceeded" }).value).toBe(1);
  });

  test("control-message size", async () => {
    const s = teardown.add(await startTestServer({ limits: { controlMessage: 64 } }), (x) => x.server.close());
    const peer = teardown.add(await rawPeer(s.server.address), (p) => p.close());
    peer.send({ type: "hello", version: PROTOCOL_VERSION, role: "agent", name: "x".repeat(100) });
    await waitFor(() => peer.closed !== null, 3_000, "connection closed");
    expect(peer.closed!.peer?.errorCode).toBe(0x1);
    expect(s.metrics.protocolErrors.child({ kind: "oversized" }).value).toBe(1);
  });

  test("DATAGRAM rate per connection", async () => {
    const s = teardown.add(await startTestServer({ limits: { datagramsPerSecond: 50 } }), (x) => x.server.close());
    const echo = teardown.add(await startEcho(), (x) => x.close());
    teardown.add(await startTestConnector([s.server.address], "echo", echo.address), (x) => x.connector.close());
    const a = teardown.add(await startTestAgent([s.server.address], ["echo"]), (x) => x.agent.close());
    await waitFor(() => a.agent.ready().ready, 5_000, "agent ready");
    const client = teardown.add(await udpClient(), (x) => x.close());
    for (let i = 0; i < 200; i++) client.send(bytes(16, i), a.listen("echo"));
    await waitFor(() => s.metrics.drops.child({ reason: "rate_limited" }).value > 0, 3_000, "rate limit hit");
    await new Promise((r) => setTimeout(r, 200));
    // The bucket allows one second's worth (50) in a burst; the rest is refused.
    expect(client.received.length).toBeLessThanOrEqual(60);
    expect(client.received.length).toBeGreaterThan(0);
  });
});
