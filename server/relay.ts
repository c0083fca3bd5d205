/**
 * The server's routing state: which connectors serve which service, which
 * channels each peer was granted, and the per-flow table that sends every
 * reply back to exactly the agent flow that opened it.
 *
 * Plain data and functions, no I/O: the server wires it to QUIC.
 */
import type { Role } from "../core/frame/mod.ts";

/** A connected peer (agent or connector), as the relay sees it. */
export interface Peer<C = unknown> {
  readonly id: number;
  readonly role: Role;
  readonly conn: C;
  /** Channels granted to this peer (REGISTER for connectors, OPEN for agents). */
  readonly channels: Map<number, Binding<C>>;
  nextChannel: number;
  /** Agents: flows keyed by channel * 2^32 + agent flow id. Connectors: keyed by server flow id. */
  readonly flows: Map<number, Flow<C>>;
  nextFlow: number;
}

export interface Binding<C = unknown> {
  readonly peer: Peer<C>;
  readonly channel: number;
  readonly service: string;
  /** A connector that deregistered keeps answering its flows but gets no new ones. */
  draining: boolean;
}

/** What a service relayed since it was first seen: plain fields, added to per datagram. */
export interface ServiceTraffic {
  datagramsToConnector: number;
  datagramsToAgent: number;
  bytesToConnector: number;
  bytesToAgent: number;
}

export interface Flow<C = unknown> {
  /** The service's traffic counters, so the hot path counts without a lookup. */
  readonly traffic: ServiceTraffic;
  readonly agent: Binding<C>;
  readonly agentFlow: number;
  /** Where new requests of this flow go. */
  connector: Binding<C>;
  connectorFlow: number;
  lastSeen: number;
}

export interface Service<C = unknown> {
  readonly name: string;
  readonly connectors: Binding<C>[];
  /** Agents that opened the service, to be told when it goes down or up. */
  readonly agents: Set<Binding<C>>;
  nextPick: number;
  readonly traffic: ServiceTraffic;
}

export interface Relay<C = unknown> {
  readonly services: Map<string, Service<C>>;
  flowCount: number;
}

const FLOW_KEY_SCALE = 2 ** 32;

export function createRelay<C>(): Relay<C> {
  return { services: new Map(), flowCount: 0 };
}

export function createPeer<C>(id: number, role: Role, conn: C): Peer<C> {
  return { id, role, conn, channels: new Map(), nextChannel: 1, flows: new Map(), nextFlow: 1 };
}

/** Live (non-draining) connectors of a service. */
function liveConnectors<C>(service: Service<C> | undefined): number {
  if (!service) return 0;
  let n = 0;
  for (const b of service.connectors) if (!b.draining) n++;
  return n;
}

function grantChannel<C>(peer: Peer<C>, service: string): Binding<C> | null {
  // Channels are u16 and never 0; reuse numbers freed by closed bindings.
  for (let tries = 0; tries < 0xffff; tries++) {
    const channel = peer.nextChannel;
    peer.nextChannel = channel === 0xffff ? 1 : channel + 1;
    if (!peer.channels.has(channel)) {
      const binding: Binding<C> = { peer, channel, service, draining: false };
      peer.channels.set(channel, binding);
      return binding;
    }
  }
  return null;
}

function ensureService<C>(relay: Relay<C>, name: string): Service<C> {
  let service = relay.services.get(name);
  if (!service) {
    service = { name, connectors: [], agents: new Set(), nextPick: 0, traffic: noTraffic() };
    relay.services.set(name, service);
  }
  return service;
}

function noTraffic(): ServiceTraffic {
  return { datagramsToConnector: 0, datagramsToAgent: 0, bytesToConnector: 0, bytesToAgent: 0 };
}

export function findBinding<C>(peer: Peer<C>, service: string): Binding<C> | undefined {
  for (const b of peer.channels.values()) if (b.service === service) return b;
  return undefined;
}

/** Adds a connector for a service. Returns the binding and whether the service just came up. */
export function registerConnector<C>(relay: Relay<C>, peer: Peer<C>, name: string) {
  const binding = grantChannel(peer, name);
  if (!binding) return null;
  const service = ensureService(relay, name);
  const wasUp = liveConnectors(service) > 0;
  service.connectors.push(binding);
  return { binding, cameUp: !wasUp };
}

/** Grants an agent a channel to a known service. */
export function openService<C>(relay: Relay<C>, peer: Peer<C>, name: string) {
  const service = relay.services.get(name);
  if (!service) return null;
  const binding = grantChannel(peer, name);
  if (!binding) return null;
  service.agents.add(binding);
  return { binding, up: liveConnectors(service) > 0 };
}

/**
 * Marks a connector as draining: no new flows go to it, and its flows move to
 * another live connector for new requests while replies to requests it already
 * has still find their way back. Returns true when the service just went down.
 */
export function drainConnector<C>(relay: Relay<C>, binding: Binding<C>, now: number): boolean {
  if (binding.draining) return false;
  binding.draining = true;
  const service = relay.services.get(binding.service);
  if (!service) return false;
  for (const flow of binding.peer.flows.values()) {
    if (flow.connector !== binding) continue;
    const next = pickConnector(service);
    if (next) moveFlow(flow, next, now);
  }
  return liveConnectors(service) === 0;
}

