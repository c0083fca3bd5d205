import { expect, test } from "bun:test";
import { ACK_DELAY_MS, createScheduler, takeDueAcks } from "./scheduler.ts";
import { SEGMENTED_MAX_SEGMENTS } from "../runtime/udp.ts";
import type { UdpSocket } from "../runtime/udp.ts";
import type { Conn } from "./connection.ts";
import { createFairQueue, enqueue } from "./fair-queue.ts";

test("the ACK timer takes only the connections due, each after its own delay", () => {
  // Three connections got a packet at 0, 0.6 and 0.9 delays' worth of time.
  const awaiting = new Map([
    ["a", ACK_DELAY_MS],
    ["b", 1.6 * ACK_DELAY_MS],
    ["c", 1.9 * ACK_DELAY_MS],
  ]);
  const out: string[] = [];
  // The timer set for "a" fires: "b" and "c" came in later and still wait.
  expect(takeDueAcks(awaiting, ACK_DELAY_MS, out)).toBeCloseTo(0.6 * ACK_DELAY_MS);
  expect(out).toEqual(["a"]);
  expect([...awaiting.keys()]).toEqual(["b", "c"]);
  // Within half a delay of being due counts as due (a timer cannot wait less than 1 ms).
  out.length = 0;
  expect(takeDueAcks(awaiting, 1.2 * ACK_DELAY_MS, out)).toBeCloseTo(0.7 * ACK_DELAY_MS);
  expect(out).toEqual(["b"]);
  out.length = 0;
  expect(takeDueAcks(awaiting, 2 * ACK_DELAY_MS, out)).toBeNull();
  expect(out).toEqual(["c"]);
  expect(awaiting.size).toBe(0);
});

test("a late timer takes everything overdue, oldest first", () => {
  const awaiting = new Map([["x", 1], ["y", 2], ["z", 3]]);
  const out: string[] = [];
  expect(takeDueAcks(awaiting, 50, out)).toBeNull();
  expect(out).toEqual(["x", "y", "z"]);
});

/** A connection as the scheduler sees it: quiche has `packets` packets to send. */
function connWithPackets(packets: number) {
  const conn = {
    send: (buf: Uint8Array) => packets-- > 0 ? [buf.length, { to: { host: "127.0.0.1", port: 9 } }] : null,
    timeout: () => null,
    dgramSendQueueLen: () => 0,
    dgramSend: () => 0,
  };
  return {
    conn,
    wasEstablished: true,
    unflushedInputs: 0,
    waiting: null,
    dgramQueued: 0,
    closed: false,
    gone: false,
    timer: null,
    timerAt: 0,
  } as unknown as Conn<unknown>;
}

function recordingScheduler() {
  const sent: number[] = [];
  const dropped: string[] = [];
  // Counts the datagrams each sendmmsg carries: a message of n bytes in segments of s is ceil(n / s) of them.
  const socket = {
    sendSegmented(list: (Uint8Array | number | string)[], messages: number) {
      let datagrams = 0;
      for (let i = 0; i < messages; i++) {
        datagrams += Math.ceil((list[i * 4] as Uint8Array).length / (list[i * 4 + 3] as number));
      }
      sent.push(datagrams);
      return messages;
    },
  } as unknown as UdpSocket;
  const scheduler = createScheduler<unknown>({
    socket,
    packetSize: 1200,
    onTimer() {},
    onFlushed() {},
    drop: (reason) => dropped.push(reason),
  });
  return { scheduler, sent, dropped };
}

const microtask = () => new Promise<void>((resolve) => queueMicrotask(resolve));

