/**
 * The server's `GET /status` document: what it serves right now, for
 * operators and for tools that must wait for the service rather than the
 * socket (the rolling upgrade waits until the same services have connectors
 * registered here again). Plain data built from the relay's tables; no
 * secrets (no keys, tokens or certificate bodies), no I/O.
 *
 * Additive changes only: tools parse this document (docs/operations.md).
 */
import type { Peer, Relay } from "./relay.ts";

export interface ConnectorStatus {
  /** The connector's address as the server sees it, `host:port` (IPv6 in brackets). */
  address: string;
  /** The client certificate's ztna:// identities, comma-separated; null without a client certificate. */
  identity: string | null;
  /** The connector's build as it said in HELLO (protocol 2 and later); null when it did not say. */
  version: string | null;
  /** When this registration was accepted (ISO 8601). */
  since: string;
  /** True once it deregistered (its flows are finishing elsewhere); it gets no new flows. */
  draining: boolean;
}

export interface ServiceStatus {
  name: string;
  connectors: ConnectorStatus[];
  /** Agent connections that opened the service. */
  agents: number;
  /** Flows of the service relayed right now. */
  flows: number;
}

export interface ServerStatus {
  component: "server";
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  draining: boolean;
  /** What GOAWAY tells clients on a drain: try-for 0 means "not a restart". */
  restart: { reconnectInMs: number; tryForMs: number };
  /** Services with at least one connector or agent, sorted by name. */
  services: ServiceStatus[];
  /** Connected peers by role (after HELLO), and flows relayed, over all services. */
  connectors: number;
  agents: number;
  flows: number;
}

/** What the server knows about a peer's connection beyond the relay tables. */
export interface PeerFacts {
  address: string;
  identity: string | null;
  version: string | null;
  /** Registration time per service (ms since epoch). */
  registeredAt: Map<string, number>;
}

export interface StatusInput<C> {
  relay: Relay<C>;
  peers: Iterable<Peer<C>>;
  factsOf(peer: Peer<C>): PeerFacts;
  version: string;
  startedAt: number;
  now: number;
  draining: boolean;
  restart: { reconnectInMs: number; tryForMs: number };
}

export function buildStatus<C>(input: StatusInput<C>): ServerStatus {
  let connectors = 0;
  let agents = 0;
  const flowsOf = new Map<string, number>();
  for (const peer of input.peers) {
    if (peer.role === "connector") {
      connectors++;
      continue;
    }
    agents++;
    // An agent's flows are keyed per (channel, flow); each belongs to one service.
    for (const flow of peer.flows.values()) {
      const name = flow.agent.service;
      flowsOf.set(name, (flowsOf.get(name) ?? 0) + 1);
    }
  }
  const services: ServiceStatus[] = [];
  for (const service of input.relay.services.values()) {
    if (service.connectors.length === 0 && service.agents.size === 0) continue;
    services.push({
      name: service.name,
      connectors: service.connectors.map((binding) => {
        const facts = input.factsOf(binding.peer);
        const since = facts.registeredAt.get(binding.service) ?? input.now;
        return {
          address: facts.address,
          identity: facts.identity,
          version: facts.version,
          since: new Date(since).toISOString(),
          draining: binding.draining,
        };
      }),
      agents: service.agents.size,
      flows: flowsOf.get(service.name) ?? 0,
    });
  }
  services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    component: "server",
    version: input.version,
    startedAt: new Date(input.startedAt).toISOString(),
    uptimeSeconds: Math.max(0, Math.round(input.now - input.startedAt) / 1000),
    draining: input.draining,
    restart: input.restart,
    services,
    connectors,
    agents,
    flows: input.relay.flowCount,
  };
}
