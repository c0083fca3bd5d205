/**
 * TCP through the tunnel, end to end over real QUIC on loopback: local client
 * -> agent listener -> stream -> server -> stream -> connector -> TCP service.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { alpnFor } from "../core/frame/mod.ts";
import { createHash } from "node:crypto";
import type { Socket } from "node:net";
import {
  type ControlMessage,
  createControlReader,
  encodeControl,
  encodeEndSegment,
  encodeSegmentPrefix,
  encodeStreamHeader,
  PROTOCOL_VERSION,
  StreamResetCode,
} from "../core/frame/mod.ts";
import type { Address } from "../core/net/address.ts";
import { clientQuicConfig } from "../core/quic/config.ts";
import { createEndpoint } from "../core/quic/endpoint.ts";
import {
  cleanup,
  devCerts,
  pseudoRandomChunks,
  readAll,
  startTcpService,
  startTestAgent,
  startTestConnector,
  startTestServer,
  tcpConnect,
  waitFor,
  writeAll,
} from "./harness.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

const BIG = 100 * 1024 * 1024;

async function topology(options: { connector?: boolean } = {}) {
  const svc = teardown.add(await startTcpService(), (x) => x.close());
  const s = teardown.add(await startTestServer(), (x) => x.server.close());
  const c = options.connector === false
    ? null
    : teardown.add(await startTestConnector([s.server.address], "app", svc.address), (x) => x.connector.close());
  const a = teardown.add(
    await startTestAgent([s.server.address], [], {
      maps: [{ service: "app", protocol: "tcp", listen: { host: "127.0.0.1", port: 0 } }],
    }),
    (x) => x.agent.close(),
  );
  if (c) await waitFor(() => a.agent.ready().ready, 5_000, "agent ready");
  else await waitFor(() => a.agent.currentServer() !== null, 5_000, "agent connected");
  return { svc, s, c, a, listen: a.listen("app") };
}

function command(mode: string, ...words: number[]): Uint8Array {
  const out = Buffer.alloc(1 + 4 * words.length);
  out.write(mode, 0, "latin1");
  words.forEach((w, i) => out.writeUInt32BE(w, 1 + 4 * i));
  return out;
}

function digestOf(chunks: Iterable<Uint8Array>): string {
  const hash = createHash("sha256");
  for (const c of chunks) hash.update(c);
  return hash.digest("hex");
}

/** A bare QUIC agent that speaks the protocol by hand, to send what a real agent never would. */
async function rawAgent(server: Address) {
  const certs = await devCerts();
  const control = createControlReader();
  const messages: ControlMessage[] = [];
  const resets = new Map<number, number>();
  const received = new Map<number, number[]>();
  const endpoint = await createEndpoint({
    bind: { host: "127.0.0.1", port: 0 },
    server: false,
    config: clientQuicConfig({ alpn: alpnFor(), caPem: certs.caPem, insecure: false, idleTimeoutMs: 5_000 }),
    handlers: {
      onEstablished: (c) =>
        c.writeStream(0, encodeControl({ type: "hello", version: PROTOCOL_VERSION, role: "agent", name: "raw" })),
      onStreamData(_c, id, data) {
        if (id !== 0) return void received.set(id, [...(received.get(id) ?? []), ...data]);
        for (const d of control.push(data)) if (d.ok) messages.push(d.value);
      },
      onStreamReset: (_c, id, code) => void resets.set(id, code),
    },
  });
  teardown.add(endpoint, (e) => e.close());
  const conn = endpoint.connect(server, "localhost");
  await waitFor(() => messages.some((m) => m.type === "welcome"), 3_000, "welcome");
  return { conn, messages, resets, received };
}

const mbit = (bytes: number, ms: number) => ((bytes * 8) / (ms / 1000) / 1e6).toFixed(0);

