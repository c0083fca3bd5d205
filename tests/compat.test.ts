/**
 * Protocol versions side by side: version 2 (restart hints in GOAWAY, the
 * client's build in HELLO) is chosen by ALPN, so peers built for version 1
 * keep working with new servers, and new clients with old servers. Real QUIC
 * on loopback; the "old" side speaks only what version 1 had.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type ControlMessage, encodeDatagram, parseDatagram } from "../core/frame/mod.ts";
import { type RawPeer, rawPeer } from "./raw-peer.ts";
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

function answer(peer: RawPeer, req: number): ControlMessage | undefined {
  return peer.messages.find((m) => (m.type === "ack" || m.type === "nack") && m.req === req);
}

describe("a version-1 client and a version-2 server", () => {
  test("registers, relays, and reads the drain's GOAWAY in the version-1 layout", async () => {
    const s = teardown.add(
      await startTestServer({ graceMs: 500, restart: { reconnectInMs: 0, tryForMs: 30_000 } }),
      (x) => x.server.close(),
    );

    // An old connector, by hand: HELLO version 1, REGISTER; it echoes what it is sent.
    const oldConnector = teardown.add(await rawPeer(s.server.address, { version: 1 }), (p) => p.close());
    oldConnector.send({ type: "hello", version: 1, role: "connector", name: "old" });
    oldConnector.send({ type: "register", req: 1, service: "legacy" });
    await waitFor(() => answer(oldConnector, 1) !== undefined, 2_000, "REGISTER answered");
    expect(answer(oldConnector, 1)).toMatchObject({ type: "ack" });
    expect(oldConnector.messages[0]).toEqual({ type: "welcome", version: 1, observed: expect.anything() });

    // A new agent (version 2) reaches the old connector's service through the server.
    const agent = teardown.add(await startTestAgent([s.server.address], ["legacy"]), (x) => x.agent.close());
    await waitFor(() => agent.agent.ready().ready, 3_000, "agent ready");
    const client = teardown.add(await udpClient(), (x) => x.close());
    const payload = bytes(40, 3);
    client.send(payload, agent.listen("legacy"));
    await waitFor(() => oldConnector.datagrams.length > 0, 2_000, "datagram at the old connector");
    const header = { channel: 0, flow: 0, payloadLength: 0 };
    const got = oldConnector.datagrams[0]!;
    expect(parseDatagram(got, got.length, header)).toBeNull();
    oldConnector.conn.sendDatagram(encodeDatagram(header.channel, header.flow, got.subarray(6)));
    expect(Buffer.from(await client.next(2_000)).equals(Buffer.from(payload))).toBe(true);

    // /status: the old client named no build; the new one did.
    const status = s.server.status();
    expect(status.services.find((x) => x.name === "legacy")!.connectors[0]!.version).toBeNull();
    expect(logged(s.log, "peer_hello").map((e) => e.protocol).sort()).toEqual([1, 2]);

    // The drain: the old client gets a GOAWAY it can decode (no restart fields), the new one the hint.
    const draining = s.server.drain();
    await waitFor(() => oldConnector.messages.some((m) => m.type === "goaway"), 2_000, "GOAWAY at the old connector");
    expect(oldConnector.messages.find((m) => m.type === "goaway")).toEqual({
      type: "goaway",
      reason: "server restarting",
      alternate: "",
    });
    expect(oldConnector.errors).toEqual([]);
    await waitFor(() => logged(agent.log, "server_goaway").length > 0, 2_000, "GOAWAY at the new agent");
    expect(logged(agent.log, "server_goaway")[0]).toMatchObject({ restart_try_for_ms: 30_000 });
    await draining;
  });

  test("HELLO claiming a version other than the one ALPN agreed is refused", async () => {
    const s = teardown.add(await startTestServer(), (x) => x.server.close());
    const peer = teardown.add(await rawPeer(s.server.address, { version: 1 }), (p) => p.close());
    peer.send({ type: "hello", version: 2, role: "agent", name: "confused", software: "x" });
    await waitFor(() => peer.closed !== null || peer.conn.raw.peerError() !== null, 3_000, "the server to close");
    expect(s.metrics.protocolErrors.child({ kind: "unsupported_version" }).value).toBe(1);
    expect(logged(s.log, "protocol_error")[0]!.error).toContain("ALPN agreed on 1");
  });
});

describe("version-2 clients and a version-1 server", () => {
  test("connector and agent speak version 1 with it; its drain is an unannounced loss to them", async () => {
    const s = teardown.add(await startTestServer({ versions: [1], graceMs: 300 }), (x) => x.server.close());
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const c = teardown.add(
      await startTestConnector([s.server.address], "echo", echo.address),
      (x) => x.connector.close(),
    );
    const a = teardown.add(await startTestAgent([s.server.address], ["echo"]), (x) => x.agent.close());
    await waitFor(() => c.connector.ready().ready && a.agent.ready().ready, 3_000, "connector and agent ready");
    expect(logged(c.log, "link_ready")[0]).toMatchObject({ protocol: 1 });
    expect(logged(s.log, "peer_hello").map((e) => e.protocol)).toEqual([1, 1]);

    const client = teardown.add(await udpClient(), (x) => x.close());
    const payload = bytes(100, 9);
    client.send(payload, a.listen("echo"));
    expect(Buffer.from(await client.next(2_000)).equals(Buffer.from(payload))).toBe(true);
    expect(s.server.status().services[0]!.connectors[0]!.version).toBeNull();

    // A version-1 GOAWAY carries no restart: the clients fall back to their backoff.
    await s.server.drain();
    await waitFor(() => logged(c.log, "link_backoff").length > 0, 2_000, "connector backing off");
    expect(logged(c.log, "server_goaway")[0]).toMatchObject({ restart_try_for_ms: 0 });
    expect(logged(c.log, "server_restarting")).toEqual([]);
    expect(logged(c.log, "link_backoff").every((e) => e.mode === "backoff")).toBe(true);
  });
});
