import { describe, expect, test } from "bun:test";
import type { Role } from "../core/frame/mod.ts";
import {
  createPeer,
  createRelay,
  drainConnector,
  openService,
  type Peer,
  registerConnector,
  routeFromAgent,
} from "./relay.ts";
import { buildStatus, type PeerFacts } from "./status.ts";

const T0 = Date.parse("2026-12-01T10:00:00.000Z");

function fixture() {
  const relay = createRelay<string>();
  const peers: Peer<string>[] = [];
  const facts = new Map<Peer<string>, PeerFacts>();
  const add = (role: Role, address: string, more: Partial<PeerFacts> = {}) => {
    const peer = createPeer(peers.length + 1, role, address);
    peers.push(peer);
    facts.set(peer, { address, identity: null, version: null, registeredAt: new Map(), ...more });
    return peer;
  };
  const status = (now = T0 + 90_500, draining = false) =>
    buildStatus({
      relay,
      peers,
      factsOf: (p) => facts.get(p)!,
      version: "0.1.0 (test)",
      startedAt: T0,
      now,
      draining,
      restart: { reconnectInMs: 0, tryForMs: 60_000 },
    });
  return { relay, peers, facts, add, status };
}

describe("buildStatus", () => {
  test("an idle server: identity, uptime, nothing served", () => {
    const { status } = fixture();
    expect(status()).toEqual({
      component: "server",
      version: "0.1.0 (test)",
      startedAt: "2026-12-01T10:00:00.000Z",
      uptimeSeconds: 90.5,
      draining: false,
      restart: { reconnectInMs: 0, tryForMs: 60_000 },
      services: [],
      connectors: 0,
      agents: 0,
      flows: 0,
    });
  });

  test("services with their connectors, agents and flows; counts per role", () => {
    const fx = fixture();
    const c1 = fx.add("connector", "10.0.0.1:5000", {
      identity: "ztna://connector/echo",
      version: "0.1.0 (abc)",
      registeredAt: new Map([["echo", T0 + 1_000]]),
    });
    const c2 = fx.add("connector", "[2001:db8::2]:6000", {
      registeredAt: new Map([["echo", T0 + 2_000], ["db", T0 + 3_000]]),
    });
    const a1 = fx.add("agent", "10.0.1.1:7000");
    const a2 = fx.add("agent", "10.0.1.2:7000");
    registerConnector(fx.relay, c1, "echo");
    registerConnector(fx.relay, c2, "echo");
    registerConnector(fx.relay, c2, "db");
    const e1 = openService(fx.relay, a1, "echo")!.binding;
    const e2 = openService(fx.relay, a2, "echo")!.binding;
    openService(fx.relay, a2, "db");
    for (const flow of [1, 2, 3]) routeFromAgent(fx.relay, a1, e1.channel, flow, T0, true, 100);
    routeFromAgent(fx.relay, a2, e2.channel, 9, T0, true, 100);

    const s = fx.status();
    expect(s.connectors).toBe(2);
    expect(s.agents).toBe(2);
    expect(s.flows).toBe(4);
    expect(s.services.map((x) => x.name)).toEqual(["db", "echo"]); // sorted
    const echo = s.services[1]!;
    expect(echo).toEqual({
      name: "echo",
      connectors: [
        {
          address: "10.0.0.1:5000",
          identity: "ztna://connector/echo",
          version: "0.1.0 (abc)",
          since: "2026-12-01T10:00:01.000Z",
          draining: false,
        },
        {
          address: "[2001:db8::2]:6000",
          identity: null,
          version: null,
          since: "2026-12-01T10:00:02.000Z",
          draining: false,
        },
      ],
      agents: 2,
      flows: 4,
    });
    expect(s.services[0]).toMatchObject({ name: "db", agents: 1, flows: 0 });
    expect(s.services[0]!.connectors.map((c) => c.since)).toEqual(["2026-12-01T10:00:03.000Z"]);
    // Plain JSON: it survives a round trip unchanged.
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  test("a deregistered connector shows as draining; the server's own drain flag", () => {
    const fx = fixture();
    const c = fx.add("connector", "10.0.0.1:5000");
    const binding = registerConnector(fx.relay, c, "echo")!.binding;
    drainConnector(fx.relay, binding, T0);
    const s = fx.status(T0, true);
    expect(s.draining).toBe(true);
    expect(s.uptimeSeconds).toBe(0);
    expect(s.services[0]!.connectors[0]!.draining).toBe(true);
  });
});
