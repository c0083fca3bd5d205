import { afterEach, describe, expect, test } from "bun:test";
import { openUdp, type UdpSocket } from "../../core/runtime/udp.ts";
import { type ImpairmentProxy, startImpairment } from "./control.ts";
import { CLEAN, decide, invalidImpairment, seededRandom } from "./model.ts";

describe("impairment model", () => {
  test("the same seed gives the same sequence; another seed another", () => {
    const a = seededRandom(42), b = seededRandom(42), c = seededRandom(43);
    const xs = Array.from({ length: 5 }, a), ys = Array.from({ length: 5 }, b), zs = Array.from({ length: 5 }, c);
    expect(xs).toEqual(ys);
    expect(xs).not.toEqual(zs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });

  test("loss, reordering and duplication happen at about their probability", () => {
    const random = seededRandom(7);
    const settings = { ...CLEAN, loss: 0.05, reorder: 0.1, duplicate: 0.02, delayMs: 10, jitterMs: 4 };
    let dropped = 0, held = 0, doubled = 0, minDelay = Infinity, maxDelay = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const v = decide(settings, random);
      if (v.drop) dropped++;
      if (v.hold) held++;
      if (v.copies === 2) doubled++;
      minDelay = Math.min(minDelay, v.delayMs);
      maxDelay = Math.max(maxDelay, v.delayMs);
    }
    expect(dropped / n).toBeCloseTo(0.05, 2);
    expect(held / n).toBeCloseTo(0.1, 2);
    expect(doubled / n).toBeCloseTo(0.02, 2);
    expect(minDelay).toBeGreaterThanOrEqual(10);
    expect(maxDelay).toBeLessThan(14);
  });

  test("a clean path changes nothing", () => {
    const random = seededRandom(1);
    for (let i = 0; i < 1000; i++) {
      expect(decide(CLEAN, random)).toEqual({ drop: false, hold: false, copies: 1, delayMs: 0 });
    }
  });

  test("invalid settings are refused with the reason", () => {
    expect(invalidImpairment({ loss: 0.5, delayMs: 20 })).toBeUndefined();
    expect(invalidImpairment({ loss: 1.5 })).toMatch(/loss is a probability/);
    expect(invalidImpairment({ jitterMs: -1 })).toMatch(/jitterMs must be a finite number/);
    expect(invalidImpairment({ delayMs: "5" })).toMatch(/delayMs must be a finite number/);
    expect(invalidImpairment({ latency: 5 })).toMatch(/unknown setting "latency"/);
  });
});

