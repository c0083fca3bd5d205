/**
 * Plain UDP datagrams leaving a program (connector → service, agent → local
 * client), gathered per socket for the rest of the current turn and sent with
 * one sendmmsg. A large QUIC packet carries many tunnelled datagrams; sent one
 * syscall each, they cost more than the whole QUIC packet did. The first
 * datagram of a turn schedules the send, so a lone datagram waits only for the
 * callback that produced it to return.
 */
import type { UdpSocket } from "../runtime/udp.ts";

/** Datagrams per sendmmsg at most (the rest go in the next call, in order). */
const MAX_BATCH = 64;

interface Pending {
  socket: UdpSocket;
  /** [data, port, host, data, port, host, ...] as sendMany takes it. */
  flat: (Uint8Array | number | string)[];
  count: number;
}

export interface SendBatcher {
  /** Queues a copy of `data` for `socket`; false when the socket is closed. */
  send(socket: UdpSocket, data: Uint8Array, port: number, host: string): void;
  /** Sends everything gathered now (also done by itself at the end of the turn). */
  flush(): void;
}

/** `onSent(n, failed)`: after each sendmmsg, how many left and how many the kernel refused. */
export function createSendBatcher(onSent?: (sent: number, failed: number) => void): SendBatcher {
  const pending = new Map<UdpSocket, Pending>();
  let scheduled = false;

  function flush() {
    scheduled = false;
    for (const p of pending.values()) {
      let offset = 0;
      while (offset < p.count) {
        const n = Math.min(MAX_BATCH, p.count - offset);
        const slice = offset === 0 && n === p.count ? p.flat : p.flat.slice(offset * 3, (offset + n) * 3);
        const sent = p.socket.sendMany(slice, n);
        onSent?.(sent, n - sent);
        offset += n;
      }
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
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    },
    flush,
  };
}
