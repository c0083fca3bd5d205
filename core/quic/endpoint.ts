/**
 * The QUIC engine: drives quiche's sans-IO connections over one UDP socket.
 *
 * One endpoint owns one socket and any number of connections (a server has
 * many, a client usually one). This file routes packets by destination
 * connection ID and holds the endpoint's state; admission.ts decides about
 * packets for no connection, connection.ts moves bytes between quiche and the
 * application, scheduler.ts sends packets and keeps timers.
 *
 * The state is one declared struct (EndpointState), built in createState;
 * each kind of input has its own small function taking it: a packet
 * (onPacket, then receive, unknownShortHeader or accept), a quiche timer
 * (onTimer), a flush (onFlushed), the keepalive tick, and the application's
 * connect and close.
 */
import type { Address } from "../net/address.ts";
import { releaseNativeMemory } from "../runtime/memory.ts";
import { openUdp, type UdpSocket } from "../runtime/udp.ts";
import { type LongHeader, parseLongHeader } from "./long-header.ts";
import {
  type AdmissionSettings,
  type AdmissionState,
  admit,
  CID_LEN,
  createAdmissionState,
  createUnprovenByAddress,
  randomCid,
  statelessReset,
  type UnprovenByAddress,
} from "./admission.ts";
import { type Conn, type ConnectionHost, createConn, deliverInput } from "./connection.ts";
import { idleSinceLastLook } from "./fair-queue.ts";
import { type Config, type Connection, quiche } from "./native.ts";
import { resetToken, resetTokenValue } from "./reset.ts";
import { createScheduler, type Scheduler } from "./scheduler.ts";
import { createRetryTokens } from "./tokens.ts";
import type { Endpoint, EndpointOptions } from "./types.ts";

export { CID_LEN } from "./admission.ts";
export type { CloseInfo, ConnectionHandlers, Endpoint, EndpointOptions, QuicConnection } from "./types.ts";

/** Send buffers hold a packet of the default size; larger configured payloads size them up. */
const DEFAULT_PACKET = 1500;
/** After this many connections have ended, give their native memory back (see runtime/memory.ts). */
const RELEASE_AFTER_ENDED = 256;

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();
const CONNECTION_REFUSED = 0x2;

/**
 * Everything one endpoint keeps; every function below takes it as `ep`. It is
 * also what each of its connections knows of it (ConnectionHost: the
 * handlers, server or client, the local address, the datagram rate, drops).
 */
interface EndpointState<Ctx> extends ConnectionHost<Ctx> {
  readonly socket: UdpSocket;
  /** Every connection by each of our connection IDs (cidKey): the per-packet route. */
  readonly byCid: Map<number, Conn<Ctx>>;
  /** Every connection not yet finished: keepalive and close walk it, a client matches resets against it. */
  readonly all: Set<Conn<Ctx>>;
  /** Connections whose handshake has not completed: admission bounds it (maxHandshakes). */
  handshaking: number;
  /** Servers: connections per source address that have not said HELLO, so the oldest can be evicted. */
  readonly unproven: UnprovenByAddress<Conn<Ctx>>;
  /** Admission's budgets for stateless answers and its scratch buffer. */
  readonly admission: AdmissionState;
  /** Retry tokens (null: no address validation) and the handshake bound. */
  readonly admissionSettings: AdmissionSettings;
  /** Shared by the connections created from now on; reconfigure swaps it. */
  config: Config;
  /** close() has begun: new connections are no longer accepted. */
  closing: boolean;
  /** Connections ended since native memory was last released (see RELEASE_AFTER_ENDED). */
  endedSinceRelease: number;
  /** Advanced by the keepalive timer; a packet records it as the time it arrived. */
  epoch: number;
  /** The keepalive timer, if keepalive is on; stopped by close. */
  keepalive: ReturnType<typeof setInterval> | null;
  /** Servers: key of the per-connection stateless reset tokens; without it no resets are sent. */
  readonly resetKey: Uint8Array | undefined;
  /** Sends packets and keeps timers (scheduler.ts). */
  readonly scheduler: Scheduler<Ctx>;
}

/**
 * The routing key of a connection ID: its first 48 bits as a number (exact in
 * a double, no allocation per packet). Our IDs are random, and an ID whose key
 * is taken is drawn again, so the key is unique among ours; a foreign ID of
 * another length never matches (its key carries the length).
 */
