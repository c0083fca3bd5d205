/**
 * When the engine sends: connections with something to send are marked
 * dirty and flushed together (one sendmmsg per batch of packets), ACK-only
 * work waits a little so a one-way stream does not double its packets, and
 * each connection's quiche timer is kept armed.
 *
 * Packets are written back to back into one buffer; consecutive packets of a
 * connection that have the same size (the last may be shorter) leave as one
 * message that the kernel cuts into datagrams (UDP GSO, see
 * runtime/udp-gso.ts): at real paths' packet sizes a flush of a busy
 * connection is then one message instead of dozens of datagrams.
 */
import { createFlushPacer, type FlushPacer } from "../net/flush-pacer.ts";
import { joinsSegmented, type UdpSocket } from "../runtime/udp.ts";
import { type Conn, DIRECT_DEPTH } from "./connection.ts";
import { clear, dequeue } from "./fair-queue.ts";

/** Messages handed to the socket in one sendmmsg; the buffer holds this many largest packets. */
const SEND_BATCH = 64;
/** Delayed ACKs: flush ACK-only work after this many packets or this long. */
export const ACK_EVERY = 8;
export const ACK_DELAY_MS = 1;

export interface SchedulerHost<Ctx> {
  readonly socket: UdpSocket;
  /** Largest packet quiche may write. */
  readonly packetSize: number;
  /** quiche's timer fired: let it run, then hand over what it produced. */
  onTimer(state: Conn<Ctx>): void;
  /** After a flush: quiche closed the connection (or started draining). */
  onFlushed(state: Conn<Ctx>): void;
  /** Counts what the scheduler had to drop (a waiting DATAGRAM quiche no longer takes). */
  drop(reason: string): void;
}

export interface Scheduler<Ctx> {
  /** Something the application queued (or a close): flush soon. */
  markDirty(state: Conn<Ctx>): void;
  /**
   * Packets arrived and were processed. What is left to send is often only
   * an ACK: once established, that waits for ACK_EVERY packets or
   * ACK_DELAY_MS, whichever comes first. A connection the input marked
   * dirty (it let held-back stream data into quiche) and DATAGRAMs waiting
   * for the window flush at once, like anything the application queued.
   */
  afterPackets(state: Conn<Ctx>): void;
  /** Sends everything every dirty connection has, now. */
  flushAll(): void;
  /** Stops a connection's timers (it is gone). */
  forget(state: Conn<Ctx>): void;
}

/** A scheduler's state: one per endpoint, shared by all its connections. */
interface SchedulerState<Ctx> {
  /** The endpoint: its socket and packet size, and what runs on a quiche timer or after a flush. */
  readonly host: SchedulerHost<Ctx>;
  /** Connections with something to send: the next flushAll sends for all of them at once. */
  readonly dirty: Set<Conn<Ctx>>;
  /** Where quiche writes the packets of a batch, back to back; reused. */
  readonly arena: Uint8Array;
  /** Bytes of the arena the batch has used. */
  used: number;
  /** The batch being built for sendSegmented: bytes, port, host, segment size, repeated. */
  readonly sendList: (Uint8Array | number | string)[];
  /** Messages of every connection flushed together share one sendmmsg (up to SEND_BATCH). */
  batched: number;
  /** The message being gathered: consecutive packets to one peer, all `run.segment` bytes but the last. */
  readonly run: SegmentRun;
  /** When flushAll runs: right after the callback when idle, per batch of packets when busy (net/flush-pacer.ts). */
  readonly pacer: FlushPacer;
  /** A flush runs now: connections marked meanwhile go to `late`, not into the set being iterated. */
  flushing: boolean;
  /**
   * Connections whose ACK-only work waits, each with the time it is due
   * (performance.now()); one delay for all, so the order they came in is the
   * order they fall due.
   */
  readonly awaitingAck: Map<Conn<Ctx>, number>;
  /** The shared ACK timer, set for the first connection due, while any awaits it. */
  ackTimer: ReturnType<typeof setTimeout> | null;
  /** The connections one firing of the ACK timer flushes, reused. */
  readonly dueAcks: Conn<Ctx>[];
  /** Marked while a flush ran (a handler reacting to a close): marked again right after it. */
  readonly late: Set<Conn<Ctx>>;
  /** flushAll bound to this state once, for the pacer and the Scheduler: no closure per flush. */
  readonly flushAllBound: () => void;
  /** flushAcks bound once, for the shared ACK timer. */
  readonly flushAcksBound: () => void;
}

