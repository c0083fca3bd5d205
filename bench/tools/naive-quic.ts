/**
 * The naive baseline: the same echo over @matrixai/quic's high-level API
 * (QUICServer / QUICClient, one bidirectional stream per test), as two
 * processes like the tunnel.
 *   --mode server --cert FILE --key FILE   reports {"port"}; per stream, the
 *       first byte picks the behaviour: "E" echoes, "S" counts bytes until the
 *       peer finishes, then answers with the count (8 bytes) and closes.
 *   --mode client --target HOST:PORT       RTT of --size-byte messages over one
 *       stream, then --bytes one way on a second stream; one JSON line.
 */
import { readFileSync } from "node:fs";
import { events, QUICClient, QUICServer, type QUICStream } from "@matrixai/quic";
import Logger, { LogLevel } from "@matrixai/logger";
import { flag, numberFlag, onCommands, parseHostPort, report } from "../lib/child-io.ts";
import { summarize } from "../lib/stats.ts";

const logger = new Logger("naive-quic", LogLevel.ERROR);
const mode = flag("mode", "client");

if (mode === "server") await serve();
else if (mode === "client") await client();
else throw new Error(`unknown --mode ${mode}`);

async function serve(): Promise<void> {
  // Retry tokens are HMAC-signed with a per-process key.
  const key = crypto.getRandomValues(new Uint8Array(32)).buffer as ArrayBuffer;
  const hmac = (k: ArrayBuffer) =>
    crypto.subtle.importKey("raw", k, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  const server = new QUICServer({
    crypto: {
      key,
      ops: {
        sign: async (k, data) => crypto.subtle.sign("HMAC", await hmac(k), data),
        verify: async (k, data, sig) => crypto.subtle.verify("HMAC", await hmac(k), sig, data),
      },
    },
    config: {
      key: readFileSync(flag("key", ""), "utf8"),
      cert: readFileSync(flag("cert", ""), "utf8"),
      verifyPeer: false,
      initialMaxData: 64 << 20,
      initialMaxStreamDataBidiRemote: 16 << 20,
    },
    logger,
  });
  server.addEventListener(events.EventQUICServerConnection.name, (evt) => {
    const connection = (evt as events.EventQUICServerConnection).detail;
    connection.addEventListener(events.EventQUICConnectionStream.name, (e) => {
      void handleStream((e as events.EventQUICConnectionStream).detail).catch(() => {});
    });
  });
  await server.start({ host: "127.0.0.1", port: 0 });
  report({ port: server.port });
  onCommands(() => {});
}

async function handleStream(stream: QUICStream): Promise<void> {
  const reader = stream.readable.getReader();
  const writer = stream.writable.getWriter();
  let kind: number | null = null;
  let counted = 0;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    let chunk = value;
    if (kind === null && chunk.byteLength > 0) {
      kind = chunk[0]!;
      chunk = chunk.subarray(1);
    }
    if (kind === 0x45 /* E */) {
      if (chunk.byteLength > 0) await writer.write(chunk);
    } else counted += chunk.byteLength;
  }
  if (kind === 0x53 /* S */) {
    const answer = new Uint8Array(8);
    new DataView(answer.buffer).setBigUint64(0, BigInt(counted));
    await writer.write(answer);
  }
  await writer.close();
}

async function client(): Promise<void> {
  const target = parseHostPort(flag("target", ""));
  const size = numberFlag("size", 64);
  const count = numberFlag("count", 5_000);
  const warmup = numberFlag("warmup", 500);
  const total = numberFlag("bytes", 16 << 20);
  const budgetMs = numberFlag("budget-ms", 30_000);
  const conn = await QUICClient.createQUICClient(
    {
      host: target.host,
      port: target.port,
      localHost: "127.0.0.1",
      serverName: "localhost",
      crypto: { ops: { randomBytes: async (data) => void crypto.getRandomValues(new Uint8Array(data)) } },
      config: { verifyPeer: false, initialMaxData: 64 << 20 },
      logger,
    },
    { timer: 10_000 },
  );

  // RTT: one stream, sequential request/response; a response may arrive in pieces.
  const echo = conn.connection.newStream("bidi");
  const reader = echo.readable.getReader();
  const writer = echo.writable.getWriter();
  await writer.write(new Uint8Array([0x45]));
  const payload = new Uint8Array(size).map((_, i) => (i * 31) & 0xff);
  const samples: number[] = [];
  let corrupted = 0;
  const started = performance.now();
  for (let i = 0; i < warmup + count && performance.now() - started < budgetMs; i++) {
    const sentAt = performance.now();
    await writer.write(payload);
    const back = new Uint8Array(size);
    let got = 0;
    while (got < size) {
      const { value, done } = await reader.read();
      if (done) throw new Error("echo stream ended early");
      back.set(value.subarray(0, size - got), got);
      got += value.byteLength;
    }
    if (i < warmup) continue;
    if (Buffer.from(back).equals(Buffer.from(payload))) samples.push((performance.now() - sentAt) * 1000);
    else corrupted++;
  }
  await writer.close();
  reader.releaseLock();

  // Goodput: `total` bytes one way, timed until the server confirms the count.
  const sink = conn.connection.newStream("bidi");
  const sinkWriter = sink.writable.getWriter();
  const sinkReader = sink.readable.getReader();
  const chunk = new Uint8Array(64 * 1024).fill(0x5a);
  const t0 = performance.now();
  await sinkWriter.write(new Uint8Array([0x53]));
  let sent = 0;
  while (sent < total && performance.now() - t0 < budgetMs) {
    const n = Math.min(chunk.byteLength, total - sent);
    await sinkWriter.write(n === chunk.byteLength ? chunk : chunk.subarray(0, n));
    sent += n;
  }
  await sinkWriter.close();
  const answer: number[] = [];
  while (answer.length < 8) {
    const { value, done } = await sinkReader.read();
    if (done) break;
    answer.push(...value);
  }
  const seconds = (performance.now() - t0) / 1000;
  const received = answer.length === 8 ? Number(new DataView(new Uint8Array(answer).buffer).getBigUint64(0)) : null;
  await conn.destroy({ force: true });
  report({
    rtt: { size, ...summarize(samples), corrupted },
    goodput: {
      bytes: sent,
      received,
      seconds,
      mbitPerSecond: received === null ? null : (received * 8) / seconds / 1e6,
    },
  });
  process.exit(0);
}