function cidKey(bytes: Uint8Array, offset: number, len: number): number {
  if (len < 6) return -1 - len;
  const b = bytes;
  const o = offset;
  const hi = (b[o]! << 8) | b[o + 1]!;
  const lo = ((b[o + 2]! << 24) | (b[o + 3]! << 16) | (b[o + 4]! << 8) | b[o + 5]!) >>> 0;
  return len === CID_LEN ? hi * 0x1_0000_0000 + lo : -(hi * 0x1_0000_0000 + lo) - 100;
}

export async function createEndpoint<Ctx = unknown>(options: EndpointOptions<Ctx>): Promise<Endpoint<Ctx>> {
  // Packets reach the state once it exists: it is built right after the socket opens, before any event can run.
  let ep: EndpointState<Ctx>;
  const socket = await openUdp({
    host: options.bind.host,
    port: options.bind.port,
    onPacket: (data, port, from) => onPacket(ep, data, port, from),
    onError: (error) => options.onSocketError?.(error),
  });
  ep = createState(options, socket);
  if (options.keepaliveMs && options.keepaliveMs > 0) ep.keepalive = startKeepalive(ep, options.keepaliveMs);
  return {
    address: ep.local,
    connect: (remote, serverName) => openConnection(ep, remote, serverName),
    reconfigure(next) {
      ep.config = next;
    },
    async close(code = 0, reason = "endpoint closing") {
      closeEndpoint(ep, code, reason);
    },
  };
}

/** The endpoint's state, in one place. */
function createState<Ctx>(options: EndpointOptions<Ctx>, socket: UdpSocket): EndpointState<Ctx> {
  const unproven = createUnprovenByAddress<Conn<Ctx>>(options.maxUnprovenPerAddress ?? Infinity);
  const scheduler = createScheduler<Ctx>({
    socket,
    packetSize: Math.max(DEFAULT_PACKET, options.maxUdpPayload ?? 0),
    onTimer: (state) => onTimer(ep, state),
    onFlushed: (state) => onFlushed(ep, state),
    drop: (reason) => ep.drop(reason),
  });
  const ep: EndpointState<Ctx> = {
    handlers: options.handlers,
    server: options.server,
    local: socket.address,
    dgramRate: options.maxDatagramsPerSecond ?? Infinity,
    markDirty: (state) => scheduler.markDirty(state),
    onProven: (state) => unproven.remove(state.remote.host, state),
    drop: options.onDrop ?? (() => {}),
    socket,
    byCid: new Map(),
    all: new Set(),
    handshaking: 0,
    unproven,
    admission: createAdmissionState(),
    admissionSettings: {
      retryAbove: options.retryAbove ?? 0,
      tokens: options.server && options.retry !== false
        ? createRetryTokens(options.retryKey ?? crypto.getRandomValues(new Uint8Array(32)))
        : null,
      maxHandshakes: options.maxHandshakes ?? 1024,
    },
    config: options.config,
    closing: false,
    endedSinceRelease: 0,
    epoch: 0,
    keepalive: null,
    resetKey: options.statelessResetKey,
    scheduler,
  };
  return ep;
}

/** Every packet from the socket: find its connection by destination connection ID. */
function onPacket<Ctx>(ep: EndpointState<Ctx>, data: Uint8Array, port: number, from: string) {
  if (data.length === 0) return;
  let state: Conn<Ctx> | undefined;
  if ((data[0]! & 0x80) === 0) {
    // Short header: the destination CID is ours and has a fixed length.
    if (data.length < 1 + CID_LEN) return ep.drop("short_packet");
    state = ep.byCid.get(cidKey(data, 1, CID_LEN));
    if (state === undefined) return unknownShortHeader(ep, data, port, from);
  } else {
    const header = parseLongHeader(data);
    if (header === null) return ep.drop("bad_header");
    state = ep.byCid.get(cidKey(header.dcid, 0, header.dcid.length));
    if (state === undefined) {
      if (!ep.server || ep.closing) return ep.drop("unknown_connection");
      state = accept(ep, data, header, port, from);
      if (state === undefined) return;
    }
  }
  receive(ep, state, data, port, from);
}

