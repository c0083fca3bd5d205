/**
 * One QUIC connection inside the engine: its declared state, and what moves
 * bytes between quiche and the application (stream reads and queued writes,
 * DATAGRAMs with their rate limit). Sending packets and timers belong to the
 * scheduler; routing and admission to the endpoint.
 */
import type { Address } from "../net/address.ts";
import { createBufferViews } from "../runtime/views.ts";
import { createFairQueue, enqueue, type FairQueue, hasRoom, waitingOf } from "./fair-queue.ts";
import { type Connection, quiche } from "./native.ts";
import type { ConnectionHandlers, QuicConnection } from "./types.ts";

/** Stream bytes quiche's flow control has not taken yet, in order. */
interface PendingWrites {
  chunks: Uint8Array[];
  bytes: number;
  fin: boolean;
}

/** The engine's own state of a connection, behind the application's view of it. */
export interface Conn<Ctx> extends QuicConnection<Ctx> {
  readonly conn: Connection;
  /** Our connection IDs that route to this connection (map keys). */
  cids: number[];
  /** Next bidirectional stream id this side may open. */
  nextStream: number;
  /** Streams the application paused (backpressure): not read until resumed. */
  paused: Set<number>;
  /**
   * Streams that may still have bytes for us: those we opened, and those the
   * peer opened that we found. quiche's own list of readable streams costs
   * several microseconds per call in this binding, so each packet asks about
   * these one by one instead (see readStreams).
   */
  reading: Set<number>;
  /** The lowest id of a stream the peer may open that we have not found yet. */
  nextPeerStream: number;
  /** While a paused stream holds data: not before this time (performance.now()) is quiche's full list asked again. */
  fullListAt: number;
  pending: Map<number, PendingWrites>;
  /** DATAGRAM token bucket (only with a rate limit). */
  dgramTokens: number;
  dgramRefill: number;
  /**
   * DATAGRAMs waiting for the congestion window, per source and flow (created
   * the first time one has to wait, dropped by the keepalive tick once it
   * stays empty). quiche's own queue is kept short
   * (DIRECT_DEPTH) so that the order it sends in is the fair one.
   */
  waiting: FairQueue | null;
  /** Datagrams in quiche's queue, as of the last flush plus those added since. */
  dgramQueued: number;
  /**
   * The largest DATAGRAM quiche takes, asked once after each flush (-1: not
   * yet): a flood queues thousands between flushes, and asking the binding
   * for each was one more crossing per datagram.
   */
  maxDatagram: number;
  /** Packets received since the last flush: ACK-only work waits for a few. */
  unflushedInputs: number;
  /** quiche's own timer (loss detection, idle, draining). */
  timer: ReturnType<typeof setTimeout> | null;
  timerAt: number;
  wasEstablished: boolean;
  /** Counts against its address's unproven connections until it says HELLO (servers). */
  proven: boolean;
  /** Removed from the endpoint (quiche closed); `closed` may come earlier, at draining. */
  gone: boolean;
  /** The endpoint's keepalive epoch of the last packet received. */
  activeEpoch: number;
  /** Reused for every recv: quiche copies what it needs. */
  recvInfo: { from: Address; to: Address };
}

/** What a connection needs from its endpoint. */
export interface ConnectionHost<Ctx> {
  readonly handlers: ConnectionHandlers<Ctx>;
  readonly server: boolean;
  readonly local: Address;
  readonly dgramRate: number;
  /** Something to send: flush soon. */
  markDirty(state: Conn<Ctx>): void;
  /** The application says this peer is proven (HELLO). */
  onProven(state: Conn<Ctx>): void;
  drop(reason: string): void;
}

const textEncoder = new TextEncoder();
/**
 * Datagrams handed straight to quiche while nothing waits in the fair queue:
 * enough to fill a flush, few enough that a newcomer is not stuck behind a
 * flood in quiche's first-in-first-out queue.
 */
export const DIRECT_DEPTH = 16;
// Read buffers are shared: the engine is single-threaded and handlers get views valid only during the call.
const streamIn = createBufferViews(65536);
const dgramIn = createBufferViews(65536);
const NO_BYTES = new Uint8Array(0);
let nextId = 1;

