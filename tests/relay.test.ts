/**
 * The relay path end to end: agent -> server -> connector -> UDP service and
 * back, over real QUIC on loopback.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { alpnFor } from "../core/frame/mod.ts";
import { MAX_TUNNEL_PAYLOAD } from "../core/frame/mod.ts";
import { openUdp, type UdpSocket } from "../core/runtime/udp.ts";
import {
  bytes,
  cleanup,
  logged,
  startEcho,
  startTestAgent,
  startTestConnector,
  startTestServer,
  udpClient,
  waitFor,
} from "./harness.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

/** A UDP service that answers with a fixed tag followed by the request. */
async function taggedEcho(tag: string): Promise<UdpSocket> {
  const prefix = new TextEncoder().encode(tag);
  const socket: UdpSocket = await openUdp({
    host: "127.0.0.1",
    port: 0,
    onPacket(data, port, host) {
      const out = new Uint8Array(prefix.length + data.length);
      out.set(prefix);
      out.set(data, prefix.length);
      socket.send(out, port, host);
    },
    onError() {},
  });
  return socket;
}

async function topology(services: Record<string, UdpSocket>) {
  const s = await startTestServer();
  teardown.add(s, (x) => x.server.close());
  const connectors = [];
  for (const [name, service] of Object.entries(services)) {
    const c = await startTestConnector([s.server.address], name, service.address);
    teardown.add(c, (x) => x.connector.close());
    connectors.push(c);
  }
  const a = await startTestAgent([s.server.address], Object.keys(services));
  teardown.add(a, (x) => x.agent.close());
  await waitFor(() => a.agent.ready().ready, 5_000, "agent ready");
  return { s, connectors, a };
}

