/**
 * TCP bulk transfer over one connection, both ends in their own process.
 *   --role server   reports {"port"}; per connection the first byte picks the
 *                   job: 'U' counts bytes until EOF and answers the count (8
 *                   bytes); 'D' + u32 milliseconds sends for that long, then FIN.
 *   --role client --target HOST:PORT --direction up|down --seconds N
 *                   moves bytes for N seconds and reports
 *                   {bytes, seconds, mbitPerSecond}; the clock stops when the
 *                   last byte has arrived (the count, or the FIN).
 */
import net from "node:net";
import { flag, numberFlag, onCommands, parseHostPort, report } from "../lib/child-io.ts";

const BLOCK = new Uint8Array(256 * 1024).map((_, i) => (i * 131 + 7) & 0xff);

if (flag("role", "client") === "server") await serve();
else await client();

async function serve(): Promise<void> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    let mode = "";
    let count = 0;
    let head = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      if (mode === "") {
        mode = String.fromCharCode(chunk[0]!);
        chunk = chunk.subarray(1);
      }
      if (mode === "U") {
        count += chunk.length;
        return;
      }
      if (head.length >= 4) return;
      head = Buffer.concat([head, chunk]);
      if (mode === "D" && head.length >= 4) void sendFor(socket, head.readUInt32BE(0));
    });
    socket.on("end", () => {
      if (mode !== "U") return;
      const reply = Buffer.alloc(8);
      reply.writeBigUInt64BE(BigInt(count));
      socket.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, flag("host", "127.0.0.1"), resolve));
  report({ port: (server.address() as net.AddressInfo).port });
  onCommands(() => {});
}

/** Writes blocks, honouring backpressure, until `ms` have passed; then FIN. Returns bytes written. */
async function sendFor(socket: net.Socket, ms: number): Promise<number> {
  const endAt = performance.now() + ms;
  let sent = 0;
  while (performance.now() < endAt && !socket.destroyed) {
    sent += BLOCK.length;
    if (!socket.write(BLOCK)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.on("drain", done);
        socket.on("close", done);
      });
    }
  }
  if (!socket.destroyed) socket.end();
  return sent;
}

async function client(): Promise<void> {
  const target = parseHostPort(flag("target", ""));
  const direction = flag("direction", "up");
  const seconds = numberFlag("seconds", 5);
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ ...target, allowHalfOpen: true, noDelay: true });
    s.once("error", reject);
    s.once("connect", () => resolve(s));
  });
  let received = 0;
  const reply: Buffer[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (direction === "up") reply.push(chunk);
    });
    socket.on("end", () => resolve());
    socket.on("error", (error) => reject(new Error(`${direction}: ${error.message} after ${received} bytes received`)));
  });
  ended.catch(() => socket.destroy()); // a reset mid-send surfaces as the error below, not a hang
  const started = performance.now();
  let bytes: number;
  if (direction === "up") {
    socket.write("U");
    const sent = await Promise.race([sendFor(socket, seconds * 1000), ended.then(() => -1)]);
    await ended;
    bytes = Buffer.concat(reply).length === 8 ? Number(Buffer.concat(reply).readBigUInt64BE(0)) : -1;
    if (bytes !== sent) throw new Error(`upload: server counted ${bytes} of ${sent} bytes`);
  } else {
    const request = Buffer.alloc(5);
    request.write("D");
    request.writeUInt32BE(Math.round(seconds * 1000), 1);
    socket.end(request);
    await ended;
    bytes = received;
  }
  const elapsed = (performance.now() - started) / 1000;
  socket.destroy();
  report({ direction, bytes, seconds: elapsed, mbitPerSecond: (bytes * 8) / elapsed / 1e6 });
  process.exit(0);
}
