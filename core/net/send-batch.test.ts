import { afterEach, expect, test } from "bun:test";
import { openUdp, type UdpSocket } from "../runtime/udp.ts";
import { createSendBatcher } from "./send-batch.ts";

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

test("datagrams of one turn leave together, in order, from copies of the caller's buffer", async () => {
  const to = await sink();
  const from = await openUdp({ host: "127.0.0.1", port: 0, onPacket() {}, onError() {} });
  open.push(from);
  const calls: number[] = [];
  const batch = createSendBatcher((sent) => calls.push(sent));
  const buf = new Uint8Array(100);
  for (let i = 0; i < 150; i++) {
    buf[0] = i;
    batch.send(from, buf, to.s.address.port, "127.0.0.1");
  }
  expect(calls).toEqual([]); // nothing left during the turn
  await Promise.resolve();
  // 150 datagrams: sendmmsg calls of at most 64.
  expect(calls).toEqual([64, 64, 22]);
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
