/**
 * What a server does with packets for no connection: a standard QUIC client
 * (ngtcp2's gtlsclient, with its own connection IDs) is answered, version
 * negotiation is no amplifier, and every stateless answer is counted.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { openUdp } from "../core/runtime/udp.ts";
import { parseLongHeader } from "../core/quic/long-header.ts";
import { quiche } from "../core/quic/native.ts";
import { DEFAULT_LIMITS } from "../server/types.ts";
import { cleanup, startTestServer, waitFor } from "./harness.ts";
import { clientFirstInitial } from "./raw-peer.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

const GTLSCLIENT = ["/usr/bin/gtlsclient", "/usr/local/bin/gtlsclient"].find((p) => existsSync(p));

/**
 * A long-header packet with an unknown version (0x1a2a3a4a), padded to
 * `size` bytes (at least 7: flags, version, and two empty connection IDs).
 */
function unknownVersion(size: number): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0xc0;
  p.set([0x1a, 0x2a, 0x3a, 0x4a], 1);
  if (size >= 23) {
    p[5] = 8; // DCID length
    p.set([1, 2, 3, 4, 5, 6, 7, 8], 6);
    p[14] = 8; // SCID length
    p.set([9, 10, 11, 12, 13, 14, 15, 16], 15);
  }
  return p;
}

/** A QUIC v1 client Initial without a token, 1200 bytes: what a new client sends first. */
function firstInitial(n: number): Uint8Array {
  const p = new Uint8Array(1200);
  p[0] = 0xc3; // long header, Initial, 4-byte packet number
  p.set([0, 0, 0, 1], 1);
  p[5] = 16; // DCID length
  for (let i = 0; i < 16; i++) p[6 + i] = (n * 31 + i) & 0xff;
  p[22] = 8; // SCID length
  p.set([9, 10, 11, 12, 13, 14, 15, 16], 23);
  p[31] = 0; // token length
  p[32] = 0x44; // payload length (2-byte varint): the rest of the datagram
  p[33] = 1200 - 34;
  return p;
}

async function probeClient() {
  const answers: Uint8Array[] = [];
  const socket = await openUdp({
    host: "127.0.0.1",
    port: 0,
    onPacket: (d) => void answers.push(d.slice()),
    onError() {},
  });
  teardown.add(socket, (s) => s.close());
  return { socket, answers };
}

