/**
 * The QUIC engine: drives quiche's sans-IO connections over one UDP socket.
 *
 * One endpoint owns one socket and any number of connections (a server has
 * many, a client usually one). It routes packets by destination connection ID,
 * runs timers, batches outgoing packets, validates client addresses with
 * stateless retry tokens, answers version negotiation, and hands the
 * application stream bytes and DATAGRAMs through plain callbacks.
 */
import type { Address } from "../frame/control.ts";
import { openUdp, type UdpSocket } from "../runtime/udp.ts";
import { createBufferViews } from "../runtime/views.ts";
import { quiche, type Config, type Connection, type ConnectionError } from "./native.ts";
import { buildReset, resetToken, resetTokenValue } from "./reset.ts";
import { createRetryTokens, type RetryTokenCodec } from "./tokens.ts";

/** Our connection IDs are always this long, so short-header packets can be routed. */
export const CID_LEN = 16;
/** Send buffers hold a packet of the default size; larger configured payloads size them up. */
const DEFAULT_PACKET = 1500;
const SEND_BATCH = 64;
const MAX_RESETS_PER_SECOND = 100;
/** Delayed ACKs: flush ACK-only work after this many packets or this long. */
const ACK_EVERY = 8;
const ACK_DELAY_MS = 1;
/** Flushes closer together than this (smoothed) mean the process is busy: batch. */
const BUSY_GAP_MS = 0.1;

export interface CloseInfo {
  local: ConnectionError | null;
  peer: ConnectionError | null;
  timedOut: boolean;
  /** The peer's reason (or ours) decoded as text, for logs. */
  reason: string;
}

export interface ConnectionHandlers {
  onEstablished?(conn: QuicConnection): void;
  /** Bytes read from a stream; `data` is a view into a reused buffer, valid during the call. */
  onStreamData?(conn: QuicConnection, streamId: number, data: Uint8Array, fin: boolean): void;
  /** A stream that had queued writes has drained them all. */
  onStreamDrained?(conn: QuicConnection, streamId: number): void;
  /**
   * The peer abandoned a stream: `reset` (RESET_STREAM: no more data will come)
   * or `stopped` (STOP_SENDING: it will not read what we write).
   */
  onStreamReset?(conn: QuicConnection, streamId: number, code: number, how: "reset" | "stopped"): void;
  /**
   * One DATAGRAM. `data` is a view of a reused buffer, valid only during the
   * call; the handler may rewrite it in place and pass it to `sendDatagram`.
   */
  onDatagram?(conn: QuicConnection, data: Uint8Array): void;
  onClosed?(conn: QuicConnection, info: CloseInfo): void;
}

export interface QuicConnection {
  readonly id: number;
  readonly remote: Address;
  /** When the connection was created (ms since epoch), for handshake timing. */
  readonly createdAt: number;
  readonly established: boolean;
  readonly closed: boolean;
  /** Application data hung on the connection by its owner. */
  context: unknown;
  /** Queues a DATAGRAM; false when it is too large or quiche's queue is full (counted by callers). */
  sendDatagram(data: Uint8Array): boolean;
  /** Writes to a stream, queueing whatever flow control does not take yet; never drops bytes. */
  writeStream(streamId: number, data: Uint8Array, fin?: boolean): void;
  /** Bytes queued on a stream that quiche has not accepted yet (for backpressure). */
  pendingStreamBytes(streamId: number): number;
  shutdownStream(streamId: number, error: number): void;
  /** Allocates the next bidirectional stream id this side may open. */
  openStream(): number;
  /**
   * Stops (true) or resumes (false) reading a stream. While paused, unread data
   * stays in quiche and flow control holds the peer back: backpressure.
   */
  pauseStream(streamId: number, paused: boolean): void;
  /** Closes with an application error code and a reason the peer can read. */
  close(code: number, reason: string): void;
  peerCertificate(): Uint8Array | null;
  /** Smoothed RTT in seconds, 0 before the first sample. */
  rttSeconds(): number;
  /** Largest DATAGRAM payload quiche accepts right now (0 before the handshake). */
  maxDatagramSize(): number;
  readonly raw: Connection;
}

