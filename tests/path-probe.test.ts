/**
 * Packet size by path probe: a link uses packets larger than 1350 bytes only
 * after a probe shows the path carries them both ways, and a path that drops
 * large packets (the impairment proxy's maxPayload) leaves it at 1350, working.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { startImpairment } from "../scripts/impair/control.ts";
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

async function topology(
  agentVia?: (serverPort: number) => Promise<{ host: string; port: number }>,
  agentPayload?: number | "auto",
) {
  const s = teardown.add(await startTestServer(), (x) => x.server.close());
  const echo = teardown.add(await startEcho(), (x) => x.close());
  teardown.add(await startTestConnector([s.server.address], "echo", echo.address), (x) => x.connector.close());
  const target = agentVia ? await agentVia(s.server.address.port) : s.server.address;
  const a = teardown.add(
    await startTestAgent([target], ["echo"], { maxUdpPayload: agentPayload ?? "auto" }),
    (x) => x.agent.close(),
  );
  await waitFor(() => a.agent.ready().ready, 10_000, "agent ready");
  return { s, a };
}

/** The packet size of the agent's connection, as its /status document reports it. */
function packetSize(a: Awaited<ReturnType<typeof startTestAgent>>): number | null {
  return a.agent.status().servers[0]?.udpPayload ?? null;
}

async function echoes(a: Awaited<ReturnType<typeof startTestAgent>>, n: number) {
  const client = teardown.add(await udpClient(), (x) => x.close());
  for (let i = 0; i < n; i++) {
    client.send(bytes(1200, i), a.listen("echo"));
    expect(await client.next(2_000)).toEqual(bytes(1200, i));
  }
}

describe("packet size by path probe", () => {
  test("on loopback the probe succeeds and the link sends large packets", async () => {
    const { a } = await topology();
    const probes = logged(a.log, "path_probed");
    expect(probes).toHaveLength(1);
    expect(probes[0]).toMatchObject({ ok: true, payload: 16383 });
    expect(packetSize(a)).toBe(16383);
    await echoes(a, 5);
  });

  test("a path that drops packets over 1400 bytes: the probe fails, the link stays at 1350 and works", async () => {
    const { a } = await topology(async (port) => {
      const proxy = await startImpairment({ target: { host: "127.0.0.1", port }, initial: { maxPayload: 1400 } });
      teardown.add(proxy, (p) => p.stop());
      return proxy.address;
    });
    const probes = logged(a.log, "path_probed");
    expect(probes[0]).toMatchObject({ ok: false, payload: 1350 });
    expect(packetSize(a)).toBe(1350);
    await echoes(a, 5);
  }, 20_000);

  test("a fixed --max-udp-payload is used as is, without a probe", async () => {
    const { a } = await topology(undefined, 1350);
    expect(logged(a.log, "path_probed")).toHaveLength(0);
    expect(packetSize(a)).toBe(1350);
  });
});
