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
import { formatHostPort } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import { createRepeatLog } from "../core/log-repeats.ts";
import { fourRates, linkStatus, processFacts, type AgentStatusDocument } from "../core/client/status.ts";
import { sampleRates } from "../core/rates.ts";
import { COMMIT, VERSION } from "../core/version.ts";
import { bindError } from "../core/startup.ts";
import { formatAddress, LINK_STATE_VALUE, RESTART_RETRY_MS, startLink, type Link } from "../core/client/link.ts";
import type { BackoffSettings } from "../core/client/backoff.ts";
import type { Config } from "../core/quic/native.ts";
import { openUdp, type UdpSocket } from "../core/runtime/udp.ts";
import { createBufferViews } from "../core/runtime/views.ts";
import type { AgentMetrics } from "./metrics.ts";
import { startAgentTcp, type TcpRoute } from "./tcp.ts";

/** For this long after its link became ready, an agent re-asks a refused OPEN at the restart interval. */
const FRESH_LINK_MS = 5_000;

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
  /** Largest QUIC packet sent (the configured max UDP payload); default 1350-byte packets. */
  maxUdpPayload?: number;
  backoff: BackoffSettings;
  /** Dial interval inside a server's announced restart window (default RESTART_RETRY_MS). */
  restartRetryMs?: number;
  /** How long an abandoned link stays open for replies already on their way. */
  lingerMs?: number;
  /** How often an OPEN refused as unknown_service is asked again. */
  reopenMs?: number;
  name?: string;
}