export interface EndpointOptions {
  bind: Address;
  /**
   * The transport configuration; a function is called once per connection, so
   * each can carry its own stateless reset token (servers).
   */
  config: Config | (() => Config);
  /** Servers: key for per-connection stateless reset tokens; enables sending resets. */
  statelessResetKey?: Uint8Array;
  handlers: ConnectionHandlers;
  /** Servers accept incoming connections; clients only dial. */
  server: boolean;
  /** Require address validation with a retry token before keeping state (servers). */
  retry?: boolean;
  retryKey?: Uint8Array;
  /** Send a PING on connections idle for this long, so NATs and idle timers stay open. */
  keepaliveMs?: number;
  /** Upper bound on handshakes in progress (servers); new Initials beyond it are ignored. */
  maxHandshakes?: number;
  /** Largest QUIC packet this endpoint sends (the transport's max UDP payload). */
  maxPacketSize?: number;
  /** Servers: most connections one source address may hold; more are ignored (counted). */
  maxConnectionsPerAddress?: number;
  /** Most DATAGRAMs per second a connection may deliver; the excess is dropped (counted). */
  maxDatagramsPerSecond?: number;
  /** Called for socket-level errors (ICMP unreachable and friends): never fatal. */
  onSocketError?(error: Error): void;
  /** Called for packets that are dropped before reaching a connection. */
  onDrop?(reason: string): void;
}

export interface Endpoint {
  readonly address: Address;
  connect(remote: Address, serverName: string): QuicConnection;
  /** Uses a new configuration (e.g. reloaded certificates) for connections made from now on. */
  reconfigure(config: Config | (() => Config)): void;
  /** Closes every connection, waits briefly for the close frames to leave, then the socket. */
  close(code?: number, reason?: string): Promise<void>;
}

interface ConnState extends QuicConnection {
  conn: Connection;
  nextStream: number;
  paused: Set<number>;
  dgramTokens: number;
  dgramRefill: number;
  unflushedInputs: number;
  /** Removed from the endpoint (quiche closed); `closed` may come earlier, at draining. */
  gone: boolean;
  ackTimer: ReturnType<typeof setTimeout> | null;
  cids: string[];
  timer: ReturnType<typeof setTimeout> | null;
  timerAt: number;
  wasEstablished: boolean;
  pending: Map<number, { chunks: Uint8Array[]; bytes: number; fin: boolean }>;
  lastActivity: number;
  recvInfo: { from: Address; to: Address };
}

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

