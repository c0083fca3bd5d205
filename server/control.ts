/**
 * The server's control messages, one handler each (docs/protocol.md §2):
 * HELLO makes a connection a peer; connectors REGISTER and DEREGISTER
 * services, agents OPEN them, any peer may PROBE. Requests are answered by
 * ACK or NACK with the request's id; anything else closes the connection
 * with PROTOCOL_ERROR.
 */
import {
  CloseCode,
  type ControlMessage,
  type ControlType,
  encodeControl,
  type NackCode,
  validateServiceName,
} from "../core/frame/mod.ts";
import { formatAddress } from "../core/net/address.ts";
import { readIdentity } from "../core/identity.ts";
import { COMMIT, VERSION } from "../core/version.ts";
import { createPeer, drainConnector, findBinding, openService, registerConnector, removeConnector } from "./relay.ts";
import { type ServerConn, type ServerPeer, type ServerState, type Session, updateGauges } from "./state.ts";

/** The message of one type. */
type Message<T extends ControlType> = Extract<ControlMessage, { type: T }>;
/** A request answered by ACK or NACK. */
type Request = Message<"register" | "deregister" | "open" | "probe">;

/** Bytes of stream 0: every message they complete, in order, until one closes the connection. */
export function handleControlBytes(s: ServerState, session: Session, data: Uint8Array): void {
  for (const decoded of session.reader.push(data)) {
    if (!decoded.ok) return protocolError(s, session, decoded.error.kind, decoded.error.message);
    handleControl(s, session, decoded.value);
    if (session.conn.closed) return;
  }
}

/** One message: HELLO first, then the requests a peer may make. */
export function handleControl(s: ServerState, session: Session, msg: ControlMessage): void {
  const peer = session.peer;
  if (peer === null) {
    if (msg.type !== "hello") return protocolError(s, session, "expected_hello", `expected hello, got ${msg.type}`);
    return handleHello(s, session, msg);
  }
  switch (msg.type) {
    case "register":
      return handleRegister(s, session, peer, msg);
    case "deregister":
      return handleDeregister(s, session, peer, msg);
    case "open":
      return handleOpen(s, session, peer, msg);
    case "probe":
      return handleProbe(s, session, peer, msg);
    default:
      return protocolError(s, session, "unexpected_message", `unexpected ${msg.type} from ${peer.role}`);
  }
}

/** HELLO: the connection becomes a peer of its role; WELCOME tells it its observed address. */
export function handleHello(s: ServerState, session: Session, msg: Message<"hello">): void {
  const conn = session.conn;
  if (msg.version !== session.version) {
    return protocolError(
      s,
      session,
      "unsupported_version",
      `HELLO says protocol version ${msg.version}, but ALPN agreed on ${session.version}`,
    );
  }
  if (session.helloTimer) clearTimeout(session.helloTimer);
  session.helloTimer = null;
  // A peer that says HELLO no longer counts against its address's unproven connections.
  conn.markProven();
  const peer = createPeer(s.nextPeerId++, msg.role, conn);
  session.peer = peer;
  session.facts.identity = identityText(conn.peerCertificate());
  session.facts.version = msg.software ? msg.software : null;
  s.peers.add(peer);
  s.metrics.connectionsActive.child({ role: msg.role }).inc();
  s.metrics.connectionsTotal.child({ role: msg.role }).inc();
  s.log.info("peer_hello", {
    peer: formatAddress(conn.remote),
    role: msg.role,
    name: msg.name,
    protocol: session.version,
    software: msg.software ?? null,
  });
  send(conn, { type: "welcome", version: session.version, observed: conn.remote });
  if (s.draining) send(conn, goaway(s));
}

/** REGISTER (connectors): a channel for the service; the first live connector brings it up for its agents. */
export function handleRegister(s: ServerState, session: Session, peer: ServerPeer, msg: Message<"register">): void {
  const { limits, settings } = s;
  const refuse = (code: NackCode, reason: string) => nack(s, session, msg, code, reason);
  if (peer.role !== "connector") return refuse("invalid_request", "only connectors register");
  const bad = validateServiceName(msg.service);
  if (bad) return refuse("invalid_request", bad);
  if (s.draining) return refuse("draining", "server is draining");
  if (settings.authorise && !settings.authorise(session.conn.peerCertificate(), "connector", msg.service)) {
    return refuse("not_authorised", `certificate does not name connector for ${msg.service}`);
  }
  const existing = findBinding(peer, msg.service);
  if (existing && !existing.draining) {
    return refuse("duplicate", `${msg.service} already registered on this connection`);
  }
  if (session.registrations >= limits.registrationsPerConnection) {
    return refuse("limit_exceeded", `at most ${limits.registrationsPerConnection} registrations per connection`);
  }
  if (existing) removeConnector(s.relay, existing, Date.now());
  const result = registerConnector(s.relay, peer, msg.service);
  if (!result) return refuse("limit_exceeded", "no free channel");
  session.registrations++;
  session.facts.registeredAt.set(msg.service, Date.now());
  s.metrics.registrations.child({ result: "ack", reason: "ok" }).inc();
  s.log.info("registered", {
    peer: formatAddress(session.conn.remote),
    service: msg.service,
    channel: result.binding.channel,
  });
  send(session.conn, { type: "ack", req: msg.req, channel: result.binding.channel });
  if (result.cameUp) notifyAgents(s, msg.service, true);
  updateGauges(s);
}

