/**
 * Kernel-side drops for a UDP socket (Linux, Bun): a classic BPF socket
 * filter that drops datagrams from given IPv4 sources before they are queued,
 * and the socket's kernel drop counter. An overloaded flow's excess then costs
 * nothing: no wakeup, no read, no JavaScript. Elsewhere both are no-ops.
 */

import { ipv4Number } from "../net/address.ts";
import { loadLibc } from "./libc.ts";

export interface Source {
  host: string;
  port: number;
}

const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;
const SO_DETACH_FILTER = 27;
const SO_MEMINFO = 55;
const SK_MEMINFO_DROPS = 8;
/** BPF: offset of the network header for absolute loads (linux/filter.h SKF_NET_OFF). */
const SKF_NET_OFF = -0x100000;
/** Most sources one filter drops (the program stays tiny). */
export const MAX_FILTERED_SOURCES = 16;

/**
 * The BPF program: for each source, "UDP source port matches and IPv4 source
 * matches: drop", then accept. Each instruction is {u16 code, u8 jt, u8 jf, u32 k}.
 */
export function dropProgram(sources: readonly Source[]): Uint8Array | null {
  const matches = sources.map((s) => ({ ip: ipv4Number(s.host), port: s.port })).filter((s) => s.ip !== null);
  if (matches.length === 0) return null;
  const insns: [number, number, number, number][] = [];
  const total = matches.length * 4 + 2;
  const dropAt = total - 1;
  for (const m of matches) {
    const here = insns.length;
    insns.push([0x28, 0, 0, 0]); // ldh [0]: UDP source port
    insns.push([0x15, 0, 2, m.port]); // jeq #port ? next : skip the IP test
    insns.push([0x20, 0, 0, (SKF_NET_OFF + 12) >>> 0]); // ld [net + 12]: IPv4 source
    const jeqAt = here + 3;
    insns.push([0x15, dropAt - jeqAt - 1, 0, m.ip!]); // jeq #ip ? drop : next source
  }
  insns.push([0x06, 0, 0, 0xffffffff]); // ret: accept the whole datagram
  insns.push([0x06, 0, 0, 0]); // ret 0: drop
  const out = new Uint8Array(insns.length * 8);
  const view = new DataView(out.buffer);
  insns.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, true);
    out[i * 8 + 2] = jt;
    out[i * 8 + 3] = jf;
    view.setUint32(i * 8 + 4, k, true);
  });
  return out;
}

/**
 * Drops datagrams from `sources` (IPv4) on socket `fd` in the kernel; an
 * empty list removes the filter. False when not supported here.
 */
export function setDroppedSources(fd: number | null, sources: readonly Source[]): boolean {
  const c = loadLibc();
  if (c === null || fd === null) return false;
  const program = dropProgram(sources.slice(0, MAX_FILTERED_SOURCES));
  if (program === null) {
    c.setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, new Int32Array(1), 4);
    return true;
  }
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; }: 16 bytes on 64-bit Linux.
  const fprog = new BigUint64Array(2);
  new DataView(fprog.buffer).setUint16(0, program.length / 8, true);
  fprog[1] = BigInt(c.ptr(program));
  return c.setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, 16) === 0;
}

/** Datagrams the kernel dropped for this socket (full buffer or filter), or null when unknown. */
export function kernelDrops(fd: number | null): number | null {
  const c = loadLibc();
  if (c === null || fd === null) return null;
  const info = new Uint32Array(16);
  const len = new Uint32Array([info.byteLength]);
  if (c.getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, len) !== 0) return null;
  return info[SK_MEMINFO_DROPS]!;
}
