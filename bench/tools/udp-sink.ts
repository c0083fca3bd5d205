/**
 * The one-way goodput receiver standing in for a private service: counts
 * datagrams and bytes. Commands on stdin: "count" (reports {datagrams, bytes,
 * idleMs}) and "reset". Reports {"port", "recvBuffer"} once bound; exits when
 * stdin closes.
 *
 * node:dgram rather than Bun.udpSocket because only it can raise SO_RCVBUF:
 * measured here, a sink with the default 208 KiB buffer loses ~4 % at 50k
 * datagrams/s and ~35 % at 100k/s of 1200 B with no tunnel at all, so it
 * would measure itself instead of the relay.
 */
import dgram from "node:dgram";
import { flag, onCommands, report } from "../lib/child-io.ts";

let datagrams = 0;
let bytes = 0;
let lastAt = performance.now();
const socket = dgram.createSocket({ type: "udp4", recvBufferSize: 8 << 20 });
socket.on("message", (msg: Uint8Array) => {
  datagrams++;
  bytes += msg.byteLength;
  lastAt = performance.now();
});
socket.on("error", () => {});
await new Promise<void>((resolve) => socket.bind(0, flag("host", "127.0.0.1"), resolve));
report({ port: socket.address().port, recvBuffer: socket.getRecvBufferSize() });
onCommands((line) => {
  if (line === "count") report({ datagrams, bytes, idleMs: Math.round(performance.now() - lastAt) });
  else if (line === "reset") {
    datagrams = 0;
    bytes = 0;
  }
});
