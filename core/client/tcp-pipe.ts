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

export function createTcpPipe(options: TcpPipeOptions): TcpPipe {
  const { conn, streamId, socket } = options;
  const highWater = options.highWater ?? TCP_HIGH_WATER;
  let streamPaused = options.streamPaused ?? false;
  let socketPaused = false;
  /** END + FIN written to the stream (the socket ended its side). */
  let finToStream = false;
  /** END received from the stream (we ended the socket's write side). */
  let finFromStream = false;
  let ended = false;
  const segments = createSegmentReader();
  let delivered = 0;

  // Stream bytes arrive a QUIC packet (~1.3 KB) at a time, and a socket write
  // costs about as much for 1 KB as for 16 KB. When bytes come back to back
  // (within WRITE_GAP_MS of the last write), they gather here and leave as one
  // write at the end of this turn of the event loop; an idle connection's
  // bytes go out at once, so interactive latency is unchanged.
  let stage: Buffer | null = null;
  let staged = 0;
  let lastWrite = 0;
  let flushScheduled = false;
  const writeOut = (bytes: Uint8Array) => {
    lastWrite = performance.now();
    if (!socket.write(bytes) && !streamPaused) {
      // The socket's buffer is full: stop reading the stream until 'drain'.
      streamPaused = true;
      conn.pauseStream(streamId, true);
    }
  };
  function flushStage() {
    flushScheduled = false;
    if (staged === 0 || ended) return;
    const out = stage!.subarray(0, staged);
    stage = null;
    staged = 0;
    writeOut(out);
  }
  const toSocket = (bytes: Uint8Array) => {
    delivered += bytes.length;
    // The engine's buffer is reused after this call, so the socket gets a copy either way.
    if (staged === 0 && performance.now() - lastWrite > WRITE_GAP_MS) return writeOut(bytes.slice());
    if (stage !== null && staged + bytes.length > stage.length) flushStage();
    stage ??= Buffer.allocUnsafe(Math.max(STAGE_BYTES, bytes.length));
    stage.set(bytes, staged);
    staged += bytes.length;
    if (staged >= STAGE_BYTES) return flushStage();
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushStage);
    }
  };

  const finish = (end: PipeEnd) => {
    if (ended) return;
    ended = true;
    options.onEnd(end);
  };

  socket.on("data", (chunk: Uint8Array) => {
    if (ended) return;
    if (chunk.length === 0) return;
    conn.writeStream(streamId, encodeSegmentPrefix(chunk.length));
    conn.writeStream(streamId, chunk);
    options.onBytes?.("to_stream", chunk.length);
    if (!socketPaused && conn.pendingStreamBytes(streamId) > highWater) {
      socketPaused = true;
      socket.pause();
    }
  });
  socket.on("end", () => {
    if (ended) return;
    finToStream = true;
    // END carries the FIN: a FIN written alone can be lost (see core/frame/stream.ts).
    conn.writeStream(streamId, encodeEndSegment(), true);
  });
  socket.on("drain", () => {
    if (ended || !streamPaused) return;
    streamPaused = false;
    conn.pauseStream(streamId, false);
  });
  socket.on("error", (error: Error) => {
    if (ended) return;
    pipe.abort(StreamResetCode.ABORTED, (error as NodeJS.ErrnoException).code ?? error.message);
  });
  socket.on("close", () => {
    if (ended) return;
    // Closed without an error: only a clean end if both FINs went through.
    if (finToStream && finFromStream) finish({ how: "fin" });
    else pipe.abort(StreamResetCode.ABORTED, "socket closed");
  });

  const pipe: TcpPipe = {
    conn,
    streamId,
    get ended() {
      return ended;
    },
    fromStream(data, fin) {
      if (ended) return;
      delivered = 0;
      const status = segments.push(data, toSocket);
      if (delivered > 0) options.onBytes?.("from_stream", delivered);
      if (typeof status === "object" && status !== null) return pipe.abort(StreamResetCode.PROTOCOL, status.message);
      if (status === "end" && !finFromStream) {
        finFromStream = true;
        flushStage();
        // With allowHalfOpen the socket emits 'close' once both sides ended: that settles the pipe.
        socket.end();
      }
      if (fin) {
        const error = segments.finish();
        if (error) pipe.abort(StreamResetCode.PROTOCOL, error.message);
      }
    },
    drained() {
      if (ended || !socketPaused) return;
      socketPaused = false;
      socket.resume();
    },
    remoteReset(code) {
      if (ended) return;
      // Free our half of the stream too, so quiche can forget it.
      conn.shutdownStream(streamId, normaliseResetCode(code));
      resetSocket(socket);
      finish({ how: "remote_reset", code });
    },
    abort(code, error) {
      if (ended) return;
      conn.shutdownStream(streamId, code);
      resetSocket(socket);
      finish({ how: "local_reset", code, error });
    },
    start() {
      if (ended || !streamPaused || socket.writableNeedDrain) return;
      streamPaused = false;
      conn.pauseStream(streamId, false);
    },
  };
  return pipe;
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
