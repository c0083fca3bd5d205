/**
 * Load generator, one measurement per process, result as one JSON line:
 *   --mode rtt   sequential round trips of --size bytes to an echo at --target;
 *                reports a latency summary in µs (warm-up excluded). With
 *                --interval-ms N one probe leaves every N ms (sparse: each
 *                process on the path must wake up for it), else back to back.
 *   --mode blast --size-byte datagrams to --target for --seconds, at full speed
 *                (--rate 0: back-to-back sendMany batches) or paced to --rate
 *                datagrams/s; reports how many the kernel accepted.
 */
import { openUdp, type UdpSocket } from "../../core/runtime/udp.ts";
import { flag, numberFlag, parseHostPort, report } from "../lib/child-io.ts";
import { summarize } from "../lib/stats.ts";

const target = parseHostPort(flag("target", ""));
const size = numberFlag("size", 64);
const mode = flag("mode", "rtt");

if (mode === "rtt") await rtt();
else if (mode === "blast") await blast();
else throw new Error(`unknown --mode ${mode}`);
process.exit(0);

async function rtt(): Promise<void> {
  const count = numberFlag("count", 5_000);
  const warmup = numberFlag("warmup", 500);
  const timeoutMs = numberFlag("timeout-ms", 1_000);
  const budgetMs = numberFlag("budget-ms", 30_000);
  const intervalMs = numberFlag("interval-ms", 0);
  // Each probe carries its sequence number so a late echo of a timed-out
  // probe is never taken for the current one.
  const payload = new Uint8Array(size);
  const view = new DataView(payload.buffer);
  let seq = 0;
  let waiting: ((ok: boolean) => void) | null = null;
  const socket: UdpSocket = await openUdp({
    host: "127.0.0.1",
    port: 0,
    onPacket(data) {
      if (!waiting || data.byteLength !== size) return;
      if (new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0) !== seq) return;
      const w = waiting;
      waiting = null;
      w(Buffer.from(data).equals(payload));
    },
    onError: () => {},
  });
  for (let i = 4; i < size; i++) payload[i] = (i * 31) & 0xff;

  const samples: number[] = [];
  let lost = 0;
  let corrupted = 0;
  const started = performance.now();
  for (let i = 0; i < warmup + count && performance.now() - started < budgetMs; i++) {
    if (intervalMs > 0) {
      // A fixed schedule: a slow reply delays only the probes that follow it.
      const wait = started + i * intervalMs - performance.now();
      if (wait > 0) await Bun.sleep(wait);
    }
    view.setUint32(0, ++seq);
    const sentAt = performance.now();
    const ok = await new Promise<boolean | null>((resolve) => {
      const timer = setTimeout(() => {
        waiting = null;
        resolve(null);
      }, timeoutMs);
      waiting = (v) => {
        clearTimeout(timer);
        resolve(v);
      };
      socket.send(payload, target.port, target.host);
    });
    const us = (performance.now() - sentAt) * 1000;
    if (i < warmup) continue;
    if (ok === null) lost++;
    else if (!ok) corrupted++;
    else samples.push(us);
  }
  socket.close();
  report({
    mode,
    size,
    intervalMs,
    ...summarize(samples),
    lost,
    corrupted,
    seconds: (performance.now() - started) / 1000,
  });
}

async function blast(): Promise<void> {
  const seconds = numberFlag("seconds", 5);
  const rate = numberFlag("rate", 0);
  const batch = numberFlag("batch", 64);
  const socket = await openUdp({ host: "127.0.0.1", port: 0, onPacket: () => {}, onError: () => {} });
  const payload = new Uint8Array(size).fill(0x5a);
  const flat: (Uint8Array | number | string)[] = [];
  for (let i = 0; i < batch; i++) flat.push(payload, target.port, target.host);

  let sent = 0;
  let refused = 0; // the kernel would have blocked: not offered to the receiver
  const send = (n: number) => {
    const ok = socket.sendMany(n === batch ? flat : flat.slice(0, n * 3), n);
    sent += ok;
    refused += n - ok;
  };
  const started = performance.now();
  const endAt = started + seconds * 1000;
  if (rate <= 0) {
    // Full speed, but yield to the event loop between batches so the process
    // stays responsive; this still keeps one core busy by design.
    while (performance.now() < endAt) {
      send(batch);
      if ((sent + refused) % (batch * 16) === 0) await new Promise((r) => setImmediate(r));
    }
  } else {
    // Paced: every ~1 ms send what the schedule says is due, in batches.
    while (true) {
      const now = performance.now();
      if (now >= endAt) break;
      let due = Math.floor(((now - started) / 1000) * rate) - (sent + refused);
      while (due > 0) {
        const n = Math.min(batch, due);
        send(n);
        due -= n;
      }
      await Bun.sleep(1);
    }
  }
  const elapsed = (performance.now() - started) / 1000;
  socket.close();
  report({ mode, size, rate, sent, refused, seconds: elapsed, offeredPerSecond: Math.round(sent / elapsed) });
}
