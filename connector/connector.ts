/**
 * The App Connector: registers one service with every configured server and
 * forwards tunnelled datagrams to `forward_addr`, one local UDP socket per
 * flow. Replies are accepted only from exactly `forward_addr` (address and
 * port) and are framed into one reused 64 KiB buffer.
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
import { createRepeatLog } from "../core/log-repeats.ts";
import { fourRates, linkStatus, processFacts, type ConnectorStatusDocument } from "../core/client/status.ts";
import { sampleRates } from "../core/rates.ts";
import { COMMIT, VERSION } from "../core/version.ts";
import { formatAddress, LINK_STATE_VALUE, startLink, type Link } from "../core/client/link.ts";
import type { BackoffSettings } from "../core/client/backoff.ts";
import type { Config } from "../core/quic/native.ts";
import { resolveAddress } from "../core/runtime/dns.ts";
import { openUdp, type UdpSocket } from "../core/runtime/udp.ts";
import { createBufferViews } from "../core/runtime/views.ts";
import type { ConnectorMetrics } from "./metrics.ts";
import { createTcpForwarder } from "./tcp.ts";

export interface ConnectorSettings {
  servers: Address[];
  serverName?: string;
  service: string;
  forward: Address;
  quicConfig: Config;
  flowIdleMs: number;
  graceMs: number;
  keepaliveMs: number;
  connectTimeoutMs: number;
  /** Largest QUIC packet sent (the configured max UDP payload); default 1350-byte packets. */
  maxUdpPayload?: number;
  backoff: BackoffSettings;
  /** Dial interval inside a server's announced restart window (default RESTART_RETRY_MS). */
  restartRetryMs?: number;
  name?: string;
}

export interface Connector {
  /** The resolved forward address replies must come from. */
  readonly forward: Address;
  ready(): { ready: boolean; reason?: string };
  /** Servers this connector is registered with right now. */
  registeredWith(): string[];
  /** Local flow sockets, for tests that need to inject into one. */
  flowSockets(): Address[];
  /** The `GET /status` document (core/client/status.ts). */
  status(): ConnectorStatusDocument;
  /** New TLS configuration (SIGHUP) for the next connection to each server; live connections keep theirs. */
  reloadTls(config: Config): void;
  /** Graceful: deregister everywhere (acknowledged), finish in-flight flows, close. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

interface ServerState {
  link: Link;
  channel: number;
  registered: boolean;
  /** When the link went down, to time re-registration. */
  downAt: number;
  /** When the current registration was accepted (ms), 0 while not registered. */
  registeredAt: number;
  flows: Map<number, FlowSocket>;
}

interface FlowSocket {
  server: ServerState;
  flow: number;
  socket: UdpSocket | null;
  /** Payloads that arrived while the socket was still opening. */
  backlog: Uint8Array[] | null;
  lastSeen: number;
  closed: boolean;
}

const BACKLOG_LIMIT = 64;

