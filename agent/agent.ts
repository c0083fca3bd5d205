/**
 * The Agent: local UDP listeners that behave like remote services. Every
 * local client address is its own flow; its datagrams are tunnelled to the
 * server on the channel the server granted for that service, and replies go
 * back to exactly that client.
 *
 * The agent uses one server at a time and moves to the next configured one
 * on GOAWAY or loss, keeping the old link a moment for replies in flight.
 *
 * Its state is declared in state.ts; servers.ts keeps the server links,
 * datagrams.ts moves datagrams, tcp.ts tunnels TCP. This file binds the
 * listeners, wires the parts together and offers the running agent
 * (types.ts) to its caller.
 */
import { type AgentStatusDocument, fourRates, linkStatus, processFacts } from "../core/client/status.ts";
import { CloseCode } from "../core/frame/mod.ts";
import type { Logger } from "../core/log.ts";
import { formatAddress } from "../core/net/address.ts";
import { openUdp, type UdpSocket } from "../core/runtime/udp.ts";
import { bindError } from "../core/startup.ts";
import { COMMIT, VERSION } from "../core/version.ts";
import { expireFlows, onLocal } from "./datagrams.ts";
import { countKernelDrops, stopOverload } from "./overload.ts";
import type { AgentMetrics } from "./metrics.ts";
import { startSlot } from "./servers.ts";
import { type AgentState, createAgentState, type LinkSlot, type Listener } from "./state.ts";
import type { Agent, AgentSettings } from "./types.ts";

export type { Agent, AgentMapping, AgentSettings } from "./types.ts";

export async function startAgent(settings: AgentSettings, metrics: AgentMetrics, log: Logger): Promise<Agent> {
  const s = createAgentState(settings, metrics, log);
  await s.tcp.listen(settings.maps.filter((m) => m.protocol === "tcp"));
  await bindUdpListeners(s);
  // Said once every listener is bound: a port problem on any of them leaves only the start-up error.
  for (const l of s.tcp.listeners) {
    log.info("listening", { service: l.service, protocol: "tcp", addr: formatAddress(l.address) });
  }
  for (const l of s.listeners) log.info("listening", { service: l.service, addr: formatAddress(l.socket.address) });

  const sweeper = setInterval(() => {
    expireFlows(s, Date.now() - settings.flowIdleMs);
    if (s.active) metrics.serverRtt.child({ server: s.active.link.label }).set(s.active.link.rttSeconds());
  }, Math.max(100, Math.min(5_000, settings.flowIdleMs / 4)));
  // What the kernel dropped at the listeners (held-back clients, full buffers), counted once a second.
  const kernelCounter = setInterval(() => countKernelDrops(s, s.listeners), 1_000);
  countKernelDrops(s, s.listeners);

  await startSlot(s, 0);

  async function close() {
    if (s.closed) return;
    s.closed = true;
    clearInterval(sweeper);
    clearInterval(kernelCounter);
    stopOverload(s);
    s.rates.stop();
    s.refusals.close();
    const slots = allSlots(s);
    s.active = s.candidate = null;
    // TCP first: their stream resets must leave before the links close.
    await s.tcp.close();
    await Promise.all(slots.map((slot) => slot.link.close(CloseCode.NO_ERROR, "agent shutting down")));
    // Replies the batcher still holds under load (flush-pacer.ts) leave before their sockets close.
    s.toClients.flush();
    for (const l of s.listeners) l.socket.close();
  }

  return {
    listeners: [
      ...s.listeners.map((l) => ({ service: l.service, address: l.socket.address, protocol: "udp" as const })),
      ...s.tcp.listeners.map((l) => ({ ...l, protocol: "tcp" as const })),
    ],
    ready() {
      if (s.closed) return { ready: false, reason: "closed" };
      if (s.draining) return { ready: false, reason: "draining" };
      if (!s.active || s.active.link.state !== "ready") return { ready: false, reason: "not connected to a server" };
      const down = s.names.filter((n) => !s.published.get(n));
      return down.length === 0 ? { ready: true } : { ready: false, reason: `services down: ${down.join(",")}` };
    },
    currentServer: () => (s.active && s.active.link.state === "ready" ? s.active.link.label : null),
    reloadTls(config) {
      s.quicConfig = config;
      for (const slot of allSlots(s)) slot.link.reconfigure(config);
    },
    status: () => statusOf(s),
    serviceUp: (name) => s.published.get(name) ?? false,
    async drain(graceMs) {
      if (s.draining || s.closed) return close();
      s.draining = true;
      log.info("draining", { grace_ms: graceMs });
      // New datagrams are refused from now on; wait for replies to the ones already sent.
      const deadline = Date.now() + graceMs;
      const quietMs = Math.min(500, graceMs / 4);
      // Tunnelled TCP connections get the grace period to finish.
      while (Date.now() < deadline && (Date.now() - s.lastReply < quietMs || s.tcp.active > 0)) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await close();
    },
    close,
  };
}

/** A UDP listener per udp map, in order; a port that cannot be bound stops the start with one line. */
async function bindUdpListeners(s: AgentState): Promise<void> {
  for (const map of s.settings.maps) {
    if (map.protocol === "tcp") continue;
    let socket: UdpSocket;
    try {
      // Packets are delivered from the event loop, so never before `listener` below is set.
      socket = await openUdp({
        host: map.listen.host,
        port: map.listen.port,
        onPacket: (data, port, host) => onLocal(s, listener, data, port, host),
        onError: (error) => s.log.debug("listener_error", { service: map.service, error: error.message }),
      });
    } catch (error) {
      for (const l of s.listeners) l.socket.close();
      await s.tcp.close();
      throw bindError(error, "--map", "UDP", map.listen, `--map ${map.service}=udp://${formatAddress(map.listen)}`);
    }
    const listener: Listener = { service: map.service, socket, clients: new Map() };
    s.listeners.push(listener);
  }
}

/** Every link the agent holds: active, candidate, lingering. */
function allSlots(s: AgentState): LinkSlot[] {
  return [...(s.active ? [s.active] : []), ...(s.candidate ? [s.candidate] : []), ...s.lingering];
}

/** The agent's `GET /status` document. */
function statusOf(s: AgentState): AgentStatusDocument {
  const r = fourRates(s.rates);
  const services = [
    ...s.listeners.map((l) => ({ name: l.service, protocol: "udp" as const, listen: formatAddress(l.socket.address) })),
    ...s.tcp.listeners.map((l) => ({ name: l.service, protocol: "tcp" as const, listen: formatAddress(l.address) })),
  ];
  const active = s.active;
  return {
    component: "agent",
    ...processFacts(`${VERSION} (${COMMIT})`, s.startedAt),
    draining: s.draining,
    activeServer: active && active.link.state === "ready" ? active.link.label : null,
    servers: allSlots(s).map((slot) => ({ ...linkStatus(slot.link), active: slot === active })),
    services: services.map((svc) => ({
      ...svc,
      up: s.published.get(svc.name) ?? false,
      refused: s.refusedNow.get(svc.name) ?? null,
    })),
    flows: s.flowsById.size,
    tcpConnections: s.tcp.active,
    rates: {
      datagramsPerSecond: { toServer: r.d0, fromServer: r.d1 },
      bytesPerSecond: { toServer: r.b0, fromServer: r.b1 },
      windowSeconds: r.windowSeconds,
    },
  };
}
