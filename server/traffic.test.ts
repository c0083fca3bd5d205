import { describe, expect, test } from "bun:test";
import {
  createPeer,
  createRelay,
  openService,
  registerConnector,
  routeFromAgent,
  routeFromConnector,
} from "./relay.ts";
import { buildStatus } from "./status.ts";
import { createTrafficSampler } from "./traffic.ts";

describe("traffic rates for /status", () => {
  test("each service's datagrams and bytes per second, and the total, over the window", () => {
    const relay = createRelay<string>();
    const connector = createPeer(1, "connector", "c");
    const agent = createPeer(2, "agent", "a");
    registerConnector(relay, connector, "echo");
    registerConnector(relay, connector, "quiet");
    const channel = openService(relay, agent, "echo")!.binding.channel;
    const sampler = createTrafficSampler(relay, 10_000);
    const T0 = 1_000_000;
    sampler.sample(T0);
    // 5 s of 100 datagrams of 50 bytes a second to the connector, and 40 back.
    for (let s = 1; s <= 5; s++) {
      for (let i = 0; i < 100; i++) {
        const flow = routeFromAgent(relay, agent, channel, 1, T0, true, 10);
        if (typeof flow === "string") throw new Error(flow);
        flow.traffic.datagramsToConnector++;
        flow.traffic.bytesToConnector += 50;
        if (i < 40) {
          const back = routeFromConnector(connector, 1, flow.connectorFlow, T0)!;
          back.traffic.datagramsToAgent++;
          back.traffic.bytesToAgent += 50;
        }
      }
      sampler.sample(T0 + s * 1_000);
    }
    const status = sampler.addRates(
      buildStatus({
        relay,
        peers: [connector, agent],
        factsOf: () => ({ address: "x:1", identity: null, version: null, registeredAt: new Map() }),
        version: "v",
        startedAt: T0,
        now: T0 + 5_000,
        draining: false,
        restart: { reconnectInMs: 0, tryForMs: 60_000 },
      }),
    );
    const echo = status.services.find((s) => s.name === "echo")!;
    expect(echo.rates).toEqual({
      datagramsPerSecond: { toConnector: 100, toAgent: 40 },
      bytesPerSecond: { toConnector: 5000, toAgent: 2000 },
    });
    expect(status.services.find((s) => s.name === "quiet")!.rates.datagramsPerSecond).toEqual({
      toConnector: 0,
      toAgent: 0,
    });
    expect(status.rates).toEqual({
      datagramsPerSecond: { toConnector: 100, toAgent: 40 },
      bytesPerSecond: { toConnector: 5000, toAgent: 2000 },
      windowSeconds: 5,
    });
  });
});