export async function startConnector(
  settings: ConnectorSettings,
  metrics: ConnectorMetrics,
  log: Logger,
): Promise<Connector> {
  const forward = await resolveAddress(settings.forward);
  const bindHost = forward.host.includes(":") ? "::" : "0.0.0.0";
  const servers: ServerState[] = [];
  const header: DatagramHeader = { channel: 0, flow: 0, payloadLength: 0 };
  // The one reused reply buffer: replies are framed here, never in a fresh allocation.
  const reply = createBufferViews(64 * 1024);
  let draining = false;
  let closed = false;
  let flowCount = 0;
  // A refusal is asked again at every reconnection: log once, then a count a minute.
  const refusals = createRepeatLog(log);
  const tcp = createTcpForwarder({
    forward,
    channelOf: (link) => {
      const s = servers.find((x) => x.link === link);
      return s?.registered ? s.channel : null;
    },
    metrics,
    log,
  });

  const toService = metrics.datagrams.child({ direction: "to_service" });
  const fromService = metrics.datagrams.child({ direction: "from_service" });
  const bytesTo = metrics.bytes.child({ direction: "to_service" });
  const bytesFrom = metrics.bytes.child({ direction: "from_service" });
  const drop = {
    source_mismatch: metrics.drops.child({ reason: "source_mismatch" }),
    oversized: metrics.drops.child({ reason: "oversized" }),
    malformed: metrics.drops.child({ reason: "malformed" }),
    unknown_channel: metrics.drops.child({ reason: "unknown_channel" }),
    queue_full: metrics.drops.child({ reason: "queue_full" }),
    send_error: metrics.drops.child({ reason: "send_error" }),
  };

  const startedAt = Date.now();
  // Rates for /status: datagrams and bytes to and from the service, sampled every second.
  const rates = sampleRates(() => [toService.value, fromService.value, bytesTo.value, bytesFrom.value]);

  function setFlowGauge() {
    metrics.flowsActive.set(flowCount);
  }

  function closeFlow(flow: FlowSocket) {
    if (flow.closed) return;
    flow.closed = true;
    flow.socket?.close();
    flow.server.flows.delete(flow.flow);
    flowCount--;
    setFlowGauge();
  }

  function openFlow(server: ServerState, flowId: number): FlowSocket {
    const flow: FlowSocket = { server, flow: flowId, socket: null, backlog: [], lastSeen: Date.now(), closed: false };
    server.flows.set(flowId, flow);
    flowCount++;
    metrics.flowsOpened.inc();
    setFlowGauge();
    openUdp({
      host: bindHost,
      port: 0,
      onPacket(data, port, host) {
        // Exact source check: address AND port must be forward_addr's.
        if (port !== forward.port || host !== forward.host) {
          drop.source_mismatch.inc();
          return;
        }
        if (data.length > MAX_UDP_PAYLOAD) {
          drop.oversized.inc();
          return;
        }
        flow.lastSeen = Date.now();
        const buf = reply.buffer;
        buf.set(data, DATAGRAM_HEADER_LEN);
        writeDatagramHeader(buf, server.channel, flowId);
        if (!server.link.sendDatagram(reply.view(DATAGRAM_HEADER_LEN + data.length), flowId)) {
          drop.queue_full.inc();
          return;
        }
        fromService.inc();
        bytesFrom.inc(data.length);
      },
      onError(error) {
        // ICMP port unreachable from a service that is down: count, never crash.
        drop.send_error.inc();
        log.debug("flow_socket_error", { flow: flowId, error: error.message });
      },
    }).then(
      (socket) => {
        if (flow.closed) return socket.close();
        flow.socket = socket;
        const backlog = flow.backlog!;
        flow.backlog = null;
        for (const payload of backlog) forwardPayload(flow, payload);
      },
      (error) => {
        log.warn("flow_socket_failed", { error: (error as Error).message });
        drop.send_error.inc(flow.backlog?.length ?? 0);
        closeFlow(flow);
      },
    );
    return flow;
  }

  function forwardPayload(flow: FlowSocket, payload: Uint8Array) {
    if (!flow.socket!.send(payload, forward.port, forward.host)) {
      drop.send_error.inc();
      return;
    }
    toService.inc();
    bytesTo.inc(payload.length);
  }

  function onDatagram(server: ServerState, data: Uint8Array) {
    const error = parseDatagram(data, data.length, header);
    if (error !== null) {
      (error.kind === "oversized" ? drop.oversized : drop.malformed).inc();
      return;
    }
    if (!server.registered || header.channel !== server.channel) {
      drop.unknown_channel.inc();
      return;
    }
    const flowId = header.flow;
    const flow = server.flows.get(flowId) ?? openFlow(server, flowId);
    flow.lastSeen = Date.now();
    const payload = data.subarray(DATAGRAM_HEADER_LEN);
    if (flow.socket !== null) return forwardPayload(flow, payload);
    if (flow.backlog!.length >= BACKLOG_LIMIT) {
      drop.queue_full.inc();
      return;
    }
    flow.backlog!.push(payload.slice());
  }

  async function register(server: ServerState) {
    const result = await server.link.request({ type: "register", service: settings.service });
    if (result.ok) {
      server.channel = result.channel;
      server.registered = true;
      server.registeredAt = Date.now();
      metrics.registrations.child({ result: "ack", reason: "ok" }).inc();
      metrics.registered.child({ server: server.link.label }).set(1);
      if (server.downAt > 0) metrics.reregistration.observe((Date.now() - server.downAt) / 1000);
      server.downAt = 0;
      log.info("registered", { server: server.link.label, service: settings.service, channel: result.channel });
    } else if (result.code !== "link_down") {
      metrics.registrations.child({ result: "nack", reason: result.code }).inc();
      refusals.log("error", "registration_refused", `${server.link.label}|${result.code}`, {
        server: server.link.label,
        service: settings.service,
        code: result.code,
        reason: result.reason,
      });
      // A refusal will not change by asking again at once; retry on the next connection.
      server.link.bounce(`registration refused: ${result.code}`);
    }
  }

  function dropServerFlows(server: ServerState) {
    for (const flow of [...server.flows.values()]) closeFlow(flow);
  }

  for (const address of settings.servers) {
    const server: ServerState = { link: null as unknown as Link, channel: 0, registered: false, downAt: 0, registeredAt: 0, flows: new Map() };
    servers.push(server);
    const label = formatAddress(address);
    metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.connecting);
    metrics.registered.child({ server: label }).set(0);
    server.link = await startLink(
      {
        server: address,
        serverName: settings.serverName ?? address.host,
        role: "connector",
        name: settings.name ?? `connector:${settings.service}`,
        quicConfig: settings.quicConfig,
        keepaliveMs: settings.keepaliveMs,
        connectTimeoutMs: settings.connectTimeoutMs,
        maxUdpPayload: settings.maxUdpPayload,
        backoff: settings.backoff,
        restartRetryMs: settings.restartRetryMs,
        log,
      },
      {
        onReady() {
          metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.ready);
          if (!draining) void register(server);
        },
        onDown(_link, reason) {
          server.registered = false;
          server.registeredAt = 0;
          server.downAt = Date.now();
          metrics.registered.child({ server: label }).set(0);
          metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.backoff);
          log.warn("server_lost", { server: label, reason });
          // Server-side flow ids die with the connection.
          dropServerFlows(server);
          tcp.linkDown(server.link);
        },
        onReconnected(_link, reason) {
          metrics.reconnections.child({ reason }).inc();
        },
        onControl(_link, msg: ControlMessage) {
          if (msg.type === "goaway") {
            log.info("server_goaway", {
              server: label,
              reason: msg.reason,
              restart_try_for_ms: msg.restart?.tryForMs ?? 0,
              restart_reconnect_in_ms: msg.restart?.reconnectInMs ?? 0,
            });
          }
        },
        onDatagram(_link, data) {
          onDatagram(server, data);
        },
        onStreamData: (link, conn, id, data, fin) => tcp.onStreamData(link, conn, id, data, fin),
        onStreamDrained: (link, conn, id) => tcp.onStreamDrained(link, conn, id),
        onStreamReset: (link, conn, id, code) => tcp.onStreamReset(link, conn, id, code),
      },
    );
  }

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - settings.flowIdleMs;
    for (const server of servers) {
      for (const flow of [...server.flows.values()]) {
        if (flow.lastSeen < cutoff) {
          closeFlow(flow);
          metrics.flowsExpired.inc();
        }
      }
    }
    for (const server of servers) metrics.serverRtt.child({ server: server.link.label }).set(server.link.rttSeconds());
  }, Math.max(100, Math.min(5_000, settings.flowIdleMs / 4)));

  async function close() {
    if (closed) return;
    closed = true;
    clearInterval(sweeper);
    rates.stop();
    refusals.close();
    for (const server of servers) dropServerFlows(server);
    await tcp.close();
    await Promise.all(servers.map((s) => s.link.close(CloseCode.NO_ERROR, "connector shutting down")));
  }

  log.info("connector_started", {
    service: settings.service,
    forward: formatAddress(forward),
    servers: settings.servers.map(formatAddress).join(","),
  });

  return {
    forward,
    ready() {
      if (closed) return { ready: false, reason: "closed" };
      if (draining) return { ready: false, reason: "draining" };
      return servers.some((s) => s.registered) ? { ready: true } : { ready: false, reason: "not registered with any server" };
    },
    registeredWith: () => servers.filter((s) => s.registered).map((s) => s.link.label),
    reloadTls(config) {
      for (const s of servers) s.link.reconfigure(config);
    },
    status(): ConnectorStatusDocument {
      const r = fourRates(rates);
      return {
        component: "connector",
        ...processFacts(`${VERSION} (${COMMIT})`, startedAt),
        draining,
        service: settings.service,
        forward: formatAddress(forward),
        servers: servers.map((s) => ({
          ...linkStatus(s.link),
          registered: s.registered,
          channel: s.registered ? s.channel : null,
          since: s.registeredAt > 0 ? new Date(s.registeredAt).toISOString() : null,
          flows: s.flows.size,
        })),
        flows: flowCount,
        tcpConnections: tcp.active,
        rates: {
          datagramsPerSecond: { toService: r.d0, fromService: r.d1 },
          bytesPerSecond: { toService: r.b0, fromService: r.b1 },
          windowSeconds: r.windowSeconds,
        },
      };
    },
    flowSockets() {
      const out: Address[] = [];
      for (const s of servers) for (const f of s.flows.values()) if (f.socket) out.push(f.socket.address);
      return out;
    },
    async drain() {
      if (draining || closed) return;
      draining = true;
      log.info("draining", { grace_ms: settings.graceMs });
      // Deregister everywhere and wait for the acknowledgements: after them no server sends new flows here.
      await Promise.all(
        servers
          .filter((s) => s.registered)
          .map(async (s) => {
            s.link.label && metrics.connectionState.child({ server: s.link.label }).set(LINK_STATE_VALUE.draining);
            const result = await s.link.request({ type: "deregister", service: settings.service });
            log.info("deregistered", { server: s.link.label, ok: result.ok });
          }),
      );
      // Finish in-flight requests: wait until every flow has been quiet for a moment, or the grace ends.
      const deadline = Date.now() + settings.graceMs;
      const quietMs = Math.min(1_000, settings.graceMs / 4);
      for (;;) {
        const now = Date.now();
        let busy = false;
        for (const s of servers) for (const f of s.flows.values()) if (now - f.lastSeen < quietMs) busy = true;
        if (tcp.active > 0) busy = true;
        if (!busy || now >= deadline) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      await close();
    },
    close,
  };
}