/** Consecutive packets that leave as one message. */
interface SegmentRun {
  /** Packets in it; 0 when none is open. */
  segments: number;
  start: number;
  bytes: number;
  /** The size of its first packet: every packet but the last has it. */
  segment: number;
  /** False once a shorter packet ended it. */
  open: boolean;
  port: number;
  host: string;
}

export function createScheduler<Ctx>(host: SchedulerHost<Ctx>): Scheduler<Ctx> {
  const flushAllBound = () => flushAll(sched);
  const sched: SchedulerState<Ctx> = {
    host,
    dirty: new Set(),
    arena: new Uint8Array(SEND_BATCH * host.packetSize),
    used: 0,
    sendList: [],
    batched: 0,
    run: { segments: 0, start: 0, bytes: 0, segment: 0, open: false, port: 0, host: "" },
    pacer: createFlushPacer(flushAllBound),
    flushing: false,
    awaitingAck: new Map(),
    ackTimer: null,
    dueAcks: [],
    late: new Set(),
    flushAllBound,
    flushAcksBound: () => flushAcks(sched),
  };
  return {
    markDirty: (state) => markDirty(sched, state),
    afterPackets: (state) => afterPackets(sched, state),
    flushAll: sched.flushAllBound,
    forget: (state) => forget(sched, state),
  };
}

function markDirty<Ctx>(sched: SchedulerState<Ctx>, state: Conn<Ctx>): void {
  if (sched.flushing) {
    // Marked while a flush runs (a handler reacting to a close): flushed right after it.
    sched.late.add(state);
    return;
  }
  sched.dirty.add(state);
  sched.pacer.request();
}

function afterPackets<Ctx>(sched: SchedulerState<Ctx>, state: Conn<Ctx>): void {
  if (!state.wasEstablished || ++state.unflushedInputs >= ACK_EVERY) return markDirty(sched, state);
  // DATAGRAMs waiting for the window: the ACK may have opened it.
  if (state.waiting !== null && state.waiting.size > 0) return markDirty(sched, state);
  if (sched.dirty.has(state) || sched.awaitingAck.has(state)) return;
  sched.awaitingAck.set(state, performance.now() + ACK_DELAY_MS);
  // One timer for every connection with an ACK due: a server with thousands
  // of idle clients answers their keepalives without a timer each.
  sched.ackTimer ??= setTimeout(sched.flushAcksBound, ACK_DELAY_MS);
}

/**
 * The ACK timer: flushes the connections now due and waits for the next. It
 * used to flush every waiting connection, so one that came in just before
 * the timer (set for another) waited next to nothing: a request/response
 * through the server sent an ACK-only packet each way for every two
 * requests, each one more wake-up and read for the peer, where the next
 * request or response would have carried it.
 */
function flushAcks<Ctx>(sched: SchedulerState<Ctx>): void {
  sched.ackTimer = null;
  const due = sched.dueAcks;
  const nextInMs = takeDueAcks(sched.awaitingAck, performance.now(), due);
  for (const state of due) if (!state.closed) markDirty(sched, state);
  due.length = 0;
  // A flush may have emptied the set meanwhile: then no timer.
  if (nextInMs !== null && sched.awaitingAck.size > 0) {
    sched.ackTimer = setTimeout(sched.flushAcksBound, nextInMs);
  }
}

/**
 * Moves the connections due by `now` from `awaiting` (oldest first) to
 * `out`; returns how long until the next is due, or null when none is left.
 * "Due" includes the next half ACK delay: a timer cannot wait less than a
 * millisecond, and an ACK a little early costs less than one twice late.
 */
export function takeDueAcks<T>(awaiting: Map<T, number>, now: number, out: T[]): number | null {
  for (const [item, dueAt] of awaiting) {
    if (dueAt > now + ACK_DELAY_MS / 2) return dueAt - now;
    awaiting.delete(item);
    out.push(item);
  }
  return null;
}

/** The connection's ACK leaves now (it flushes) or never (it is gone); the timer stops when no one else waits. */
function settleAck<Ctx>(sched: SchedulerState<Ctx>, state: Conn<Ctx>): void {
  if (!sched.awaitingAck.delete(state) || sched.awaitingAck.size > 0 || sched.ackTimer === null) return;
  clearTimeout(sched.ackTimer);
  sched.ackTimer = null;
}

function flushAll<Ctx>(sched: SchedulerState<Ctx>): void {
  const work = !sched.flushing && sched.dirty.size > 0;
  sched.pacer.begin(work);
  if (!work) return;
  sched.flushing = true;
  try {
    for (const state of sched.dirty) flush(sched, state);
    sendMessages(sched);
  } finally {
    sched.flushing = false;
    sched.dirty.clear();
  }
  if (sched.late.size > 0) {
    for (const state of sched.late) markDirty(sched, state);
    sched.late.clear();
  }
}

