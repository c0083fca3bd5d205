import { describe, expect, test } from "bun:test";
import {
  createPeer,
  createRelay,
  drainConnector,
  expireFlows,
  findBinding,
  type Flow,
  openService,
  pickLiveConnector,
  registerConnector,
  removeConnector,
  removePeer,
  routeFromAgent,
  routeFromConnector,
} from "./relay.ts";

const T0 = 1_000_000;

/** A relay with named peers; the "connection" of each is its name. */
function fixture() {
  const relay = createRelay<string>();
  let nextId = 1;
  const connector = (name: string) => createPeer(nextId++, "connector", name);
  const agent = (name: string) => createPeer(nextId++, "agent", name);
  return { relay, connector, agent };
}

/** Two connectors serving "echo", and an agent that opened it. */
function served() {
  const f = fixture();
  const c1 = f.connector("c1");
  const c2 = f.connector("c2");
  const b1 = registerConnector(f.relay, c1, "echo")!.binding;
  const b2 = registerConnector(f.relay, c2, "echo")!.binding;
  const a = f.agent("a");
  const channel = openService(f.relay, a, "echo")!.binding.channel;
  return { ...f, c1, c2, b1, b2, a, channel };
}

/** routeFromAgent that fails the test on a drop reason. */
function route(...args: Parameters<typeof routeFromAgent<string>>): Flow<string> {
  const flow = routeFromAgent(...args);
  if (typeof flow === "string") throw new Error(`dropped: ${flow}`);
  return flow;
}

describe("registering and opening", () => {
  test("the first connector brings a service up, the second does not; each gets its own channel", () => {
    const { relay, connector } = fixture();
    const c1 = connector("c1");
    const c2 = connector("c2");
    const first = registerConnector(relay, c1, "echo")!;
    expect(first.cameUp).toBe(true);
    expect(first.binding.channel).toBe(1);
    const second = registerConnector(relay, c2, "echo")!;
    expect(second.cameUp).toBe(false);
    expect(relay.services.get("echo")!.connectors.map((b) => b.peer.conn)).toEqual(["c1", "c2"]);
    // Channels are per peer: c1's next service gets channel 2.
    expect(registerConnector(relay, c1, "dns")!.binding.channel).toBe(2);
  });

  test("OPEN of a service nobody registered is refused; OPEN of a registered one says whether it is up", () => {
    const { relay, connector, agent } = fixture();
    const a = agent("a");
    expect(openService(relay, a, "echo")).toBeNull();
    const c = connector("c");
    const reg = registerConnector(relay, c, "echo")!;
    const opened = openService(relay, a, "echo")!;
    expect(opened.up).toBe(true);
    expect(relay.services.get("echo")!.agents.has(opened.binding)).toBe(true);
    expect(findBinding(a, "echo")).toBe(opened.binding);
    expect(findBinding(a, "dns")).toBeUndefined();
    // Known but with only a draining connector: opened, but down.
    drainConnector(relay, reg.binding, T0);
    expect(openService(relay, agent("b"), "echo")!.up).toBe(false);
  });

  test("channels are u16 and never 0: numbers are reused once freed, and none is left after 65535", () => {
    const { relay, connector } = fixture();
    const c = connector("c");
    for (let i = 1; i <= 0xffff; i++) registerConnector(relay, c, `s${i}`);
    expect(c.channels.size).toBe(0xffff);
    expect(registerConnector(relay, c, "one-more")).toBeNull();
    removeConnector(relay, c.channels.get(7)!, T0);
    expect(registerConnector(relay, c, "one-more")!.binding.channel).toBe(7);
  });
});

