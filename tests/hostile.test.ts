/**
 * Hostile peers against a live server: random and mutated control frames,
 * junk datagrams, datagrams for channels and flows that are not the sender's.
 * Nothing crashes, every rejection is typed and counted, and the server keeps
 * serving the honest peers.
 */
import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { encodeControl, encodeDatagram, FRAME_ERROR_KINDS, PROTOCOL_VERSION } from "../core/frame/mod.ts";
import { rawPeer } from "./raw-peer.ts";
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

const teardown = cleanup();
afterEach(() => teardown.run());

async function honestTopology() {
  // A short HELLO deadline, so fuzz cases that stall mid-frame end quickly.
  const s = await startTestServer({ limits: { helloTimeoutMs: 300 } });
  teardown.add(s, (x) => x.server.close());
  const echo = teardown.add(await startEcho(), (x) => x.close());
  const c = teardown.add(
    await startTestConnector([s.server.address], "echo", echo.address),
    (x) => x.connector.close(),
  );
  const a = teardown.add(await startTestAgent([s.server.address], ["echo"]), (x) => x.agent.close());
  await waitFor(() => a.agent.ready().ready, 5_000, "agent ready");
  return { s, c, a };
}

async function stillServes(a: Awaited<ReturnType<typeof honestTopology>>["a"]) {
  const client = await udpClient();
  try {
    const payload = bytes(32, 9);
    client.send(payload, a.listen("echo"));
    expect(Buffer.from(await client.next(2_000)).equals(Buffer.from(payload))).toBe(true);
  } finally {
    client.close();
  }
}

