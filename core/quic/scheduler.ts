/**
 * When the engine sends: connections with something to send are marked
 * dirty and flushed together (one sendmmsg per batch of packets), ACK-only
 * work waits a little so a one-way stream does not double its packets, and
 * each connection's quiche timer is kept armed.
 */
import type { UdpSocket } from "../runtime/udp.ts";
import { type Conn, DIRECT_DEPTH } from "./connection.ts";
import { clear, dequeue } from "./fair-queue.ts";

/** Packets handed to the socket in one sendmmsg. */
const SEND_BATCH = 64;
/** Delayed ACKs: flush ACK-only work after this many packets or this long. */
export const ACK_EVERY = 8;
export const ACK_DELAY_MS = 1;
/** Flushes closer together than this (smoothed) mean the process is busy: batch. */
const BUSY_GAP_MS = 0.1;
/**
 * While busy, a batch waits at most this long. The zero timer that flushes a
 * batch runs only when the loop has no socket work left, so under a flood it
 * can starve for hundreds of milliseconds; the packets that keep arriving
 * flush it instead once it is this old.
 */
const MAX_BATCH_WAIT_MS = 0.25;

export interface SchedulerHost<Ctx> {
  readonly socket: UdpSocket;
  /** Largest packet quiche may write. */
  readonly packetSize: number;
  /** quiche's timer fired: let it run, then hand over what it produced. */
  onTimer(state: Conn<Ctx>): void;
  /** After a flush: quiche closed the connection (or started draining). */
  onFlushed(state: Conn<Ctx>): void;
}

export interface Scheduler<Ctx> {
  /** Something the application queued (or a close): flush soon. */
  markDirty(state: Conn<Ctx>): void;
  /**
   * Packets arrived and were processed. What is left to send is often only
   * an ACK: once established, that waits for ACK_EVERY packets or
   * ACK_DELAY_MS, whichever comes first; anything else flushes at once.
   */
  afterPackets(state: Conn<Ctx>): void;
  /** Sends everything every dirty connection has, now. */
  flushAll(): void;
  /** Stops a connection's timers (it is gone). */
  forget(state: Conn<Ctx>): void;
}

export function createScheduler<Ctx>(host: SchedulerHost<Ctx>): Scheduler<Ctx> {
  const dirty = new Set<Conn<Ctx>>();
  const sendBufs = Array.from({ length: SEND_BATCH }, () => new Uint8Array(host.packetSize));
  const sendList: (Uint8Array | number | string)[] = [];
  let flushScheduled = false;
  let flushing = false;
  /** Connections whose ACK-only work waits for the shared ACK timer. */
  const awaitingAck = new Set<Conn<Ctx>>();
  let ackTimer: ReturnType<typeof setTimeout> | null = null;
  /** A zero timer is on its way (at most one at a time). */
  let timerPending = false;
  const late = new Set<Conn<Ctx>>();
  // Smoothed gap between flushes: the load signal for batching.
  let lastFlush = 0;
  let flushGapMs = 10;

  function markDirty(state: Conn<Ctx>) {
    if (flushing) {
      // Marked while a flush runs (a handler reacting to a close): flushed right after it.
      late.add(state);
      return;
    }
    dirty.add(state);
    if (flushScheduled) {
      if (flushGapMs < BUSY_GAP_MS && performance.now() - lastFlush > MAX_BATCH_WAIT_MS) flushAll();
      return;
    }
    flushScheduled = true;
    // Bun drains microtasks after every received packet, so a microtask
    // flushes per packet: lowest latency when idle. When flushes come back to
    // back the process is busy: a zero timer lets the socket's whole batch in
    // first, so one sendmmsg carries many packets. (setImmediate would be
    // quicker, but a loop woken only by UDP does not always run it.)
    if (flushGapMs >= BUSY_GAP_MS) queueMicrotask(flushAll);
    else if (!timerPending) {
      timerPending = true;
      setTimeout(onZeroTimer, 0);
    }
  }

  function onZeroTimer() {
    timerPending = false;
    if (flushScheduled) flushAll();
  }

  function afterPackets(state: Conn<Ctx>) {
    if (!state.wasEstablished || ++state.unflushedInputs >= ACK_EVERY) return markDirty(state);
    if (dirty.has(state) || awaitingAck.has(state)) return;
    awaitingAck.add(state);
    // One timer for every connection with an ACK due: a server with thousands
    // of idle clients answers their keepalives without a timer each.
    ackTimer ??= setTimeout(flushAcks, ACK_DELAY_MS);
  }

  function flushAcks() {
    ackTimer = null;
    for (const state of awaitingAck) if (!state.closed) markDirty(state);
    awaitingAck.clear();
  }

  function flushAll() {
    flushScheduled = false;
    if (flushing || dirty.size === 0) return;
    const now = performance.now();
    flushGapMs = flushGapMs * 0.9 + Math.min(now - lastFlush, 10) * 0.1;
    lastFlush = now;
    flushing = true;
    try {
      for (const state of dirty) flush(state);
      sendBatch();
    } finally {
      flushing = false;
      dirty.clear();
    }
    if (late.size > 0) {
      for (const state of late) markDirty(state);
      late.clear();
    }
  }

  /** Packets of every connection flushed together share one sendmmsg (up to SEND_BATCH). */
  let batched = 0;
  function sendBatch() {
    if (batched === 0) return;
    host.socket.sendMany(sendList, batched);
    sendList.length = 0;
    batched = 0;
  }

  function flush(state: Conn<Ctx>) {
    const conn = state.conn;
    state.unflushedInputs = 0;
    awaitingAck.delete(state);
    const waiting = state.waiting;
    for (;;) {
      // Datagrams that waited for the window go to quiche a few at a time, in fair order.
      if (waiting !== null && waiting.size > 0) topUp(state);
      const buf = sendBufs[batched]!;
      let result;
      try {
        result = conn.send(buf);
      } catch {
        break;
      }
      if (result === null) break;
      const [n, info] = result;
      sendList.push(buf.subarray(0, n), info.to.port, info.to.host);
      if (++batched === SEND_BATCH) sendBatch();
    }
    if (state.dgramQueued > 0) state.dgramQueued = conn.dgramSendQueueLen();
    host.onFlushed(state);
    if (state.closed && waiting !== null) clear(waiting);
    if (!state.gone) arm(state);
  }

  function topUp(state: Conn<Ctx>) {
    // What quiche sent since the last count left room: count again before filling it.
    state.dgramQueued = state.conn.dgramSendQueueLen();
    const waiting = state.waiting!;
    while (state.dgramQueued < DIRECT_DEPTH) {
      const next = dequeue(waiting);
      if (next === undefined) return;
      try {
        if (state.conn.dgramSend(next) !== null) state.dgramQueued++;
      } catch {
        // too large for the peer now: drop it
      }
    }
  }

  /** Keeps quiche's timer armed; an earlier timer is kept (firing early is harmless). */
  function arm(state: Conn<Ctx>) {
    const timeout = state.conn.timeout();
    if (timeout === null) return;
    const at = Date.now() + timeout;
    if (state.timer !== null && state.timerAt <= at + 1) return;
    if (state.timer !== null) clearTimeout(state.timer);
    state.timerAt = at;
    state.timer = setTimeout(() => {
      state.timer = null;
      if (state.gone) return;
      host.onTimer(state);
      markDirty(state);
    }, timeout);
  }

  function forget(state: Conn<Ctx>) {
    if (state.timer !== null) clearTimeout(state.timer);
    awaitingAck.delete(state);
    state.timer = null;
    dirty.delete(state);
  }

  return { markDirty, afterPackets, flushAll, forget };
}