describe("flows", () => {
  test("an agent datagram opens a flow on a live connector; the next one finds the same flow", () => {
    const { relay, a, channel, c1 } = served();
    const flow = route(relay, a, channel, 42, T0, true, 10);
    expect(relay.flowCount).toBe(1);
    expect(flow.agentFlow).toBe(42);
    expect(flow.connector.peer).toBe(c1);
    expect(c1.flows.get(flow.connectorFlow)).toBe(flow);
    const again = route(relay, a, channel, 42, T0 + 5, true, 10);
    expect(again).toBe(flow);
    expect(again.lastSeen).toBe(T0 + 5);
    expect(relay.flowCount).toBe(1);
  });

  test("new flows go round-robin over the live connectors", () => {
    const { relay, a, channel } = served();
    const owners = [1, 2, 3, 4].map((id) => route(relay, a, channel, id, T0, true, 10).connector.peer.conn);
    expect(owners).toEqual(["c1", "c2", "c1", "c2"]);
    // TCP streams share the rotation.
    expect(pickLiveConnector(relay, "echo")!.peer.conn).toBe("c1");
    expect(pickLiveConnector(relay, "nothing")).toBeNull();
  });

  test("drop reasons: unknown channel, draining server, flow limit, no live connector", () => {
    const { relay, a, channel, b1, b2 } = served();
    expect(routeFromAgent(relay, a, channel + 1, 1, T0, true, 10)).toBe("unknown_channel");
    expect(routeFromAgent(relay, a, channel, 1, T0, false, 10)).toBe("draining");
    route(relay, a, channel, 1, T0, true, 2);
    route(relay, a, channel, 2, T0, true, 2);
    expect(routeFromAgent(relay, a, channel, 3, T0, true, 2)).toBe("flow_limit");
    // An existing flow still passes while the server drains or the limit is reached.
    expect(typeof routeFromAgent(relay, a, channel, 1, T0, false, 2)).toBe("object");
    drainConnector(relay, b1, T0);
    drainConnector(relay, b2, T0);
    expect(routeFromAgent(relay, a, channel, 9, T0, true, 10)).toBe("service_down");
  });

  test("the same agent flow id on two channels is two flows", () => {
    const { relay, connector, a, channel } = served();
    registerConnector(relay, connector("d"), "dns");
    const dns = openService(relay, a, "dns")!.binding.channel;
    const one = route(relay, a, channel, 7, T0, true, 10);
    const two = route(relay, a, dns, 7, T0, true, 10);
    expect(one).not.toBe(two);
    expect(relay.flowCount).toBe(2);
  });

  test("a reply is routed only from the connector that owns the flow, on that connector's channel", () => {
    const { relay, a, channel, c1, c2, b1 } = served();
    const flow = route(relay, a, channel, 42, T0, true, 10);
    expect(routeFromConnector(c1, b1.channel, flow.connectorFlow, T0 + 1)).toBe(flow);
    expect(flow.lastSeen).toBe(T0 + 1);
    // The other connector cannot answer for it, nor can the owner on a channel it was not granted.
    expect(routeFromConnector(c2, 1, flow.connectorFlow, T0)).toBeUndefined();
    expect(routeFromConnector(c1, 99, flow.connectorFlow, T0)).toBeUndefined();
    expect(routeFromConnector(c1, b1.channel, flow.connectorFlow + 1, T0)).toBeUndefined();
  });

  test("connector flow ids are u32, never 0, and skip ids in use after a wrap", () => {
    const { relay, a, channel, c1, c2 } = served();
    c1.nextFlow = 0xffffffff;
    const last = route(relay, a, channel, 1, T0, true, 10);
    expect(last.connectorFlow).toBe(0xffffffff);
    route(relay, a, channel, 2, T0, true, 10); // c2
    const wrapped = route(relay, a, channel, 3, T0, true, 10);
    expect(wrapped.connector.peer).toBe(c1);
    expect(wrapped.connectorFlow).toBe(1);
    expect(c2.flows.size).toBe(1);
    c1.nextFlow = 1;
    const skipped = route(relay, a, channel, 5, T0, true, 10);
    expect(skipped.connector.peer).toBe(c2);
    const next = route(relay, a, channel, 6, T0, true, 10);
    expect(next.connector.peer).toBe(c1);
    expect(next.connectorFlow).toBe(2);
  });
});

