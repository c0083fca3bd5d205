import { expect, test } from "bun:test";
import { type ConnectionHost, createConn, deliverInput, PAUSED_FULL_LIST_MS } from "./connection.ts";
import type { Connection } from "./native.ts";

/** The endpoint as a connection sees it; `over` replaces what a test watches. */
function fakeHost(over: Partial<ConnectionHost<unknown>> = {}): ConnectionHost<unknown> {
  return {
    handlers: {},
    server: false,
    local: { host: "127.0.0.1", port: 1 },
    dgramRate: Infinity,
    markDirty() {},
    onProven() {},
    drop() {},
    ...over,
  };
}

test("an input that lets held-back stream data into quiche marks the connection for sending", () => {
  // quiche takes nothing at first (no window), then everything once an ACK opened the window.
  let window = 0;
  const conn = {
    isEstablished: () => true,
    isReadable: () => false,
    streamSend: (_id: number, data: Uint8Array) => {
      const n = Math.min(window, data.length);
      window -= n;
      return n === 0 ? null : n;
    },
  } as unknown as Connection;
  const marked: number[] = [];
  const host = fakeHost({ markDirty: (state) => marked.push(state.id) });
  const state = createConn(host, conn, { host: "127.0.0.1", port: 2 });
  state.writeStream(4, new Uint8Array(1000));
  expect(state.pendingStreamBytes(4)).toBe(1000);
  marked.length = 0;

  window = 1 << 20;
  deliverInput(host, state);
  expect(state.pendingStreamBytes(4)).toBe(0);
  expect(marked).toEqual([state.id]);
});

test("while a paused stream holds data, quiche's full list is asked only now and then, and still finds new streams", async () => {
  // Stream 0 is paused with data waiting; the peer opened stream 9 before stream 1 (out of order).
  let readableCalls = 0;
  let unread9 = true;
  const conn = {
    isEstablished: () => true,
    isReadable: () => true, // the paused stream's data keeps quiche readable
    dgramRecv: () => null,
    streamReadable: (id: number) => id === 0 || (id === 9 && unread9),
    readable: () => (readableCalls++, unread9 ? [0, 9] : [0]),
    streamRecv: (id: number) => {
      if (id !== 9 || !unread9) return null;
      unread9 = false;
      return [5, false];
    },
  } as unknown as Connection;
  const delivered: number[] = [];
  const host = fakeHost({ handlers: { onStreamData: (_c, id, data) => delivered.push(id, data.length) } });
  const state = createConn(host, conn, { host: "127.0.0.1", port: 2 });
  state.pauseStream(0, true);
  for (let i = 0; i < 50; i++) deliverInput(host, state);
  expect(delivered).toEqual([9, 5]);
  expect(readableCalls).toBe(1);
  await new Promise((resolve) => setTimeout(resolve, PAUSED_FULL_LIST_MS + 2));
  deliverInput(host, state);
  expect(readableCalls).toBe(2);
});

test("datagrams waiting for the window: the size limit is asked once between flushes, and still holds", () => {
  let asked = 0;
  const conn = {
    dgramSend: () => null, // quiche's own queue is full: everything waits in ours
    dgramMaxWritableLen: () => (asked++, 1200),
  } as unknown as Connection;
  const state = createConn(fakeHost(), conn, { host: "127.0.0.1", port: 2 });
  for (let i = 0; i < 100; i++) expect(state.sendDatagram(new Uint8Array(1000), 0, 1)).toBe(true);
  expect(state.sendDatagram(new Uint8Array(1201), 0, 1)).toBe(false);
  expect(asked).toBe(1);
  expect(state.datagramsWaiting(0, 1)).toBe(100);
  // After a flush (which forgets it: scheduler.test.ts) the next queued datagram asks again.
  state.maxDatagram = -1;
  expect(state.sendDatagram(new Uint8Array(1000), 0, 1)).toBe(true);
  expect(asked).toBe(2);
});