/** Hands the batch to the socket and starts the arena over (no run may be open). */
function sendMessages<Ctx>(sched: SchedulerState<Ctx>): void {
  sched.used = 0;
  if (sched.batched === 0) return;
  sched.host.socket.sendSegmented(sched.sendList, sched.batched);
  sched.sendList.length = 0;
  sched.batched = 0;
}

/** A packet of `n` bytes was written at the arena's end: it joins the open run or starts one. */
function addPacket<Ctx>(sched: SchedulerState<Ctx>, n: number, port: number, host: string): void {
  const run = sched.run;
  const at = sched.used;
  if (run.open && port === run.port && host === run.host && joinsSegmented(run.segment, run.segments, run.bytes, n)) {
    run.segments++;
    run.bytes += n;
  } else {
    // Ending the run may send a full batch; this packet stays where it was written.
    endRun(sched);
    run.segments = 1;
    run.start = at;
    run.bytes = n;
    run.segment = n;
    run.port = port;
    run.host = host;
  }
  // A shorter packet can only be the last of its message.
  run.open = n === run.segment;
  sched.used = at + n;
}

/** The open run becomes a message of the batch; a full batch is sent. */
function endRun<Ctx>(sched: SchedulerState<Ctx>): void {
  const run = sched.run;
  if (run.segments === 0) return;
  sched.sendList.push(sched.arena.subarray(run.start, run.start + run.bytes), run.port, run.host, run.segment);
  run.segments = 0;
  run.open = false;
  if (++sched.batched === SEND_BATCH) sendMessages(sched);
}

function flush<Ctx>(sched: SchedulerState<Ctx>, state: Conn<Ctx>): void {
  const conn = state.conn;
  state.unflushedInputs = 0;
  settleAck(sched, state);
  const waiting = state.waiting;
  const packetSize = sched.host.packetSize;
  for (;;) {
    // Datagrams that waited for the window go to quiche a few at a time, in fair order.
    if (waiting !== null && waiting.size > 0) topUp(sched.host, state);
    if (sched.used + packetSize > sched.arena.length) {
      endRun(sched);
      sendMessages(sched);
    }
    let result;
    try {
      result = conn.send(sched.arena.subarray(sched.used, sched.used + packetSize));
    } catch {
      break;
    }
    if (result === null) break;
    const [n, info] = result;
    addPacket(sched, n, info.to.port, info.to.host);
  }
  // A message never spans connections.
  endRun(sched);
  if (state.dgramQueued > 0) state.dgramQueued = conn.dgramSendQueueLen();
  // The path (and with it the largest datagram) may have changed: ask again when one is queued.
  state.maxDatagram = -1;
  sched.host.onFlushed(state);
  if (state.closed && waiting !== null) clear(waiting);
  if (!state.gone) arm(sched, state);
}

function topUp<Ctx>(host: SchedulerHost<Ctx>, state: Conn<Ctx>): void {
  // What quiche sent since the last count left room: count again before filling it.
  state.dgramQueued = state.conn.dgramSendQueueLen();
  const waiting = state.waiting!;
  while (state.dgramQueued < DIRECT_DEPTH) {
    const next = dequeue(waiting);
    if (next === undefined) return;
    try {
      if (state.conn.dgramSend(next) !== null) state.dgramQueued++;
      else host.drop("queue_full"); // quiche's own queue is longer than DIRECT_DEPTH: not expected
    } catch {
      // It fitted when it was queued; the path's packet size has shrunk since.
      host.drop("oversized");
    }
  }
}

/** Keeps quiche's timer armed; an earlier timer is kept (firing early is harmless). */
function arm<Ctx>(sched: SchedulerState<Ctx>, state: Conn<Ctx>): void {
  const timeout = state.conn.timeout();
  if (timeout === null) return;
  const at = Date.now() + timeout;
  if (state.timer !== null && state.timerAt <= at + 1) return;
  if (state.timer !== null) clearTimeout(state.timer);
  state.timerAt = at;
  state.timer = setTimeout(() => {
    state.timer = null;
    if (state.gone) return;
    sched.host.onTimer(state);
    markDirty(sched, state);
  }, timeout);
}

function forget<Ctx>(sched: SchedulerState<Ctx>, state: Conn<Ctx>): void {
  if (state.timer !== null) clearTimeout(state.timer);
  settleAck(sched, state);
  state.timer = null;
  sched.dirty.delete(state);
}