describe("impairment proxy (a real process between two UDP sockets)", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** An echo target, the proxy in front of it, and a client that records what comes back. */
  async function rig(initial = {}) {
    const echo: UdpSocket = await openUdp({
      host: "127.0.0.1",
      port: 0,
      onPacket: (data, port, host) => void echo.send(data, port, host),
      onError() {},
    });
    cleanups.push(() => echo.close());
    const proxy: ImpairmentProxy = await startImpairment({ target: echo.address, seed: 3, initial });
    cleanups.push(() => proxy.stop());
    const got: { seq: number; at: number }[] = [];
    const client = await openUdp({
      host: "127.0.0.1",
      port: 0,
      onPacket: (data) =>
        void got.push({ seq: new DataView(data.buffer, data.byteOffset).getUint32(0), at: performance.now() }),
      onError() {},
    });
    cleanups.push(() => client.close());
    const sent = new Map<number, number>();
    let next = 0;
    const send = async (count: number, gapMs = 0) => {
      const payload = new Uint8Array(100);
      for (let i = 0; i < count; i++) {
        new DataView(payload.buffer).setUint32(0, next);
        sent.set(next++, performance.now());
        client.send(payload, proxy.address.port, proxy.address.host);
        if (gapMs > 0) await Bun.sleep(gapMs);
        else if (i % 50 === 49) await Bun.sleep(1);
      }
    };
    const settle = async (expected: number, ms: number) => {
      const deadline = Date.now() + ms;
      while (got.length < expected && Date.now() < deadline) await Bun.sleep(10);
    };
    return { proxy, got, sent, send, settle };
  }

  test("a clean path passes everything in order", async () => {
    const { got, send, settle, proxy } = await rig();
    await send(500);
    await settle(500, 3_000);
    expect(got.length).toBe(500);
    expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    const stats = await proxy.stats();
    expect(stats.up.sent).toBe(500);
    expect(stats.down.sent).toBe(500);
    expect(stats.clients).toBe(1);
  });

  test("loss each way drops about that share, and is counted", async () => {
    const { got, send, settle, proxy } = await rig({ loss: 0.2 });
    await send(2_000);
    await settle(2_000, 1_000);
    // Two passes at 20 %: about 64 % of round trips survive.
    expect(got.length / 2_000).toBeGreaterThan(0.56);
    expect(got.length / 2_000).toBeLessThan(0.72);
    const stats = await proxy.stats();
    // Every packet is accounted for: received = sent + dropped, each way.
    expect(stats.up.received).toBe(2_000);
    expect(stats.up.dropped).toBe(stats.up.received - stats.up.sent);
    expect(stats.down.received).toBe(stats.up.sent);
    expect(stats.down.dropped).toBe(stats.down.received - stats.down.sent);
    expect(got.length).toBe(stats.down.sent);
    expect(stats.up.dropped).toBeGreaterThan(300);
  });

  test("reordering holds packets back behind the next one", async () => {
    const { got, send, settle } = await rig({ reorder: 0.2 });
    await send(1_000, 0);
    await settle(1_000, 3_000);
    expect(got.length).toBe(1_000);
    let inversions = 0;
    for (let i = 1; i < got.length; i++) if (got[i]!.seq < got[i - 1]!.seq) inversions++;
    expect(inversions).toBeGreaterThan(100);
  });

  test("delay is applied each way and changes while running; 100 % loss is a blackout", async () => {
    const { got, sent, send, settle, proxy } = await rig();
    await proxy.set("both", { delayMs: 20 });
    await send(20, 5);
    await settle(20, 3_000);
    const rtts = got.map((g) => g.at - sent.get(g.seq)!);
    expect(Math.min(...rtts)).toBeGreaterThanOrEqual(39);
    expect(Math.max(...rtts)).toBeLessThan(400);

    await proxy.set("up", { loss: 1, delayMs: 0 });
    await proxy.set("down", { delayMs: 0 });
    await send(50);
    await Bun.sleep(200);
    expect(got.length).toBe(20);
    await proxy.set("up", { loss: 0 });
    await send(10);
    await settle(30, 2_000);
    expect(got.length).toBe(30);
  });

  test("a path MTU: payloads above maxPayload are dropped, smaller ones pass", async () => {
    const { proxy, got, settle } = await rig({ maxPayload: 500 });
    const client = await openUdp({ host: "127.0.0.1", port: 0, onPacket: () => {}, onError() {} });
    cleanups.push(() => client.close());
    // The rig's own client sends 100-byte datagrams; send big and small ones by hand too.
    const stats0 = await proxy.stats();
    client.send(new Uint8Array(501), proxy.address.port, proxy.address.host);
    client.send(new Uint8Array(500), proxy.address.port, proxy.address.host);
    await Bun.sleep(200);
    const stats = await proxy.stats();
    expect(stats.up.received - stats0.up.received).toBe(2);
    expect(stats.up.dropped - stats0.up.dropped).toBe(1);
    expect(got.length).toBe(0);
    void settle;
  });

  test("bad commands get a clear error", async () => {
    const { proxy } = await rig();
    await expect(proxy.set("up", { loss: 2 })).rejects.toThrow(/loss is a probability/);
    await expect(proxy.set("sideways" as "up", { loss: 0 })).rejects.toThrow(/dir must be/);
  });
});