describe("connectors leaving", () => {
  test("a draining connector's flows move to a live one for new requests; late replies still find their way", () => {
    const { c1, c2, b1, a, channel, ...f } = served();
    const flow = route(f.relay, a, channel, 1, T0, true, 10);
    expect(flow.connector.peer).toBe(c1);
    const oldId = flow.connectorFlow;
    expect(drainConnector(f.relay, b1, T0 + 1)).toBe(false);
    expect(flow.connector.peer).toBe(c2);
    // The old connector may still answer what it was asked before.
    expect(routeFromConnector(c1, b1.channel, oldId, T0 + 2)).toBe(flow);
    // Draining twice changes nothing.
    expect(drainConnector(f.relay, b1, T0 + 3)).toBe(false);
    expect(f.relay.flowCount).toBe(1);
  });

  test("draining the last live connector takes the service down", () => {
    const f = fixture();
    const b = registerConnector(f.relay, f.connector("c"), "echo")!.binding;
    expect(drainConnector(f.relay, b, T0)).toBe(true);
  });

  test("removing a connector forgets the flows that pointed at it and says whether the service went down", () => {
    const { c1, b1, b2, a, channel, ...f } = served();
    route(f.relay, a, channel, 1, T0, true, 10); // c1
    route(f.relay, a, channel, 2, T0, true, 10); // c2
    expect(removeConnector(f.relay, b1, T0)).toBe(false);
    expect(c1.channels.size).toBe(0);
    expect(f.relay.services.get("echo")!.connectors).toEqual([b2]);
    // Flow 1 moved to c2 when c1 drained, so both flows live on c2.
    expect(f.relay.flowCount).toBe(2);
    expect(removeConnector(f.relay, b2, T0)).toBe(true);
    expect(f.relay.flowCount).toBe(0);
    expect(a.flows.size).toBe(0);
    // The next datagram finds no connector.
    expect(routeFromAgent(f.relay, a, channel, 1, T0, true, 10)).toBe("service_down");
  });

  test("removing a connector peer removes all its services and names those that went down", () => {
    const f = fixture();
    const c1 = f.connector("c1");
    registerConnector(f.relay, c1, "echo");
    registerConnector(f.relay, c1, "dns");
    registerConnector(f.relay, f.connector("c2"), "dns");
    expect(removePeer(f.relay, c1, T0)).toEqual(["echo"]);
    expect(f.relay.services.get("dns")!.connectors.length).toBe(1);
  });

  test("removing an agent peer forgets its flows and its channels", () => {
    const f = fixture();
    const c = f.connector("c");
    registerConnector(f.relay, c, "echo");
    const a = f.agent("a");
    const binding = openService(f.relay, a, "echo")!.binding;
    route(f.relay, a, binding.channel, 1, T0, true, 10);
    route(f.relay, a, binding.channel, 2, T0, true, 10);
    expect(removePeer(f.relay, a, T0)).toEqual([]);
    expect(f.relay.flowCount).toBe(0);
    expect(c.flows.size).toBe(0);
    expect(a.channels.size).toBe(0);
    expect(f.relay.services.get("echo")!.agents.size).toBe(0);
  });
});

describe("expireFlows", () => {
  test("forgets flows idle since before the cutoff, on both sides, and counts them", () => {
    const f = fixture();
    const c = f.connector("c");
    const b = registerConnector(f.relay, c, "echo")!.binding;
    const a = f.agent("a");
    const channel = openService(f.relay, a, "echo")!.binding.channel;
    const idle = route(f.relay, a, channel, 1, T0, true, 10);
    const busy = route(f.relay, a, channel, 2, T0, true, 10);
    routeFromConnector(c, b.channel, busy.connectorFlow, T0 + 500);
    expect(expireFlows(f.relay, [c, a], T0 + 100)).toBe(1);
    expect(f.relay.flowCount).toBe(1);
    expect(c.flows.has(idle.connectorFlow)).toBe(false);
    expect(c.flows.get(busy.connectorFlow)).toBe(busy);
    expect(routeFromConnector(c, b.channel, idle.connectorFlow, T0)).toBeUndefined();
    expect(expireFlows(f.relay, [c, a], T0 + 100)).toBe(0);
  });
});
