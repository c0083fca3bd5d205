/**
 * The TCP pipe between a real loopback socket and a fake QUIC connection: the
 * fake records what the pipe writes to its stream, pauses and resets, and
 * holds back whatever queue size the test sets.
 */
import { afterEach, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { encodeEndSegment, encodeSegmentPrefix, StreamResetCode } from "../frame/mod.ts";
import type { QuicConnection } from "../quic/types.ts";
import type { Address } from "../net/address.ts";
import { createTcpPipe, type PipeEnd, type TcpPipe, type TcpPipeOptions } from "./tcp-pipe.ts";

const STREAM = 4;
const text = new TextEncoder();

/** A QuicConnection that keeps one stream's writes, pauses and resets in memory. */
class FakeConnection implements QuicConnection {
  readonly id = 1;
  readonly remote: Address = { host: "127.0.0.1", port: 1 };
  readonly createdAt = 0;
  readonly established = true;
  readonly closed = false;
  context: unknown = undefined;
  /** Bytes written to the stream, in order (copies). */
  readonly written: number[] = [];
  finWritten = false;
  /** Every pauseStream call, in order. */
  readonly pauses: boolean[] = [];
  readonly shutdowns: { streamId: number; code: number }[] = [];
  /** What pendingStreamBytes answers (bytes QUIC has not taken yet). */
  pending = 0;

  writeStream(streamId: number, data: Uint8Array, fin = false): void {
    expect(streamId).toBe(STREAM);
    expect(this.finWritten).toBe(false);
    for (const b of data) this.written.push(b);
    if (fin) this.finWritten = true;
  }
  pendingStreamBytes(): number {
    return this.pending;
  }
  pauseStream(streamId: number, paused: boolean): void {
    expect(streamId).toBe(STREAM);
    this.pauses.push(paused);
  }
  shutdownStream(streamId: number, code: number): void {
    this.shutdowns.push({ streamId, code });
  }
  // The rest of the interface: the pipe must not use it.
  sendDatagram(): boolean {
    throw new Error("a TCP pipe sends no datagrams");
  }
  canSendDatagram(): boolean {
    throw new Error("a TCP pipe sends no datagrams");
  }
  datagramsWaiting(): number {
    throw new Error("a TCP pipe sends no datagrams");
  }
  openStream(): number {
    throw new Error("a TCP pipe opens no streams");
  }
  markProven(): void {}
  close(): void {
    throw new Error("a TCP pipe never closes the connection");
  }
  peerCertificate(): Uint8Array | null {
    return null;
  }
  rttSeconds(): number {
    return 0;
  }
  maxDatagramSize(): number {
    return 0;
  }
  get raw(): never {
    throw new Error("no native connection in this fake");
  }
}

/** One segment as the peer would write it. */
function segment(payload: string | Uint8Array): Uint8Array {
  const bytes = typeof payload === "string" ? text.encode(payload) : payload;
  const out = new Uint8Array(4 + bytes.length);
  out.set(encodeSegmentPrefix(bytes.length));
  out.set(bytes, 4);
  return out;
}

async function waitFor(what: string, ok: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Rig {
  conn: FakeConnection;
  pipe: TcpPipe;
  /** The pipe's socket (accepted, half-open allowed, as the agent's listeners make them). */
  socket: net.Socket;
  /** The user's end of the TCP connection. */
  user: net.Socket;
  /** Bytes the user has received. */
  received: () => string;
  userEnded: () => boolean;
  userError: () => string | null;
  ends: PipeEnd[];
  bytes: { to_stream: number; from_stream: number };
}

async function rig(options: Partial<TcpPipeOptions> = {}): Promise<Rig> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const user = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  const socket = await accepted;
  server.close();
  cleanups.push(() => {
    user.destroy();
    socket.destroy();
  });
  let received = "";
  let userEnded = false;
  let userError: string | null = null;
  user.on("data", (chunk: Buffer) => (received += chunk.toString()));
  user.on("end", () => (userEnded = true));
  user.on("error", (error: NodeJS.ErrnoException) => (userError = error.code ?? error.message));
  const conn = new FakeConnection();
  const ends: PipeEnd[] = [];
  const bytes = { to_stream: 0, from_stream: 0 };
  const pipe = createTcpPipe({
    conn,
    streamId: STREAM,
    socket,
    onBytes: (direction, n) => (bytes[direction] += n),
    onEnd: (end) => ends.push(end),
    ...options,
  });
  return {
    conn,
    pipe,
    socket,
    user,
    received: () => received,
    userEnded: () => userEnded,
    userError: () => userError,
    ends,
    bytes,
  };
}

/** What the pipe wrote to the stream, read back as segments. */
function segmentsOf(conn: FakeConnection): { payloads: string[]; end: boolean } {
  const bytes = Uint8Array.from(conn.written);
  const payloads: string[] = [];
  let off = 0;
  let end = false;
  while (off + 4 <= bytes.length) {
    const len = new DataView(bytes.buffer, off).getUint32(0);
    off += 4;
    if (len === 0) {
      end = true;
      break;
    }
    payloads.push(new TextDecoder().decode(bytes.subarray(off, off + len)));
    off += len;
  }
  expect(off).toBe(bytes.length);
  return { payloads, end };
}

describe("socket to stream", () => {
  test("socket bytes travel as segments, counted", async () => {
    const r = await rig();
    r.user.write("hello");
    await waitFor("the segment", () => r.conn.written.length === 4 + 5);
    expect(segmentsOf(r.conn)).toEqual({ payloads: ["hello"], end: false });
    expect(r.bytes.to_stream).toBe(5);
    expect(r.conn.finWritten).toBe(false);
  });

  test("the socket's FIN travels as END together with the QUIC FIN", async () => {
    const r = await rig();
    r.user.end("bye");
    await waitFor("the FIN", () => r.conn.finWritten);
    expect(segmentsOf(r.conn)).toEqual({ payloads: ["bye"], end: true });
    // Half-close: the other direction still works.
    r.pipe.fromStream(segment("still here"), false);
    await waitFor("the reply", () => r.received() === "still here");
    expect(r.ends).toEqual([]);
  });

  test("backpressure: the socket is paused while the stream holds more than highWater, resumed on drained()", async () => {
    const r = await rig({ highWater: 100 });
    r.conn.pending = 101;
    r.user.write("x");
    await waitFor("the first byte", () => r.conn.written.length === 5);
    expect(r.socket.isPaused()).toBe(true);
    r.conn.pending = 0;
    r.pipe.drained();
    expect(r.socket.isPaused()).toBe(false);
    r.user.write("y");
    await waitFor("the second byte", () => r.conn.written.length === 10);
    expect(segmentsOf(r.conn).payloads).toEqual(["x", "y"]);
  });

  test("at or below highWater the socket keeps flowing", async () => {
    const r = await rig({ highWater: 100 });
    r.conn.pending = 100;
    r.user.write("x");
    await waitFor("the byte", () => r.conn.written.length === 5);
    expect(r.socket.isPaused()).toBe(false);
  });
});

describe("stream to socket", () => {
  test("segment payloads reach the socket in order, counted; split prefixes and payloads are joined", async () => {
    const r = await rig();
    const bytes = new Uint8Array([...segment("abc"), ...segment("defg")]);
    // Fed one byte at a time: every split point the reader must handle.
    for (let i = 0; i < bytes.length; i++) r.pipe.fromStream(bytes.subarray(i, i + 1), false);
    await waitFor("the bytes", () => r.received() === "abcdefg");
    expect(r.bytes.from_stream).toBe(7);
  });

  test("chunks of one turn are gathered, past the stage's size too, in order and from copies", async () => {
    const r = await rig();
    const reused = new Uint8Array(4 + 1000);
    let expected = "";
    // 150 KB in one turn, through one reused buffer: the stage starts as the
    // first chunk's copy, grows, and is written whenever it is full.
    for (let i = 0; i < 150; i++) {
      const text = String.fromCharCode(65 + (i % 26)).repeat(1000);
      reused.set(segment(text));
      r.pipe.fromStream(reused, false);
      expected += text;
    }
    await waitFor("the bytes", () => r.received().length >= expected.length);
    expect(r.received()).toBe(expected);
    expect(r.bytes.from_stream).toBe(150_000);
  });

  test("the engine's buffer may be reused after the call: the socket gets a copy", async () => {
    const r = await rig();
    const chunk = segment("first");
    r.pipe.fromStream(chunk, false);
    chunk.fill(0x21);
    r.pipe.fromStream(segment("second"), false);
    await waitFor("the bytes", () => r.received() === "firstsecond");
  });

  test("END ends the socket's write side; with both FINs the pipe ends cleanly, once", async () => {
    const r = await rig();
    r.pipe.fromStream(new Uint8Array([...segment("bye"), ...encodeEndSegment()]), true);
    await waitFor("the user's end", () => r.userEnded());
    expect(r.received()).toBe("bye");
    expect(r.ends).toEqual([]);
    r.user.end();
    await waitFor("the pipe's end", () => r.ends.length > 0);
    expect(r.ends).toEqual([{ how: "fin" }]);
    expect(r.pipe.ended).toBe(true);
    expect(r.conn.finWritten).toBe(true);
    expect(r.conn.shutdowns).toEqual([]);
  });

  test("backpressure: a full socket buffer pauses the stream; the socket's drain resumes it", async () => {
    const r = await rig();
    r.user.pause();
    const big = new Uint8Array(4 * 1024 * 1024).fill(0x61);
    r.pipe.fromStream(segment(big), false);
    expect(r.conn.pauses).toEqual([true]);
    r.user.resume();
    await waitFor("the stream to resume", () => r.conn.pauses.length === 2);
    expect(r.conn.pauses).toEqual([true, false]);
    await waitFor("every byte", () => r.received().length === big.length);
  });

  test("start() resumes a stream that was paused while the socket connected", async () => {
    const r = await rig({ streamPaused: true });
    r.pipe.start();
    expect(r.conn.pauses).toEqual([false]);
    // Only once: a second start has nothing to resume.
    r.pipe.start();
    expect(r.conn.pauses).toEqual([false]);
  });
});

describe("resets and errors", () => {
  test("a reset from the peer resets the socket and frees our half of the stream", async () => {
    const r = await rig();
    r.pipe.remoteReset(StreamResetCode.CONNECT_FAILED);
    expect(r.ends).toEqual([{ how: "remote_reset", code: StreamResetCode.CONNECT_FAILED }]);
    expect(r.conn.shutdowns).toEqual([{ streamId: STREAM, code: StreamResetCode.CONNECT_FAILED }]);
    await waitFor("the user's reset", () => r.userError() !== null);
    expect(r.userError()).toBe("ECONNRESET");
  });

  test("a peer's code that is not ours is passed on as ABORTED", async () => {
    const r = await rig();
    r.pipe.remoteReset(0x99);
    expect(r.conn.shutdowns).toEqual([{ streamId: STREAM, code: StreamResetCode.ABORTED }]);
    expect(r.ends).toEqual([{ how: "remote_reset", code: 0x99 }]);
  });

  test("the user resetting the socket aborts the stream with ABORTED", async () => {
    const r = await rig();
    r.user.resetAndDestroy();
    await waitFor("the abort", () => r.ends.length > 0);
    expect(r.ends[0]!.how).toBe("local_reset");
    expect(r.conn.shutdowns).toEqual([{ streamId: STREAM, code: StreamResetCode.ABORTED }]);
  });

  test("bytes after END are a protocol error: stream reset with PROTOCOL, socket reset", async () => {
    const r = await rig();
    r.pipe.fromStream(new Uint8Array([...encodeEndSegment(), 1, 2, 3]), false);
    expect(r.ends).toEqual([{
      how: "local_reset",
      code: StreamResetCode.PROTOCOL,
      error: "3 bytes after the END segment",
    }]);
    expect(r.conn.shutdowns).toEqual([{ streamId: STREAM, code: StreamResetCode.PROTOCOL }]);
    await waitFor("the user's reset", () => r.userError() !== null);
  });

  test("a QUIC FIN without END is a protocol error (a FIN alone may be lost, so END must come with it)", async () => {
    const r = await rig();
    r.pipe.fromStream(segment("cut"), true);
    expect(r.ends.length).toBe(1);
    expect(r.ends[0]).toMatchObject({ how: "local_reset", code: StreamResetCode.PROTOCOL });
  });

  test("abort() ends both sides once; later events change nothing", async () => {
    const r = await rig();
    r.pipe.abort(StreamResetCode.SERVICE_DOWN, "test");
    r.pipe.abort(StreamResetCode.ABORTED);
    r.pipe.remoteReset(StreamResetCode.ABORTED);
    r.pipe.fromStream(segment("late"), false);
    expect(r.ends).toEqual([{ how: "local_reset", code: StreamResetCode.SERVICE_DOWN, error: "test" }]);
    expect(r.conn.shutdowns).toEqual([{ streamId: STREAM, code: StreamResetCode.SERVICE_DOWN }]);
    await waitFor("the user's reset", () => r.userError() !== null);
    expect(r.received()).toBe("");
  });

  test("a socket closed without both FINs is not a clean end", async () => {
    const r = await rig();
    r.user.end();
    await waitFor("the FIN", () => r.conn.finWritten);
    r.socket.destroy();
    await waitFor("the abort", () => r.ends.length > 0);
    expect(r.ends).toEqual([{ how: "local_reset", code: StreamResetCode.ABORTED, error: "socket closed" }]);
  });
});