describe("hostile input against a live server", () => {
  test("random and mutated control streams: typed rejection, counted, server keeps serving", async () => {
    const { s, a } = await honestTopology();
    const valid: Uint8Array[] = [
      encodeControl({ type: "hello", version: PROTOCOL_VERSION, role: "agent", name: "fuzz" }),
      encodeControl({ type: "open", req: 1, service: "echo" }),
      encodeControl({ type: "register", req: 2, service: "echo" }),
    ];
    const streams = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([frame, at, value]) => {
        const out = frame.slice();
        out[at % out.length] = value;
        return out;
      }),
    );
    const samples = fc.sample(streams, { seed: 42, numRuns: 150 });
    const outcomes: string[] = [];
    const one = async (sample: Uint8Array) => {
      const peer = teardown.add(await rawPeer(s.server.address), (p) => p.close());
      peer.conn.writeStream(0, sample);
      // Either the server answers (the bytes happened to be valid), or closes with a reason.
      await waitFor(() => peer.closed !== null || peer.control.length > 0, 3_000, "server reaction");
      outcomes.push(peer.closed ? peer.closed.reason : "answered");
      peer.conn.close(0, "done");
    };
    // Ten hostile peers at a time.
    for (let i = 0; i < samples.length; i += 10) await Promise.all(samples.slice(i, i + 10).map(one));
    expect(outcomes.length).toBe(samples.length);
    // Every close names a typed error kind or one of the protocol rules.
    const known = new Set<string>([
      ...FRAME_ERROR_KINDS,
      "expected_hello",
      "unsupported_version",
      "unexpected_message",
      "hello_timeout",
    ]);
    const registry = await s.registry.getMetricsAsJSON();
    const errors = registry.find((m) => m.name === "ztna_server_protocol_errors_total")!;
    for (const v of errors.values) expect(known.has(String(v.labels.kind))).toBe(true);
    expect(errors.values.reduce((n, v) => n + v.value, 0)).toBeGreaterThan(0);
    await stillServes(a);
  }, 120_000);

  test("junk datagrams before and after HELLO are dropped and counted", async () => {
    const { s, a } = await honestTopology();
    const peer = teardown.add(await rawPeer(s.server.address), (p) => p.close());
    peer.conn.sendDatagram(new Uint8Array([1, 2, 3]));
    await waitFor(() => s.metrics.drops.child({ reason: "before_hello" }).value === 1, 2_000, "before_hello drop");
    peer.send({ type: "hello", version: PROTOCOL_VERSION, role: "agent", name: "junk" });
    await waitFor(() => peer.control.length > 0, 2_000, "welcome");
    peer.conn.sendDatagram(new Uint8Array([1, 2, 3]));
    await waitFor(() => s.metrics.drops.child({ reason: "malformed" }).value === 1, 2_000, "malformed drop");
    await stillServes(a);
  });

  test("stray packets at a client's QUIC socket are dropped and counted by the client", async () => {
    const { s, c } = await honestTopology();
    // The connector's socket as the server sees it (loopback: no translation).
    const [host, port] = s.server.status().services[0]!.connectors[0]!.address.split(":");
    const sender = teardown.add(await udpClient(), (x) => x.close());
    const drops = (reason: string) => c.metrics.drops.child({ reason: reason as "malformed" }).value;
    // A cut-off long header, and a short header for no connection from an address that is not the server.
    sender.send(Uint8Array.of(0xc0, 0, 0, 0, 1, 4, 1, 2, 3, 4, 0), { host: host!, port: Number(port) });
    sender.send(new Uint8Array(40).fill(0x41), { host: host!, port: Number(port) });
    await waitFor(
      () => drops("packet_bad_header") === 1 && drops("packet_unknown_connection") === 1,
      2_000,
      "connector counts the stray packets",
    );
    expect(c.connector.ready().ready).toBe(true);
  });

  test("an agent cannot use a channel it was not granted, nor reach another agent's flow", async () => {
    const { s, a } = await honestTopology();
    // The honest agent has a flow going.
    const honest = teardown.add(await udpClient(), (x) => x.close());
    honest.send(bytes(8), a.listen("echo"));
    await honest.next();
    const intruder = teardown.add(await rawPeer(s.server.address), (p) => p.close());
    intruder.send({ type: "hello", version: PROTOCOL_VERSION, role: "agent", name: "intruder" });
    await waitFor(() => intruder.control.length > 0, 2_000, "welcome");
    // Channel 1 was never granted to this connection: dropped, counted, nothing relayed.
    const relayed = s.metrics.datagramsRelayed.child({ direction: "agent_to_connector" }).value;
    intruder.conn.sendDatagram(encodeDatagram(1, 1, new TextEncoder().encode("sneak")));
    await waitFor(
      () => s.metrics.drops.child({ reason: "unknown_channel" }).value === 1,
      2_000,
      "unknown_channel drop",
    );
    expect(s.metrics.datagramsRelayed.child({ direction: "agent_to_connector" }).value).toBe(relayed);
    // With its own channel and the honest agent's flow id, it only ever reaches its own flow.
    intruder.send({ type: "open", req: 7, service: "echo" });
    await waitFor(() => intruder.control.length > 1, 2_000, "open ack");
    intruder.conn.sendDatagram(encodeDatagram(1, 1, new TextEncoder().encode("mine")));
    await waitFor(() => intruder.datagrams.length === 1, 2_000, "intruder's own echo");
    await new Promise((r) => setTimeout(r, 100));
    expect(honest.received.length).toBe(1);
    await stillServes(a);
  });

  test("a connector cannot answer for flows it does not hold", async () => {
    const { s, a } = await honestTopology();
    const honest = teardown.add(await udpClient(), (x) => x.close());
    honest.send(bytes(8), a.listen("echo"));
    await honest.next();
    const rogue = teardown.add(await rawPeer(s.server.address), (p) => p.close());
    rogue.send({ type: "hello", version: PROTOCOL_VERSION, role: "connector", name: "rogue" });
    rogue.send({ type: "register", req: 1, service: "echo" });
    await waitFor(() => rogue.control.length > 0, 2_000, "register answer");
    // Flow 1 on the server belongs to the honest connector's connection.
    rogue.conn.sendDatagram(encodeDatagram(1, 1, new TextEncoder().encode("forged reply")));
    await waitFor(() => s.metrics.drops.child({ reason: "unknown_flow" }).value >= 1, 2_000, "unknown_flow drop");
    await new Promise((r) => setTimeout(r, 100));
    expect(honest.received.length).toBe(1);
    await stillServes(a);
  });
});
