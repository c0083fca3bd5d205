/**
 * The Intermediate Server: accepts agents and connectors over QUIC, registers
 * connectors per service, tells each peer its observed address, and relays
 * DATAGRAMs per flow between them.
 */
import { CloseCode } from "../core/frame/close.ts";
import {
  type Address,
  type ControlMessage,
  type NackCode,
  PROTOCOL_VERSIONS,
  alpnFor,
  createControlReader,
  encodeControl,
  validateServiceName,
  versionOfAlpn,
} from "../core/frame/control.ts";
import { DATAGRAM_HEADER_LEN, type DatagramHeader, parseDatagram, writeDatagramHeader } from "../core/frame/datagram.ts";
import { formatAddress } from "../core/net/address.ts";
import type { Logger } from "../core/log.ts";
import { createRepeatLog } from "../core/log-repeats.ts";
import { createEndpoint, type CloseInfo, type Endpoint, type QuicConnection } from "../core/quic/endpoint.ts";
import { classifyHandshakeFailure, refusalHint } from "./refusals.ts";
import { serverQuicConfig } from "../core/quic/config.ts";
import {
  type Peer,
  createPeer,
  createRelay,
  drainConnector,
  expireFlows,
  findBinding,
  openService,
  registerConnector,
  removeConnector,
  removePeer,
  routeFromAgent,
  routeFromConnector,
} from "./relay.ts";
import type { ServerMetrics } from "./metrics.ts";
import { buildStatus, type PeerFacts } from "./status.ts";
import { createTrafficSampler, type ServerStatusWithRates } from "./traffic.ts";
import { createStreamRelay } from "./streams.ts";
import { readIdentity } from "../core/identity.ts";
import { COMMIT, VERSION } from "../core/version.ts";

export interface ServerSettings {
  listen: Address;
  certPem: Uint8Array;
  keyPem: Uint8Array;
  /** Client CA for mTLS; without it the server runs open. */
  clientCaPem?: Uint8Array;
  /** Authorises a peer's requests from its certificate; undefined allows all. */
  authorise?: (cert: Uint8Array | null, role: "agent" | "connector", service: string) => boolean;
  graceMs: number;
  idleTimeoutMs: number;
  /** Largest UDP payload of a QUIC packet (default 1350). */
  maxUdpPayload?: number;
  keepaliveMs: number;
  flowIdleMs: number;
  retryKey?: Uint8Array;
  /** Key for stateless reset tokens; keep it across restarts so old peers are reset at once. */
  resetKey?: Uint8Array;
  limits?: Partial<ServerLimits>;
  /**
   * What GOAWAY says on a drain: come back after `reconnectInMs` and keep
   * trying at a short interval for `tryForMs` (0 = this is no restart).
   * Default: reconnect at once, try for 60 s.
   */
  restart?: { reconnectInMs: number; tryForMs: number };
  /** Protocol versions accepted (ALPN), default every one this code speaks; tests pin [1] to play an old server. */
  versions?: readonly number[];
}

export interface ServerLimits {
  flowsPerAgent: number;
  registrationsPerConnection: number;
  helloTimeoutMs: number;
  connectionsPerAddress: number;
  handshakes: number;
  controlMessage: number;
  datagramsPerSecond: number;
}

const DEFAULT_LIMITS: ServerLimits = {
  flowsPerAgent: 4096,
  registrationsPerConnection: 64,
  helloTimeoutMs: 5_000,
  connectionsPerAddress: 256,
  handshakes: 1024,
  controlMessage: 4096,
  datagramsPerSecond: 200_000,
};

export interface Server {
  readonly address: Address;
  readonly draining: boolean;
  readonly ready: () => { ready: boolean; reason?: string };
  /** Graceful: GOAWAY to everyone, relay existing flows for the grace period, then close. */
  drain(alternate?: string): Promise<void>;
  /** Immediate close of every connection and the socket. */
  close(): Promise<void>;
  /** Flows currently relayed, for tests and the drain loop. */
  flowCount(): number;
  /** New certificate, key and client CA for connections accepted from now on; existing ones are kept. */
  reloadTls(tls: { certPem: Uint8Array; keyPem: Uint8Array; clientCaPem?: Uint8Array }): void;
  /** The `GET /status` document (server/status.ts). */
  status(): ServerStatusWithRates;
}

