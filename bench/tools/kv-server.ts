/**
 * A tiny key-value server for the TCP request/response rows (protocol in
 * lib/kv-protocol.ts): --keys N keys of --value-size bytes, answers encoded
 * once up front so the server costs as little as possible per request.
 * Reports {"port"}; exits when stdin closes.
 */
import type { Socket } from "bun";
import { flag, numberFlag, onCommands, report } from "../lib/child-io.ts";
import { createRequestReader, encodeValue } from "../lib/kv-protocol.ts";

const keys = numberFlag("keys", 1_000);
const valueSize = numberFlag("value-size", 128);
const answers = new Map<string, Uint8Array>();
for (let k = 0; k < keys; k++) answers.set(`key${k}`, encodeValue(new Uint8Array(valueSize).fill(0x61 + (k % 26))));
const MISS = encodeValue(null);

interface Conn {
  reader: ReturnType<typeof createRequestReader>;
  /** Bytes the kernel did not take yet, sent on drain (in order). */
  backlog: Uint8Array[];
}

function write(socket: Socket<Conn>, data: Uint8Array) {
  const c = socket.data;
  if (c.backlog.length > 0) return void c.backlog.push(data);
  const n = socket.write(data);
  if (n < data.length) c.backlog.push(data.subarray(Math.max(0, n)));
}

const server = Bun.listen<Conn>({
  hostname: flag("host", "127.0.0.1"),
  port: 0,
  socket: {
    open(socket) {
      socket.setNoDelay(true);
      socket.data = { reader: createRequestReader(), backlog: [] };
    },
    data(socket, chunk) {
      let requested: string[];
      try {
        requested = socket.data.reader.push(chunk);
      } catch {
        socket.end();
        return;
      }
      for (const key of requested) write(socket, answers.get(key) ?? MISS);
    },
    drain(socket) {
      const c = socket.data;
      while (c.backlog.length > 0) {
        const head = c.backlog[0]!;
        const n = socket.write(head);
        if (n < head.length) {
          c.backlog[0] = head.subarray(Math.max(0, n));
          return;
        }
        c.backlog.shift();
      }
    },
    error() {},
  },
});
report({ port: server.port });
onCommands(() => {});
