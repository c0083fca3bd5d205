import { afterAll, expect, test } from "bun:test";
import net from "node:net";
import { openUdp } from "../../core/runtime/udp.ts";
import { startBunChain } from "./floor.ts";
import { mark, stopAll } from "./processes.ts";
import { startUdpEcho } from "./services.ts";

const before = mark();
afterAll(() => stopAll(before));

const within = <T>(ms: number, what: string, p: Promise<T>) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)),
  ]);

test("the UDP floor passes datagrams through three forwarders to the echo and back", async () => {
  const echo = await startUdpEcho();
  const first = (await startBunChain("udp", echo.address)).address;
  expect(first.port).not.toBe(echo.address.port);
  const got: string[] = [];
  let wake = () => {};
  const client = await openUdp({
    host: "127.0.0.1",
    port: 0,
    onPacket: (data) => {
      got.push(new TextDecoder().decode(data));
      wake();
    },
    onError: () => {},
  });
  try {
    for (const word of ["one", "two", "three"]) {
      const answered = new Promise<void>((resolve) => (wake = resolve));
      client.send(new TextEncoder().encode(word), first.port, first.host);
      await within(5_000, word, answered);
    }
    expect(got).toEqual(["one", "two", "three"]);
  } finally {
    client.close();
  }
}, 30_000);

test("the TCP floor carries a stream through three forwarders, half-close included", async () => {
  // Counts what it got until the client's FIN, then answers with the count: only a chain
  // that keeps the other direction open after a FIN brings the answer back.
  const counter = net.createServer({ allowHalfOpen: true }, (socket) => {
    let n = 0;
    socket.on("data", (chunk: Uint8Array) => (n += chunk.length));
    socket.on("end", () => socket.end(String(n)));
  });
  await new Promise<void>((resolve) => counter.listen(0, "127.0.0.1", resolve));
  try {
    const port = (counter.address() as net.AddressInfo).port;
    const first = (await startBunChain("tcp", { host: "127.0.0.1", port })).address;
    const sent = 3 * 1024 * 1024;
    const answer = await within(
      15_000,
      "the count",
      new Promise<string>((resolve, reject) => {
        const socket = net.connect({ host: first.host, port: first.port, allowHalfOpen: true });
        let text = "";
        socket.on("data", (chunk: Uint8Array) => (text += new TextDecoder().decode(chunk)));
        socket.on("end", () => resolve(text));
        socket.on("error", reject);
        socket.end(new Uint8Array(sent));
      }),
    );
    expect(Number(answer)).toBe(sent);
  } finally {
    counter.close();
  }
}, 30_000);
