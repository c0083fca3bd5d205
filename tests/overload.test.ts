/**
 * Overload at the agent: a local client that sends more than the tunnel
 * carries is held back in the kernel while its queue still has room, so its
 * excess costs no callback (agent/overload.ts). The agent reaches the server
 * through the impairment proxy, which the test makes drop everything toward
 * the server: with nothing acknowledged, the congestion window stays shut and
 * every datagram after the first window waits in the queue.
 */
import { afterEach, expect, test } from "bun:test";
import { MAX_FLOW_QUEUE } from "../core/quic/fair-queue.ts";
import { startImpairment } from "../scripts/impair/control.ts";
import type { AgentDropReason } from "../agent/metrics.ts";
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

test(
  "a flooding client is held back in the kernel once half its queue waits, before a drop in JavaScript",
  async () => {
    const s = teardown.add(await startTestServer(), (x) => x.server.close());
    const echo = teardown.add(await startEcho(), (x) => x.close());
    teardown.add(await startTestConnector([s.server.address], "echo", echo.address), (x) => x.connector.close());
    const proxy = teardown.add(await startImpairment({ target: s.server.address }), (x) => x.stop());
    const a = teardown.add(await startTestAgent([proxy.address], ["echo"]), (x) => x.agent.close());
    await waitFor(() => a.agent.serviceUp("echo"), 5_000, "service up at the agent");

    await proxy.set("up", { loss: 1 });
    const client = teardown.add(await udpClient(), (x) => x.close());
    const to = a.listen("echo");
    const total = MAX_FLOW_QUEUE; // the queue's full depth: with the old rule, not one would be held back
    const sent = { n: 0 };
    const payload = bytes(1_000);
    // In bursts the agent reads long before its socket buffer could fill.
    while (sent.n < total) {
      for (let i = 0; i < 64 && sent.n < total; i++, sent.n++) client.send(payload, to);
      await new Promise((r) => setTimeout(r, 1));
    }
    const drops = (reason: AgentDropReason) => a.metrics.drops.child({ reason }).value;
    const toServer = () => a.metrics.datagrams.child({ direction: "to_server" }).value;
    // Kernel drops are read from the socket every second.
    await waitFor(
      () => toServer() + drops("kernel") + drops("queue_full") >= total,
      5_000,
      "every datagram accounted for",
    );
    expect(drops("queue_full")).toBe(0);
    expect(toServer()).toBeGreaterThanOrEqual(MAX_FLOW_QUEUE / 2);
    expect(toServer()).toBeLessThan(MAX_FLOW_QUEUE * 0.75);
    expect(drops("kernel")).toBeGreaterThan(MAX_FLOW_QUEUE / 4);
  },
  20_000,
);