export interface Agent {
  /** Bound local listeners, in the order of the maps. */
  readonly listeners: { service: string; address: Address; protocol: "udp" | "tcp" }[];
  ready(): { ready: boolean; reason?: string };
  /** The server currently in use, if connected. */
  currentServer(): string | null;
  /** The `GET /status` document (core/client/status.ts). */
  status(): AgentStatusDocument;
  /** New TLS configuration (SIGHUP) for every connection made from now on; live ones keep theirs. */
  reloadTls(config: Config): void;
  serviceUp(service: string): boolean;
  /** Graceful: refuse new datagrams, deliver replies still on their way (up to `graceMs`), close. */
  drain(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

interface Listener {
  service: string;
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

/** A service as opened on one link. */
interface OpenService {
  channel: number;
  up: boolean;
}

/** One server link and what it has opened. */
interface LinkSlot {
  index: number;
  link: Link;
  open: Map<string, OpenService>;
  /** channel -> service name on this link */
  channels: Map<number, string>;
  /** SERVICE_STATUS that arrived before the OPEN's ACK was processed. */
  earlyStatus: Map<string, boolean>;
  /** Set when this slot is no longer used for new datagrams. */
  retired: boolean;
  /** When the link last became ready (ms since epoch). */
  readyAt: number;
}

export async function startAgent(settings: AgentSettings, metrics: AgentMetrics, log: Logger): Promise<Agent> {
  const names = [...new Set(settings.maps.map((m) => m.service))];
  const listeners: Listener[] = [];
  const flowsById = new Map<number, AgentFlow>();
  const header: DatagramHeader = { channel: 0, flow: 0, payloadLength: 0 };
  const out = createBufferViews(64 * 1024);
  const lingerMs = settings.lingerMs ?? 2_000;
  const reopenMs = settings.reopenMs ?? 1_000;
  const restartRetryMs = settings.restartRetryMs ?? RESTART_RETRY_MS;
  const multi = settings.servers.length > 1;
  let nextFlow = 1;
  /** The link new datagrams go to. */
  let active: LinkSlot | null = null;
  /** A link being brought up to replace the active one (make before break). */
  let candidate: LinkSlot | null = null;
  const lingering = new Set<LinkSlot>();
  const published = new Map<string, boolean>();
  // Refused OPENs are asked again every `reopenMs`: log once, then a count a minute.
  const refusals = createRepeatLog(log);
  /** The NACK code of each service's last refused OPEN, while refused (for /status). */
  const refusedNow = new Map<string, string>();
  const startedAt = Date.now();
  let closed = false;
  let draining = false;
  let lastReply = 0;

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
    draining: metrics.drops.child({ reason: "draining" }),
  };
  let lastOversizeLog = 0;
  // Replaced on reload: links started later (another server) use the newest files.
  let quicConfig = settings.quicConfig;
  // Rates for /status: datagrams and bytes to and from the server, sampled every second.
  const rates = sampleRates(() => [toServer.value, fromServer.value, bytesTo.value, bytesFrom.value]);

  for (const name of names) {
    published.set(name, false);
    metrics.serviceUp.child({ service: name }).set(0);
  }

  /** Publishes each service's state as the active link sees it: gauge, counter, log. */
  function publish() {
    for (const name of names) {
      const up = active?.open.get(name)?.up ?? false;
      if (published.get(name) === up) continue;
      published.set(name, up);
      metrics.serviceUp.child({ service: name }).set(up ? 1 : 0);
      metrics.serviceChanges.child({ service: name, state: up ? "up" : "down" }).inc();
      log.info(up ? "service_up" : "service_down", { service: name, server: active?.link.label ?? null });
    }
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
    if (data.length > MAX_UDP_PAYLOAD) {
      drop.oversized.inc();
      const now = Date.now();
      if (now - lastOversizeLog > 5_000) {
        lastOversizeLog = now;
        log.warn("datagram_too_large", { service: listener.service, bytes: data.length, max: MAX_UDP_PAYLOAD, client: `${host}:${port}` });
      }
      return;
    }
    if (draining) return drop.draining.inc();
    const slot = active;
    const open = slot?.open.get(listener.service);
    if (slot === null || open === undefined || slot.link.state !== "ready") return drop.not_connected.inc();
    if (!open.up) return drop.service_down.inc();
    // Overloaded: drop before any copying (the queue drains at the next flush).
    if (!slot.link.canSendDatagram()) return drop.queue_full.inc();
    const flow = listener.clients.get(host)?.get(port) ?? newFlow(listener, host, port);
    flow.lastSeen = Date.now();
    const buf = out.buffer;
    buf.set(data, DATAGRAM_HEADER_LEN);
    writeDatagramHeader(buf, open.channel, flow.id);
    if (!slot.link.sendDatagram(out.view(DATAGRAM_HEADER_LEN + data.length), flow.id)) return drop.queue_full.inc();
    toServer.inc();
    bytesTo.inc(data.length);
  }

  /** Replies: accepted from any link this agent still holds (a retired one may carry late replies). */
  function onTunnel(slot: LinkSlot, data: Uint8Array) {
    const error = parseDatagram(data, data.length, header);
    if (error !== null) return drop.malformed.inc();
    const service = slot.channels.get(header.channel);
    const flow = flowsById.get(header.flow);
    if (service === undefined || flow === undefined || flow.listener.service !== service) {
      return drop.unknown_flow.inc();
    }
    flow.lastSeen = lastReply = Date.now();
    flow.listener.socket.send(data.subarray(DATAGRAM_HEADER_LEN), flow.port, flow.host);
    fromServer.inc();
    bytesFrom.inc(header.payloadLength);
  }

  async function openAll(slot: LinkSlot) {
    const started = Date.now();
    await Promise.all(names.map((name) => openOne(slot, name)));
    if (slot.retired || slot.link.state !== "ready") return;
    if (slot === candidate) promote(slot, "switch");
    if (slot === active) metrics.reopen.observe((Date.now() - started) / 1000);
  }

  async function openOne(slot: LinkSlot, name: string): Promise<void> {
    while (!closed && !slot.retired && slot.link.state === "ready") {
      const result = await slot.link.request({ type: "open", service: name });
      if (slot.retired) return;
      if (result.ok) {
        slot.channels.set(result.channel, name);
        // Up unless the server said otherwise together with the ACK.
        slot.open.set(name, { channel: result.channel, up: slot.earlyStatus.get(name) ?? true });
        slot.earlyStatus.delete(name);
        refusedNow.delete(name);
        metrics.opens.child({ result: "ack", reason: "ok" }).inc();
        log.info("service_opened", { service: name, channel: result.channel, server: slot.link.label });
        if (slot === active) publish();
        return;
      }
      if (result.code === "link_down") return;
      metrics.opens.child({ result: "nack", reason: result.code }).inc();
      refusedNow.set(name, result.code);
      refusals.log("error", "open_refused", `${name}|${result.code}|${slot.link.label}`, {
        service: name,
        code: result.code,
        reason: result.reason,
        server: slot.link.label,
      });
      // A service nobody registered yet may appear (a connector restarting); ask again later.
      // Right after a (re)connection its connectors are likely re-registering too: ask often.
      const fresh = Date.now() - slot.readyAt < FRESH_LINK_MS;
      await new Promise((r) => setTimeout(r, fresh ? Math.min(reopenMs, restartRetryMs) : reopenMs));
    }
  }

  /** Makes `slot` the active link; the previous one lingers for replies already under way. */
  function promote(slot: LinkSlot, reason: string) {
    const old = active;
    active = slot;
    if (candidate === slot) candidate = null;
    if (old && old !== slot) {
      retire(old);
      metrics.reconnections.child({ reason }).inc();
      log.info("switched_server", { from: old.link.label, to: slot.link.label, reason });
    }
    publish();
  }

  function retire(slot: LinkSlot) {
    slot.retired = true;
    lingering.add(slot);
    setTimeout(() => {
      lingering.delete(slot);
      void slot.link.close(CloseCode.NO_ERROR, "agent moved to another server");
    }, lingerMs);
  }

  /** Brings up a link to the next server while the active one (if any) keeps serving. */
  function startCandidate(after: number, reason: string) {
    if (closed || candidate !== null) return;
    const index = (after + 1) % settings.servers.length;
    log.info("trying_server", { server: formatAddress(settings.servers[index]!), reason });
    void startSlot(index).then((slot) => {
      if (closed) void slot.link.close();
    });
  }

  async function startSlot(index: number): Promise<LinkSlot> {
    const address = settings.servers[index]!;
    const label = formatAddress(address);
    const slot: LinkSlot = {
      index,
      link: null as unknown as Link,
      open: new Map(),
      channels: new Map(),
      earlyStatus: new Map(),
      retired: false,
      readyAt: 0,
    };
    if (active === null) active = slot;
    else candidate = slot;
    metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.connecting);
    slot.link = await startLink(
      {
        server: address,
        serverName: settings.serverName ?? address.host,
        role: "agent",
        name: settings.name ?? "agent",
        quicConfig,
        keepaliveMs: settings.keepaliveMs,
        connectTimeoutMs: settings.connectTimeoutMs,
        maxUdpPayload: settings.maxUdpPayload,
        // With other servers to try, give up on this one quickly and move on.
        backoff: multi ? { ...settings.backoff, maxAttempts: 2 } : settings.backoff,
        restartRetryMs: settings.restartRetryMs,
        log,
      },
      {
        onReady() {
          metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.ready);
          slot.readyAt = Date.now();
          slot.open.clear();
          slot.channels.clear();
          void openAll(slot);
        },
        onDown(_link, reason) {
          metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.backoff);
          slot.open.clear();
          slot.channels.clear();
          tcp.linkDown(slot.link);
          if (slot !== active || slot.retired) return;
          log.warn("server_lost", { server: label, reason });
          publish();
          if (!multi || closed) return;
          // Break before make is all that is left: use the candidate if it is up already.
          if (candidate && candidate.link.state === "ready") promote(candidate, reason);
          else startCandidate(slot.index, reason);
        },
        onReconnected(_link, reason) {
          metrics.reconnections.child({ reason }).inc();
        },
        onGaveUp() {
          if (slot === candidate) {
            candidate = null;
            void slot.link.close();
            startCandidate(slot.index, "gave_up");
          } else if (slot === active && multi) {
            startCandidate(slot.index, "gave_up");
          }
        },
        onControl(_link, msg: ControlMessage) {
          if (msg.type === "service_status") {
            const open = slot.open.get(msg.service);
            if (open === undefined) slot.earlyStatus.set(msg.service, msg.up);
            else open.up = msg.up;
            if (slot === active) publish();
          } else if (msg.type === "goaway") {
            log.info("server_goaway", {
              server: label,
              reason: msg.reason,
              alternate: msg.alternate,
              restart_try_for_ms: msg.restart?.tryForMs ?? 0,
            });
            if (slot === active && multi) startCandidate(slot.index, "goaway");
          }
        },
        onDatagram(_link, data) {
          onTunnel(slot, data);
        },
        onStreamData: (link, conn, id, data, fin) => tcp.onStreamData(link, conn, id, data, fin),
        onStreamDrained: (link, conn, id) => tcp.onStreamDrained(link, conn, id),
        onStreamReset: (link, conn, id, code) => tcp.onStreamReset(link, conn, id, code),
      },
    );
    return slot;
  }

  /** New TCP connections use the active link, like new datagrams. */
  const tcpRoute = (service: string): TcpRoute => {
    if (draining || closed) return "draining";
    const conn = active?.link.connection() ?? null;
    if (active === null || conn === null) return "not_connected";
    const open = active.open.get(service);
    if (open === undefined || !open.up) return "service_down";
    return { link: active.link, conn, channel: open.channel };
  };
  const tcp = await startAgentTcp({ maps: settings.maps.filter((m) => m.protocol === "tcp"), route: tcpRoute, metrics, log });

  for (const map of settings.maps) {
    if (map.protocol === "tcp") continue;
    const listener: Listener = { service: map.service, socket: null as unknown as UdpSocket, clients: new Map() };
    try {
      listener.socket = await openUdp({
        host: map.listen.host,
        port: map.listen.port,
        onPacket: (data, port, host) => onLocal(listener, data, port, host),
        onError: (error) => log.debug("listener_error", { service: map.service, error: error.message }),
      });
    } catch (error) {
      for (const l of listeners) l.socket.close();
      await tcp.close();
      throw bindError(error, "--map", "UDP", map.listen, `--map ${map.service}=udp://${formatHostPort(map.listen)}`);
    }
    listeners.push(listener);
  }
  // Said once every listener is bound: a port problem on any of them leaves only the start-up error.
  for (const l of tcp.listeners) log.info("listening", { service: l.service, protocol: "tcp", addr: formatAddress(l.address) });
  for (const l of listeners) log.info("listening", { service: l.service, addr: formatAddress(l.socket.address) });

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

  await startSlot(0);

  async function close() {
    if (closed) return;
    closed = true;
    clearInterval(sweeper);
    rates.stop();
    refusals.close();
    const slots = [...lingering, ...(active ? [active] : []), ...(candidate ? [candidate] : [])];
    active = candidate = null;
    // TCP first: their stream resets must leave before the links close.
    await tcp.close();
    await Promise.all(slots.map((s) => s.link.close(CloseCode.NO_ERROR, "agent shutting down")));
    for (const l of listeners) l.socket.close();
  }

  return {
    listeners: [
      ...listeners.map((l) => ({ service: l.service, address: l.socket.address, protocol: "udp" as const })),
      ...tcp.listeners.map((l) => ({ ...l, protocol: "tcp" as const })),
    ],
    ready() {
      if (closed) return { ready: false, reason: "closed" };
      if (draining) return { ready: false, reason: "draining" };
      if (!active || active.link.state !== "ready") return { ready: false, reason: "not connected to a server" };
      const down = names.filter((n) => !published.get(n));
      return down.length === 0 ? { ready: true } : { ready: false, reason: `services down: ${down.join(",")}` };
    },
    currentServer: () => (active && active.link.state === "ready" ? active.link.label : null),
    reloadTls(config) {
      quicConfig = config;
      for (const slot of [active, candidate, ...lingering]) slot?.link.reconfigure(config);
    },
    status(): AgentStatusDocument {
      const slots = [...(active ? [active] : []), ...(candidate ? [candidate] : []), ...lingering];
      const r = fourRates(rates);
      const services = [
        ...listeners.map((l) => ({ name: l.service, protocol: "udp" as const, listen: formatAddress(l.socket.address) })),
        ...tcp.listeners.map((l) => ({ name: l.service, protocol: "tcp" as const, listen: formatAddress(l.address) })),
      ];
      return {
        component: "agent",
        ...processFacts(`${VERSION} (${COMMIT})`, startedAt),
        draining,
        activeServer: active && active.link.state === "ready" ? active.link.label : null,
        servers: slots.map((slot) => ({ ...linkStatus(slot.link), active: slot === active })),
        services: services.map((svc) => ({ ...svc, up: published.get(svc.name) ?? false, refused: refusedNow.get(svc.name) ?? null })),
        flows: flowsById.size,
        tcpConnections: tcp.active,
        rates: {
          datagramsPerSecond: { toServer: r.d0, fromServer: r.d1 },
          bytesPerSecond: { toServer: r.b0, fromServer: r.b1 },
          windowSeconds: r.windowSeconds,
        },
      };
    },
    serviceUp: (name) => published.get(name) ?? false,
    async drain(graceMs) {
      if (draining || closed) return close();
      draining = true;
      log.info("draining", { grace_ms: graceMs });
      // New datagrams are refused from now on; wait for replies to the ones already sent.
      const deadline = Date.now() + graceMs;
      const quietMs = Math.min(500, graceMs / 4);
      // Tunnelled TCP connections get the grace period to finish.
      while (Date.now() < deadline && (Date.now() - lastReply < quietMs || tcp.active > 0)) await new Promise((r) => setTimeout(r, 20));
      await close();
    },
    close,
  };
}
