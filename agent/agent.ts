/**
 * The Agent: local UDP listeners that behave like remote services. Every
 * local client address is its own flow; its datagrams are tunnelled to the
 * server on the channel the server granted for that service, and replies go
 * back to exactly that client.
 *
 * The agent uses one server at a time and moves to the next configured one
 * on GOAWAY or loss, keeping the old link a moment for replies in flight.
 */
import { CloseCode } from "../core/frame/close.ts";
import type { Address, ControlMessage } from "../core/frame/control.ts";
import {
  DATAGRAM_HEADER_LEN,
  type DatagramHeader,
  MAX_UDP_PAYLOAD,
  parseDatagram,
  writeDatagramHeader,
} from "../core/frame/datagram.ts";
import type { Logger } from "../core/log.ts";
import { formatAddress, LINK_STATE_VALUE, startLink, type Link } from "../core/client/link.ts";
import type { BackoffSettings } from "../core/client/backoff.ts";
import type { Config } from "../core/quic/native.ts";
import { openUdp, type UdpSocket } from "../core/runtime/udp.ts";
import { createBufferViews } from "../core/runtime/views.ts";
import type { AgentMetrics } from "./metrics.ts";

export interface AgentMapping {
  service: string;
  protocol: "udp" | "tcp";
  listen: Address;
}

export interface AgentSettings {
  servers: Address[];
  serverName?: string;
  maps: AgentMapping[];
  quicConfig: Config;
  flowIdleMs: number;
  keepaliveMs: number;
  connectTimeoutMs: number;
  backoff: BackoffSettings;
  /** How long an abandoned link stays open for replies already on their way. */
  lingerMs?: number;
  /** How often an OPEN refused as unknown_service is asked again. */
  reopenMs?: number;
  name?: string;
}

export interface Agent {
  /** Bound local listeners, in the order of the maps. */
  readonly listeners: { service: string; address: Address }[];
  ready(): { ready: boolean; reason?: string };
  /** The server currently in use, if connected. */
  currentServer(): string | null;
  serviceUp(service: string): boolean;
  close(): Promise<void>;
}

interface ServiceState {
  name: string;
  /** Channel granted on the active link; 0 when not open. */
  channel: number;
  up: boolean;
  refused: string | null;
}

interface Listener {
  service: ServiceState;
  socket: UdpSocket;
  clients: Map<string, Map<number, AgentFlow>>;
}

interface AgentFlow {
  id: number;
  listener: Listener;
  host: string;
  port: number;
  lastSeen: number;
}

interface LinkSlot {
  link: Link;
  /** channel -> service on this link */
  channels: Map<number, ServiceState>;
  /** SERVICE_STATUS that arrived before the OPEN's ACK was processed. */
  earlyStatus: Map<string, boolean>;
}