describe("admission of packets for no connection", () => {
  test(
    "gtlsclient with its default 18-byte connection ID gets a TLS answer: no_application_protocol (0x178)",
    async () => {
      // ngtcp2-client is installed by .ci/run; a machine without it cannot run this check.
      if (!GTLSCLIENT) {
        throw new Error(
          "gtlsclient (Debian package ngtcp2-client) is not installed: apt-get install ngtcp2-client",
        );
      }
      const s = teardown.add(await startTestServer(), (x) => x.server.close());
      const proc = Bun.spawn([
        GTLSCLIENT,
        "--handshake-timeout=3s",
        "--exit-on-all-streams-close",
        "127.0.0.1",
        String(s.server.address.port),
      ], {
        stdout: "pipe",
        stderr: "pipe",
      });
      teardown.add(proc, (p) => p.kill("SIGKILL"));
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(timer);
      const output = (await new Response(proc.stderr).text()) + (await new Response(proc.stdout).text());
      // It reached our TLS stack (which refused its ALPN), instead of timing out unanswered.
      expect(output).not.toContain("HANDSHAKE_TIMEOUT");
      expect(output).toMatch(/0x178|no.application.protocol|ERR_DRAINING|CRYPTO_ERROR/i);
      expect(s.metrics.drops.child({ reason: "packet_accept_failed" }).value).toBe(0);
      await waitFor(
        () => s.metrics.handshakeFailures.child({ reason: "no_application_protocol" }).value === 1,
        2_000,
        "the refusal counted",
      );
    },
    20_000,
  );

  test("an unknown version in a datagram too small to start a connection gets no answer", async () => {
    const s = teardown.add(await startTestServer(), (x) => x.server.close());
    const { socket, answers } = await probeClient();
    for (let i = 0; i < 20; i++) socket.send(unknownVersion(7 + i), s.server.address.port, s.server.address.host);
    await Bun.sleep(200);
    expect(answers.length).toBe(0);
    const short = s.metrics.drops.child({ reason: "packet_short_unknown_version" }).value;
    const unparsable = s.metrics.drops.child({ reason: "packet_bad_header" }).value;
    expect(short).toBeGreaterThan(0);
    expect(short + unparsable).toBe(20);
  });

  test("a full-size datagram with an unknown version gets version negotiation, capped per second", async () => {
    const s = teardown.add(await startTestServer(), (x) => x.server.close());
    const { socket, answers } = await probeClient();
    socket.send(unknownVersion(1200), s.server.address.port, s.server.address.host);
    await waitFor(() => answers.length === 1, 2_000, "a version negotiation packet");
    const vn = answers[0]!;
    expect(vn[0]! & 0x80).toBe(0x80);
    expect([...vn.subarray(1, 5)]).toEqual([0, 0, 0, 0]); // version 0 = version negotiation
    // A flood gets at most the stateless budget (100 a second), and the rest is counted.
    for (let i = 0; i < 300; i++) socket.send(unknownVersion(1200), s.server.address.port, s.server.address.host);
    await Bun.sleep(300);
    expect(answers.length).toBeLessThanOrEqual(100);
    expect(answers.length).toBeGreaterThan(10);
    expect(s.metrics.drops.child({ reason: "packet_stateless_limit" }).value).toBeGreaterThanOrEqual(200);
  });

  test("a crowd of new clients all get retries: they are not held to the stateless budget", async () => {
    // A fleet reconnecting after a restart: hundreds of first Initials within a second.
    const s = teardown.add(
      await startTestServer({ limits: { ...DEFAULT_LIMITS, retryAbove: 0 } }),
      (x) => x.server.close(),
    );
    const { socket, answers } = await probeClient();
    const crowd = 400;
    for (let i = 0; i < crowd; i++) socket.send(firstInitial(i), s.server.address.port, s.server.address.host);
    await waitFor(() => answers.length === crowd, 3_000, `${crowd} retries`);
    for (const answer of answers) expect(answer[0]! & 0xf0).toBe(0xf0); // long header, type Retry
    expect(s.metrics.drops.child({ reason: "packet_stateless_limit" }).value).toBe(0);
  });

  test("below --retry-above handshakes in progress a new client is answered at once; from there on it gets a retry", async () => {
    const s = teardown.add(await startTestServer(), (x) => x.server.close());
    const { socket, answers } = await probeClient();
    const crowd = DEFAULT_LIMITS.retryAbove + 8;
    // Real first Initials, each a new client whose handshake then waits for it: each one taken holds a slot.
    for (let i = 0; i < crowd; i++) {
      socket.send(clientFirstInitial(socket.address, s.server.address), s.server.address.port, s.server.address.host);
    }
    const retries = () => answers.filter((a) => parseLongHeader(a)?.ty === quiche.Type.Retry).length;
    await waitFor(() => retries() === 8, 3_000, "retries for the last 8");
    await Bun.sleep(200);
    expect(retries()).toBe(8);
    const handshakes = new Set(
      answers.map((a) => parseLongHeader(a)).filter((h) => h?.ty === quiche.Type.Initial).map((h) =>
        Array.from(h!.scid).join(",")
      ),
    );
    expect(handshakes.size).toBe(DEFAULT_LIMITS.retryAbove);
  });

  test("a real client's first Initial gets the handshake, not a retry; sent twice, it reaches the same connection", async () => {
    const s = teardown.add(await startTestServer(), (x) => x.server.close());
    const { socket, answers } = await probeClient();
    const initial = clientFirstInitial(socket.address, s.server.address);
    socket.send(initial, s.server.address.port, s.server.address.host);
    await waitFor(() => answers.length > 0, 2_000, "the server's answer");
    // A repeat of the same Initial (as after a lost answer) must not start a second connection.
    socket.send(initial, s.server.address.port, s.server.address.host);
    await Bun.sleep(300);
    const headers = answers.map((a) => parseLongHeader(a));
    expect(headers[0]?.ty).toBe(quiche.Type.Initial);
    expect(headers.some((h) => h?.ty === quiche.Type.Retry)).toBe(false);
    // Every answer comes from one server connection ID: one connection.
    expect(new Set(headers.map((h) => h && Array.from(h.scid).join(","))).size).toBe(1);
  });

  test("with --retry-above 0 the same client gets a retry first", async () => {
    const s = teardown.add(
      await startTestServer({ limits: { ...DEFAULT_LIMITS, retryAbove: 0 } }),
      (x) => x.server.close(),
    );
    const { socket, answers } = await probeClient();
    socket.send(clientFirstInitial(socket.address, s.server.address), s.server.address.port, s.server.address.host);
    await waitFor(() => answers.length > 0, 2_000, "the server's answer");
    expect(parseLongHeader(answers[0]!)?.ty).toBe(quiche.Type.Retry);
  });

  test("junk Initials hold no handshake slot, so past 500 a second they get retries all the same", async () => {
    const s = teardown.add(await startTestServer(), (x) => x.server.close());
    const { socket, answers } = await probeClient();
    // Each is taken and gone at once (it cannot be decrypted): only the per-second bound stops them costing a connection each.
    for (let i = 0; i < 600; i++) socket.send(firstInitial(i), s.server.address.port, s.server.address.host);
    await waitFor(() => answers.length >= 100, 3_000, "retries past the first 500");
    for (const answer of answers) expect(parseLongHeader(answer)?.ty).toBe(quiche.Type.Retry);
  });
});