async function waitFor(check: () => boolean, ms = 1000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

test("an ACK-only input waits for the ACK delay before its packet leaves", async () => {
  const { scheduler, sent } = recordingScheduler();
  scheduler.afterPackets(connWithPackets(1));
  await microtask();
  expect(sent).toEqual([]);
  await waitFor(() => sent.length > 0);
  expect(sent).toEqual([1]);
});

test("a connection its input marked dirty is not held back as ACK-only work", async () => {
  // The input let held-back stream data into quiche (deliverInput marks the
  // connection dirty): once this waited a whole ACK delay per window and TCP
  // bulk stalled.
  const { scheduler, sent } = recordingScheduler();
  const state = connWithPackets(3);
  scheduler.markDirty(state);
  scheduler.afterPackets(state);
  await microtask();
  expect(sent).toEqual([3]);
  // Nothing left waiting for the ACK timer either.
  await new Promise((resolve) => setTimeout(resolve, 3 * ACK_DELAY_MS));
  expect(sent).toEqual([3]);
});

test("an input while DATAGRAMs wait for the window flushes at once", async () => {
  const { scheduler, sent } = recordingScheduler();
  const state = connWithPackets(2);
  state.waiting = createFairQueue();
  enqueue(state.waiting, 0, 0, new Uint8Array(100));
  scheduler.afterPackets(state);
  await microtask();
  expect(sent).toEqual([2]);
  expect(state.waiting.size).toBe(0);
});

test("a waiting DATAGRAM that quiche no longer takes is counted, and the rest still go", async () => {
  // It fitted when it was queued; the path's packet size shrank since.
  const { scheduler, dropped } = recordingScheduler();
  const state = connWithPackets(1);
  const taken: number[] = [];
  (state.conn as unknown as { dgramSend: (d: Uint8Array) => number }).dgramSend = (data) => {
    if (data.length > 1000) throw new Error("BufferTooShort");
    taken.push(data.length);
    return 0;
  };
  state.waiting = createFairQueue();
  enqueue(state.waiting, 0, 0, new Uint8Array(1100));
  enqueue(state.waiting, 0, 0, new Uint8Array(900));
  scheduler.markDirty(state);
  await microtask();
  expect(dropped).toEqual(["oversized"]);
  expect(taken).toEqual([900]);
});

/** A connection whose quiche writes packets of these sizes, each filled with its number (1, 2, ...). */
function connSending(sizes: number[], port = 9) {
  let next = 0;
  const state = connWithPackets(0);
  (state.conn as unknown as { send: (buf: Uint8Array) => unknown }).send = (buf: Uint8Array) => {
    if (next === sizes.length) return null;
    const n = sizes[next++]!;
    buf.fill(next, 0, n);
    return [n, { to: { host: "127.0.0.1", port } }];
  };
  return state;
}

/** A scheduler whose socket keeps each message: its packets as the kernel would cut them. */
function messageScheduler(packetSize = 1500) {
  const calls: { port: number; segment: number; packets: number[][] }[][] = [];
  const socket = {
    sendSegmented(list: (Uint8Array | number | string)[], messages: number) {
      const call = [];
      for (let i = 0; i < messages; i++) {
        const data = list[i * 4] as Uint8Array;
        const segment = list[i * 4 + 3] as number;
        const packets: number[][] = [];
        for (let at = 0; at < data.length; at += segment) packets.push([...data.subarray(at, at + segment)]);
        call.push({ port: list[i * 4 + 1] as number, segment, packets });
      }
      calls.push(call);
      return messages;
    },
  } as unknown as UdpSocket;
  const scheduler = createScheduler<unknown>({
    socket,
    packetSize,
    onTimer() {},
    onFlushed() {},
    drop() {},
  });
  return { scheduler, calls };
}

/** What a packet of `n` bytes numbered `k` looks like. */
const packet = (k: number, n: number) => new Array<number>(n).fill(k);

test("equal packets of a connection leave as one message; a shorter one ends it", async () => {
  const { scheduler, calls } = messageScheduler();
  scheduler.markDirty(connSending([1350, 1350, 1350, 400, 1350, 1350]));
  await microtask();
  expect(calls.length).toBe(1);
  expect(calls[0]!.map((m) => m.segment)).toEqual([1350, 1350]);
  expect(calls[0]![0]!.packets).toEqual([packet(1, 1350), packet(2, 1350), packet(3, 1350), packet(4, 400)]);
  expect(calls[0]![1]!.packets).toEqual([packet(5, 1350), packet(6, 1350)]);
});

test("a larger packet starts a new message, and messages never span connections", async () => {
  const { scheduler, calls } = messageScheduler();
  scheduler.markDirty(connSending([400, 1350], 1000));
  scheduler.markDirty(connSending([1350], 2000));
  await microtask();
  expect(calls[0]!.map((m) => [m.port, m.packets.length, m.segment])).toEqual([
    [1000, 1, 400],
    [1000, 1, 1350],
    [2000, 1, 1350],
  ]);
});

test("a message holds at most the kernel's segments, and a full buffer is sent before quiche writes on", async () => {
  // 1500-byte slots, 64 of them: 96,000 bytes hold 71 packets of 1350.
  const { scheduler, calls } = messageScheduler(1500);
  const sizes = new Array<number>(150).fill(1350);
  scheduler.markDirty(connSending(sizes));
  await microtask();
  const all = calls.flat();
  expect(calls.length).toBe(3);
  expect(Math.max(...all.map((m) => m.packets.length))).toBeLessThanOrEqual(SEGMENTED_MAX_SEGMENTS);
  // Every packet arrives once, whole, in order.
  expect(all.flatMap((m) => m.packets)).toEqual(sizes.map((n, i) => packet(i + 1, n)));
});

test("a batch full of messages is sent while a packet waits to start the next message", async () => {
  // Each 100-byte packet is followed by a shorter one that ends its message: 75 messages, 64 per batch.
  const { scheduler, calls } = messageScheduler(1500);
  const sizes = Array.from({ length: 150 }, (_, i) => (i % 2 === 0 ? 100 : 50));
  scheduler.markDirty(connSending(sizes));
  await microtask();
  expect(calls.map((c) => c.length)).toEqual([64, 11]);
  expect(calls.flat().flatMap((m) => m.packets)).toEqual(sizes.map((n, i) => packet(i + 1, n)));
});

test("a flush forgets the largest datagram quiche took: the path may have changed", () => {
  const { scheduler } = recordingScheduler();
  const state = connWithPackets(1);
  state.maxDatagram = 1200;
  scheduler.markDirty(state);
  scheduler.flushAll();
  expect(state.maxDatagram).toBe(-1);
});
