/**
 * The one adapter between the QUIC engine and the runtime's UDP sockets.
 * Bun gets `Bun.udpSocket` (with `sendMany` batching, and segmented sends
 * through libc on Linux: udp-gso.ts); anything else falls back to
 * `node:dgram`, which Deno also provides.
 */
import type { Address } from "../net/address.ts";
import { loadLibc } from "./libc.ts";
import { createGsoSender, MAX_MESSAGE_BYTES, MAX_SEGMENTS } from "./udp-gso.ts";

/** Most datagrams one sendSegmented message holds (its byte limit is applied by joinsSegmented). */
export { MAX_SEGMENTS as SEGMENTED_MAX_SEGMENTS };

/**
 * Whether a datagram of `n` bytes may join a sendSegmented message cut at
 * `segment` that holds `segments` datagrams, `bytes` in all: never longer
 * than the segment, never empty (empty ones cannot be told apart inside a
 * message), within the kernel's limits. A shorter one must be the last.
 */
export function joinsSegmented(segment: number, segments: number, bytes: number, n: number): boolean {
  return n > 0 && n <= segment && segments < MAX_SEGMENTS && bytes + n <= MAX_MESSAGE_BYTES;
}

export interface UdpPacketHandler {
  /** `data` is only valid during the call: copy what must outlive it. */
  (data: Uint8Array, port: number, host: string): void;
}

export interface UdpSocket {
  readonly address: Address;
  /** Sends one datagram; returns false when the kernel would block (packet dropped). */
  send(data: Uint8Array, port: number, host: string): boolean;
  /**
   * Sends `count` datagrams from the flat list [data, port, host, data, port, host, ...].
   * Returns how many were handed to the kernel.
   */
  sendMany(flat: (Uint8Array | number | string)[], count: number): number;
  /**
   * Sends `count` messages from [data, port, host, segment, ...]: `data`
   * longer than `segment` bytes leaves as datagrams of `segment` bytes (the
   * last may be shorter). Where the kernel offers it (Linux, Bun) each message
   * is handed over whole and the kernel cuts it (UDP GSO); elsewhere, or once
   * the kernel refused that, the datagrams go one by one. Returns how many
   * datagrams the kernel took.
   */
  sendSegmented(flat: (Uint8Array | number | string)[], count: number): number;
  /** The OS socket descriptor where the runtime exposes it (Bun), else null. */
  readonly fd: number | null;
  close(): void;
}

export interface UdpOptions {
  host: string;
  port: number;
  onPacket: UdpPacketHandler;
  /** ICMP errors (ECONNREFUSED etc.) arrive here instead of killing the process. */
  onError: (error: Error) => void;
  /**
   * Kernel send/receive buffer size to ask for (capped by net.core.[rw]mem_max).
   * The default ~208 KiB holds only ~150 full packets: a burst overflows it and
   * QUIC reads the drops as congestion.
   */
  bufferBytes?: number;
}

export const DEFAULT_UDP_BUFFER = 4 << 20;

declare const Bun: any;

export function openUdp(options: UdpOptions): Promise<UdpSocket> {
  return typeof Bun !== "undefined" && typeof Bun.udpSocket === "function" ? openBunUdp(options) : openNodeUdp(options);
}