/** Removes a connector binding entirely (deregistered and gone, or disconnected). */
export function removeConnector<C>(relay: Relay<C>, binding: Binding<C>, now: number): boolean {
  const service = relay.services.get(binding.service);
  const wasUp = liveConnectors(service) > 0;
  if (!binding.draining) drainConnector(relay, binding, now);
  binding.peer.channels.delete(binding.channel);
  if (service) {
    const i = service.connectors.indexOf(binding);
    if (i >= 0) service.connectors.splice(i, 1);
  }
  // Flows still pointing at this connector have nowhere to go: forget them so the
  // agent's next datagram starts a fresh flow on whatever connector is live then.
  for (const [key, flow] of binding.peer.flows) {
    if (flow.agent.service !== binding.service) continue;
    binding.peer.flows.delete(key);
    if (flow.connector === binding) forgetFlow(relay, flow);
  }
  return wasUp && liveConnectors(service) === 0;
}

function closeAgentBinding<C>(relay: Relay<C>, binding: Binding<C>) {
  relay.services.get(binding.service)?.agents.delete(binding);
  binding.peer.channels.delete(binding.channel);
}

/** Drops everything a peer owned. Returns services that lost their last connector. */
export function removePeer<C>(relay: Relay<C>, peer: Peer<C>, now: number): string[] {
  const wentDown: string[] = [];
  if (peer.role === "connector") {
    for (const binding of [...peer.channels.values()]) {
      if (removeConnector(relay, binding, now)) wentDown.push(binding.service);
    }
  } else {
    for (const flow of [...peer.flows.values()]) forgetFlow(relay, flow);
    for (const binding of [...peer.channels.values()]) closeAgentBinding(relay, binding);
  }
  return wentDown;
}

function pickConnector<C>(service: Service<C>): Binding<C> | null {
  const list = service.connectors;
  for (let i = 0; i < list.length; i++) {
    const b = list[(service.nextPick + i) % list.length]!;
    if (!b.draining) {
      service.nextPick = (service.nextPick + i + 1) % list.length;
      return b;
    }
  }
  return null;
}

/** The next live connector of a service, round-robin (TCP streams use the same rotation as flows). */
export function pickLiveConnector<C>(relay: Relay<C>, name: string): Binding<C> | null {
  const service = relay.services.get(name);
  return service ? pickConnector(service) : null;
}

function allocateConnectorFlow<C>(peer: Peer<C>): number {
  // u32 ids, never 0; skip ids still in use after a wrap.
  let id = peer.nextFlow;
  while (peer.flows.has(id)) id = id === 0xffffffff ? 1 : id + 1;
  peer.nextFlow = id === 0xffffffff ? 1 : id + 1;
  return id;
}

function moveFlow<C>(flow: Flow<C>, to: Binding<C>, now: number) {
  flow.connector = to;
  flow.connectorFlow = allocateConnectorFlow(to.peer);
  to.peer.flows.set(flow.connectorFlow, flow);
  flow.lastSeen = now;
}

/**
 * Finds or creates the flow for an agent datagram. Returns a string reason when
 * the datagram must be dropped.
 */
export function routeFromAgent<C>(
  relay: Relay<C>,
  agent: Peer<C>,
  channel: number,
  agentFlow: number,
  now: number,
  admitNew: boolean,
  maxFlows: number,
): Flow<C> | "unknown_channel" | "service_down" | "draining" | "flow_limit" {
  const key = channel * FLOW_KEY_SCALE + agentFlow;
  const existing = agent.flows.get(key);
  if (existing !== undefined) {
    existing.lastSeen = now;
    return existing;
  }
  const binding = agent.channels.get(channel);
  if (binding === undefined) return "unknown_channel";
  if (!admitNew) return "draining";
  if (agent.flows.size >= maxFlows) return "flow_limit";
  const service = relay.services.get(binding.service);
  const connector = service ? pickConnector(service) : null;
  if (!service || !connector) return "service_down";
  const flow: Flow<C> = {
    traffic: service.traffic,
    agent: binding,
    agentFlow,
    connector,
    connectorFlow: 0,
    lastSeen: now,
  };
  moveFlow(flow, connector, now);
  agent.flows.set(key, flow);
  relay.flowCount++;
  return flow;
}

/** Finds the flow a connector's reply belongs to; only its own flows on its own channel. */
export function routeFromConnector<C>(connector: Peer<C>, channel: number, flowId: number, now: number) {
  const flow = connector.flows.get(flowId);
  if (flow === undefined) return undefined;
  // A moved flow keeps its old id on the old connector, so check the channel of that peer.
  const binding = connector.channels.get(channel);
  if (binding === undefined || binding.service !== flow.agent.service) return undefined;
  flow.lastSeen = now;
  return flow;
}

function forgetFlow<C>(relay: Relay<C>, flow: Flow<C>) {
  const agent = flow.agent.peer;
  const key = flow.agent.channel * FLOW_KEY_SCALE + flow.agentFlow;
  if (agent.flows.get(key) !== flow) return;
  agent.flows.delete(key);
  relay.flowCount--;
  flow.connector.peer.flows.delete(flow.connectorFlow);
}

/** Expires flows idle since before `cutoff`; returns how many went. */
export function expireFlows<C>(relay: Relay<C>, peers: Iterable<Peer<C>>, cutoff: number): number {
  let expired = 0;
  for (const peer of peers) {
    if (peer.role !== "agent") continue;
    for (const flow of [...peer.flows.values()]) {
      if (flow.lastSeen < cutoff) {
        forgetFlow(relay, flow);
        expired++;
      }
    }
  }
  return expired;
}
