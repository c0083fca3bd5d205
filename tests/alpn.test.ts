/**
 * ALPN: a client that does not speak "ztna" is refused by the TLS handshake
 * itself, before any ztna code on the server sees it.
 */
import { afterEach, expect, test } from "bun:test";
import { alpnFor } from "../core/frame/mod.ts";
import { clientQuicConfig } from "../core/quic/config.ts";
import { type CloseInfo, createEndpoint, type QuicConnection } from "../core/quic/endpoint.ts";
import { cleanup, devCerts, startTestServer, waitFor } from "./harness.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

/** TLS alert no_application_protocol (120) as a QUIC crypto error (0x100 + alert, RFC 9001 §4.8). */
const NO_APPLICATION_PROTOCOL = 0x100 + 120;

test("a client offering another ALPN is closed with no_application_protocol and never counted", async () => {
  const s = teardown.add(await startTestServer(), (x) => x.server.close());
  const certs = await devCerts();
  // Everything as a real client, except the protocol it asks for.
  const config = clientQuicConfig({ alpn: alpnFor(), caPem: certs.caPem, insecure: false, idleTimeoutMs: 5_000 });
  config.setApplicationProtos(["not-ztna"]);

  let established = false;
  let closed: CloseInfo | null = null;
  const endpoint = await createEndpoint({
    bind: { host: "127.0.0.1", port: 0 },
    server: false,
    config,
    handlers: {
      onEstablished: () => void (established = true),
      onClosed: (_conn, info) => void (closed = info),
    },
  });
  teardown.add(endpoint, (e) => e.close());
  const conn: QuicConnection = endpoint.connect(s.server.address, "localhost");

  // The refusal arrives within a round trip, but quiche only reports the
  // connection closed after its draining period (3 PTO, ~3 s before any RTT
  // sample). Wait for the peer's error, then end the draining early: onClosed
  // still reports the error the server sent.
  await waitFor(() => conn.raw.peerError() !== null || closed !== null, 2_000, "the server's CONNECTION_CLOSE");
  await endpoint.close();
  const info = closed as CloseInfo | null;
  expect(info).not.toBeNull();
  expect(info!.peer).toMatchObject({ isApp: false, errorCode: NO_APPLICATION_PROTOCOL });
  expect(info!.timedOut).toBe(false);
  expect(established).toBe(false);

  const handshakes = (await s.metrics.handshakeDuration.get()).values.find((v) => v.metricName?.endsWith("_count"));
  expect(handshakes?.value ?? 0).toBe(0);
  expect(s.metrics.connectionsTotal.child({ role: "agent" }).value).toBe(0);
  expect(s.metrics.connectionsTotal.child({ role: "connector" }).value).toBe(0);
  expect(s.log.lines.some((l) => l.includes('"peer_hello"'))).toBe(false);
});