/** The application error code in quiche's "StreamReset(N)" / "StreamStopped(N)" errors. */
function errorCode(error: unknown): number {
  const m = /\((\d+)\)/.exec((error as Error)?.message ?? "");
  return m ? Number(m[1]) : 0;
}

export function createConn<Ctx>(host: ConnectionHost<Ctx>, conn: Connection, remote: Address): Conn<Ctx> {
  const now = Date.now();
  // The methods are made once per connection and only forward to the named functions below.
  const state: Conn<Ctx> = {
    id: nextId++,
    remote,
    createdAt: now,
    get established() {
      return state.wasEstablished;
    },
    closed: false,
    context: undefined,
    raw: conn,
    conn,
    cids: [],
    // Client-initiated bidi ids are 0 mod 4 (0 is the control stream), server's 1 mod 4.
    nextStream: host.server ? 1 : 4,
    paused: new Set(),
    // A client's control stream (0) is its own; the server finds it as the peer's first.
    reading: new Set(host.server ? [] : [0]),
    nextPeerStream: host.server ? 0 : 1,
    fullListAt: 0,
    pending: new Map(),
    dgramTokens: Number.isFinite(host.dgramRate) ? host.dgramRate : 0,
    dgramRefill: performance.now(),
    waiting: null,
    dgramQueued: 0,
    maxDatagram: -1,
    unflushedInputs: 0,
    timer: null,
    timerAt: 0,
    wasEstablished: false,
    proven: !host.server,
    gone: false,
    activeEpoch: 0,
    recvInfo: { from: remote, to: host.local },
    sendDatagram: (data, source = 0, flow = 0) => sendDatagram(host, state, data, source, flow),
    canSendDatagram: (source = 0, flow = 0) => canSendDatagram(state, source, flow),
    datagramsWaiting: (source = 0, flow = 0) => state.waiting === null ? 0 : waitingOf(state.waiting, source, flow),
    writeStream: (streamId, data, fin = false) => writeStream(host, state, streamId, data, fin),
    pendingStreamBytes: (streamId) => state.pending.get(streamId)?.bytes ?? 0,
    openStream: () => openStream(state),
    pauseStream: (streamId, paused) => pauseStream(host, state, streamId, paused),
    shutdownStream: (streamId, error) => shutdownStream(host, state, streamId, error),
    markProven: () => markProven(host, state),
    close: (code, reason) => close(host, state, code, reason),
    peerCertificate: () => peerCertificate(conn),
    rttSeconds: () => rttSeconds(conn),
    maxDatagramSize: () => conn.dgramMaxWritableLen() ?? 0,
  };
  return state;
}

function sendDatagram<Ctx>(
  host: ConnectionHost<Ctx>,
  state: Conn<Ctx>,
  data: Uint8Array,
  source: number,
  flow: number,
): boolean {
  if (state.closed) return false;
  const conn = state.conn;
  const waiting = state.waiting;
  if ((waiting === null || waiting.size === 0) && state.dgramQueued < DIRECT_DEPTH) {
    let queued: boolean;
    try {
      queued = conn.dgramSend(data) !== null;
    } catch {
      return false; // larger than the peer accepts, or not yet negotiated
    }
    if (queued) {
      state.dgramQueued++;
      host.markDirty(state);
      return true;
    }
  }
  if (state.maxDatagram < 0) state.maxDatagram = conn.dgramMaxWritableLen() ?? 0;
  if (data.length > state.maxDatagram) return false;
  if (!enqueue(state.waiting ??= createFairQueue(), source, flow, data)) return false;
  host.markDirty(state);
  return true;
}

function canSendDatagram(state: Conn<unknown>, source: number, flow: number): boolean {
  return !state.closed && (state.waiting === null || hasRoom(state.waiting, source, flow));
}

function writeStream<Ctx>(
  host: ConnectionHost<Ctx>,
  state: Conn<Ctx>,
  streamId: number,
  data: Uint8Array,
  fin: boolean,
): void {
  if (state.closed) return;
  let queue = state.pending.get(streamId);
  if (queue !== undefined) {
    // Keep order: once something is queued, everything after it queues too.
    queue.chunks.push(data.slice());
    queue.bytes += data.length;
    queue.fin = fin;
    return;
  }
  let written: number | null = 0;
  try {
    written = state.conn.streamSend(streamId, data, fin);
  } catch (error) {
    writeFailed(host, state, streamId, error);
    return;
  }
  written ??= 0;
  host.markDirty(state);
  if (written === data.length) return;
  const rest = data.slice(written);
  state.pending.set(streamId, { chunks: [rest], bytes: rest.length, fin });
}

