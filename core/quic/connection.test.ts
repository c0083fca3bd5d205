import { expect, test } from "bun:test";
import { type ConnectionHost, createConn, deliverInput } from "./connection.ts";
import type { Connection } from "./native.ts";

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
  const host: ConnectionHost<unknown> = {
    handlers: {},
    server: false,
    local: { host: "127.0.0.1", port: 1 },
    dgramRate: Infinity,
    markDirty: (state) => marked.push(state.id),
    onProven() {},
    drop() {},
  };
  const state = createConn(host, conn, { host: "127.0.0.1", port: 2 });
  state.writeStream(4, new Uint8Array(1000));
  expect(state.pendingStreamBytes(4)).toBe(1000);
  marked.length = 0;

  window = 1 << 20;
  deliverInput(host, state);
  expect(state.pendingStreamBytes(4)).toBe(0);
  expect(marked).toEqual([state.id]);
});
