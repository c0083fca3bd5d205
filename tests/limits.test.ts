/** Abuse limits: each one holds, is counted when hit, and leaves honest peers alone. */
import { afterEach, describe, expect, test } from "bun:test";
import { PROTOCOL_VERSION } from "../core/frame/mod.ts";
import {
  bytes,
  cleanup,
  startEcho,
  startTestAgent,
  startTestConnector,
  startTestServer,
  udpClient,
  waitFor,
} from "./harness.ts";
import { rawPeer } from "./raw-peer.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

describe("limits", () => {
  test("unproven connections per source address: the oldest silent one makes room", async () => {
    const s = teardown.add(await startTestServer({ limits: { connectionsPerAddress: 2 } }), (x) => x.server.close());
    const peers: Awaited<ReturnType<typeof rawPeer>>[] = [];
    for (let i = 0; i < 3; i++) {
      peers.push(teardown.add(await rawPeer(s.server.address, { waitMs: 1_000 }), (p) => p.close()));
    }
    expect(peers.map((p) => p.established)).toEqual([true, true, true]);
    // The first never said HELLO: it is the one closed for the third, with CONNECTION_REFUSED.
    await waitFor(() => peers[0]!.closed !== null, 2_000, "the oldest unproven connection closed");
    expect(peers[0]!.closed!.peer).toMatchObject({ isApp: false, errorCode: 0x2 });
    expect(peers[1]!.closed).toBeNull();
    expect(peers[2]!.closed).toBeNull();
    expect(s.metrics.drops.child({ reason: "address_limit" }).value).toBe(1);
  });

  test("peers that said HELLO do not count against their address", async () => {
    const s = teardown.add(await startTestServer({ limits: { connectionsPerAddress: 2 } }), (x) => x.server.close());
    const proven: Awaited<ReturnType<typeof rawPeer>>[] = [];
    for (let i = 0; i < 4; i++) {
      const peer = teardown.add(await rawPeer(s.server.address), (p) => p.close());
      peer.send({ type: "hello", version: PROTOCOL_VERSION, role: "agent", name: `honest-${i}` });
      await waitFor(() => peer.messages.some((m) => m.type === "welcome"), 2_000, "welcome");
      proven.push(peer);
    }
    const late = teardown.add(await rawPeer(s.server.address), (p) => p.close());
    expect(late.established).toBe(true);
    await Bun.sleep(200);
    expect([...proven, late].every((p) => p.closed === null)).toBe(true);
    expect(s.metrics.drops.child({ reason: "address_limit" }).value).toBe(0);
  });

  test("behind one NAT, a crowd of silent connections does not lock an honest agent out", async () => {
    const s = teardown.add(await startTestServer({ limits: { connectionsPerAddress: 16 } }), (x) => x.server.close());
    const echo = teardown.add(await startEcho(), (x) => x.close());
    teardown.add(await startTestConnector([s.server.address], "echo", echo.address), (x) => x.connector.close());
    // 48 connections from 127.0.0.1 that complete the handshake and then say nothing.
    const silent = await Promise.all(Array.from({ length: 48 }, () => rawPeer(s.server.address, { waitMs: 3_000 })));
    for (const p of silent) teardown.add(p, (x) => x.close());
    const a = teardown.add(await startTestAgent([s.server.address], ["echo"]), (x) => x.agent.close());
    await waitFor(() => a.agent.ready().ready, 5_000, "the honest agent ready");
    const client = teardown.add(await udpClient(), (x) => x.close());
    client.send(bytes(16), a.listen("echo"));
    expect(await client.next(2_000)).toEqual(bytes(16));
    // Silent ones were closed to make room; never more than the limit at once.
    expect(s.metrics.drops.child({ reason: "address_limit" }).value).toBeGreaterThanOrEqual(48 + 1 - 16);
  }, 30_000);

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
    const s = teardown.add(
      await startTestServer({ limits: { registrationsPerConnection: 1 } }),
      (x) => x.server.close(),
    );
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