describe("tcp", () => {
  test("echo: bytes come back exactly, FIN passes both ways", async () => {
    const { a, s, c, listen } = await topology();
    const socket = teardown.add(await tcpConnect(listen), (x: Socket) => x.destroy());
    const reading = readAll(socket, true);
    socket.write(command("E"));
    socket.end("hello through the tunnel");
    const result = await reading;
    expect(result.end).toBe("fin");
    expect(result.data!.toString()).toBe("hello through the tunnel");
    await waitFor(() => s.metrics.streamsActive.value === 0, 2_000, "server stream released");
    expect(s.metrics.streamsTotal.child({ result: "opened" }).value).toBe(1);
    expect(s.metrics.streamsClosed.child({ how: "fin" }).value).toBe(1);
    await waitFor(() => a.metrics.tcpClosed.child({ how: "fin" }).value === 1, 2_000, "agent side closed");
    await waitFor(() => c!.metrics.tcpClosed.child({ how: "fin" }).value === 1, 2_000, "connector side closed");
    expect(a.metrics.tcpActive.value).toBe(0);
    expect(c!.metrics.tcpActive.value).toBe(0);
  }, 20_000);

  test("100 MB each way, byte-exact (SHA-256)", async () => {
    const { listen, svc } = await topology();

    // Upload: the service hashes everything until our FIN, then answers with the digest.
    const up = await tcpConnect(listen);
    teardown.add(up, (x) => x.destroy());
    const reply = readAll(up, true);
    let started = performance.now();
    up.write(command("D"));
    const sent = await writeAll(up, pseudoRandomChunks(BIG, 7));
    const answer = await reply;
    const upMs = performance.now() - started;
    expect(answer.end).toBe("fin");
    expect(answer.data!.toString()).toBe(`${BIG} ${sent}`);

    // Download: the service sends pseudo-random bytes from a seed we pick.
    const down = await tcpConnect(listen);
    teardown.add(down, (x) => x.destroy());
    started = performance.now();
    const reading = readAll(down);
    down.end(command("S", BIG, 11));
    const got = await reading;
    const downMs = performance.now() - started;
    expect(got.end).toBe("fin");
    expect(got.bytes).toBe(BIG);
    expect(got.sha256).toBe(digestOf(pseudoRandomChunks(BIG, 11)));
    console.log(
      `tcp 100 MB: upload ${mbit(BIG, upMs)} Mbit/s (${upMs.toFixed(0)} ms), download ${mbit(BIG, downMs)} Mbit/s (${
        downMs.toFixed(0)
      } ms)`,
    );
    expect(svc.connections.length).toBe(2);
  }, 120_000);

  test("50 concurrent connections each echo their own data", async () => {
    const { listen, s } = await topology();
    const size = 100 * 1024;
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const socket = teardown.add(await tcpConnect(listen), (x: Socket) => x.destroy());
        const reading = readAll(socket);
        socket.write(command("E"));
        const sent = await writeAll(socket, pseudoRandomChunks(size, 100 + i, 16 * 1024));
        const got = await reading;
        return { sent, got };
      }),
    );
    for (const { sent, got } of results) {
      expect(got.end).toBe("fin");
      expect(got.bytes).toBe(size);
      expect(got.sha256).toBe(sent);
    }
    expect(new Set(results.map((r) => r.sent)).size).toBe(50);
    expect(s.metrics.streamsTotal.child({ result: "opened" }).value).toBe(50);
    await waitFor(() => s.metrics.streamsActive.value === 0, 2_000, "all server streams released");
  }, 30_000);

  test(
    "half-close: the client's FIN still gets the whole answer; the service's FIN still takes the client's bytes",
    async () => {
      const { listen, svc } = await topology();
      // Client -> service FIN first: the service answers only after it.
      const first = teardown.add(await tcpConnect(listen), (x: Socket) => x.destroy());
      const answer = readAll(first, true);
      first.write(command("D"));
      const sent = await writeAll(first, pseudoRandomChunks(3 * 1024 * 1024, 5));
      const got = await answer;
      expect(got.end).toBe("fin");
      expect(got.data!.toString()).toBe(`${3 * 1024 * 1024} ${sent}`);

      // Service -> client FIN first: the client's later bytes still arrive.
      const second = teardown.add(await tcpConnect(listen), (x: Socket) => x.destroy());
      const download = readAll(second);
      second.write(command("S", 512 * 1024, 3));
      const part = await download;
      expect(part.end).toBe("fin");
      expect(part.sha256).toBe(digestOf(pseudoRandomChunks(512 * 1024, 3)));
      second.end(Buffer.alloc(1000, 1));
      await waitFor(() => svc.connections[1]?.closed === true, 2_000, "service saw both FINs");
      expect(svc.connections[1]!.received).toBe(1000);
      expect(svc.connections[1]!.error).toBeNull();
    },
    20_000,
  );

  test("a backend that refuses: the client is reset at once, counted on every hop", async () => {
    const { svc, s, c, a, listen } = await topology();
    await svc.close(); // nothing listens at forward_addr any more
    const socket = await tcpConnect(listen);
    teardown.add(socket, (x) => x.destroy());
    const started = Date.now();
    const got = await readAll(socket);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(got.end).not.toBe("fin");
    expect(c!.metrics.tcpConnections.child({ result: "connect_failed" }).value).toBe(1);
    expect(s.metrics.streamResets.child({ code: "connect_failed" }).value).toBe(1);
    await waitFor(
      () => a.metrics.tcpClosed.child({ how: "remote_reset" }).value === 1,
      1_000,
      "agent counted the reset",
    );
    expect(s.metrics.streamsActive.value).toBe(0);
  }, 20_000);

  test("the client resets mid-download: the backend sees it promptly and every hop forgets the stream", async () => {
    const { svc, s, c, a, listen } = await topology();
    const socket = await tcpConnect(listen);
    teardown.add(socket, (x) => x.destroy());
    let received = 0;
    socket.on("data", (chunk: Buffer) => (received += chunk.length));
    socket.on("error", () => {});
    socket.write(command("S", 1024 * 1024 * 1024, 1));
    await waitFor(() => received > 2 * 1024 * 1024, 5_000, "download under way");
    socket.resetAndDestroy();
    const resetAt = Date.now();
    await waitFor(() => svc.connections[0]!.closed, 2_000, "backend saw the connection end");
    console.log(
      `backend saw the client's reset after ${svc.connections[0]!.closedAt - resetAt} ms (${
        svc.connections[0]!.error ?? "fin"
      })`,
    );
    await waitFor(() => s.metrics.streamsActive.value === 0, 2_000, "server stream released");
    await waitFor(() => c!.metrics.tcpActive.value === 0 && a.metrics.tcpActive.value === 0, 2_000, "clients released");
    expect(s.metrics.streamsClosed.child({ how: "reset" }).value).toBe(1);
    expect(a.metrics.tcpClosed.child({ how: "local_reset" }).value).toBe(1);
    expect(c!.metrics.tcpClosed.child({ how: "remote_reset" }).value).toBe(1);
  }, 20_000);

  test("the client resets while its upload is stalled by a backend that stopped reading", async () => {
    const { svc, s, c, listen } = await topology();
    const socket = await tcpConnect(listen);
    teardown.add(socket, (x) => x.destroy());
    socket.on("error", () => {});
    socket.write(command("P"));
    // Write until every buffer on the way is full (backpressure end to end).
    let written = 0;
    const chunk = new Uint8Array(64 * 1024);
    const deadline = Date.now() + 10_000;
    for (let stalled = 0; stalled < 5 && Date.now() < deadline;) {
      if (socket.write(chunk)) written += chunk.length;
      else {
        written += chunk.length;
        const drained = await Promise.race([
          new Promise<boolean>((r) => socket.once("drain", () => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
        ]);
        if (!drained) stalled++;
      }
    }
    console.log(`upload stalled after ${(written / 1024 / 1024).toFixed(1)} MiB written by the client`);
    expect(written).toBeLessThan(200 * 1024 * 1024);
    socket.resetAndDestroy();
    await waitFor(() => svc.connections[0]!.closed, 2_000, "backend saw the connection end");
    await waitFor(
      () => s.metrics.streamsActive.value === 0 && c!.metrics.tcpActive.value === 0,
      2_000,
      "stream released",
    );
  }, 20_000);

  test("service down: no connector, the agent refuses at once", async () => {
    const { a, s } = await topology({ connector: false });
    const socket = await tcpConnect(a.listen("app"));
    teardown.add(socket, (x) => x.destroy());
    const started = Date.now();
    const got = await readAll(socket);
    expect(Date.now() - started).toBeLessThan(500);
    expect(got.end).not.toBe("fin");
    expect(a.metrics.tcpConnections.child({ result: "service_down" }).value).toBe(1);
    expect(s.metrics.streamsTotal.child({ result: "opened" }).value).toBe(0);
  }, 20_000);

  test("the server refuses streams on channels it did not grant, and malformed headers", async () => {
    const { s, svc } = await topology();
    const raw = await rawAgent(s.server.address);
    raw.conn.writeStream(0, encodeControl({ type: "open", req: 1, service: "app" }));
    await waitFor(() => raw.messages.some((m) => m.type === "ack"), 2_000, "OPEN acknowledged");
    const channel = (raw.messages.find((m) => m.type === "ack") as { channel: number }).channel;

    const foreign = raw.conn.openStream();
    raw.conn.writeStream(foreign, encodeStreamHeader(channel + 1));
    const garbage = raw.conn.openStream();
    raw.conn.writeStream(garbage, Uint8Array.of(0x47, 0x45, 0x54, 0x20));
    const honest = raw.conn.openStream();
    raw.conn.writeStream(honest, encodeStreamHeader(channel));
    raw.conn.writeStream(honest, encodeSegmentPrefix(1));
    raw.conn.writeStream(honest, Uint8Array.of("K".charCodeAt(0)));
    raw.conn.writeStream(honest, encodeEndSegment(), true);

    await waitFor(() => raw.resets.size === 2, 2_000, "two refusals");
    expect(raw.resets.get(foreign)).toBe(StreamResetCode.NOT_ALLOWED);
    expect(raw.resets.get(garbage)).toBe(StreamResetCode.PROTOCOL);
    // The honest stream reached the service and came back with END.
    await waitFor(() => (raw.received.get(honest)?.length ?? 0) >= 4, 2_000, "END from the service side");
    expect(raw.received.get(honest)).toEqual([0, 0, 0, 0]);
    expect(svc.connections.length).toBe(1);
    expect(s.metrics.streamsTotal.child({ result: "not_allowed" }).value).toBe(1);
    expect(s.metrics.streamsTotal.child({ result: "protocol" }).value).toBe(1);
    expect(s.metrics.streamsTotal.child({ result: "opened" }).value).toBe(1);
  }, 20_000);

  test("losing the connector mid-transfer resets the client; new connections are refused", async () => {
    const { s, c, a, listen } = await topology();
    const socket = await tcpConnect(listen);
    teardown.add(socket, (x) => x.destroy());
    let received = 0;
    socket.on("data", (chunk: Buffer) => (received += chunk.length));
    const ended = readAll(socket);
    socket.write(command("S", 1024 * 1024 * 1024, 2));
    await waitFor(() => received > 1024 * 1024, 5_000, "download under way");
    const closing = Date.now();
    const closed = c!.connector.close();
    const got = await ended;
    const resetMs = Date.now() - closing;
    await closed;
    console.log(`client reset ${resetMs} ms after the connector began to close`);
    expect(got.end).not.toBe("fin");
    // The connector resets its streams before it closes the connection: no waiting for QUIC to notice.
    expect(resetMs).toBeLessThan(2_000);
    await waitFor(() => s.metrics.streamsActive.value === 0, 2_000, "server stream released");
    expect(
      s.metrics.streamsClosed.child({ how: "reset" }).value +
        s.metrics.streamsClosed.child({ how: "connection_lost" }).value,
    ).toBe(1);
    await waitFor(() => !a.agent.serviceUp("app"), 2_000, "service down at the agent");
    const late = await tcpConnect(listen);
    teardown.add(late, (x) => x.destroy());
    expect((await readAll(late)).end).not.toBe("fin");
    expect(a.metrics.tcpConnections.child({ result: "service_down" }).value).toBe(1);
  }, 20_000);
});
