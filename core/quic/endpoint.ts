/**
 * The QUIC engine: drives quiche's sans-IO connections over one UDP socket.
 *
 * One endpoint owns one socket and any number of connections (a server has
 * many, a client usually one). This file routes packets by destination
 * connection ID and holds the endpoint's state; admission.ts decides about
 * packets for no connection, connection.ts moves bytes between quiche and the
 * application, scheduler.ts sends packets and keeps timers.
 */
import type { Address } from "../net/address.ts";
import { releaseNativeMemory } from "../runtime/memory.ts";
import { openUdp, type UdpSocket } from "../runtime/udp.ts";
import {
  admit,
  CID_LEN,
  createAdmissionState,
  createUnprovenByAddress,
  type LongHeader,
  randomCid,
  statelessReset,
} from "./admission.ts";
import { type Conn, type ConnectionHost, createConn, deliverInput } from "./connection.ts";
import { type Config, type Connection, quiche } from "./native.ts";
import { resetToken, resetTokenValue } from "./reset.ts";
import { createScheduler } from "./scheduler.ts";
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
  // ---- the endpoint's state, in one place
  /** Every connection by each of our connection IDs. */
  const byCid = new Map<number, Conn<Ctx>>();
  const all = new Set<Conn<Ctx>>();
  /** Connections whose handshake has not completed. */
  let handshaking = 0;
  const unproven = createUnprovenByAddress<Conn<Ctx>>(options.maxUnprovenPerAddress ?? Infinity);
  const admission = createAdmissionState();
  const admissionSettings = {
    tokens: options.server && options.retry !== false
      ? createRetryTokens(options.retryKey ?? crypto.getRandomValues(new Uint8Array(32)))
      : null,
    maxHandshakes: options.maxHandshakes ?? 1024,
  };
  let config: Config = options.config;
  let closing = false;
  let endedSinceRelease = 0;
  /** Advanced by the keepalive timer; a packet records it as the time it arrived. */
  let epoch = 0;
  const drop = options.onDrop ?? (() => {});
  const handlers = options.handlers;
  const resetKey = options.statelessResetKey;

  let socket: UdpSocket;
  let local: Address;

  const host: ConnectionHost<Ctx> = {
    handlers,
    server: options.server,
    get local() {
      return local;
    },
    dgramRate: options.maxDatagramsPerSecond ?? Infinity,
    markDirty: (state) => scheduler.markDirty(state),
    onProven: (state) => unproven.remove(state.remote.host, state),
    drop,
  };

  const onPacket = (data: Uint8Array, port: number, from: string) => {
    if (data.length === 0) return;
    let state: Conn<Ctx> | undefined;
    if ((data[0]! & 0x80) === 0) {
      // Short header: the destination CID is ours and has a fixed length.
      if (data.length < 1 + CID_LEN) return drop("short_packet");
      state = byCid.get(cidKey(data, 1, CID_LEN));
      if (state === undefined) return unknownShortHeader(data, port, from);
    } else {
      let header: LongHeader;
      try {
        header = quiche.Header.fromSlice(data, CID_LEN);
      } catch {
        return drop("bad_header");
      }
      state = byCid.get(cidKey(header.dcid, 0, header.dcid.length));
      if (state === undefined) {
        if (!options.server || closing) return drop("unknown_connection");
        state = accept(data, header, port, from);
        if (state === undefined) return;
      }
    }
    receive(state, data, port, from);
  };

  function unknownShortHeader(data: Uint8Array, port: number, from: string) {
    if (options.server) {
      const reset = resetKey ? statelessReset(admission, resetKey, data) : null;
      if (reset) socket.send(reset, port, from);
      return drop("unknown_connection");
    }
    // A stateless reset carries random bytes where the CID would be:
    // let the connection(s) to that peer check its token.
    let matched = false;
    for (const s of all) {
      if (s.remote.port === port && s.remote.host === from) {
        matched = true;
        receive(s, data, port, from);
      }
    }
    if (!matched) drop("unknown_connection");
  }

  function accept(data: Uint8Array, header: LongHeader, port: number, from: string): Conn<Ctx> | undefined {
    const remote = { host: from, port };
    const decision = admit(admission, admissionSettings, data, header, remote, handshaking);
    if (decision.kind === "drop") return drop(decision.reason), undefined;
    if (decision.kind === "reply") {
      socket.send(decision.packet, port, from);
      // Version negotiation is a refusal (counted); a retry is every client's first answer (not).
      if (decision.reason !== "retry") drop(decision.reason);
      return undefined;
    }
    // Our retry chose this ID without state; in the rare case its key is taken, the client tries again.
    if (byCid.has(cidKey(decision.scid, 0, decision.scid.length))) return drop("cid_collision"), undefined;
    // quiche copies the transport parameters at accept: stamp this connection's reset token first.
    if (resetKey) config.setStatelessResetToken(resetTokenValue(resetToken(resetKey, decision.scid)));
    let conn: Connection;
    try {
      conn = quiche.Connection.accept(decision.scid, decision.odcid, local, remote, config);
    } catch {
      return drop("accept_failed"), undefined;
    }
    const state = track(conn, decision.scid, remote);
    const evict = unproven.add(from, state);
    if (evict !== undefined) {
      // Make room: the oldest connection from this address that never said HELLO goes.
      unproven.remove(from, evict);
      drop("address_limit");
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
      scheduler.markDirty(evict);
    }
    return state;
  }

  function track(conn: Connection, scid: Uint8Array, remote: Address): Conn<Ctx> {
    const state = createConn(host, conn, remote);
    const key = cidKey(scid, 0, scid.length);
    state.cids.push(key);
    byCid.set(key, state);
    all.add(state);
    handshaking++;
    return state;
  }

  function receive(state: Conn<Ctx>, data: Uint8Array, port: number, from: string) {
    const info = state.recvInfo;
    if (info.from.port !== port || info.from.host !== from) info.from = { host: from, port };
    try {
      state.conn.recv(data, info);
    } catch {
      // quiche rejects undecryptable or malformed packets; the connection survives.
      drop("recv_error");
    }
    state.activeEpoch = epoch;
    processInput(state);
    scheduler.afterPackets(state);
  }

  function processInput(state: Conn<Ctx>) {
    const wasEstablished = state.wasEstablished;
    deliverInput(host, state);
    if (!wasEstablished && state.wasEstablished) handshaking--;
  }

  const scheduler = createScheduler<Ctx>({
    get socket() {
      return socket;
    },
    packetSize: Math.max(DEFAULT_PACKET, options.maxUdpPayload ?? 0),
    onTimer(state) {
      state.conn.onTimeout();
      processInput(state);
    },
    onFlushed(state) {
      const conn = state.conn;
      if (conn.isClosed()) return finish(state);
      // The peer's CONNECTION_CLOSE puts quiche in draining for 3 PTOs; tell the
      // application now (the peer is gone) and forget the state when it ends.
      if (!state.closed && conn.isDraining()) reportClosed(state);
    },
  });

  /** Forgets a connection quiche has closed; reports it if that was not done at draining. */
  function finish(state: Conn<Ctx>) {
    if (state.gone) return;
    state.gone = true;
    scheduler.forget(state);
    for (const key of state.cids) byCid.delete(key);
    all.delete(state);
    if (!state.wasEstablished) handshaking--;
    if (!state.proven) unproven.remove(state.remote.host, state);
    reportClosed(state);
    // A burst of ended connections (a handshake flood, a mass reconnect) leaves
    // their native state to the garbage collector: hand it back in one go.
    if (++endedSinceRelease >= RELEASE_AFTER_ENDED) {
      endedSinceRelease = 0;
      releaseNativeMemory();
    }
  }

  function reportClosed(state: Conn<Ctx>) {
    if (state.closed) return;
    (state as { closed: boolean }).closed = true;
    const localError = state.conn.localError();
    const peerError = state.conn.peerError();
    const err = peerError ?? localError;
    handlers.onClosed?.(state, {
      local: localError,
      peer: peerError,
      timedOut: state.conn.isTimedOut(),
      reason: err ? textDecoder.decode(err.reason) : "",
    });
  }

  socket = await openUdp({
    host: options.bind.host,
    port: options.bind.port,
    onPacket,
    onError: (error) => options.onSocketError?.(error),
  });
  local = socket.address;

  // Keepalive: every half interval the epoch advances; a connection that
  // received nothing for two whole epochs (the keepalive interval) gets a
  // PING. Packets only store the epoch number: no clock is read per packet.
  let keepalive: ReturnType<typeof setInterval> | null = null;
  if (options.keepaliveMs && options.keepaliveMs > 0) {
    keepalive = setInterval(() => {
      epoch++;
      for (const state of all) {
        if (state.wasEstablished && epoch - state.activeEpoch >= 3) {
          state.conn.sendAckEliciting();
          scheduler.markDirty(state);
        }
      }
    }, Math.max(50, Math.floor(options.keepaliveMs / 2)));
  }

  return {
    address: local,
    connect(remote, serverName) {
      let scid = randomCid();
      while (byCid.has(cidKey(scid, 0, CID_LEN))) scid = randomCid();
      const conn = quiche.Connection.connect(serverName, scid, local, remote, config);
      const state = track(conn, scid, remote);
      scheduler.markDirty(state);
      return state;
    },
    reconfigure(next) {
      config = next;
    },
    async close(code = 0, reason = "endpoint closing") {
      closing = true;
      for (const state of all) state.close(code, reason);
      // Sends the CONNECTION_CLOSE frames now (sendMany is synchronous), so the
      // connections can be forgotten without waiting out their draining period.
      scheduler.flushAll();
      for (const state of [...all]) finish(state);
      if (keepalive) clearInterval(keepalive);
      socket.close();
    },
  };
}