export async function startAgent(settings: AgentSettings, metrics: AgentMetrics, log: Logger): Promise<Agent> {
  const services = new Map<string, ServiceState>();
  const listeners: Listener[] = [];
  const flowsById = new Map<number, AgentFlow>();
  const header: DatagramHeader = { channel: 0, flow: 0, payloadLength: 0 };
  const out = createBufferViews(64 * 1024);
  const lingerMs = settings.lingerMs ?? 2_000;
  const reopenMs = settings.reopenMs ?? 1_000;
  let nextFlow = 1;
  let active: LinkSlot | null = null;
  let serverIndex = 0;
  let closed = false;
  const lingering = new Set<LinkSlot>();

  const toServer = metrics.datagrams.child({ direction: "to_server" });
  const fromServer = metrics.datagrams.child({ direction: "from_server" });
  const bytesTo = metrics.bytes.child({ direction: "to_server" });
  const bytesFrom = metrics.bytes.child({ direction: "from_server" });
  const drop = {
    oversized: metrics.drops.child({ reason: "oversized" }),
    service_down: metrics.drops.child({ reason: "service_down" }),
    not_connected: metrics.drops.child({ reason: "not_connected" }),
    unknown_flow: metrics.drops.child({ reason: "unknown_flow" }),
    malformed: metrics.drops.child({ reason: "malformed" }),
    queue_full: metrics.drops.child({ reason: "queue_full" }),
  };
  let lastOversizeLog = 0;

  for (const map of settings.maps) {
    if (!services.has(map.service)) services.set(map.service, { name: map.service, channel: 0, up: false, refused: null });
    metrics.serviceUp.child({ service: map.service }).set(0);
  }

  function newFlow(listener: Listener, host: string, port: number): AgentFlow {
    let id = nextFlow;
    while (flowsById.has(id)) id = id === 0xffffffff ? 1 : id + 1;
    nextFlow = id === 0xffffffff ? 1 : id + 1;
    const flow: AgentFlow = { id, listener, host, port, lastSeen: Date.now() };
    flowsById.set(id, flow);
    let byPort = listener.clients.get(host);
    if (!byPort) listener.clients.set(host, (byPort = new Map()));
    byPort.set(port, flow);
    metrics.flowsOpened.inc();
    metrics.flowsActive.set(flowsById.size);
    return flow;
  }

  function onLocal(listener: Listener, data: Uint8Array, port: number, host: string) {
    const service = listener.service;
    if (data.length > MAX_UDP_PAYLOAD) {
      drop.oversized.inc();
      const now = Date.now();
      if (now - lastOversizeLog > 5_000) {
        lastOversizeLog = now;
        log.warn("datagram_too_large", { service: service.name, bytes: data.length, max: MAX_UDP_PAYLOAD, client: `${host}:${port}` });
      }
      return;
    }
    const slot = active;
    if (slot === null || slot.link.state !== "ready" || service.channel === 0) return drop.not_connected.inc();
    if (!service.up) return drop.service_down.inc();
    const flow = listener.clients.get(host)?.get(port) ?? newFlow(listener, host, port);
    flow.lastSeen = Date.now();
    const buf = out.buffer;
    buf.set(data, DATAGRAM_HEADER_LEN);
    writeDatagramHeader(buf, service.channel, flow.id);
    if (!slot.link.sendDatagram(out.view(DATAGRAM_HEADER_LEN + data.length))) return drop.queue_full.inc();
    toServer.inc();
    bytesTo.inc(data.length);
  }

  function onTunnel(slot: LinkSlot, data: Uint8Array) {
    const error = parseDatagram(data, data.length, header);
    if (error !== null) return drop.malformed.inc();
    const service = slot.channels.get(header.channel);
    const flow = flowsById.get(header.flow);
    if (service === undefined || flow === undefined || flow.listener.service !== service) {
      return drop.unknown_flow.inc();
    }
    flow.lastSeen = Date.now();
    flow.listener.socket.send(data.subarray(DATAGRAM_HEADER_LEN), flow.port, flow.host);
    fromServer.inc();
    bytesFrom.inc(header.payloadLength);
  }

  function setServiceUp(service: ServiceState, up: boolean) {
    if (service.up === up) return;
    service.up = up;
    metrics.serviceUp.child({ service: service.name }).set(up ? 1 : 0);
    metrics.serviceChanges.child({ service: service.name, state: up ? "up" : "down" }).inc();
    log.info(up ? "service_up" : "service_down", { service: service.name });
  }

  async function openAll(slot: LinkSlot) {
    const started = Date.now();
    await Promise.all([...services.values()].map((s) => openOne(slot, s)));
    if (slot === active) metrics.reopen.observe((Date.now() - started) / 1000);
  }

  async function openOne(slot: LinkSlot, service: ServiceState): Promise<void> {
    while (!closed && slot === active && slot.link.state === "ready") {
      const result = await slot.link.request({ type: "open", service: service.name });
      if (slot !== active) return;
      if (result.ok) {
        slot.channels.set(result.channel, service);
        service.channel = result.channel;
        service.refused = null;
        metrics.opens.child({ result: "ack", reason: "ok" }).inc();
        // Up unless the server said otherwise together with the ACK.
        setServiceUp(service, slot.earlyStatus.get(service.name) ?? true);
        slot.earlyStatus.delete(service.name);
        log.info("service_opened", { service: service.name, channel: result.channel, server: slot.link.label });
        return;
      }
      if (result.code === "link_down") return;
      metrics.opens.child({ result: "nack", reason: result.code }).inc();
      if (service.refused !== result.code) {
        log.error("open_refused", { service: service.name, code: result.code, reason: result.reason, server: slot.link.label });
      }
      service.refused = result.code;
      setServiceUp(service, false);
      // A service nobody registered yet may appear (connector restarting); ask again later.
      await new Promise((r) => setTimeout(r, reopenMs));
    }
  }

  function resetChannels() {
    for (const s of services.values()) {
      s.channel = 0;
      setServiceUp(s, false);
    }
  }

  async function useServer(index: number) {
    serverIndex = index % settings.servers.length;
    const address = settings.servers[serverIndex]!;
    const label = formatAddress(address);
    const multi = settings.servers.length > 1;
    const slot: LinkSlot = { link: null as unknown as Link, channels: new Map(), earlyStatus: new Map() };
    active = slot;
    metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.connecting);
    slot.link = await startLink(
      {
        server: address,
        serverName: settings.serverName ?? address.host,
        role: "agent",
        name: settings.name ?? "agent",
        quicConfig: settings.quicConfig,
        keepaliveMs: settings.keepaliveMs,
        connectTimeoutMs: settings.connectTimeoutMs,
        // With other servers to try, give up on this one quickly and move on.
        backoff: multi ? { ...settings.backoff, maxAttempts: 2 } : settings.backoff,
        log,
      },
      {
        onReady() {
          metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.ready);
          slot.channels.clear();
          void openAll(slot);
        },
        onDown(_link, reason) {
          metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.backoff);
          if (slot !== active) return;
          resetChannels();
          log.warn("server_lost", { server: label, reason });
          if (multi && !closed) moveOn(slot, reason);
        },
        onReconnected(_link, reason) {
          metrics.reconnections.child({ reason }).inc();
        },
        onGaveUp() {
          if (slot === active && multi && !closed) moveOn(slot, "gave_up");
        },
        onControl(_link, msg: ControlMessage) {
          if (msg.type === "service_status") {
            const service = services.get(msg.service);
            if (!service || slot !== active) return;
            if (service.channel === 0) slot.earlyStatus.set(msg.service, msg.up);
            else setServiceUp(service, msg.up);
          } else if (msg.type === "goaway") {
            log.info("server_goaway", { server: label, reason: msg.reason, alternate: msg.alternate });
            if (slot === active && multi && !closed) moveOn(slot, "goaway");
          }
        },
        onDatagram(_link, data) {
          onTunnel(slot, data);
        },
      },
    );
  }

  function moveOn(old: LinkSlot, reason: string) {
    log.info("switching_server", { from: old.link.label, reason });
    // Keep the old link briefly: replies to requests it carried may still arrive on it.
    lingering.add(old);
    setTimeout(() => {
      lingering.delete(old);
      void old.link.close(CloseCode.NO_ERROR, "agent moved to another server");
    }, lingerMs);
    metrics.reconnections.child({ reason }).inc();
    resetChannels();
    void useServer(serverIndex + 1);
  }

  for (const map of settings.maps) {
    if (map.protocol !== "udp") throw new Error(`${map.service}: ${map.protocol} mappings are not supported yet`);
    const service = services.get(map.service)!;
    const listener: Listener = { service, socket: null as unknown as UdpSocket, clients: new Map() };
    listener.socket = await openUdp({
      host: map.listen.host,
      port: map.listen.port,
      onPacket: (data, port, host) => onLocal(listener, data, port, host),
      onError: (error) => log.debug("listener_error", { service: map.service, error: error.message }),
    });
    listeners.push(listener);
    log.info("listening", { service: map.service, addr: formatAddress(listener.socket.address) });
  }

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - settings.flowIdleMs;
    for (const flow of [...flowsById.values()]) {
      if (flow.lastSeen >= cutoff) continue;
      flowsById.delete(flow.id);
      flow.listener.clients.get(flow.host)?.delete(flow.port);
    }
    metrics.flowsActive.set(flowsById.size);
    if (active) metrics.serverRtt.child({ server: active.link.label }).set(active.link.rttSeconds());
  }, Math.max(100, Math.min(5_000, settings.flowIdleMs / 4)));

  await useServer(0);

  return {
    listeners: listeners.map((l) => ({ service: l.service.name, address: l.socket.address })),
    ready() {
      if (closed) return { ready: false, reason: "closed" };
      if (!active || active.link.state !== "ready") return { ready: false, reason: "not connected to a server" };
      const down = [...services.values()].filter((s) => !s.up).map((s) => s.name);
      return down.length === 0 ? { ready: true } : { ready: false, reason: `services down: ${down.join(",")}` };
    },
    currentServer: () => (active && active.link.state === "ready" ? active.link.label : null),
    serviceUp: (name) => services.get(name)?.up ?? false,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sweeper);
      const slots = [...lingering, ...(active ? [active] : [])];
      active = null;
      await Promise.all(slots.map((s) => s.link.close(CloseCode.NO_ERROR, "agent shutting down")));
      for (const l of listeners) l.socket.close();
    },
  };
}