/** A short-header packet for no connection of ours. */
function unknownShortHeader<Ctx>(ep: EndpointState<Ctx>, data: Uint8Array, port: number, from: string) {
  if (ep.server) {
    const reset = ep.resetKey ? statelessReset(ep.admission, ep.resetKey, data) : null;
    if (reset) ep.socket.send(reset, port, from);
    return ep.drop("unknown_connection");
  }
  // A stateless reset carries random bytes where the CID would be:
  // let the connection(s) to that peer check its token.
  let matched = false;
  for (const s of ep.all) {
    if (s.remote.port === port && s.remote.host === from) {
      matched = true;
      receive(ep, s, data, port, from);
    }
  }
  if (!matched) ep.drop("unknown_connection");
}

/** Servers: a long-header packet for no connection. Admission decides; the new connection, if any. */
function accept<Ctx>(
  ep: EndpointState<Ctx>,
  data: Uint8Array,
  header: LongHeader,
  port: number,
  from: string,
): Conn<Ctx> | undefined {
  const remote = { host: from, port };
  const decision = admit(ep.admission, ep.admissionSettings, data, header, remote, ep.handshaking);
  if (decision.kind === "drop") return ep.drop(decision.reason), undefined;
  if (decision.kind === "reply") {
    ep.socket.send(decision.packet, port, from);
    // Version negotiation is a refusal (counted); a retry is every client's first answer (not).
    if (decision.reason !== "retry") ep.drop(decision.reason);
    return undefined;
  }
  // Our retry chose this ID without state; in the rare case its key is taken, the client tries again.
  if (ep.byCid.has(cidKey(decision.scid, 0, decision.scid.length))) return ep.drop("cid_collision"), undefined;
  // quiche copies the transport parameters at accept: stamp this connection's reset token first.
  if (ep.resetKey) ep.config.setStatelessResetToken(resetTokenValue(resetToken(ep.resetKey, decision.scid)));
  let conn: Connection;
  try {
    conn = quiche.Connection.accept(decision.scid, decision.odcid, ep.local, remote, ep.config);
  } catch {
    return ep.drop("accept_failed"), undefined;
  }
  const state = track(ep, conn, decision.scid, remote);
  if (decision.clientDcid !== undefined) {
    // Until our answer arrives the client's Initials carry its own ID: they must reach this connection.
    const key = cidKey(decision.clientDcid, 0, decision.clientDcid.length);
    if (!ep.byCid.has(key)) {
      ep.byCid.set(key, state);
      state.cids.push(key);
    }
  }
  const evict = ep.unproven.add(from, state);
  if (evict !== undefined) evictUnproven(ep, from, evict);
  return state;
}

/** Make room: the oldest connection from this address that never said HELLO goes. */
function evictUnproven<Ctx>(ep: EndpointState<Ctx>, from: string, evict: Conn<Ctx>) {
  ep.unproven.remove(from, evict);
  ep.drop("address_limit");
  // CONNECTION_REFUSED (RFC 9000 §20.1), a transport close: this is admission, not the application.
  try {
    evict.conn.close(
      false,
      CONNECTION_REFUSED,
      textEncoder.encode("too many unproven connections from this address"),
    );
  } catch {
    // already closing
  }
  ep.scheduler.markDirty(evict);
}

/** A new connection (accepted or dialled), routed by its first connection ID. */
function track<Ctx>(ep: EndpointState<Ctx>, conn: Connection, scid: Uint8Array, remote: Address): Conn<Ctx> {
  const state = createConn(ep, conn, remote);
  const key = cidKey(scid, 0, scid.length);
  state.cids.push(key);
  ep.byCid.set(key, state);
  ep.all.add(state);
  ep.handshaking++;
  return state;
}

/** A packet for a known connection: quiche takes it, the application gets what it produced. */
function receive<Ctx>(ep: EndpointState<Ctx>, state: Conn<Ctx>, data: Uint8Array, port: number, from: string) {
  const info = state.recvInfo;
  if (info.from.port !== port || info.from.host !== from) info.from = { host: from, port };
  try {
    state.conn.recv(data, info);
  } catch {
    // quiche rejects undecryptable or malformed packets; the connection survives.
    ep.drop("recv_error");
  }
  state.activeEpoch = ep.epoch;
  processInput(ep, state);
  ep.scheduler.afterPackets(state);
}

function processInput<Ctx>(ep: EndpointState<Ctx>, state: Conn<Ctx>) {
  const wasEstablished = state.wasEstablished;
  deliverInput(ep, state);
  if (!wasEstablished && state.wasEstablished) ep.handshaking--;
}

