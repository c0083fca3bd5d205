/**
 * DATAGRAMs waiting for one connection's congestion window, queued per
 * source and served fairly: deficit round robin over sources by bytes, and
 * round robin over each source's flows by packet. A source that floods fills
 * only its own queue and loses only its own excess, and a sparse source is
 * never behind more than one round of the others (issue 9: one tenant must
 * not hurt another). Plain data and functions, so it is tested on its own.
 */

/**
 * Most datagrams one flow may have waiting; beyond it the flow's newest are
 * dropped. Deep enough to ride out BBR's PROBE_RTT: every 10 s without a new
 * minimum RTT, quiche's BBR holds the window at 4 packets for 200 ms or more,
 * and on a busy link (RTT stretched by the CPU) that is a fraction of the
 * flow's rate. With 1024, a steady 25k/s flow lost 2-4 % of its datagrams in
 * each such dip (queue_full at the server, bench goodput row); with 4096 it
 * lost 0-0.4 %, and 50k/s lost 3 % instead of 4-5 %. At most about 5 MiB per
 * flow, and only while a window is short: a flow's own wait, never its
 * neighbours' (they are served in turn).
 */
export const MAX_FLOW_QUEUE = 4096;
/** Most datagrams waiting for one connection in all; beyond it the newest are dropped. */
export const MAX_QUEUED = 8192;
/** Bytes a source may send per round (one full-size packet and change). */
const QUANTUM = 1500;

interface FlowQueue {
  key: number;
  /** Served from `head` on; served slots are emptied, and compacted now and then. */
  items: (Uint8Array | undefined)[];
  head: number;
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
  /** Sources with something waiting, served in turn. */
  active: SourceQueue[];
  current: number;
  bySource: Map<number, SourceQueue>;
}

export function createFairQueue(): FairQueue {
  return { size: 0, active: [], current: 0, bySource: new Map() };
}

/** Queues a copy of `data`; false (dropped) when its flow or the whole queue is full. */
export function enqueue(q: FairQueue, source: number, flow: number, data: Uint8Array): boolean {
  if (q.size >= MAX_QUEUED) return false;
  let s = q.bySource.get(source);
  if (s === undefined) {
    s = { key: source, deficit: 0, flows: [], next: 0, byFlow: new Map() };
    q.bySource.set(source, s);
    q.active.push(s);
  }
  let f = s.byFlow.get(flow);
  if (f === undefined) {
    f = { key: flow, items: [], head: 0 };
    s.byFlow.set(flow, f);
    s.flows.push(f);
  }
  if (f.items.length - f.head >= MAX_FLOW_QUEUE) return false;
  f.items.push(data.slice());
  q.size++;
  return true;
}

/** Whether a datagram of `source`/`flow` would be queued now (checked before preparing one). */
export function hasRoom(q: FairQueue, source: number, flow: number): boolean {
  if (q.size >= MAX_QUEUED) return false;
  const f = q.bySource.get(source)?.byFlow.get(flow);
  return f === undefined || f.items.length - f.head < MAX_FLOW_QUEUE;
}

/** The next datagram in fair order, or undefined when nothing waits. */
export function dequeue(q: FairQueue): Uint8Array | undefined {
  while (q.size > 0) {
    if (q.current >= q.active.length) q.current = 0;
    const s = q.active[q.current]!;
    if (s.next >= s.flows.length) s.next = 0;
    const f = s.flows[s.next]!;
    const item = f.items[f.head]!;
    if (s.deficit < item.length) {
      // This source has used its share of the round: give it the next one and move on.
      s.deficit += QUANTUM;
      q.current++;
      continue;
    }
    s.deficit -= item.length;
    f.items[f.head] = undefined;
    f.head++;
    q.size--;
    if (f.head === f.items.length) {
      s.byFlow.delete(f.key);
      s.flows.splice(s.next, 1);
    } else {
      if (f.head > 64) {
        f.items = f.items.slice(f.head);
        f.head = 0;
      }
      s.next++;
    }
    if (s.flows.length === 0) {
      q.bySource.delete(s.key);
      q.active.splice(q.current, 1);
    }
    return item;
  }
  return undefined;
}

/** Forgets everything waiting (the connection closed). */
export function clear(q: FairQueue): void {
  q.size = 0;
  q.active.length = 0;
  q.current = 0;
  q.bySource.clear();
}