function cidKey(bytes: Uint8Array, offset: number, len: number): string {
  // Latin-1 string of the raw bytes: cheap to build and a good Map key.
  let s = "";
  for (let i = offset; i < offset + len; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/** The application error code in quiche's "StreamReset(N)" / "StreamStopped(N)" errors. */
function errorCode(error: unknown): number {
  const m = /\((\d+)\)/.exec((error as Error)?.message ?? "");
  return m ? Number(m[1]) : 0;
}

function randomCid(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(CID_LEN));
}

export async function createEndpoint(options: EndpointOptions): Promise<Endpoint> {
  const byCid = new Map<string, ConnState>();
  const all = new Set<ConnState>();
  const dirty = new Set<ConnState>();
  const tokens: RetryTokenCodec | null = options.server && options.retry !== false
    ? createRetryTokens(options.retryKey ?? crypto.getRandomValues(new Uint8Array(32)))
    : null;
  const maxHandshakes = options.maxHandshakes ?? 1024;
  const maxPerAddress = options.maxConnectionsPerAddress ?? Infinity;
  const perAddress = new Map<string, number>();
  const dgramRate = options.maxDatagramsPerSecond ?? Infinity;
  const drop = options.onDrop ?? (() => {});
  const handlers = options.handlers;
  let nextId = 1;
  let currentConfig = options.config;
  const resetKey = options.statelessResetKey;
  let resetWindow = 0;
  let resetsInWindow = 0;
  let flushScheduled = false;
  // Smoothed gap between flushes: the load signal for batching.
  let lastFlush = 0;
  let flushGapMs = 10;
  let closing = false;

  const packetSize = Math.max(DEFAULT_PACKET, options.maxPacketSize ?? 0);
  const sendBufs = Array.from({ length: SEND_BATCH }, () => new Uint8Array(packetSize));
  const sendList: (Uint8Array | number | string)[] = [];
  const streamBuf = new Uint8Array(65536);
  const NO_BYTES = new Uint8Array(0);
  const dgramIn = createBufferViews(65536);
  const controlOut = new Uint8Array(DEFAULT_PACKET);

  let socket: UdpSocket;
  let local: Address;

  const onPacket = (data: Uint8Array, port: number, host: string) => {
    if (data.length === 0) return;
    let state: ConnState | undefined;
    if ((data[0]! & 0x80) === 0) {
      // Short header: the destination CID is ours and has a fixed length.
      if (data.length < 1 + CID_LEN) return drop("short_packet");
      state = byCid.get(cidKey(data, 1, CID_LEN));
      if (state === undefined) {
        if (options.server) {
          sendReset(data, port, host);
          return drop("unknown_connection");
        }
        // A stateless reset carries random bytes where the CID would be:
        // let the connection(s) to that peer check its token.
        let matched = false;
        for (const s of all) {
          if (s.remote.port === port && s.remote.host === host) {
            matched = true;
            receive(s, data, port, host);
          }
        }
        if (!matched) drop("unknown_connection");
        return;
      }
    } else {
      let header;
      try {
        header = quiche.Header.fromSlice(data, CID_LEN);
      } catch {
        return drop("bad_header");
      }
      state = byCid.get(cidKey(header.dcid, 0, header.dcid.length));
      if (state === undefined) {
        if (!options.server || closing) return drop("unknown_connection");
        state = acceptNew(data, header, port, host);
        if (state === undefined) return;
      }
    }
    receive(state, data, port, host);
  };

  function acceptNew(
    data: Uint8Array,
    header: { ty: number; version: number; dcid: Uint8Array; scid: Uint8Array; token?: Uint8Array },
    port: number,
    host: string,
  ): ConnState | undefined {
    if (!quiche.versionIsSupported(header.version)) {
      const n = quiche.negotiateVersion(header.scid, header.dcid, controlOut);
      socket.send(controlOut.subarray(0, n), port, host);
      drop("version_negotiation");
      return undefined;
    }
    if (header.ty !== quiche.Type.Initial) return drop("unknown_connection"), undefined;
    // Anti-amplification: a client Initial must fill a minimum-size datagram.
    if (data.length < quiche.MIN_CLIENT_INITIAL_LEN) return drop("short_initial"), undefined;
    let handshaking = 0;
    for (const s of all) if (!s.wasEstablished) handshaking++;
    if (handshaking >= maxHandshakes) return drop("handshake_limit"), undefined;
    if ((perAddress.get(host) ?? 0) >= maxPerAddress) return drop("address_limit"), undefined;

    let odcid: Uint8Array | null = null;
    if (tokens) {
      const token = header.token;
      if (!token || token.length === 0) {
        const newScid = randomCid();
        const minted = tokens.mint(host, port, header.dcid);
        const n = quiche.retry(header.scid, header.dcid, newScid, minted, header.version, controlOut);
        socket.send(controlOut.subarray(0, n), port, host);
        return undefined;
      }
      odcid = tokens.verify(token, host, port);
      if (odcid === null) return drop("invalid_token"), undefined;
    }
    // After a retry the client already uses the CID we chose in the retry packet.
    const scid = tokens ? header.dcid.slice() : randomCid();
    if (scid.length !== CID_LEN) return drop("bad_cid"), undefined;
    let conn: Connection;
    try {
      conn = quiche.Connection.accept(scid, odcid, local, { host, port }, configFor(scid));
    } catch {
      return drop("accept_failed"), undefined;
    }
    return track(conn, scid, { host, port });
  }

  function configFor(scid: Uint8Array): Config {
    if (typeof currentConfig !== "function") return currentConfig;
    const config = currentConfig();
    if (resetKey) config.setStatelessResetToken(resetTokenValue(resetToken(resetKey, scid)));
    return config;
  }

  /** Answers a packet for a connection we do not know (we restarted) with a stateless reset. */
  function sendReset(data: Uint8Array, port: number, host: string) {
    if (!resetKey || !options.server) return;
    const now = Date.now();
    if (now - resetWindow >= 1_000) {
      resetWindow = now;
      resetsInWindow = 0;
    }
    // Bounded, so a flood of junk cannot turn the server into a reflector.
    if (++resetsInWindow > MAX_RESETS_PER_SECOND) return;
    const packet = buildReset(resetToken(resetKey, data.subarray(1, 1 + CID_LEN)), data.length);
    if (packet) socket.send(packet, port, host);
  }

  function track(conn: Connection, scid: Uint8Array, remote: Address): ConnState {
    const state = makeState(conn, remote);
    perAddress.set(remote.host, (perAddress.get(remote.host) ?? 0) + 1);
    const key = cidKey(scid, 0, scid.length);
    state.cids.push(key);
    byCid.set(key, state);
    all.add(state);
    return state;
  }

  function receive(state: ConnState, data: Uint8Array, port: number, host: string) {
    const info = state.recvInfo;
    if (info.from.port !== port || info.from.host !== host) info.from = { host, port };
    try {
      state.conn.recv(data, info);
    } catch {
      // quiche rejects undecryptable or malformed packets; the connection survives.
      drop("recv_error");
    }
    state.lastActivity = Date.now();
    afterPacket(state);
  }

  /**
   * After packets arrive, what is left to send on that connection is often just
   * an ACK. Flushing it per packet doubles the packets (and syscalls) of a
   * one-way stream, so once established, ACK-only work waits for ACK_EVERY
   * packets or ACK_DELAY_MS, whichever comes first. Anything the application
   * queues (datagrams, stream bytes, closes) still flushes at once.
   */
  function afterPacket(state: ConnState) {
    afterInput(state, false);
  }

  function afterInput(state: ConnState, urgent = true) {
    const conn = state.conn;
    if (!state.wasEstablished && conn.isEstablished()) {
      state.wasEstablished = true;
      handlers.onEstablished?.(state);
    }
    if (state.wasEstablished) {
      if (handlers.onDatagram) {
        let n: number | null;
        while (!state.closed && (n = conn.dgramRecv(dgramIn.buffer)) !== null) {
          if (dgramRate !== Infinity && !takeDatagramToken(state)) {
            drop("rate_limited");
            continue;
          }
          handlers.onDatagram(state, dgramIn.view(n));
        }
      }
      // quiche's is_readable() is also true while DATAGRAMs wait, so ask only
      // after draining them: iterating streams on every packet is costly.
      if (!state.closed && conn.isReadable()) readStreams(state);
      if (state.pending.size > 0) drainPending(state);
    }
    if (urgent || !state.wasEstablished || ++state.unflushedInputs >= ACK_EVERY) return markDirty(state);
    if (state.ackTimer === null && !dirty.has(state)) {
      state.ackTimer = setTimeout(() => {
        state.ackTimer = null;
        if (!state.closed) markDirty(state);
      }, ACK_DELAY_MS);
    }
  }

  /** Token bucket per connection: `dgramRate` per second, bursts up to one second's worth. */
  function takeDatagramToken(state: ConnState): boolean {
    const now = performance.now();
    state.dgramTokens = Math.min(dgramRate, state.dgramTokens + ((now - state.dgramRefill) * dgramRate) / 1000);
    state.dgramRefill = now;
    if (state.dgramTokens < 1) return false;
    state.dgramTokens -= 1;
    return true;
  }

  function readStreams(state: ConnState) {
    for (const streamId of state.conn.readable()) {
      if (!state.paused.has(streamId)) readStream(state, streamId);
      else probeStream(state, streamId);
    }
  }

  /**
   * A paused stream is not read, but a reset by the peer must still be seen,
   * or a stalled transfer the peer gave up on is never cleaned up. A
   * zero-length read reports a reset (or a bare FIN) without consuming data.
   */
  function probeStream(state: ConnState, streamId: number) {
    let result: [number, boolean] | null;
    try {
      result = state.conn.streamRecv(streamId, NO_BYTES);
    } catch (error) {
      state.paused.delete(streamId);
      handlers.onStreamReset?.(state, streamId, errorCode(error), "reset");
      return;
    }
    if (result !== null && result[1]) handlers.onStreamData?.(state, streamId, NO_BYTES, true);
  }

  function readStream(state: ConnState, streamId: number) {
    while (!state.closed && !state.paused.has(streamId)) {
      let result: [number, boolean] | null;
      try {
        result = state.conn.streamRecv(streamId, streamBuf);
      } catch (error) {
        // RESET_STREAM from the peer: nothing more will come.
        handlers.onStreamReset?.(state, streamId, errorCode(error), "reset");
        return;
      }
      if (result === null) return;
      const [n, fin] = result;
      handlers.onStreamData?.(state, streamId, streamBuf.subarray(0, n), fin);
      if (fin) return;
    }
  }

  function writeFailed(state: ConnState, streamId: number, error: unknown) {
    state.pending.delete(streamId);
    const message = (error as Error)?.message ?? "";
    if (message.startsWith("StreamStopped")) handlers.onStreamReset?.(state, streamId, errorCode(error), "stopped");
  }

  function drainPending(state: ConnState) {
    for (const [streamId, queue] of state.pending) {
      while (queue.chunks.length > 0) {
        const chunk = queue.chunks[0]!;
        const last = queue.chunks.length === 1;
        let written: number | null;
        try {
          written = state.conn.streamSend(streamId, chunk, last && queue.fin);
        } catch (error) {
          queue.chunks.length = 0; // stream gone: the peer stopped it
          writeFailed(state, streamId, error);
          break;
        }
        if (written === null) break;
        queue.bytes -= written;
        if (written < chunk.length) {
          queue.chunks[0] = chunk.subarray(written);
          break;
        }
        queue.chunks.shift();
      }
      if (queue.chunks.length === 0 && state.pending.get(streamId) === queue) {
        state.pending.delete(streamId);
        handlers.onStreamDrained?.(state, streamId);
      }
    }
  }

  function markDirty(state: ConnState) {
    dirty.add(state);
    if (flushScheduled) return;
    flushScheduled = true;
    // Bun drains microtasks after every received packet, so a microtask
    // flushes per packet: lowest latency when idle. When flushes come back to
    // back the process is busy: a zero timer lets the socket's whole batch in
    // first, so one sendmmsg carries many packets. (setImmediate would be
    // quicker, but a loop woken only by UDP does not always run it.)
    if (flushGapMs < BUSY_GAP_MS) setTimeout(flushAll, 0);
    else queueMicrotask(flushAll);
  }

  function flushAll() {
    flushScheduled = false;
    const now = performance.now();
    flushGapMs = flushGapMs * 0.9 + Math.min(now - lastFlush, 10) * 0.1;
    lastFlush = now;
    for (const state of dirty) flush(state);
    dirty.clear();
  }

  function flush(state: ConnState) {
    const conn = state.conn;
    state.unflushedInputs = 0;
    if (state.ackTimer !== null) {
      clearTimeout(state.ackTimer);
      state.ackTimer = null;
    }
    let count = 0;
    for (;;) {
      const buf = sendBufs[count]!;
      let result;
      try {
        result = conn.send(buf);
      } catch {
        break;
      }
      if (result === null) break;
      const [n, info] = result;
      sendList.push(buf.subarray(0, n), info.to.port, info.to.host);
      if (++count === SEND_BATCH) {
        socket.sendMany(sendList, count);
        sendList.length = 0;
        count = 0;
      }
    }
    if (count > 0) {
      socket.sendMany(sendList, count);
      sendList.length = 0;
    }
    if (conn.isClosed()) return finish(state);
    // The peer's CONNECTION_CLOSE puts quiche in draining for 3 PTOs; tell the
    // application now (the peer is gone) and forget the state when it ends.
    if (!state.closed && conn.isDraining()) reportClosed(state);
    schedule(state);
  }

  function schedule(state: ConnState) {
    const timeout = state.conn.timeout();
    if (timeout === null) return;
    const at = Date.now() + timeout;
    // Keep an earlier timer: firing early is harmless, quiche checks its own deadlines.
    if (state.timer !== null && state.timerAt <= at + 1) return;
    if (state.timer !== null) clearTimeout(state.timer);
    state.timerAt = at;
    state.timer = setTimeout(() => {
      state.timer = null;
      if (state.gone) return;
      state.conn.onTimeout();
      afterInput(state);
    }, timeout);
  }

  /** Forgets a connection quiche has closed; reports it if that was not done at draining. */
  function finish(state: ConnState) {
    if (state.gone) return;
    state.gone = true;
    if (state.timer !== null) clearTimeout(state.timer);
    if (state.ackTimer !== null) clearTimeout(state.ackTimer);
    for (const key of state.cids) byCid.delete(key);
    all.delete(state);
    const held = (perAddress.get(state.remote.host) ?? 1) - 1;
    if (held > 0) perAddress.set(state.remote.host, held);
    else perAddress.delete(state.remote.host);
    dirty.delete(state);
    reportClosed(state);
  }

  function reportClosed(state: ConnState) {
    if (state.closed) return;
    (state as { closed: boolean }).closed = true;
    const local = state.conn.localError();
    const peer = state.conn.peerError();
    const err = peer ?? local;
    handlers.onClosed?.(state, {
      local,
      peer,
      timedOut: state.conn.isTimedOut(),
      reason: err ? textDecoder.decode(err.reason) : "",
    });
  }

  function makeState(conn: Connection, remote: Address): ConnState {
    const state: ConnState = {
      id: nextId++,
      remote,
      createdAt: Date.now(),
      get established() {
        return state.wasEstablished;
      },
      closed: false,
      context: undefined,
      raw: conn,
      conn,
      cids: [],
      // Client-initiated bidi ids are 0 mod 4 (0 is the control stream), server's 1 mod 4.
      nextStream: options.server ? 1 : 4,
      dgramTokens: Number.isFinite(dgramRate) ? dgramRate : 0,
      dgramRefill: performance.now(),
      unflushedInputs: 0,
      gone: false,
      ackTimer: null,
      paused: new Set(),
      timer: null,
      timerAt: 0,
      wasEstablished: false,
      pending: new Map(),
      lastActivity: Date.now(),
      recvInfo: { from: remote, to: local },
      sendDatagram(data) {
        if (state.closed) return false;
        let ok: boolean;
        try {
          ok = conn.dgramSend(data) !== null;
        } catch {
          ok = false; // larger than the peer accepts, or not yet negotiated
        }
        if (ok) markDirty(state);
        return ok;
      },
      writeStream(streamId, data, fin = false) {
        if (state.closed) return;
        let queue = state.pending.get(streamId);
        if (queue === undefined) {
          let written: number | null = 0;
          try {
            written = conn.streamSend(streamId, data, fin);
          } catch (error) {
            writeFailed(state, streamId, error);
            return;
          }
          written ??= 0;
          markDirty(state);
          if (written === data.length) return;
          queue = { chunks: [], bytes: 0, fin };
          state.pending.set(streamId, queue);
          const rest = data.slice(written);
          queue.chunks.push(rest);
          queue.bytes += rest.length;
          return;
        }
        // Keep order: once something is queued, everything after it queues too.
        queue.chunks.push(data.slice());
        queue.bytes += data.length;
        queue.fin = fin;
      },
      pendingStreamBytes(streamId) {
        return state.pending.get(streamId)?.bytes ?? 0;
      },
      openStream() {
        const id = state.nextStream;
        state.nextStream += 4;
        return id;
      },
      pauseStream(streamId, paused) {
        if (paused) {
          state.paused.add(streamId);
          return;
        }
        if (!state.paused.delete(streamId)) return;
        // Data may have arrived while paused: read it now that there is room.
        queueMicrotask(() => {
          if (state.closed) return;
          readStream(state, streamId);
          markDirty(state);
        });
      },
      shutdownStream(streamId, error) {
        state.pending.delete(streamId);
        state.paused.delete(streamId);
        try {
          conn.streamShutdown(streamId, quiche.Shutdown.Write, error);
          conn.streamShutdown(streamId, quiche.Shutdown.Read, error);
        } catch {
          // already finished
        }
        markDirty(state);
      },
      close(code, reason) {
        if (state.closed) return;
        try {
          conn.close(true, code, textEncoder.encode(reason));
        } catch {
          // already closing
        }
        markDirty(state);
      },
      peerCertificate() {
        const chain = conn.peerCertChain();
        return chain && chain.length > 0 ? chain[0]! : null;
      },
      rttSeconds() {
        const paths = conn.pathStats();
        // The binding reports whole milliseconds.
        return paths.length > 0 ? paths[0]!.rtt / 1e3 : 0;
      },
      maxDatagramSize() {
        return conn.dgramMaxWritableLen() ?? 0;
      },
    };
    return state;
  }

  socket = await openUdp({
    host: options.bind.host,
    port: options.bind.port,
    onPacket,
    onError: (error) => options.onSocketError?.(error),
  });
  local = socket.address;

  let keepalive: ReturnType<typeof setInterval> | null = null;
  if (options.keepaliveMs && options.keepaliveMs > 0) {
    const every = options.keepaliveMs;
    keepalive = setInterval(() => {
      const now = Date.now();
      for (const state of all) {
        if (state.wasEstablished && now - state.lastActivity >= every) {
          state.conn.sendAckEliciting();
          markDirty(state);
        }
      }
    }, Math.max(50, Math.floor(every / 2)));
  }

  return {
    address: local,
    connect(remote, serverName) {
      const scid = randomCid();
      const conn = quiche.Connection.connect(serverName, scid, local, remote, configFor(scid));
      const state = track(conn, scid, remote);
      markDirty(state);
      return state;
    },
    reconfigure(config) {
      currentConfig = config;
    },
    async close(code = 0, reason = "endpoint closing") {
      closing = true;
      for (const state of all) state.close(code, reason);
      // Sends the CONNECTION_CLOSE frames now (sendMany is synchronous), so the
      // connections can be forgotten without waiting out their draining period.
      flushAll();
      for (const state of [...all]) finish(state);
      if (keepalive) clearInterval(keepalive);
      socket.close();
    },
  };
}