/** quiche's timer fired (the scheduler marks the connection dirty after). */
function onTimer<Ctx>(ep: EndpointState<Ctx>, state: Conn<Ctx>) {
  state.conn.onTimeout();
  processInput(ep, state);
}

/** After the scheduler flushed a connection: has quiche closed it, or begun draining? */
function onFlushed<Ctx>(ep: EndpointState<Ctx>, state: Conn<Ctx>) {
  const conn = state.conn;
  if (conn.isClosed()) return finish(ep, state);
  // The peer's CONNECTION_CLOSE puts quiche in draining for 3 PTOs; tell the
  // application now (the peer is gone) and forget the state when it ends.
  if (!state.closed && conn.isDraining()) reportClosed(ep, state);
}

/** Forgets a connection quiche has closed; reports it if that was not done at draining. */
function finish<Ctx>(ep: EndpointState<Ctx>, state: Conn<Ctx>) {
  if (state.gone) return;
  state.gone = true;
  ep.scheduler.forget(state);
  for (const key of state.cids) ep.byCid.delete(key);
  ep.all.delete(state);
  if (!state.wasEstablished) ep.handshaking--;
  if (!state.proven) ep.unproven.remove(state.remote.host, state);
  reportClosed(ep, state);
  // A burst of ended connections (a handshake flood, a mass reconnect) leaves
  // their native state to the garbage collector: hand it back in one go.
  if (++ep.endedSinceRelease >= RELEASE_AFTER_ENDED) {
    ep.endedSinceRelease = 0;
    releaseNativeMemory();
  }
}

function reportClosed<Ctx>(ep: EndpointState<Ctx>, state: Conn<Ctx>) {
  if (state.closed) return;
  (state as { closed: boolean }).closed = true;
  const localError = state.conn.localError();
  const peerError = state.conn.peerError();
  const err = peerError ?? localError;
  ep.handlers.onClosed?.(state, {
    local: localError,
    peer: peerError,
    timedOut: state.conn.isTimedOut(),
    reason: err ? textDecoder.decode(err.reason) : "",
  });
}

/**
 * Keepalive: every half interval the epoch advances; a connection that
 * received nothing for two whole epochs (the keepalive interval) gets a
 * PING. Packets only store the epoch number: no clock is read per packet.
 * The tick also drops datagram queues that stayed empty (without keepalive
 * they live as long as their connection).
 */
function startKeepalive<Ctx>(ep: EndpointState<Ctx>, keepaliveMs: number): ReturnType<typeof setInterval> {
  return setInterval(() => keepaliveTick(ep), Math.max(50, Math.floor(keepaliveMs / 2)));
}

function keepaliveTick<Ctx>(ep: EndpointState<Ctx>) {
  const epoch = ++ep.epoch;
  for (const state of ep.all) {
    // A datagram queue idle for a whole tick gives its rings back.
    if (state.waiting !== null && idleSinceLastLook(state.waiting)) state.waiting = null;
    if (state.wasEstablished && epoch - state.activeEpoch >= 3) {
      state.conn.sendAckEliciting();
      ep.scheduler.markDirty(state);
    }
  }
}

/** Dials `remote` (Endpoint.connect). */
function openConnection<Ctx>(ep: EndpointState<Ctx>, remote: Address, serverName: string): Conn<Ctx> {
  let scid = randomCid();
  while (ep.byCid.has(cidKey(scid, 0, CID_LEN))) scid = randomCid();
  const conn = quiche.Connection.connect(serverName, scid, ep.local, remote, ep.config);
  const state = track(ep, conn, scid, remote);
  ep.scheduler.markDirty(state);
  return state;
}

/** Closes every connection, then the socket (Endpoint.close). */
function closeEndpoint<Ctx>(ep: EndpointState<Ctx>, code: number, reason: string) {
  ep.closing = true;
  for (const state of ep.all) state.close(code, reason);
  // Sends the CONNECTION_CLOSE frames now (the socket sends synchronously), so the
  // connections can be forgotten without waiting out their draining period.
  ep.scheduler.flushAll();
  for (const state of [...ep.all]) finish(ep, state);
  if (ep.keepalive) clearInterval(ep.keepalive);
  ep.socket.close();
}
