/**
 * Overload at the agent's listeners: a local client that sends faster than
 * the tunnel carries fills its flow's queue (its own share, served in fair
 * turns); once half of it waits, the client's address is dropped in the
 * kernel (core/runtime/socket-filter.ts) for a short spell, so its excess
 * costs no wakeup and no JavaScript, and the tunnel keeps the CPU it needs
 * to deliver at its peak. Kernel drops are read from the socket and counted
 * as drops{reason="kernel"}.
 */
import { MAX_FLOW_QUEUE } from "../core/quic/fair-queue.ts";
import { kernelDrops, MAX_FILTERED_SOURCES, setDroppedSources } from "../core/runtime/socket-filter.ts";
import type { AgentFlow, AgentState, Listener } from "./state.ts";

/** How long an overloaded client is dropped in the kernel before its flow is tried again. */
const HOLD_MS = 15;
/**
 * A flow with this many datagrams waiting for the window is held back in the
 * kernel, before its queue is full: what its socket already holds (up to
 * ~1,800 datagrams in a 4 MiB buffer) then still finds room, where at a full
 * queue each of them costs a callback only to be dropped. The queue still
 * holds far more than one hold drains, so the tunnel never runs dry.
 */
export const THROTTLE_AT_WAITING = MAX_FLOW_QUEUE / 2;

/** The flow's queue is half full (or full): drop its client in the kernel for a moment. */
export function throttle(s: AgentState, flow: AgentFlow): void {
  const o = s.overload;
  const l = flow.listener;
  let list = o.throttled.get(l);
  if (list === undefined) o.throttled.set(l, list = []);
  if (list.length >= MAX_FILTERED_SOURCES || list.some((f) => f === flow)) return;
  list.push(flow);
  if (!setDroppedSources(l.socket.fd, list)) {
    // No kernel filter here (not Linux/Bun): the JavaScript drop is all there is.
    list.pop();
    return;
  }
  o.timer ??= setTimeout(() => release(s), HOLD_MS);
}

/** Lets every throttled client through again; a still-flooding one is caught at its next full queue. */
function release(s: AgentState): void {
  const o = s.overload;
  o.timer = null;
  for (const [listener, list] of o.throttled) {
    if (list.length > 0) setDroppedSources(listener.socket.fd, []);
  }
  o.throttled.clear();
}

/** Adds what the kernel dropped at each listener since the last call to drops{reason="kernel"}. */
export function countKernelDrops(s: AgentState, listeners: readonly Listener[]): void {
  for (const l of listeners) {
    const now = kernelDrops(l.socket.fd);
    if (now === null) continue;
    const before = s.overload.kernelSeen.get(l) ?? now;
    s.overload.kernelSeen.set(l, now);
    // The counter is a u32 that may wrap.
    s.drop.kernel.inc((now - before) >>> 0);
  }
}

export function stopOverload(s: AgentState): void {
  if (s.overload.timer) clearTimeout(s.overload.timer);
  release(s);
}
