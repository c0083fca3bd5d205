/**
 * Several QUIC packets to one peer in one message: sendmmsg(2) with UDP GSO
 * (the UDP_SEGMENT control message, Linux 4.18 and later) on a Bun socket's
 * fd, through libc. The kernel routes, builds and hands over one message
 * instead of each packet, and on loopback wakes the receiver once for all of
 * them. Measured here with 1350-byte packets to a receiving Bun process: the
 * sender spent 2.6–4× less CPU than with Bun's sendMany of the same packets,
 * the receiver a third less.
 *
 * The structures live in one buffer that this sender holds for its lifetime
 * (the kernel reads them during the call only): per message an mmsghdr, one
 * iovec, one control message and a socket address.
 */
import { ipv4Number, ipv6Bytes } from "../net/address.ts";
import type { Libc } from "./libc.ts";

/** Messages per sendmmsg call. */
export const MAX_MESSAGES = 64;
/** Segments per message: the kernel's limit (UDP_MAX_SEGMENTS) is 64 on older kernels. */
export const MAX_SEGMENTS = 64;
/** Bytes per message before segmentation: one UDP datagram's payload limit (IPv4). */
export const MAX_MESSAGE_BYTES = 65_507;

// struct mmsghdr (LP64): msg_name 0, msg_namelen 8, msg_iov 16, msg_iovlen 24,
// msg_control 32, msg_controllen 40, msg_flags 48, msg_len 56.
const HDR = 64;
const IOV = 16;
// cmsghdr (len 8, level 4, type 4) + a u16, padded to 8: CMSG_SPACE(2).
const CMSG = 24;
const CMSG_LEN = 18;
const ADDR = 32; // sockaddr_in6 is 28 bytes
const IOV_AT = MAX_MESSAGES * HDR;
const CMSG_AT = IOV_AT + MAX_MESSAGES * IOV;
const ADDR_AT = CMSG_AT + MAX_MESSAGES * CMSG;
const SIZE = ADDR_AT + MAX_MESSAGES * ADDR;

const SOL_UDP = 17;
const UDP_SEGMENT = 103;
const AF_INET = 2;
const AF_INET6 = 10;
const EAGAIN = 11;
const ENOBUFS = 105;
/** What a kernel or device without UDP GSO answers. */
const GSO_REFUSED = new Set([5, /* EIO */ 22, /* EINVAL */ 92, /* ENOPROTOOPT */ 95 /* EOPNOTSUPP */]);
/** Parsed addresses kept (a server talks to many peers; the map starts over beyond this). */
const MAX_CACHED_HOSTS = 4096;

export interface GsoSender {
  /**
   * Sends `count` messages from [data, port, host, segment, ...]; returns how
   * many were handled: sent, or dropped because the socket buffer was full or
   * the kernel refused that one message. Fewer than `count` only once the
   * kernel refused GSO itself: `refused` is then set, and the caller sends the
   * rest another way.
   */
  send(flat: readonly (Uint8Array | number | string)[], count: number): number;
  readonly refused: boolean;
}

interface SockaddrTemplate {
  family: number;
  bytes: Uint8Array;
}

export function createGsoSender(libc: Libc, fd: number): GsoSender {
  const mem = new ArrayBuffer(SIZE);
  const u8 = new Uint8Array(mem);
  const view = new DataView(mem);
  const base = libc.ptr(u8);
  const hosts = new Map<string, SockaddrTemplate | null>();
  // Pointers are below 2^53: written as two 32-bit halves, no BigInt per call.
  const setPtr = (at: number, address: number) => {
    view.setUint32(at, address >>> 0, true);
    view.setUint32(at + 4, Math.floor(address / 2 ** 32), true);
  };
  for (let i = 0; i < MAX_MESSAGES; i++) {
    const hdr = i * HDR;
    setPtr(hdr, base + ADDR_AT + i * ADDR);
    setPtr(hdr + 16, base + IOV_AT + i * IOV);
    setPtr(hdr + 24, 1);
    setPtr(hdr + 32, base + CMSG_AT + i * CMSG);
    const cmsg = CMSG_AT + i * CMSG;
    setPtr(cmsg, CMSG_LEN);
    view.setInt32(cmsg + 8, SOL_UDP, true);
    view.setInt32(cmsg + 12, UDP_SEGMENT, true);
  }

  const sender = {
    refused: false,
    send(flat: readonly (Uint8Array | number | string)[], count: number): number {
      let done = 0;
      while (done < count) {
        const n = Math.min(MAX_MESSAGES, count - done);
        for (let i = 0; i < n; i++) fill(i, flat, (done + i) * 4);
        const handled = sendAll(n);
        done += handled;
        if (handled < n) break;
      }
      return done;
    },
  };

  /** Hands `count` filled messages to the kernel; fewer back only when it refused GSO. */
  function sendAll(count: number): number {
    let sent = 0;
    while (sent < count) {
      const r = libc.sendmmsg(fd, base + sent * HDR, count - sent);
      if (r > 0) {
        sent += r;
        continue;
      }
      const error = libc.errno();
      // The socket buffer is full: the rest is dropped, as a lost packet would be.
      if (error === EAGAIN || error === ENOBUFS) return count;
      if (GSO_REFUSED.has(error) && view.getUint32(sent * HDR + 40, true) > 0) {
        sender.refused = true;
        return sent;
      }
      sent++; // that one destination refused (unreachable, too large): drop it and go on
    }
    return sent;
  }

  /** Writes message `i` from the flat list at `at`. */
  function fill(i: number, flat: readonly (Uint8Array | number | string)[], at: number): void {
    const data = flat[at] as Uint8Array;
    const port = flat[at + 1] as number;
    const host = flat[at + 2] as string;
    const segment = flat[at + 3] as number;
    let template = hosts.get(host);
    if (template === undefined) {
      if (hosts.size >= MAX_CACHED_HOSTS) hosts.clear();
      hosts.set(host, template = parseHost(host));
    }
    const hdr = i * HDR;
    const addr = ADDR_AT + i * ADDR;
    if (template === null) {
      // Not an IP address: no address at all, so the kernel refuses this one message.
      view.setUint32(hdr + 8, 0, true);
    } else if (template.family === AF_INET) {
      view.setUint16(addr, AF_INET, true);
      view.setUint16(addr + 2, port, false);
      u8.set(template.bytes, addr + 4);
      view.setUint32(hdr + 8, 16, true);
    } else {
      view.setUint16(addr, AF_INET6, true);
      view.setUint16(addr + 2, port, false);
      view.setUint32(addr + 4, 0, true);
      u8.set(template.bytes, addr + 8);
      view.setUint32(addr + 24, 0, true);
      view.setUint32(hdr + 8, 28, true);
    }
    const iov = IOV_AT + i * IOV;
    setPtr(iov, libc.ptr(data));
    setPtr(iov + 8, data.length);
    if (data.length > segment) {
      view.setUint16(CMSG_AT + i * CMSG + 16, segment, true);
      setPtr(hdr + 40, CMSG);
    } else {
      setPtr(hdr + 40, 0); // one datagram: no control message
    }
  }

  // `mem` is reachable from the closures above for as long as the sender is.
  return sender;
}

function parseHost(host: string): SockaddrTemplate | null {
  const v4 = ipv4Number(host);
  if (v4 !== null) {
    return { family: AF_INET, bytes: Uint8Array.of(v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255) };
  }
  const v6 = ipv6Bytes(host);
  return v6 === null ? null : { family: AF_INET6, bytes: v6 };
}