describe("relay", () => {
  test("echoes payloads byte-exact at 0, 1, 1000 and the maximum size", async () => {
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const { a } = await topology({ echo });
    const client = teardown.add(await udpClient(), (x) => x.close());
    for (const size of [0, 1, 1000, MAX_TUNNEL_PAYLOAD]) {
      const payload = bytes(size, size);
      client.send(payload, a.listen("echo"));
      const reply = await client.next();
      expect(reply.length).toBe(size);
      expect(Buffer.from(reply).equals(Buffer.from(payload))).toBe(true);
    }
  });

  test("refuses one byte over the maximum, counted and logged", async () => {
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const { a } = await topology({ echo });
    const client = teardown.add(await udpClient(), (x) => x.close());
    client.send(bytes(MAX_TUNNEL_PAYLOAD + 1), a.listen("echo"));
    await waitFor(() => a.metrics.drops.child({ reason: "oversized" }).value === 1, 2_000, "oversized drop");
    expect(logged(a.log, "datagram_too_large")[0]).toMatchObject({
      bytes: MAX_TUNNEL_PAYLOAD + 1,
      max: MAX_TUNNEL_PAYLOAD,
    });
    // Nothing came back, and the path still works afterwards.
    client.send(bytes(10), a.listen("echo"));
    expect((await client.next()).length).toBe(10);
    expect(client.received.length).toBe(1);
  });

  test("ten concurrent local clients each get only their own replies", async () => {
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const { a } = await topology({ echo });
    const clients = await Promise.all(Array.from({ length: 10 }, () => udpClient()));
    for (const c of clients) teardown.add(c, (x) => x.close());
    const rounds = 20;
    for (let r = 0; r < rounds; r++) {
      clients.forEach((c, i) => c.send(new TextEncoder().encode(`client-${i}-round-${r}`), a.listen("echo")));
    }
    await waitFor(() => clients.every((c) => c.received.length === rounds), 5_000, "all replies");
    clients.forEach((c, i) => {
      const texts = c.received.map((d) => new TextDecoder().decode(d));
      expect(texts.every((t) => t.startsWith(`client-${i}-round-`))).toBe(true);
      expect(new Set(texts).size).toBe(rounds);
    });
  });

  test("two agents on one service are isolated", async () => {
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const { s, a } = await topology({ echo });
    const b = teardown.add(await startTestAgent([s.server.address], ["echo"]), (x) => x.agent.close());
    await waitFor(() => b.agent.ready().ready, 5_000, "second agent ready");
    const ca = teardown.add(await udpClient(), (x) => x.close());
    const cb = teardown.add(await udpClient(), (x) => x.close());
    for (let i = 0; i < 50; i++) {
      ca.send(new TextEncoder().encode(`A${i}`), a.listen("echo"));
      cb.send(new TextEncoder().encode(`B${i}`), b.listen("echo"));
    }
    await waitFor(() => ca.received.length === 50 && cb.received.length === 50, 5_000, "both agents' replies");
    expect(ca.received.every((d) => d[0] === "A".charCodeAt(0))).toBe(true);
    expect(cb.received.every((d) => d[0] === "B".charCodeAt(0))).toBe(true);
  });

  test("two services are isolated", async () => {
    const one = teardown.add(await taggedEcho("one:"), (x) => x.close());
    const two = teardown.add(await taggedEcho("two:"), (x) => x.close());
    const { a } = await topology({ one, two });
    const client = teardown.add(await udpClient(), (x) => x.close());
    for (let i = 0; i < 20; i++) {
      client.send(new TextEncoder().encode(`x${i}`), a.listen(i % 2 === 0 ? "one" : "two"));
      const reply = new TextDecoder().decode(await client.next());
      expect(reply).toBe(`${i % 2 === 0 ? "one" : "two"}:x${i}`);
    }
  });

  test("an unknown service is refused with a reason the agent logs and counts", async () => {
    const s = await startTestServer();
    teardown.add(s, (x) => x.server.close());
    const a = teardown.add(await startTestAgent([s.server.address], ["nosuch"]), (x) => x.agent.close());
    await waitFor(
      () => a.metrics.opens.child({ result: "nack", reason: "unknown_service" }).value >= 1,
      5_000,
      "open refused",
    );
    const entry = logged(a.log, "open_refused")[0]!;
    expect(entry.code).toBe("unknown_service");
    expect(String(entry.reason)).toContain("nosuch");
    expect(a.agent.ready()).toEqual({ ready: false, reason: "services down: nosuch" });
    // Datagrams for it are refused locally and counted, not sent into the void.
    const client = teardown.add(await udpClient(), (x) => x.close());
    client.send(bytes(8), a.listen("nosuch"));
    await waitFor(() => a.metrics.drops.child({ reason: "not_connected" }).value === 1, 2_000, "local refusal");
    expect(s.metrics.opens.child({ result: "nack", reason: "unknown_service" }).value).toBeGreaterThanOrEqual(1);
  });

  test("a datagram from a foreign local socket to a connector flow socket is dropped and counted", async () => {
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const { a, connectors } = await topology({ echo });
    const c = connectors[0]!;
    const client = teardown.add(await udpClient(), (x) => x.close());
    client.send(bytes(4), a.listen("echo"));
    await client.next();
    const [flowSocket] = c.connector.flowSockets();
    expect(flowSocket).toBeDefined();
    // Same host as the service but another port: must still be refused.
    const intruder = teardown.add(await udpClient(), (x) => x.close());
    intruder.send(new TextEncoder().encode("injected"), { host: "127.0.0.1", port: flowSocket!.port });
    await waitFor(
      () => c.metrics.drops.child({ reason: "source_mismatch" }).value === 1,
      2_000,
      "source_mismatch drop",
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(client.received.length).toBe(1);
  });

  test("replies keep flowing to the right client across many flows and services", async () => {
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const { s, a, connectors } = await topology({ echo });
    const client = teardown.add(await udpClient(), (x) => x.close());
    for (let i = 0; i < 100; i++) client.send(bytes(100, i), a.listen("echo"));
    await waitFor(() => client.received.length === 100, 5_000, "100 replies");
    expect(s.metrics.datagramsRelayed.child({ direction: "agent_to_connector" }).value).toBe(100);
    expect(s.metrics.datagramsRelayed.child({ direction: "connector_to_agent" }).value).toBe(100);
    expect(connectors[0]!.metrics.datagrams.child({ direction: "to_service" }).value).toBe(100);
    expect(a.metrics.bytes.child({ direction: "from_server" }).value).toBe(100 * 100);
  });
});

describe("larger QUIC packets (jumbo-frame or loopback deployments)", () => {
  test("a fleet configured with 9000-byte QUIC packets relays byte-exact", async () => {
    const { clientQuicConfig } = await import("../core/quic/config.ts");
    const { devCerts } = await import("./harness.ts");
    const c = await devCerts();
    const jumbo = {
      quicConfig: clientQuicConfig({
        alpn: alpnFor(),
        caPem: c.caPem,
        insecure: false,
        idleTimeoutMs: 5_000,
        maxUdpPayload: 9000,
      }),
      maxUdpPayload: 9000,
    };
    const s = teardown.add(await startTestServer({ maxUdpPayload: 9000 }), (x) => x.server.close());
    const echo = teardown.add(await startEcho(), (x) => x.close());
    teardown.add(await startTestConnector([s.server.address], "echo", echo.address, jumbo), (x) => x.connector.close());
    const a = teardown.add(await startTestAgent([s.server.address], ["echo"], jumbo), (x) => x.agent.close());
    await waitFor(() => a.agent.ready().ready, 5_000, "agent ready");
    const client = teardown.add(await udpClient(), (x) => x.close());
    for (const size of [0, MAX_TUNNEL_PAYLOAD]) {
      const payload = bytes(size, 7);
      client.send(payload, a.listen("echo"));
      expect(Buffer.from(await client.next()).equals(Buffer.from(payload))).toBe(true);
    }
    // quiche sized the connections' packets up: a DATAGRAM may now be far larger than 1350 bytes allow.
    expect(logged(a.log, "link_ready")[0]!.max_datagram).toBeGreaterThan(8_000);
  });
});
