import { afterEach, expect, test } from "bun:test";
import { dropProgram, kernelDrops, setDroppedSources } from "./socket-filter.ts";
import { openUdp, type UdpSocket } from "./udp.ts";

const open: UdpSocket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

async function socket(onPacket: (d: Uint8Array, port: number) => void = () => {}) {
  const s = await openUdp({ host: "127.0.0.1", port: 0, onPacket: (d, port) => onPacket(d, port), onError() {} });
  open.push(s);
  return s;
}

async function settle(check: () => boolean) {
  const deadline = Date.now() + 2_000;
  while (!check() && Date.now() < deadline) await Bun.sleep(5);
}

test("a filtered source is dropped in the kernel and counted there; others pass; removing the filter lets it through", async () => {
  const got: number[] = [];
  const rx = await socket((_d, port) => void got.push(port));
  const flood = await socket();
  const other = await socket();
  expect(rx.fd).not.toBeNull();
  const before = kernelDrops(rx.fd)!;
  expect(setDroppedSources(rx.fd, [{ host: "127.0.0.1", port: flood.address.port }])).toBe(true);
  for (let i = 0; i < 20; i++) flood.send(new Uint8Array(10), rx.address.port, "127.0.0.1");
  other.send(new Uint8Array(10), rx.address.port, "127.0.0.1");
  await settle(() => got.length >= 1);
  await Bun.sleep(50);
  expect(got).toEqual([other.address.port]);
  expect(kernelDrops(rx.fd)! - before).toBe(20);

  expect(setDroppedSources(rx.fd, [])).toBe(true);
  flood.send(new Uint8Array(10), rx.address.port, "127.0.0.1");
  await settle(() => got.length >= 2);
  expect(got).toEqual([other.address.port, flood.address.port]);
});

test("the program: one match block per IPv4 source, IPv6 sources left out", () => {
  expect(dropProgram([])).toBeNull();
  expect(dropProgram([{ host: "::1", port: 5 }])).toBeNull();
  // 4 instructions per source, then accept and drop, 8 bytes each.
  expect(dropProgram([{ host: "127.0.0.1", port: 5 }, { host: "10.0.0.1", port: 6 }])!.length).toBe((2 * 4 + 2) * 8);
});
