import { afterEach, describe, expect, test } from "bun:test";
import { openUdp, type UdpSocket } from "../runtime/udp.ts";
import { createSendBatcher, segmentedMessages } from "./send-batch.ts";
import { SEGMENTED_MAX_SEGMENTS } from "../runtime/udp.ts";

const open: UdpSocket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

async function sink() {
  const got: number[] = [];
  const s = await openUdp({ host: "127.0.0.1", port: 0, onPacket: (d) => void got.push(d[0]!), onError() {} });
  open.push(s);
  return { s, got };
}

/** A sink, a socket to send from, and a batcher that records how many each sendmmsg took. */
async function rig() {
  const to = await sink();
  const from = await openUdp({ host: "127.0.0.1", port: 0, onPacket() {}, onError() {} });
  open.push(from);
  const calls: number[] = [];
  const batch = createSendBatcher((sent) => calls.push(sent));
  return { to, from, calls, batch };
}

test("datagrams of one turn leave together, in order, from copies of the caller's buffer", async () => {
  const { to, from, calls, batch } = await rig();
  const buf = new Uint8Array(100);
  for (let i = 0; i < 150; i++) {
    buf[0] = i;
    batch.send(from, buf, to.s.address.port, "127.0.0.1");
  }
  expect(calls).toEqual([]); // nothing left during the turn
  await Promise.resolve();
  // 150 datagrams, all taken in one go.
  expect(calls).toEqual([150]);
  const deadline = Date.now() + 2_000;
  while (to.got.length < 150 && Date.now() < deadline) await Bun.sleep(5);
  expect(to.got).toEqual(Array.from({ length: 150 }, (_, i) => i));
});

test("a lone datagram leaves at the end of the turn", async () => {
  const to = await sink();
  const from = await openUdp({ host: "127.0.0.1", port: 0, onPacket() {}, onError() {} });
  open.push(from);
  const batch = createSendBatcher();
  batch.send(from, Uint8Array.of(7), to.s.address.port, "127.0.0.1");
  await Promise.resolve();
  const deadline = Date.now() + 2_000;
  while (to.got.length < 1 && Date.now() < deadline) await Bun.sleep(5);
  expect(to.got).toEqual([7]);
});

test("under load, datagrams of several callbacks (a real path's packets carry one each) share a sendmmsg", async () => {
  const { to, from, calls, batch } = await rig();
  // One datagram per callback, back to back: idle, each would leave in a sendmmsg of its own.
  for (let i = 0; i < 200; i++) {
    batch.send(from, Uint8Array.of(i), to.s.address.port, "127.0.0.1");
    await Promise.resolve();
  }
  const deadline = Date.now() + 2_000;
  while (calls.reduce((a, b) => a + b, 0) < 200 && Date.now() < deadline) await Bun.sleep(1);
  expect(calls.reduce((a, b) => a + b, 0)).toBe(200);
  // The first ones leave alone (the batcher starts idle); once busy, callbacks share sends.
  expect(calls[0]).toBe(1);
  expect(calls.length).toBeLessThan(150);
  while (to.got.length < 200 && Date.now() < deadline) await Bun.sleep(5);
  expect(to.got).toEqual(Array.from({ length: 200 }, (_, i) => i));
});

test("flush() sends what the batcher holds at once, as a socket about to close needs", async () => {
  const { to, from, calls, batch } = await rig();
  for (let i = 0; i < 3; i++) batch.send(from, Uint8Array.of(i), to.s.address.port, "127.0.0.1");
  expect(calls).toEqual([]);
  batch.flush();
  expect(calls).toEqual([3]);
  from.close();
  const deadline = Date.now() + 2_000;
  while (to.got.length < 3 && Date.now() < deadline) await Bun.sleep(5);
  expect(to.got).toEqual([0, 1, 2]);
});

describe("segmentedMessages", () => {
  const d = (n: number, fill = 1) => new Uint8Array(n).fill(fill);
  /** Each message as [bytes, port, host, segment]. */
  const shape = (flat: (Uint8Array | number | string)[]) => {
    const out: [number, number, string, number][] = [];
    for (let i = 0; i < flat.length; i += 4) {
      out.push([(flat[i] as Uint8Array).length, flat[i + 1] as number, flat[i + 2] as string, flat[i + 3] as number]);
    }
    return out;
  };

  test("equal datagrams to one destination share a message; a shorter one ends it", () => {
    const flat = [d(100, 1), 5, "h", d(100, 2), 5, "h", d(40, 3), 5, "h", d(100, 4), 5, "h"];
    const out = segmentedMessages(flat, 4);
    expect(shape(out)).toEqual([[240, 5, "h", 100], [100, 5, "h", 100]]);
    expect([...(out[0] as Uint8Array)]).toEqual([...d(100, 1), ...d(100, 2), ...d(40, 3)]);
  });

  test("another destination, a larger datagram or an empty one starts a new message", () => {
    const flat = [d(100), 5, "h", d(100), 6, "h", d(100), 6, "i", d(200), 6, "i", d(0), 6, "i", d(0), 6, "i"];
    expect(shape(segmentedMessages(flat, 6))).toEqual([
      [100, 5, "h", 100],
      [100, 6, "h", 100],
      [100, 6, "i", 100],
      [200, 6, "i", 200],
      [0, 6, "i", 0],
      [0, 6, "i", 0],
    ]);
  });

  test("a message stays within the kernel's segment and size limits", () => {
    const many: (Uint8Array | number | string)[] = [];
    for (let i = 0; i < 100; i++) many.push(d(10), 5, "h");
    expect(shape(segmentedMessages(many, 100)).map((m) => m[0] / 10)).toEqual([
      SEGMENTED_MAX_SEGMENTS,
      100 - SEGMENTED_MAX_SEGMENTS,
    ]);
    const big: (Uint8Array | number | string)[] = [];
    for (let i = 0; i < 10; i++) big.push(d(20_000), 5, "h");
    expect(shape(segmentedMessages(big, 10)).map((m) => m[0] / 20_000)).toEqual([3, 3, 3, 1]);
  });
});