interface Session {
  conn: QuicConnection;
  /** Protocol version negotiated by ALPN: the layout of every control message on this connection. */
  version: number;
  peer: Peer<QuicConnection> | null;
  reader: ReturnType<typeof createControlReader>;
  helloTimer: ReturnType<typeof setTimeout> | null;
  registrations: number;
  startedAt: number;
  /** Who the peer is, for /status (set at HELLO). */
  facts: PeerFacts;
}

export async function startServer(
  settings: ServerSettings,
  metrics: ServerMetrics,
  log: Logger,
): Promise<Server> {
  const limits = { ...DEFAULT_LIMITS, ...settings.limits };
  const relay = createRelay<QuicConnection>();
  const peers = new Set<Peer<QuicConnection>>();
  const header: DatagramHeader = { channel: 0, flow: 0, payloadLength: 0 };
  let draining = false;
  let nextPeerId = 1;
  const startedAt = Date.now();
  const restart = settings.restart ?? { reconnectInMs: 0, tryForMs: 60_000 };
  const streams = createStreamRelay({
    relay,
    metrics,
    log,
    peerOf: (conn) => (conn.context as Session | undefined)?.peer ?? null,
    draining: () => draining,
  });

  const relayedA2C = metrics.datagramsRelayed.child({ direction: "agent_to_connector" });
  const relayedC2A = metrics.datagramsRelayed.child({ direction: "connector_to_agent" });
  const bytesA2C = metrics.bytesRelayed.child({ direction: "agent_to_connector" });
  const bytesC2A = metrics.bytesRelayed.child({ direction: "connector_to_agent" });
  const flowsOpened = metrics.flowsOpened;
  const dropCells = new Map<string, { inc(n?: number): void }>();
  const dropped = (reason: string) => {
    let cell = dropCells.get(reason);
    if (!cell) dropCells.set(reason, (cell = metrics.drops.child({ reason })));
    cell.inc();
  };
  const updateGauges = () => {
    metrics.flowsActive.set(relay.flowCount);
    let up = 0;
    for (const s of relay.services.values()) if (s.connectors.some((b) => !b.draining)) up++;
    metrics.servicesRegistered.set(up);
  };

  const send = (conn: QuicConnection, msg: ControlMessage) =>
    conn.writeStream(0, encodeControl(msg, (conn.context as Session).version));
  const alpn = alpnFor(settings.versions ?? PROTOCOL_VERSIONS);
  const quicConfig = (tls: { certPem: Uint8Array; keyPem: Uint8Array; clientCaPem?: Uint8Array }) => {
    const config = serverQuicConfig({
      ...tls,
      idleTimeoutMs: settings.idleTimeoutMs,
      maxUdpPayload: settings.maxUdpPayload,
    });
    // Every version we speak: a client picks the newest it also speaks (docs/protocol.md §1).
    config.setApplicationProtos(alpn);
    return config;
  };
  const goaway = (alternate: string): ControlMessage =>
    restart.tryForMs > 0
      ? { type: "goaway", reason: "server restarting", alternate, restart }
      : { type: "goaway", reason: "server draining", alternate };
  let alternateNamed = "";

  const notifyAgents = (service: string, up: boolean) => {
    const entry = relay.services.get(service);
    if (!entry) return;
    log.info(up ? "service_up" : "service_down", { service, agents: entry.agents.size });
    for (const binding of entry.agents) send(binding.peer.conn, { type: "service_status", service, up });
  };

  /** `kind` is a small fixed set (a metric label); `detail` is for the log and the peer. */
  const protocolError = (session: Session, kind: string, detail = kind) => {
    metrics.protocolErrors.child({ kind }).inc();
    log.warn("protocol_error", { peer: remoteText(session.conn), kind, error: detail });
    session.conn.close(CloseCode.PROTOCOL_ERROR, detail);
  };

  // A refused client asks again (every second for an agent's OPEN): log once, then a count a minute.
  const refusals = createRepeatLog(log);
  const nack = (
    session: Session,
    msg: { req: number; service: string },
    code: NackCode,
    reason: string,
    kind: "registrations" | "opens",
  ) => {
    metrics[kind].child({ result: "nack", reason: code }).inc();
    const peer = remoteText(session.conn);
    refusals.log("info", kind === "registrations" ? "register_refused" : "open_refused", `${peer}|${msg.service}|${code}`, {
      peer,
      service: msg.service,
      code,
      reason,
    });
    send(session.conn, { type: "nack", req: msg.req, code, reason });
  };

  /** A handshake that never completed: counted by reason, logged once per client address and reason a minute. */
  function handshakeFailed(conn: QuicConnection, info: CloseInfo) {
    const failure = classifyHandshakeFailure(info);
    metrics.handshakeFailures.child({ reason: failure.reason }).inc();
    refusals.log("warn", "handshake_failed", `${failure.reason}|${conn.remote.host}`, {
      peer: remoteText(conn),
      reason: failure.reason,
      alert: failure.alert,
      refused_by: failure.by,
      hint: refusalHint(failure),
    });
  }

  function onControl(session: Session, msg: ControlMessage) {
    const conn = session.conn;
    if (session.peer === null) {
      if (msg.type !== "hello") return protocolError(session, "expected_hello", `expected hello, got ${msg.type}`);
      if (msg.version !== session.version) {
        return protocolError(
          session,
          "unsupported_version",
          `HELLO says protocol version ${msg.version}, but ALPN agreed on ${session.version}`,
        );
      }
      if (session.helloTimer) clearTimeout(session.helloTimer);
      session.helloTimer = null;
      // A peer that says HELLO no longer counts against its address's unproven connections.
      conn.markProven();
      const peer = createPeer(nextPeerId++, msg.role, conn);
      session.peer = peer;
      session.facts.identity = identityText(conn.peerCertificate());
      session.facts.version = msg.software ? msg.software : null;
      peers.add(peer);
      metrics.connectionsActive.child({ role: msg.role }).inc();
      metrics.connectionsTotal.child({ role: msg.role }).inc();
      log.info("peer_hello", {
        peer: remoteText(conn),
        role: msg.role,
        name: msg.name,
        protocol: session.version,
        software: msg.software ?? null,
      });
      send(conn, { type: "welcome", version: session.version, observed: conn.remote });
      if (draining) send(conn, goaway(alternateNamed));
      return;
    }
    const peer = session.peer;
    switch (msg.type) {
      case "register": {
        if (peer.role !== "connector") return nack(session, msg, "invalid_request", "only connectors register", "registrations");
        const bad = validateServiceName(msg.service);
        if (bad) return nack(session, msg, "invalid_request", bad, "registrations");
        if (draining) return nack(session, msg, "draining", "server is draining", "registrations");
        if (settings.authorise && !settings.authorise(conn.peerCertificate(), "connector", msg.service)) {
          return nack(session, msg, "not_authorised", `certificate does not name connector for ${msg.service}`, "registrations");
        }
        const existing = findBinding(peer, msg.service);
        if (existing && !existing.draining) return nack(session, msg, "duplicate", `${msg.service} already registered on this connection`, "registrations");
        if (session.registrations >= limits.registrationsPerConnection) {
          return nack(session, msg, "limit_exceeded", `at most ${limits.registrationsPerConnection} registrations per connection`, "registrations");
        }
        if (existing) removeConnector(relay, existing, Date.now());
        const result = registerConnector(relay, peer, msg.service);
        if (!result) return nack(session, msg, "limit_exceeded", "no free channel", "registrations");
        session.registrations++;
        session.facts.registeredAt.set(msg.service, Date.now());
        metrics.registrations.child({ result: "ack", reason: "ok" }).inc();
        log.info("registered", { peer: remoteText(conn), service: msg.service, channel: result.binding.channel });
        send(conn, { type: "ack", req: msg.req, channel: result.binding.channel });
        if (result.cameUp) notifyAgents(msg.service, true);
        updateGauges();
        return;
      }
      case "deregister": {
        const binding = peer.role === "connector" ? findBinding(peer, msg.service) : undefined;
        if (!binding) return nack(session, msg, "invalid_request", `${msg.service} is not registered here`, "registrations");
        const wentDown = drainConnector(relay, binding, Date.now());
        metrics.deregistrations.inc();
        log.info("deregistered", { peer: remoteText(conn), service: msg.service });
        send(conn, { type: "ack", req: msg.req, channel: 0 });
        if (wentDown) notifyAgents(msg.service, false);
        updateGauges();
        return;
      }
      case "open": {
        if (peer.role !== "agent") return nack(session, msg, "invalid_request", "only agents open services", "opens");
        const bad = validateServiceName(msg.service);
        if (bad) return nack(session, msg, "invalid_request", bad, "opens");
        if (settings.authorise && !settings.authorise(conn.peerCertificate(), "agent", msg.service)) {
          return nack(session, msg, "not_authorised", `certificate does not allow ${msg.service}`, "opens");
        }
        if (findBinding(peer, msg.service)) return nack(session, msg, "duplicate", `${msg.service} already open`, "opens");
        const result = openService(relay, peer, msg.service);
        if (!result) return nack(session, msg, "unknown_service", `no connector has registered ${msg.service}`, "opens");
        metrics.opens.child({ result: "ack", reason: "ok" }).inc();
        log.info("opened", { peer: remoteText(conn), service: msg.service, channel: result.binding.channel, up: result.up });
        send(conn, { type: "ack", req: msg.req, channel: result.binding.channel });
        if (!result.up) send(conn, { type: "service_status", service: msg.service, up: false });
        return;
      }
      case "probe":
        return answerProbe(session, peer, msg);
      default:
        return protocolError(session, "unexpected_message", `unexpected ${msg.type} from ${peer.role}`);
    }
  }

  /**
   * PROBE (ztna doctor): may this identity act for the service in its role,
   * and how many connectors serve it here. No side effects; connector counts
   * only for a service the peer may use.
   */
  function answerProbe(session: Session, peer: Peer<QuicConnection>, msg: { req: number; service: string }) {
    let allowed: boolean | null = null;
    let live = 0;
    let leaving = 0;
    if (msg.service !== "") {
      allowed = settings.authorise ? settings.authorise(session.conn.peerCertificate(), peer.role, msg.service) : true;
      if (allowed) for (const b of relay.services.get(msg.service)?.connectors ?? []) b.draining ? leaving++ : live++;
    }
    send(session.conn, {
      type: "probe_reply",
      req: msg.req,
      serverTimeMs: Date.now(),
      allowed,
      connectors: Math.min(live, 0xffff),
      draining: Math.min(leaving, 0xffff),
      software: `${VERSION} (${COMMIT})`,
    });
  }

  function onDatagram(conn: QuicConnection, buf: Uint8Array) {
    const len = buf.length;
    const session = conn.context as Session;
    const peer = session.peer;
    if (peer === null) return dropped("before_hello");
    // Channel 0 is never granted: it is the path probe (ztna doctor), sent back as it came, whatever its size.
    if (len >= DATAGRAM_HEADER_LEN && buf[0] === 0 && buf[1] === 0) {
      if (!conn.sendDatagram(buf)) dropped("queue_full");
      return;
    }
    const error = parseDatagram(buf, len, header);
    if (error !== null) return dropped(error.kind === "oversized" ? "oversized" : "malformed");
    const now = Date.now();
    if (peer.role === "agent") {
      const flowsBefore = relay.flowCount;
      const flow = routeFromAgent(relay, peer, header.channel, header.flow, now, !draining, limits.flowsPerAgent);
      if (typeof flow === "string") return dropped(flow);
      if (relay.flowCount !== flowsBefore) {
        flowsOpened.inc();
        metrics.flowsActive.set(relay.flowCount);
      }
      writeDatagramHeader(buf, flow.connector.channel, flow.connectorFlow);
      // Fair turns at the connector's connection: per agent, then per flow.
      if (!flow.connector.peer.conn.sendDatagram(buf, peer.id, header.flow)) return dropped("queue_full");
      relayedA2C.inc();
      bytesA2C.inc(header.payloadLength);
      flow.traffic.datagramsToConnector++;
      flow.traffic.bytesToConnector += header.payloadLength;
    } else {
      const flow = routeFromConnector(peer, header.channel, header.flow, now);
      if (flow === undefined) return dropped("unknown_flow");
      writeDatagramHeader(buf, flow.agent.channel, flow.agentFlow);
      if (!flow.agent.peer.conn.sendDatagram(buf, peer.id, header.flow)) return dropped("queue_full");
      relayedC2A.inc();
      bytesC2A.inc(header.payloadLength);
      flow.traffic.datagramsToAgent++;
      flow.traffic.bytesToAgent += header.payloadLength;
    }
  }

  const endpoint: Endpoint = await createEndpoint({
    bind: settings.listen,
    server: true,
    retry: true,
    retryKey: settings.retryKey,
    keepaliveMs: settings.keepaliveMs,
    maxUdpPayload: settings.maxUdpPayload,
    maxUnprovenPerAddress: limits.connectionsPerAddress,
    maxHandshakes: limits.handshakes,
    maxDatagramsPerSecond: limits.datagramsPerSecond,
    config: quicConfig({ certPem: settings.certPem, keyPem: settings.keyPem, clientCaPem: settings.clientCaPem }),
    statelessResetKey: settings.resetKey,
    // Limits hit keep their own names; the rest are stray packets.
    onDrop: (reason) => dropped(LIMIT_DROPS.has(reason) ? reason : `packet_${reason}`),
    onSocketError: (error) => log.debug("socket_error", { error: error.message }),
    handlers: {
      onEstablished(conn) {
        // quiche refuses a client that offers none of our ALPNs; one that offers none at all is closed here.
        const version = versionOfAlpn(conn.raw.applicationProto());
        if (version === undefined) {
          metrics.protocolErrors.child({ kind: "no_alpn" }).inc();
          log.warn("protocol_error", { peer: remoteText(conn), kind: "no_alpn", error: "no ztna protocol agreed by ALPN" });
          conn.close(CloseCode.PROTOCOL_ERROR, "no ztna protocol agreed by ALPN");
          return;
        }
        const session: Session = {
          conn,
          version,
          peer: null,
          reader: createControlReader(limits.controlMessage, version),
          helloTimer: null,
          registrations: 0,
          startedAt: Date.now(),
          facts: { address: remoteText(conn), identity: null, version: null, registeredAt: new Map() },
        };
        conn.context = session;
        session.helloTimer = setTimeout(() => {
          session.helloTimer = null;
          if (session.peer === null) protocolError(session, "hello_timeout", "no hello in time");
        }, limits.helloTimeoutMs);
        metrics.handshakeDuration.observe((Date.now() - conn.createdAt) / 1000);
      },
      onStreamData(conn, streamId, data, fin) {
        const session = conn.context as Session | undefined;
        if (!session) return;
        if (streamId !== 0) return streams.onData(conn, streamId, data, fin);
        for (const decoded of session.reader.push(data)) {
          if (!decoded.ok) return protocolError(session, decoded.error.kind, decoded.error.message);
          onControl(session, decoded.value);
          if (conn.closed) return;
        }
      },
      onStreamDrained(conn, streamId) {
        if (streamId !== 0) streams.onDrained(conn, streamId);
      },
      onStreamReset(conn, streamId, code, how) {
        if (streamId !== 0) streams.onReset(conn, streamId, code, how);
      },
      onDatagram,
      onClosed(conn, info) {
        if (!conn.established) return handshakeFailed(conn, info);
        streams.onClosed(conn);
        const session = conn.context as Session | undefined;
        if (!session) return;
        if (session.helloTimer) clearTimeout(session.helloTimer);
        const peer = session.peer;
        if (!peer) return;
        peers.delete(peer);
        metrics.connectionsActive.child({ role: peer.role }).dec();
        const wentDown = removePeer(relay, peer, Date.now());
        for (const service of wentDown) notifyAgents(service, false);
        log.info("peer_closed", { peer: remoteText(conn), role: peer.role, reason: info.reason, timed_out: info.timedOut });
        updateGauges();
      },
    },
  });

  // Datagram and byte rates for /status, from a sample a second.
  const traffic = createTrafficSampler(relay);
  traffic.sample();
  const sampler = setInterval(() => traffic.sample(), 1_000);
  const sweeper = setInterval(() => {
    const expired = expireFlows(relay, peers, Date.now() - settings.flowIdleMs);
    if (expired > 0) log.debug("flows_expired", { count: expired });
    updateGauges();
  }, Math.max(250, Math.min(5_000, settings.flowIdleMs / 4)));

  log.info("listening", { addr: `${endpoint.address.host}:${endpoint.address.port}` });

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    clearInterval(sweeper);
    clearInterval(sampler);
    refusals.close();
    await endpoint.close(CloseCode.SHUTDOWN, "server shutting down");
  };

  return {
    address: endpoint.address,
    get draining() {
      return draining;
    },
    ready: () =>
      closed
        ? { ready: false, reason: "closed" }
        : draining
          ? { ready: false, reason: "draining" }
          : { ready: true },
    async drain(alternate = "") {
      if (draining || closed) return;
      draining = true;
      alternateNamed = alternate;
      metrics.draining.set(1);
      log.info("draining", {
        grace_ms: settings.graceMs,
        flows: relay.flowCount,
        peers: peers.size,
        restart_try_for_ms: restart.tryForMs,
        restart_reconnect_in_ms: restart.reconnectInMs,
      });
      let maxRttMs = 0;
      for (const peer of peers) {
        send(peer.conn, goaway(alternate));
        maxRttMs = Math.max(maxRttMs, peer.conn.rttSeconds() * 1000);
      }
      const started = Date.now();
      const deadline = started + settings.graceMs;
      // Closing discards stream data not yet sent, and a lost packet is only
      // resent after a PTO: give GOAWAY a few round trips to arrive, or a
      // client would see a bare close and take it for an unplanned loss.
      const announced = started + Math.min(settings.graceMs, Math.max(GOAWAY_SETTLE_MS, 4 * maxRttMs + 100));
      while (Date.now() < deadline) {
        const busy = (relay.flowCount > 0 || streams.active > 0) && hasAgents(peers);
        if (!busy && Date.now() >= announced) break;
        await new Promise((r) => setTimeout(r, busy ? 50 : 10));
      }
      log.info("drained", { flows_left: relay.flowCount });
      await close();
    },
    close,
    flowCount: () => relay.flowCount,
    status: () =>
      traffic.addRates(
        buildStatus({
          relay,
          peers,
          factsOf: (peer) => (peer.conn.context as Session).facts,
          version: `${VERSION} (${COMMIT})`,
          startedAt,
          now: Date.now(),
          draining,
          restart,
        }),
      ),
    reloadTls(tls) {
      endpoint.reconfigure(quicConfig(tls));
      log.info("tls_reloaded", { mtls: tls.clientCaPem !== undefined });
    },
  };
}

/** Least time between GOAWAY and closing, so GOAWAY reaches the peers first. */
const GOAWAY_SETTLE_MS = 250;

const LIMIT_DROPS = new Set(["rate_limited", "address_limit", "handshake_limit"]);

function hasAgents(peers: Set<Peer<QuicConnection>>): boolean {
  for (const p of peers) if (p.role === "agent") return true;
  return false;
}

/** A client certificate's ztna:// identities for /status, or its subject when it has none. */
function identityText(cert: Uint8Array | null): string | null {
  if (cert === null) return null;
  const id = readIdentity(cert);
  if (id.role === undefined) return "(no ztna identity)";
  const uris = id.services.length === 0 ? [`ztna://${id.role}`] : id.services.map((s) => `ztna://${id.role}/${s}`);
  return uris.join(",");
}

function remoteText(conn: QuicConnection<unknown>): string {
  return formatAddress(conn.remote);
}