function openStream(state: Conn<unknown>): number {
  const id = state.nextStream;
  state.nextStream += 4;
  state.reading.add(id);
  return id;
}

function pauseStream<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>, streamId: number, paused: boolean): void {
  if (paused) {
    state.paused.add(streamId);
    return;
  }
  if (!state.paused.delete(streamId)) return;
  // Data may have arrived while paused: read it now that there is room.
  queueMicrotask(() => {
    if (state.closed) return;
    readStream(host, state, streamId);
    host.markDirty(state);
  });
}

function shutdownStream<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>, streamId: number, error: number): void {
  state.pending.delete(streamId);
  state.paused.delete(streamId);
  state.reading.delete(streamId);
  try {
    state.conn.streamShutdown(streamId, quiche.Shutdown.Write, error);
    state.conn.streamShutdown(streamId, quiche.Shutdown.Read, error);
  } catch {
    // already finished
  }
  host.markDirty(state);
}

function markProven<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>): void {
  if (state.proven) return;
  state.proven = true;
  host.onProven(state);
}

function close<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>, code: number, reason: string): void {
  if (state.closed) return;
  try {
    state.conn.close(true, code, textEncoder.encode(reason));
  } catch {
    // already closing
  }
  host.markDirty(state);
}

function peerCertificate(conn: Connection): Uint8Array | null {
  const chain = conn.peerCertChain();
  return chain && chain.length > 0 ? chain[0]! : null;
}

function rttSeconds(conn: Connection): number {
  const paths = conn.pathStats();
  // The binding reports whole milliseconds.
  return paths.length > 0 ? paths[0]!.rtt / 1e3 : 0;
}

/**
 * Hands the application what quiche has for it after packets or a timer:
 * the established event, DATAGRAMs, stream bytes; then retries queued writes.
 */
export function deliverInput<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>): void {
  const conn = state.conn;
  const handlers = host.handlers;
  if (!state.wasEstablished) {
    if (!conn.isEstablished()) return;
    state.wasEstablished = true;
    handlers.onEstablished?.(state);
  }
  if (handlers.onDatagram) {
    let n: number | null;
    while (!state.closed && (n = conn.dgramRecv(dgramIn.buffer)) !== null) {
      if (host.dgramRate !== Infinity && !takeDatagramToken(host.dgramRate, state)) {
        host.drop("rate_limited");
        continue;
      }
      handlers.onDatagram(state, dgramIn.view(n));
    }
  }
  // quiche's is_readable() is also true while DATAGRAMs wait, so ask only
  // after draining them: iterating streams on every packet is costly.
  if (!state.closed && conn.isReadable()) readStreams(host, state);
  // Held-back stream data the input let into quiche (the ACK opened the
  // window) is queued work like any write: it must not wait as ACK-only work.
  if (state.pending.size > 0) {
    drainPending(host, state);
    host.markDirty(state);
  }
}

/** Token bucket per connection: `rate` per second, bursts up to one second's worth. */
function takeDatagramToken(rate: number, state: Conn<unknown>): boolean {
  const now = performance.now();
  state.dgramTokens = Math.min(rate, state.dgramTokens + ((now - state.dgramRefill) * rate) / 1000);
  state.dgramRefill = now;
  if (state.dgramTokens < 1) return false;
  state.dgramTokens -= 1;
  return true;
}

/**
 * Up to this many streams that may still send to us, they are asked about one
 * by one; beyond it, quiche's full list is cheaper (see readStreams).
 */
export const ASK_EACH_MAX_STREAMS = 16;
/**
 * While a stream is paused, quiche's full list is asked at most this often.
 * A paused stream holding data keeps quiche "readable", so without a limit
 * every packet paid for the list: half of the server's packets in a TCP
 * bulk transfer, whose source stream waits for the slower side.
 */
export const PAUSED_FULL_LIST_MS = 5;

