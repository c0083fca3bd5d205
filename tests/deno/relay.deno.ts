/**
 * The relay end to end under Deno: server, connector and agent in this
 * process on loopback, over the native quiche binding, with Deno's
 * node:dgram sockets (core/runtime/udp.ts's non-Bun path) and Deno.serve for
 * the ops endpoint (core/runtime/http.ts). Every wait has a deadline, and
 * Deno's sanitizers fail a test that leaves a socket or timer behind.
 */
import assert from "node:assert/strict";
import { createRegistry } from "../../core/metrics/registry.ts";
import { startOps } from "../../core/ops/serve.ts";
import {
  bytes,
  cleanup,
  startEcho,
  startTestAgent,
  startTestConnector,
  startTestServer,
  udpClient,
  waitFor,
} from "../harness.ts";
import { denoTest } from "./deno.ts";

denoTest(
  "a datagram goes agent -> server -> connector -> echo and back, byte-exact",
  async () => {
    const teardown = cleanup();
    try {
      const echo = teardown.add(await startEcho(), (x) => x.close());
      const s = teardown.add(await startTestServer(), (x) => x.server.close());
      teardown.add(await startTestConnector([s.server.address], "echo", echo.address), (x) => x.connector.close());
      const a = teardown.add(await startTestAgent([s.server.address], ["echo"]), (x) => x.agent.close());
      await waitFor(() => a.agent.ready().ready, 10_000, "agent ready");
      const client = teardown.add(await udpClient(), (x) => x.close());
      for (const size of [0, 1, 1000]) {
        const payload = bytes(size, size + 1);
        client.send(payload, a.listen("echo"));
        // node:dgram hands over Buffers; compare plain bytes.
        assert.deepEqual(new Uint8Array(await client.next(5_000)), payload);
      }
    } finally {
      await teardown.run();
    }
  },
);

denoTest(
  "ops HTTP answers /healthz and /metrics through Deno.serve",
  async () => {
    const ops = startOps({
      listen: { host: "127.0.0.1", port: 0 },
      registry: createRegistry("server"),
      ready: () => ({ ready: false, reason: "probe" }),
    })!;
    try {
      const health = await fetch(new URL("healthz", ops.url));
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const ready = await fetch(new URL("readyz", ops.url));
      assert.equal(ready.status, 503);
      await ready.body?.cancel();
      const metrics = await (await fetch(new URL("metrics", ops.url))).text();
      assert.match(metrics, /^# HELP ztna_/m);
    } finally {
      await ops.stop();
    }
  },
);
