/**
 * One TCP socket spliced to one QUIC stream, used by both clients (the agent
 * for its local clients, the connector for its backend connections).
 *
 * Backpressure both ways: socket bytes pause the socket once the stream has
 * more than `highWater` bytes queued beyond QUIC flow control, resumed when
 * the engine reports the queue drained; stream bytes pause reading the stream
 * (so QUIC flow control holds the peer back) while the socket's write buffer
 * is full, resumed on 'drain'. The socket's bytes travel as segments and
 * its FIN as END + QUIC FIN (core/frame/stream.ts), in each direction on its
 * own (half-close); an error or reset on either side aborts both.
 */
import type { Socket } from "node:net";
import {
  createSegmentReader,
  encodeEndSegment,
  encodeSegmentPrefix,
  normaliseResetCode,
  type SegmentReader,
  StreamResetCode,
} from "../frame/mod.ts";
import type { QuicConnection } from "../quic/endpoint.ts";

/** Bytes queued on a stream beyond what QUIC accepted before the socket is paused. */
export const TCP_HIGH_WATER = 1024 * 1024;
/** Stream bytes gathered for one socket write when they arrive back to back. */
const STAGE_BYTES = 64 * 1024;
const WRITE_GAP_MS = 1;

/** The ways a pipe ends, as the `how` label of the tcp_closed metrics. */
export const PIPE_END_HOWS = ["fin", "local_reset", "remote_reset"] as const;

export type PipeEnd =
  /** Both directions finished with FIN. */
  | { how: "fin" }
  /** Our socket failed or was reset: we reset the stream with `code`. */
  | { how: "local_reset"; code: number; error?: string }
  /** The peer reset the stream (or stopped reading it) with `code`. */
  | { how: "remote_reset"; code: number };

export interface TcpPipeOptions {
  conn: QuicConnection;
  streamId: number;
  socket: Socket;
  /** The stream is paused already (bytes were held back while the socket connected). */
  streamPaused?: boolean;
  /** Counts payload bytes: `to_stream` socket → QUIC, `from_stream` QUIC → socket. */
  onBytes?(direction: "to_stream" | "from_stream", n: number): void;
  /** Called exactly once, when the pipe is finished either way. */
  onEnd(end: PipeEnd): void;
  highWater?: number;
}

export interface TcpPipe {
  readonly conn: QuicConnection;
  readonly streamId: number;
  readonly ended: boolean;
  /** Bytes (and FIN) from the stream, past the header: segments, then END. */
  fromStream(data: Uint8Array, fin: boolean): void;
  /** The engine drained this stream's queued writes. */
  drained(): void;
  /** The peer reset or stopped the stream. */
  remoteReset(code: number): void;
  /** Ends both directions at once: RST to the socket, reset to the stream with `code`. */
  abort(code: number, error?: string): void;
  /** Resumes reading the stream if nothing holds it back (after `streamPaused`). */
  start(): void;
}

/** One pipe's state. */
interface PipeState {
  readonly options: TcpPipeOptions;
  readonly conn: QuicConnection;
  readonly streamId: number;
  readonly socket: Socket;
  readonly highWater: number;
  /** We stopped reading the stream: the socket's write buffer is full (or it is still connecting). */
  streamPaused: boolean;
  /** We paused the socket: the stream has more than `highWater` bytes queued. */
  socketPaused: boolean;
  /** END + FIN written to the stream (the socket ended its side). */
  finToStream: boolean;
  /** END received from the stream (we ended the socket's write side). */
  finFromStream: boolean;
  /** onEnd was called: nothing more happens. */
  ended: boolean;
  /** Reads the stream's segments (core/frame/stream.ts). */
  readonly segments: SegmentReader;
  /** Payload bytes handed to the socket during one fromStream call, counted once at its end. */
  delivered: number;
  /** toSocket and flushStage bound to this pipe once, so the data path makes no closure per chunk. */
  readonly deliver: (bytes: Uint8Array) => void;
  readonly flush: () => void;
  // Stream bytes arrive a QUIC packet (~1.3 KB) at a time, and a socket write
  // costs about as much for 1 KB as for 16 KB. When bytes come back to back
  // (within WRITE_GAP_MS of the last write), they gather in `stage` and leave
  // as one write at the end of this turn of the event loop; an idle
  // connection's bytes go out at once, so interactive latency is unchanged.
  stage: Buffer | null;
  staged: number;
  /** When the socket was last written (performance.now()). */
  lastWrite: number;
  flushScheduled: boolean;
}

export function createTcpPipe(options: TcpPipeOptions): TcpPipe {
  const { conn, streamId, socket } = options;
  const p: PipeState = {
    options,
    conn,
    streamId,
    socket,
    highWater: options.highWater ?? TCP_HIGH_WATER,
    streamPaused: options.streamPaused ?? false,
    socketPaused: false,
    finToStream: false,
    finFromStream: false,
    ended: false,
    segments: createSegmentReader(),
    delivered: 0,
    deliver: (bytes) => toSocket(p, bytes),
    flush: () => flushStage(p),
    stage: null,
    staged: 0,
    lastWrite: 0,
    flushScheduled: false,
  };
  socket.on("data", (chunk: Uint8Array) => onSocketData(p, chunk));
  socket.on("end", () => onSocketEnd(p));
  socket.on("drain", () => onSocketDrain(p));
  socket.on("error", (error: Error) => {
    if (!p.ended) abort(p, StreamResetCode.ABORTED, (error as NodeJS.ErrnoException).code ?? error.message);
  });
  socket.on("close", () => onSocketClose(p));
  return {
    conn,
    streamId,
    get ended() {
      return p.ended;
    },
    fromStream: (data, fin) => fromStream(p, data, fin),
    drained: () => drained(p),
    remoteReset: (code) => remoteReset(p, code),
    abort: (code, error) => abort(p, code, error),
    start: () => start(p),
  };
}

