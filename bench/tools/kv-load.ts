/**
 * Load client of the TCP request/response rows: --connections N connections to
 * the key-value server at --target, each sending one GET, waiting for the
 * answer, then sending the next (closed loop), for --seconds. Requests in the
 * first --warmup-ms are not counted. Reports {requests, requestsPerSecond,
 * latency (µs summary), errors}.
 */
import { flag, numberFlag, parseHostPort, report } from "../lib/child-io.ts";
import { createResponseReader, encodeGet } from "../lib/kv-protocol.ts";
import { summarize } from "../lib/stats.ts";

const target = parseHostPort(flag("target", ""));
const connections = numberFlag("connections", 1);
const seconds = numberFlag("seconds", 5);
const warmupMs = numberFlag("warmup-ms", 500);
const keys = numberFlag("keys", 1_000);
const requests = Array.from({ length: keys }, (_, k) => encodeGet(`key${k}`));

const samples: number[] = [];
let errors = 0;
let counting = false;
let stopping = false;
let countFrom = 0;
let countTo = 0;

interface Conn {
  reader: ReturnType<typeof createResponseReader>;
  sentAt: number;
  next: number;
}

const done: Promise<void>[] = [];
for (let c = 0; c < connections; c++) {
  done.push(
    new Promise<void>((resolve, reject) => {
      const send = (socket: import("bun").Socket<Conn>) => {
        const conn = socket.data;
        conn.sentAt = performance.now();
        const request = requests[conn.next]!;
        conn.next = (conn.next + connections) % keys;
        // A GET is ~12 bytes: the kernel always takes it whole on a fresh round trip.
        if (socket.write(request) !== request.length) {
          errors++;
          socket.end();
        }
      };
      void Bun.connect<Conn>({
        hostname: target.host,
        port: target.port,
        socket: {
          open(socket) {
            socket.setNoDelay(true);
            socket.data = { reader: createResponseReader(), sentAt: 0, next: c % keys };
            send(socket);
          },
          data(socket, chunk) {
            let n: number;
            try {
              n = socket.data.reader.push(chunk);
            } catch {
              errors++;
              socket.end();
              return;
            }
            if (n === 0) return;
            if (counting) samples.push((performance.now() - socket.data.sentAt) * 1000);
            if (stopping) socket.end();
            else send(socket);
          },
          close: () => resolve(),
          error(_socket, error) {
            errors++;
            reject(error);
          },
          connectError(_socket, error) {
            errors++;
            reject(error);
          },
        },
      }).catch(reject);
    }),
  );
}

setTimeout(() => {
  counting = true;
  countFrom = performance.now();
}, warmupMs);
setTimeout(() => {
  counting = false;
  stopping = true;
  countTo = performance.now();
}, warmupMs + seconds * 1000);
const settled = await Promise.race([Promise.allSettled(done), Bun.sleep(warmupMs + seconds * 1000 + 5_000)]);
const window = (countTo - countFrom) / 1000;
report({
  connections,
  requests: samples.length,
  seconds: window,
  requestsPerSecond: window > 0 ? samples.length / window : 0,
  latency: summarize(samples),
  errors,
  allClosed: Array.isArray(settled),
});
process.exit(0);
