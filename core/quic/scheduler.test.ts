import { expect, test } from "bun:test";
import { ACK_DELAY_MS, createScheduler, takeDueAcks } from "./scheduler.ts";
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
  const socket = { sendMany: (_list: unknown[], packets: number) => sent.push(packets) } as unknown as UdpSocket;
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