// ---------------------------------------------------------------- socket → stream

function onSocketData(p: PipeState, chunk: Uint8Array): void {
  if (p.ended) return;
  if (chunk.length === 0) return;
  p.conn.writeStream(p.streamId, encodeSegmentPrefix(chunk.length));
  p.conn.writeStream(p.streamId, chunk);
  p.options.onBytes?.("to_stream", chunk.length);
  if (!p.socketPaused && p.conn.pendingStreamBytes(p.streamId) > p.highWater) {
    p.socketPaused = true;
    p.socket.pause();
  }
}

function onSocketEnd(p: PipeState): void {
  if (p.ended) return;
  p.finToStream = true;
  // END carries the FIN: a FIN written alone can be lost (see core/frame/stream.ts).
  p.conn.writeStream(p.streamId, encodeEndSegment(), true);
}

function onSocketDrain(p: PipeState): void {
  if (p.ended || !p.streamPaused) return;
  p.streamPaused = false;
  p.conn.pauseStream(p.streamId, false);
}

function onSocketClose(p: PipeState): void {
  if (p.ended) return;
  // Closed without an error: only a clean end if both FINs went through.
  if (p.finToStream && p.finFromStream) finish(p, { how: "fin" });
  else abort(p, StreamResetCode.ABORTED, "socket closed");
}

/** The engine drained this stream's queued writes: read the socket again. */
function drained(p: PipeState): void {
  if (p.ended || !p.socketPaused) return;
  p.socketPaused = false;
  p.socket.resume();
}

// ---------------------------------------------------------------- stream → socket

function fromStream(p: PipeState, data: Uint8Array, fin: boolean): void {
  if (p.ended) return;
  p.delivered = 0;
  const status = p.segments.push(data, p.deliver);
  if (p.delivered > 0) p.options.onBytes?.("from_stream", p.delivered);
  if (typeof status === "object" && status !== null) return abort(p, StreamResetCode.PROTOCOL, status.message);
  if (status === "end" && !p.finFromStream) {
    p.finFromStream = true;
    flushStage(p);
    // With allowHalfOpen the socket emits 'close' once both sides ended: that settles the pipe.
    p.socket.end();
  }
  if (fin) {
    const error = p.segments.finish();
    if (error) abort(p, StreamResetCode.PROTOCOL, error.message);
  }
}

function toSocket(p: PipeState, bytes: Uint8Array): void {
  p.delivered += bytes.length;
  // The engine's buffer is reused after this call, so the socket gets a copy either way.
  if (p.staged === 0 && performance.now() - p.lastWrite > WRITE_GAP_MS) return writeOut(p, bytes.slice());
  if (p.stage !== null && p.staged + bytes.length > p.stage.length) flushStage(p);
  p.stage ??= Buffer.allocUnsafe(Math.max(STAGE_BYTES, bytes.length));
  p.stage.set(bytes, p.staged);
  p.staged += bytes.length;
  if (p.staged >= STAGE_BYTES) return flushStage(p);
  if (!p.flushScheduled) {
    p.flushScheduled = true;
    setImmediate(p.flush);
  }
}

function flushStage(p: PipeState): void {
  p.flushScheduled = false;
  if (p.staged === 0 || p.ended) return;
  const out = p.stage!.subarray(0, p.staged);
  p.stage = null;
  p.staged = 0;
  writeOut(p, out);
}

function writeOut(p: PipeState, bytes: Uint8Array): void {
  p.lastWrite = performance.now();
  if (!p.socket.write(bytes) && !p.streamPaused) {
    // The socket's buffer is full: stop reading the stream until 'drain'.
    p.streamPaused = true;
    p.conn.pauseStream(p.streamId, true);
  }
}

/** Resumes reading the stream if nothing holds it back (after `streamPaused`). */
function start(p: PipeState): void {
  if (p.ended || !p.streamPaused || p.socket.writableNeedDrain) return;
  p.streamPaused = false;
  p.conn.pauseStream(p.streamId, false);
}

// ---------------------------------------------------------------- ends

function remoteReset(p: PipeState, code: number): void {
  if (p.ended) return;
  // Free our half of the stream too, so quiche can forget it.
  p.conn.shutdownStream(p.streamId, normaliseResetCode(code));
  resetSocket(p.socket);
  finish(p, { how: "remote_reset", code });
}

function abort(p: PipeState, code: number, error?: string): void {
  if (p.ended) return;
  p.conn.shutdownStream(p.streamId, code);
  resetSocket(p.socket);
  finish(p, { how: "local_reset", code, error });
}

function finish(p: PipeState, end: PipeEnd): void {
  if (p.ended) return;
  p.ended = true;
  p.options.onEnd(end);
}

/** Closes a socket with RST where the runtime can (so the other end sees a reset, not a clean FIN). */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  const s = socket as Socket & { resetAndDestroy?: () => Socket };
  try {
    if (typeof s.resetAndDestroy === "function") s.resetAndDestroy();
    else socket.destroy();
  } catch {
    socket.destroy();
  }
}
