/**
 * DATAGRAMs waiting for one connection's congestion window, queued per
 * source and served fairly: deficit round robin over sources by bytes, and
 * round robin over each source's flows by packet. A source that floods fills
 * only its own queue and loses only its own excess, and a sparse source is
 * never behind more than one round of the others (issue 9: one tenant must
 * not hurt another). Plain data and functions, so it is tested on its own.
 */

import { createRing, type DatagramRing, peekLength, push, recordBytes, shift } from "./datagram-ring.ts";

/**
 * Most datagrams one flow may have waiting; beyond it the flow's newest are
 * dropped. Deep enough to ride out BBR's PROBE_RTT: every 10 s without a new
 * minimum RTT, quiche's BBR holds the window at 4 packets for 200 ms or more,
 * and on a busy link (RTT stretched by the CPU) that is a fraction of the
 * flow's rate. With 1024, a steady 25k/s flow lost 2-4 % of its datagrams in
 * each such dip (queue_full at the server, bench goodput row); with 4096 it
 * lost 0-0.4 %, and 50k/s lost 3 % instead of 4-5 %. At most about 5 MiB per
 * flow, and only while a window is short: a flow's own wait, never its
 * neighbours' (they are served in turn). Each flow's datagrams are copied
 * into one byte ring (datagram-ring.ts), not one allocation each.
 */
export const MAX_FLOW_QUEUE = 4096;
/** Most datagrams waiting for one connection in all; beyond it the newest are dropped. */
export const MAX_QUEUED = 8192;
/** Bytes a source may send per round (one full-size packet and change). */
const QUANTUM = 1500;
/**
 * Rings of emptied flows kept for the next flow to fill. Under a flood a
 * flow's queue empties and fills again many times a second; growing a fresh
 * ring each time (32 KiB doubling to 5 MiB) left so much garbage that peak
 * RSS rose 12-44 MiB above copies per datagram. A queue that stays empty
 * goes with its spares (idleSinceLastLook).
 */
const SPARE_RINGS = 2;

interface FlowQueue {
  key: number;
  ring: DatagramRing;
}

interface SourceQueue {
  key: number;
  deficit: number;
  /** Flows with something waiting, served in turn. */
  flows: FlowQueue[];
  next: number;
  byFlow: Map<number, FlowQueue>;
}

export interface FairQueue {
  /** Datagrams waiting. */
  size: number;
  /** Byte arrays of emptied flows' rings, for new flows. */
  spare: Uint8Array[];
  /** Something was offered (queued or refused) since idleSinceLastLook last looked. */
  used: boolean;
  /** Sources with something waiting, served in turn. */
  active: SourceQueue[];
  current: number;
  bySource: Map<number, SourceQueue>;
}

export function createFairQueue(): FairQueue {
  return { size: 0, spare: [], used: false, active: [], current: 0, bySource: new Map() };
}

/** Queues a copy of `data`; false (dropped) when its flow or the whole queue is full. */
export function enqueue(q: FairQueue, source: number, flow: number, data: Uint8Array): boolean {
  q.used = true;
  if (q.size >= MAX_QUEUED) return false;
  let s = q.bySource.get(source);
  if (s === undefined) {
    s = { key: source, deficit: 0, flows: [], next: 0, byFlow: new Map() };
    q.bySource.set(source, s);
    q.active.push(s);
  }
  let f = s.byFlow.get(flow);
  if (f === undefined) {
    f = { key: flow, ring: createRing(q.spare.pop()) };
    s.byFlow.set(flow, f);
    s.flows.push(f);
  }
  // Grown at most to MAX_FLOW_QUEUE records of this size: the count is the limit.
  if (f.ring.count >= MAX_FLOW_QUEUE || !push(f.ring, data, MAX_FLOW_QUEUE * recordBytes(data.length))) {
    if (f.ring.count === 0) forgetFlow(q, s, s.flows.length - 1, q.active.length - 1); // it was new
    return false;
  }
  q.size++;
  return true;
}

/** How many datagrams of `source`/`flow` wait now. */
export function waitingOf(q: FairQueue, source: number, flow: number): number {
  return q.bySource.get(source)?.byFlow.get(flow)?.ring.count ?? 0;
}

/** Whether a datagram of `source`/`flow` would be queued now (checked before preparing one). */
export function hasRoom(q: FairQueue, source: number, flow: number): boolean {
  return q.size < MAX_QUEUED && waitingOf(q, source, flow) < MAX_FLOW_QUEUE;
}

/**
 * The next datagram in fair order, or undefined when nothing waits. A view
 * into its flow's ring: valid until the next enqueue (hand it on at once).
 */
export function dequeue(q: FairQueue): Uint8Array | undefined {
  while (q.size > 0) {
    if (q.current >= q.active.length) q.current = 0;
    const s = q.active[q.current]!;
    if (s.next >= s.flows.length) s.next = 0;
    const f = s.flows[s.next]!;
    const length = peekLength(f.ring);
    if (s.deficit < length) {
      // This source has used its share of the round: give it the next one and move on.
      s.deficit += QUANTUM;
      q.current++;
      continue;
    }
    s.deficit -= length;
    const item = shift(f.ring)!;
    q.size--;
    if (f.ring.count === 0) forgetFlow(q, s, s.next, q.current);
    else s.next++;
    return item;
  }
  return undefined;
}

/**
 * A flow (at `flowIndex` of its source, which is at `sourceIndex` of the
 * active ones) has nothing left: its ring goes to the spares while there is
 * room for it, the flow goes, and so does its source if that was its last flow (the next
 * source moves into its turn).
 */
function forgetFlow(q: FairQueue, s: SourceQueue, flowIndex: number, sourceIndex: number): void {
  const f = s.flows[flowIndex]!;
  if (q.spare.length < SPARE_RINGS) q.spare.push(f.ring.bytes);
  s.byFlow.delete(f.key);
  s.flows.splice(flowIndex, 1);
  if (s.flows.length === 0) {
    q.bySource.delete(s.key);
    q.active.splice(sourceIndex, 1);
  }
}

/**
 * Asked now and then (the endpoint's keepalive tick): true when nothing has
 * been queued since the last time and nothing waits, so the owner may drop the
 * queue and the rings it keeps.
 */
export function idleSinceLastLook(q: FairQueue): boolean {
  const idle = q.size === 0 && !q.used;
  q.used = false;
  return idle;
}

/** Forgets everything waiting (the connection closed). */
export function clear(q: FairQueue): void {
  q.size = 0;
  q.active.length = 0;
  q.current = 0;
  q.bySource.clear();
}