async function openBunUdp(options: UdpOptions): Promise<UdpSocket> {
  const socket = await Bun.udpSocket({
    hostname: options.host,
    port: options.port,
    binaryType: "uint8array",
    socket: {
      data(_s: unknown, data: Uint8Array, port: number, host: string) {
        options.onPacket(data, port, host);
      },
      // Typed as (socket, error), but the error is not always the second argument.
      error(a: unknown, b: unknown) {
        options.onError(
          b instanceof Error ? b : a instanceof Error ? a : new Error(`udp socket error: ${String(b ?? a)}`),
        );
      },
    },
  });
  const address = { host: socket.address?.address ?? options.host, port: socket.port as number };
  setBunSocketBuffers(socket.fd, options.bufferBytes ?? DEFAULT_UDP_BUFFER);
  const libc = loadLibc();
  const gso = libc !== null && typeof socket.fd === "number" ? createGsoSender(libc, socket.fd) : null;
  // Our sends use the fd number directly: after close it may already belong to another socket.
  let closed = false;
  const bunSocket: UdpSocket = {
    address,
    fd: typeof socket.fd === "number" ? socket.fd : null,
    send(data, port, host) {
      try {
        return socket.send(data, port, host);
      } catch (error) {
        options.onError(error as Error);
        return false;
      }
    },
    sendMany(flat, count) {
      if (count === 0) return 0;
      try {
        if (flat.length !== count * 3) flat = flat.slice(0, count * 3);
        return socket.sendMany(flat);
      } catch (error) {
        options.onError(error as Error);
        return 0;
      }
    },
    sendSegmented(flat, count) {
      if (closed) return 0;
      if (gso === null || gso.refused) return sendSegmentsOneByOne(bunSocket, flat, 0, count);
      const sent = gso.send(flat, count);
      if (!gso.refused) return sent;
      // Not reported through onError: nothing is lost, and callers read socket
      // errors as an unreachable peer. From now on this socket sends one by one.
      return sent + sendSegmentsOneByOne(bunSocket, flat, gso.refusedAt, count);
    },
    close() {
      closed = true;
      socket.close();
    },
  };
  return bunSocket;
}

/** sendSegmented without GSO: messages `from` to `to` cut into datagrams for sendMany; returns the datagrams sent. */
function sendSegmentsOneByOne(
  socket: UdpSocket,
  flat: readonly (Uint8Array | number | string)[],
  from: number,
  to: number,
): number {
  const out: (Uint8Array | number | string)[] = [];
  for (let i = from; i < to; i++) {
    const data = flat[i * 4] as Uint8Array;
    const segment = flat[i * 4 + 3] as number;
    // One datagram (an empty one too) unless there is something to cut.
    if (segment <= 0 || data.length <= segment) out.push(data, flat[i * 4 + 1]!, flat[i * 4 + 2]!);
    else {
      for (let at = 0; at < data.length; at += segment) {
        out.push(data.subarray(at, Math.min(at + segment, data.length)), flat[i * 4 + 1]!, flat[i * 4 + 2]!);
      }
    }
  }
  return socket.sendMany(out, out.length / 3);
}

async function openNodeUdp(options: UdpOptions): Promise<UdpSocket> {
  const dgram = await import("node:dgram");
  const type = options.host.includes(":") ? "udp6" : "udp4";
  const size = options.bufferBytes ?? DEFAULT_UDP_BUFFER;
  const socket = dgram.createSocket({ type, recvBufferSize: size, sendBufferSize: size });
  socket.on(
    "message",
    (msg: Uint8Array, rinfo: { port: number; address: string }) => options.onPacket(msg, rinfo.port, rinfo.address),
  );
  socket.on("error", (error: Error) => options.onError(error));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(options.port, options.host, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  const bound = socket.address();
  // node:dgram sends asynchronously, so each packet must own its bytes.
  const send = (data: Uint8Array, port: number, host: string) => {
    socket.send(data.slice(), port, host);
    return true;
  };
  const nodeSocket: UdpSocket = {
    address: { host: bound.address, port: bound.port },
    fd: null,
    send,
    sendMany(flat, count) {
      for (let i = 0; i < count; i++) {
        send(flat[i * 3] as Uint8Array, flat[i * 3 + 1] as number, flat[i * 3 + 2] as string);
      }
      return count;
    },
    sendSegmented(flat, count) {
      return sendSegmentsOneByOne(nodeSocket, flat, 0, count);
    },
    close() {
      socket.close();
    },
  };
  return nodeSocket;
}

/**
 * Bun's UDP sockets have no buffer-size option, but they expose their fd:
 * set SO_RCVBUF/SO_SNDBUF through libc. Best effort: on failure the kernel
 * defaults stay (and drops show up in the QUIC loss counters).
 */
function setBunSocketBuffers(fd: unknown, bytes: number) {
  const libc = loadLibc();
  if (typeof fd !== "number" || libc === null) return;
  const value = new Int32Array([bytes]);
  const SOL_SOCKET = 1, SO_SNDBUF = 7, SO_RCVBUF = 8;
  libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, value, 4);
  libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, value, 4);
}
