/**
 * How the engine finds streams with bytes for the application without asking
 * quiche for its list of readable streams on every packet (a slow call in
 * this binding): streams it knows, the peer's next stream id, and the full
 * list only when quiche still has something readable after those. Real
 * endpoints on loopback; the client writes on stream ids of its choosing.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { alpnFor, PROTOCOL_VERSIONS } from "../core/frame/mod.ts";
import { clientQuicConfig, serverQuicConfig } from "../core/quic/config.ts";
import { ASK_EACH_MAX_STREAMS, type Conn } from "../core/quic/connection.ts";
import { createEndpoint } from "../core/quic/endpoint.ts";
import type { QuicConnection } from "../core/quic/types.ts";
import { cleanup, devCerts, waitFor } from "./harness.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

const te = new TextEncoder();
const td = new TextDecoder();

interface Seen {
  text: Map<number, string>;
  fins: Set<number>;
  resets: Map<number, number>;
}

/** A bare server endpoint and a client connected to it; `onData` may pause streams. */
async function pair(onData?: (conn: QuicConnection, streamId: number) => void) {
  const certs = await devCerts();
  const alpn = alpnFor(PROTOCOL_VERSIONS);
  const seen: Seen = { text: new Map(), fins: new Set(), resets: new Map() };
  let serverConn: QuicConnection | null = null;
  const server = await createEndpoint({
    bind: { host: "127.0.0.1", port: 0 },
    server: true,
    retry: false,
    config: serverQuicConfig({ alpn, certPem: certs.certPem, keyPem: certs.keyPem, idleTimeoutMs: 5_000 }),
    handlers: {
      onEstablished: (c) => void (serverConn = c),
      onStreamData(c, id, data, fin) {
        seen.text.set(id, (seen.text.get(id) ?? "") + td.decode(data));
        if (fin) seen.fins.add(id);
        onData?.(c, id);
      },
      onStreamReset: (_c, id, code) => void seen.resets.set(id, code),
    },
  });
  teardown.add(server, (e) => e.close());
  const client = await createEndpoint({
    bind: { host: "127.0.0.1", port: 0 },
    server: false,
    config: clientQuicConfig({ alpn, caPem: certs.caPem, insecure: false, idleTimeoutMs: 5_000 }),
    handlers: {},
  });
  teardown.add(client, (e) => e.close());
  const conn = client.connect(server.address, "localhost");
  await waitFor(() => conn.established && serverConn !== null, 3_000, "handshake");
  return { conn, seen, server: () => serverConn as Conn<unknown> };
}

describe("stream discovery", () => {
  test("streams the peer opens in order are all read, and forgotten once finished", async () => {
    const { conn, seen, server } = await pair();
    for (let i = 0; i < 40; i++) conn.writeStream(4 * i, te.encode(`stream ${i}`), true);
    await waitFor(() => seen.fins.size === 40, 3_000, "40 streams read to their FIN");
    for (let i = 0; i < 40; i++) expect(seen.text.get(4 * i)).toBe(`stream ${i}`);
    // Nothing more will come on them: no stream stays on the list asked about per packet.
    expect(server().reading.size).toBe(0);
    expect(server().nextPeerStream).toBe(160);
  });

  test(`more open streams than are asked about one by one (${ASK_EACH_MAX_STREAMS}): every byte still arrives`, async () => {
    const { conn, seen, server } = await pair();
    const count = ASK_EACH_MAX_STREAMS * 2 + 3;
    const ids = Array.from({ length: count }, (_, i) => 4 * i);
    for (const id of ids) conn.writeStream(id, te.encode(`a${id}`));
    await waitFor(() => ids.every((id) => seen.text.get(id) === `a${id}`), 3_000, "first bytes on every stream");
    expect(server().reading.size).toBe(count);
    // Now the list is long: each new byte, on any stream, must still be found.
    for (const id of [...ids].reverse()) conn.writeStream(id, te.encode(`b`));
    await waitFor(() => ids.every((id) => seen.text.get(id) === `a${id}b`), 3_000, "second bytes on every stream");
    for (const id of ids) conn.writeStream(id, te.encode(`c`), true);
    await waitFor(() => seen.fins.size === count, 3_000, "every FIN");
    expect(ids.every((id) => seen.text.get(id) === `a${id}bc`)).toBe(true);
    expect(server().reading.size).toBe(0);
    // A new stream after them, in order, is found by its id.
    conn.writeStream(4 * count, te.encode("next"), true);
    await waitFor(() => seen.fins.has(4 * count), 2_000, "the next stream");
    expect(server().nextPeerStream).toBe(4 * count + 4);
  });

  test("a stream opened out of order (a later id first) is read at once", async () => {
    const { conn, seen } = await pair();
    // Stream 8 opens 0 and 4 implicitly, but they carry nothing yet.
    conn.writeStream(8, te.encode("eight"));
    await waitFor(() => seen.text.get(8) === "eight", 2_000, "stream 8 read");
    conn.writeStream(4, te.encode("four"));
    conn.writeStream(0, te.encode("zero"));
    await waitFor(() => seen.text.get(4) === "four" && seen.text.get(0) === "zero", 2_000, "streams 4 and 0 read");
    conn.writeStream(8, te.encode(" more"), true);
    await waitFor(() => seen.fins.has(8), 2_000, "stream 8 finished");
    expect(seen.text.get(8)).toBe("eight more");
  });

  test("while a paused stream holds data, new streams (in order or not) are still read, and a reset is seen", async () => {
    const { conn, seen, server } = await pair((c, id) => {
      if (id === 0) c.pauseStream(0, true);
    });
    conn.writeStream(0, te.encode("first"));
    await waitFor(() => seen.text.get(0) === "first", 2_000, "stream 0's first bytes");
    // Stream 0 is paused now: these bytes wait in quiche and keep it readable.
    conn.writeStream(0, te.encode(" second"));
    await waitFor(() => server().raw.streamReadable(0), 2_000, "stream 0 holding unread bytes");
    conn.writeStream(4, te.encode("four"));
    await waitFor(() => seen.text.get(4) === "four", 2_000, "stream 4 read while 0 is paused");
    conn.writeStream(12, te.encode("twelve")); // skips 8
    await waitFor(() => seen.text.get(12) === "twelve", 2_000, "stream 12 read while 0 is paused");
    expect(seen.text.get(0)).toBe("first");
    server().pauseStream(0, false);
    await waitFor(() => seen.text.get(0) === "first second", 2_000, "stream 0 read after resuming");
    // Paused again, then abandoned by the peer: the reset still arrives.
    server().pauseStream(4, true);
    conn.writeStream(4, te.encode(" pending"));
    await waitFor(() => server().raw.streamReadable(4), 2_000, "stream 4 holding unread bytes");
    conn.shutdownStream(4, 77);
    await waitFor(() => seen.resets.get(4) === 77, 2_000, "reset of a paused stream");
    expect(seen.text.get(4)).toBe("four");
  });
});