/**
 * Reads every stream with bytes (or a FIN or reset) for us. quiche's
 * `readable()` list says which, but it costs 4–7 µs per call here (the
 * binding builds a JavaScript iterator), more than decrypting the packet,
 * while asking about one stream costs about 0.2 µs. So while a connection has
 * few streams, the streams we know are asked one by one, then the peer's next
 * stream id, which finds new streams opened in order. If quiche still has
 * something readable after that (a stream the peer opened out of order, or a
 * paused stream holding data, which hides any other), or the connection has
 * many streams, the full list is asked for: while a stream is paused, only
 * every PAUSED_FULL_LIST_MS.
 */
function readStreams<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>) {
  const conn = state.conn;
  if (state.reading.size <= ASK_EACH_MAX_STREAMS) {
    for (const streamId of state.reading) {
      if (state.closed) return;
      if (!state.paused.has(streamId) && conn.streamReadable(streamId)) readStream(host, state, streamId);
    }
    while (!state.closed && conn.streamReadable(state.nextPeerStream)) {
      const streamId = state.nextPeerStream;
      state.nextPeerStream += 4;
      state.reading.add(streamId);
      readStream(host, state, streamId);
    }
    if (state.closed || !conn.isReadable()) return;
    if (state.paused.size > 0) {
      // Most likely the paused stream's data: look for anything else now and then.
      const now = performance.now();
      if (now < state.fullListAt) return;
      state.fullListAt = now + PAUSED_FULL_LIST_MS;
    }
  }
  // Peer-initiated ids are 0 mod 4 at a server (the client's), 1 mod 4 at a client.
  const peerParity = state.nextPeerStream & 3;
  for (const streamId of conn.readable()) {
    if (state.closed) return;
    state.reading.add(streamId);
    if ((streamId & 3) === peerParity && streamId >= state.nextPeerStream) state.nextPeerStream = streamId + 4;
    if (!state.paused.has(streamId)) readStream(host, state, streamId);
    else probeStream(host, state, streamId);
  }
}

/**
 * A paused stream is not read, but a reset by the peer must still be seen,
 * or a stalled transfer the peer gave up on is never cleaned up. A
 * zero-length read reports a reset (or a bare FIN) without consuming data.
 */
function probeStream<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>, streamId: number) {
  let result: [number, boolean] | null;
  try {
    result = state.conn.streamRecv(streamId, NO_BYTES);
  } catch (error) {
    return peerReset(host, state, streamId, error);
  }
  if (result !== null && result[1]) {
    state.reading.delete(streamId);
    host.handlers.onStreamData?.(state, streamId, NO_BYTES, true);
  }
}

function readStream<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>, streamId: number) {
  const buffer = streamIn.buffer;
  while (!state.closed && !state.paused.has(streamId)) {
    let result: [number, boolean] | null;
    try {
      result = state.conn.streamRecv(streamId, buffer);
    } catch (error) {
      return peerReset(host, state, streamId, error);
    }
    if (result === null) return;
    const [n, fin] = result;
    if (fin) state.reading.delete(streamId);
    host.handlers.onStreamData?.(state, streamId, streamIn.view(n), fin);
    // quiche hands over all the contiguous bytes that fit: a short read
    // emptied the stream, and asking again only to hear "done" costs a
    // microsecond and more.
    if (fin || n < buffer.length) return;
  }
}

/** RESET_STREAM from the peer (quiche's read failed): nothing more will come, so forget the stream and say so. */
function peerReset<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>, streamId: number, error: unknown): void {
  state.paused.delete(streamId);
  state.reading.delete(streamId);
  host.handlers.onStreamReset?.(state, streamId, errorCode(error), "reset");
}

function writeFailed<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>, streamId: number, error: unknown) {
  state.pending.delete(streamId);
  const message = (error as Error)?.message ?? "";
  if (message.startsWith("StreamStopped")) host.handlers.onStreamReset?.(state, streamId, errorCode(error), "stopped");
}

function drainPending<Ctx>(host: ConnectionHost<Ctx>, state: Conn<Ctx>) {
  for (const [streamId, queue] of state.pending) {
    while (queue.chunks.length > 0) {
      const chunk = queue.chunks[0]!;
      const last = queue.chunks.length === 1;
      let written: number | null;
      try {
        written = state.conn.streamSend(streamId, chunk, last && queue.fin);
      } catch (error) {
        queue.chunks.length = 0; // stream gone: the peer stopped it
        writeFailed(host, state, streamId, error);
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
      host.handlers.onStreamDrained?.(state, streamId);
    }
  }
}
