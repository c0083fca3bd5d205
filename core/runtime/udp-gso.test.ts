import { afterEach, expect, test } from "bun:test";
import { loadLibc } from "./libc.ts";
import { openUdp, type UdpSocket } from "./udp.ts";
import { createGsoSender } from "./udp-gso.ts";

const open: UdpSocket[] = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
});

/** A socket on `host` that keeps what it receives. */
async function receiver(host: string) {
  const got: Uint8Array[] = [];
  const socket = await openUdp({ host, port: 0, onPacket: (data) => got.push(data.slice()), onError() {} });
  open.push(socket);
  return { socket, got };
}

async function sender(host: string) {
  const socket = await openUdp({ host, port: 0, onPacket() {}, onError() {} });
  open.push(socket);
  return socket;
}

async function waitForCount(list: unknown[], n: number) {
  const deadline = Date.now() + 2_000;
  while (list.length < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** `n` bytes counting up from `first`, so a misplaced cut shows. */
const counting = (n: number, first = 0) => Uint8Array.from({ length: n }, (_, i) => (first + i) & 255);

for (const host of ["127.0.0.1", "::1"]) {
  test(`a message longer than its segment size arrives as segments, in order (${host})`, async () => {
    const rx = await receiver(host);
    const tx = await sender(host);
    const port = rx.socket.address.port;
    const big = counting(3500);
    const sent = tx.sendSegmented([big, port, host, 1200, counting(500, 7), port, host, 1200], 2);
    expect(sent).toBe(4);
    await waitForCount(rx.got, 4);
    expect(rx.got.map((d) => d.length)).toEqual([1200, 1200, 1100, 500]);
    expect(Buffer.concat(rx.got.slice(0, 3))).toEqual(Buffer.from(big));
    expect(rx.got[3]).toEqual(counting(500, 7));
  });
}

test("the kernel cuts the messages itself: the GSO sender is not refused", async () => {
  const libc = loadLibc();
  expect(libc).not.toBeNull();
  const rx = await receiver("127.0.0.1");
  const tx = await sender("127.0.0.1");
  const gso = createGsoSender(libc!, tx.fd!);
  const port = rx.socket.address.port;
  // Two peers' messages in one call: each gets its own address.
  const other = await receiver("127.0.0.1");
  const flat = [counting(2400), port, "127.0.0.1", 1200, counting(100), other.socket.address.port, "127.0.0.1", 1200];
  expect(gso.send(flat, 2)).toBe(3);
  expect(gso.refused).toBe(false);
  await waitForCount(rx.got, 2);
  await waitForCount(other.got, 1);
  expect(rx.got.map((d) => d.length)).toEqual([1200, 1200]);
  expect(other.got).toEqual([counting(100)]);
});

test("where the kernel refuses a message's segmentation, the datagrams go one by one", async () => {
  const rx = await receiver("127.0.0.1");
  const tx = await sender("127.0.0.1");
  const port = rx.socket.address.port;
  // 200 segments: more than any kernel's UDP_MAX_SEGMENTS, so sendmmsg fails with EINVAL.
  const tooMany = [counting(20_000), port, "127.0.0.1", 100];
  const gso = createGsoSender(loadLibc()!, tx.fd!);
  expect(gso.send(tooMany, 1)).toBe(0);
  expect(gso.refused).toBe(true);
  expect(gso.refusedAt).toBe(0);
  expect(tx.sendSegmented(tooMany, 1)).toBe(200);
  await waitForCount(rx.got, 200);
  expect(rx.got.length).toBe(200);
  expect(Buffer.concat(rx.got)).toEqual(Buffer.from(counting(20_000)));
  // Later messages still arrive (now without GSO), an empty datagram too.
  tx.sendSegmented([counting(300), port, "127.0.0.1", 200, counting(0), port, "127.0.0.1", 0], 2);
  await waitForCount(rx.got, 203);
  expect(rx.got.slice(200).map((d) => d.length)).toEqual([200, 100, 0]);
});

test("a message to a host that is not an IP address is dropped alone", async () => {
  const libc = loadLibc();
  const rx = await receiver("127.0.0.1");
  const tx = await sender("127.0.0.1");
  const gso = createGsoSender(libc!, tx.fd!);
  const port = rx.socket.address.port;
  const flat = [
    counting(10),
    port,
    "not-an-ip",
    1200,
    counting(20),
    port,
    "127.0.0.1",
    1200,
    counting(0),
    port,
    "127.0.0.1",
    0,
  ];
  expect(gso.send(flat, 3)).toBe(2);
  await waitForCount(rx.got, 2);
  expect(rx.got).toEqual([counting(20), counting(0)]);
});

test("a closed socket sends nothing: its fd number may already be another socket's", async () => {
  const rx = await receiver("127.0.0.1");
  const tx = await sender("127.0.0.1");
  tx.close();
  // A socket opened now may get the closed one's fd number.
  const next = await sender("127.0.0.1");
  expect(tx.sendSegmented([counting(2400), rx.socket.address.port, "127.0.0.1", 1200], 1)).toBe(0);
  next.sendSegmented([counting(10), rx.socket.address.port, "127.0.0.1", 1200], 1);
  await waitForCount(rx.got, 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(rx.got).toEqual([counting(10)]);
});
