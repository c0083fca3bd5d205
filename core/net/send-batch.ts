/**
 * Plain UDP datagrams leaving a program (connector → service, agent → local
 * client), gathered per socket and sent with one sendmmsg. A large QUIC packet
 * carries many tunnelled datagrams; sent one syscall each, they cost more than
 * the whole QUIC packet did. At a real path's packet size a QUIC packet
 * carries one, so a busy program gathers across packets too: the send follows
 * the engine's rule (flush-pacer.ts), right after the callback that produced
 * a lone datagram, per batch of received packets under load. Consecutive
 * datagrams of one size to one destination (a flood of equal datagrams, the
 * last may be shorter) leave as one message the kernel cuts (UDP GSO, see
 * runtime/udp-gso.ts).
 */
import { joinsSegmented, type UdpSocket } from "../runtime/udp.ts";
import { createFlushPacer } from "./flush-pacer.ts";

interface Pending {
  socket: UdpSocket;
  /** The batch's datagrams in order: [data, port, host, data, port, host, ...]. */
  flat: (Uint8Array | number | string)[];
  count: number;
}

export interface SendBatcher {
  /** Queues a copy of `data` for `socket`; one closed by the time it is sent counts it as failed (onSent). */
  send(socket: UdpSocket, data: Uint8Array, port: number, host: string): void;
  /** Sends everything gathered now (also done by itself, see flush-pacer.ts). */
  flush(): void;
}

/** `onSent(n, failed)`: after each sendmmsg, how many left and how many the kernel refused. */
export function createSendBatcher(onSent?: (sent: number, failed: number) => void): SendBatcher {
  const pending = new Map<UdpSocket, Pending>();
  const pacer = createFlushPacer(flush);

  function flush() {
    pacer.begin(pending.size > 0);
    for (const p of pending.values()) {
      const messages = segmentedMessages(p.flat, p.count);
      const sent = p.socket.sendSegmented(messages, messages.length / 4);
      onSent?.(sent, p.count - sent);
    }
    pending.clear();
  }

  return {
    send(socket, data, port, host) {
      let p = pending.get(socket);
      if (p === undefined) pending.set(socket, p = { socket, flat: [], count: 0 });
      // The caller's buffer is reused after this call.
      p.flat.push(data.slice(), port, host);
      p.count++;
      pacer.request();
    },
    flush,
  };
}

/**
 * [data, port, host, ...] as messages for sendSegmented: a run of datagrams
 * to one destination that all have the first one's size (the last may be
 * shorter) is copied into one buffer; any other datagram is a message alone.
 */
export function segmentedMessages(flat: readonly (Uint8Array | number | string)[], count: number) {
  const out: (Uint8Array | number | string)[] = [];
  for (let i = 0; i < count;) {
    const first = flat[i * 3] as Uint8Array;
    const port = flat[i * 3 + 1] as number;
    const host = flat[i * 3 + 2] as string;
    let end = i + 1;
    let bytes = first.length;
    while (end < count && flat[end * 3 + 1] === port && flat[end * 3 + 2] === host) {
      const n = (flat[end * 3] as Uint8Array).length;
      if (!joinsSegmented(first.length, end - i, bytes, n)) break;
      bytes += n;
      end++;
      if (n < first.length) break; // a shorter one is the last of its message
    }
    if (end === i + 1) out.push(first, port, host, first.length);
    else {
      const joined = new Uint8Array(bytes);
      for (let at = 0, k = i; k < end; k++) {
        const d = flat[k * 3] as Uint8Array;
        joined.set(d, at);
        at += d.length;
      }
      out.push(joined, port, host, first.length);
    }
    i = end;
  }
  return out;
}