/** DEREGISTER (connectors): no new flows; the connector's flows move to another one. */
export function handleDeregister(s: ServerState, session: Session, peer: ServerPeer, msg: Message<"deregister">): void {
  const binding = peer.role === "connector" ? findBinding(peer, msg.service) : undefined;
  if (!binding) return nack(s, session, msg, "invalid_request", `${msg.service} is not registered here`);
  const wentDown = drainConnector(s.relay, binding, Date.now());
  s.metrics.deregistrations.inc();
  s.log.info("deregistered", { peer: formatAddress(session.conn.remote), service: msg.service });
  send(session.conn, { type: "ack", req: msg.req, channel: 0 });
  if (wentDown) notifyAgents(s, msg.service, false);
  updateGauges(s);
}

/** OPEN (agents): a channel to a service some connector registered, and whether it is up now. */
export function handleOpen(s: ServerState, session: Session, peer: ServerPeer, msg: Message<"open">): void {
  const refuse = (code: NackCode, reason: string) => nack(s, session, msg, code, reason);
  if (peer.role !== "agent") return refuse("invalid_request", "only agents open services");
  const bad = validateServiceName(msg.service);
  if (bad) return refuse("invalid_request", bad);
  const authorise = s.settings.authorise;
  if (authorise && !authorise(session.conn.peerCertificate(), "agent", msg.service)) {
    return refuse("not_authorised", `certificate does not allow ${msg.service}`);
  }
  if (findBinding(peer, msg.service)) return refuse("duplicate", `${msg.service} already open`);
  const result = openService(s.relay, peer, msg.service);
  if (!result) return refuse("unknown_service", `no connector has registered ${msg.service}`);
  s.metrics.opens.child({ result: "ack", reason: "ok" }).inc();
  s.log.info("opened", {
    peer: formatAddress(session.conn.remote),
    service: msg.service,
    channel: result.binding.channel,
    up: result.up,
  });
  send(session.conn, { type: "ack", req: msg.req, channel: result.binding.channel });
  if (!result.up) send(session.conn, { type: "service_status", service: msg.service, up: false });
}

/**
 * PROBE (ztna doctor): may this identity act for the service in its role,
 * and how many connectors serve it here. No side effects; connector counts
 * only for a service the peer may use.
 */
export function handleProbe(s: ServerState, session: Session, peer: ServerPeer, msg: Message<"probe">): void {
  let allowed: boolean | null = null;
  let live = 0;
  let leaving = 0;
  if (msg.service !== "") {
    const authorise = s.settings.authorise;
    allowed = authorise ? authorise(session.conn.peerCertificate(), peer.role, msg.service) : true;
    if (allowed) {
      for (const b of s.relay.services.get(msg.service)?.connectors ?? []) {
        if (b.draining) leaving++;
        else live++;
      }
    }
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

// ---------------------------------------------------------------- replies

/** Sends a control message in the layout of the connection's protocol version. */
export function send(conn: ServerConn, msg: ControlMessage): void {
  const session = conn.context;
  if (session !== undefined) conn.writeStream(0, encodeControl(msg, session.version));
}

/** GOAWAY as a drain says it: a restart announcement unless restart.tryForMs is 0. */
export function goaway(s: ServerState): ControlMessage {
  return s.restart.tryForMs > 0
    ? { type: "goaway", reason: "server restarting", alternate: s.alternate, restart: s.restart }
    : { type: "goaway", reason: "server draining", alternate: s.alternate };
}

/** Tells the agents that opened `service` that it went up or down. */
export function notifyAgents(s: ServerState, service: string, up: boolean): void {
  const entry = s.relay.services.get(service);
  if (!entry) return;
  s.log.info(up ? "service_up" : "service_down", { service, agents: entry.agents.size });
  for (const binding of entry.agents) send(binding.peer.conn, { type: "service_status", service, up });
}

/** Closes the connection with PROTOCOL_ERROR. `kind` is a small fixed set (a metric label); `detail` is for the log and the peer. */
export function protocolError(s: ServerState, session: Session, kind: string, detail = kind): void {
  s.metrics.protocolErrors.child({ kind }).inc();
  s.log.warn("protocol_error", { peer: formatAddress(session.conn.remote), kind, error: detail });
  session.conn.close(CloseCode.PROTOCOL_ERROR, detail);
}

/**
 * Refuses a request, counted by code. A refused client asks again (every
 * second for an agent's OPEN): logged once, then a count a minute.
 */
function nack(s: ServerState, session: Session, msg: Request, code: NackCode, reason: string): void {
  const kind = msg.type === "open" ? "opens" : "registrations";
  s.metrics[kind].child({ result: "nack", reason: code }).inc();
  const peer = formatAddress(session.conn.remote);
  const event = kind === "registrations" ? "register_refused" : "open_refused";
  s.refusals.log("info", event, `${peer}|${msg.service}|${code}`, { peer, service: msg.service, code, reason });
  send(session.conn, { type: "nack", req: msg.req, code, reason });
}

/** A client certificate's ztna:// identities for /status, or "(no ztna identity)" when it names none. */
function identityText(cert: Uint8Array | null): string | null {
  if (cert === null) return null;
  const id = readIdentity(cert);
  if (id.role === undefined) return "(no ztna identity)";
  const uris = id.services.length === 0 ? [`ztna://${id.role}`] : id.services.map((s) => `ztna://${id.role}/${s}`);
  return uris.join(",");
}
