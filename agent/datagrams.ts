/**
 * The agent's datagram paths. A local client's datagram is framed into the
 * one reused buffer with the service's channel and the client's flow id and
 * sent on the active link; a reply from any link still held goes back to
 * exactly the client whose flow it names.
 */
import { DATAGRAM_HEADER_LEN, MAX_TUNNEL_PAYLOAD, parseDatagram, writeDatagramHeader } from "../core/frame/mod.ts";
import { formatAddress } from "../core/net/address.ts";
import { throttle, THROTTLE_AT_WAITING } from "./overload.ts";
import type { AgentFlow, AgentState, LinkSlot, Listener } from "./state.ts";

/** A datagram from a local client of `listener`. */
export function onLocal(s: AgentState, listener: Listener, data: Uint8Array, port: number, host: string): void {
  const { drop, out } = s;
  if (data.length > MAX_TUNNEL_PAYLOAD) {
    drop.oversized.inc();
    const now = Date.now();
    if (now - s.lastOversizeLog > 5_000) {
      s.lastOversizeLog = now;
      s.log.warn("datagram_too_large", {
        service: listener.service,
        bytes: data.length,
        max: MAX_TUNNEL_PAYLOAD,
        client: formatAddress({ host, port }),
      });
    }
    return;
  }
  if (s.draining) return drop.draining.inc();
  const slot = s.active;
  const open = slot?.open.get(listener.service);
  if (slot === null || open === undefined || slot.link.state !== "ready") return drop.not_connected.inc();
  if (!open.up) return drop.service_down.inc();
  const flow = listener.clients.get(host)?.get(port) ?? newFlow(s, listener, host, port);
  // Overloaded: drop before any copying, and hold this client back in the kernel for a moment.
  if (!slot.link.canSendDatagram(flow.id)) {
    throttle(s, flow);
    return drop.queue_full.inc();
  }
  flow.lastSeen = Date.now();
  const buf = out.buffer;
  buf.set(data, DATAGRAM_HEADER_LEN);
  writeDatagramHeader(buf, open.channel, flow.id);
  if (!slot.link.sendDatagram(out.view(DATAGRAM_HEADER_LEN + data.length), flow.id)) return drop.queue_full.inc();
  s.toServer.inc();
  s.bytesTo.inc(data.length);
  // Half full already: hold the client back now, while the datagrams its
  // socket holds still fit the rest of its queue, not once they are dropped.
  if (slot.link.datagramsWaiting(flow.id) >= THROTTLE_AT_WAITING) throttle(s, flow);
}

/** A reply, accepted from any link this agent still holds (a retired one may carry late replies). */
export function onReply(s: AgentState, slot: LinkSlot, data: Uint8Array): void {
  const { header, drop } = s;
  const error = parseDatagram(data, data.length, header);
  if (error !== null) return drop.malformed.inc();
  const service = slot.channels.get(header.channel);
  const flow = s.flowsById.get(header.flow);
  if (service === undefined || flow === undefined || flow.listener.service !== service) {
    return drop.unknown_flow.inc();
  }
  flow.lastSeen = s.lastReply = Date.now();
  s.toClients.send(flow.listener.socket, data.subarray(DATAGRAM_HEADER_LEN), flow.port, flow.host);
  s.fromServer.inc();
  s.bytesFrom.inc(header.payloadLength);
}

/** A flow for a new local client: the next free u32 id, never 0. */
function newFlow(s: AgentState, listener: Listener, host: string, port: number): AgentFlow {
  let id = s.nextFlow;
  while (s.flowsById.has(id)) id = id === 0xffffffff ? 1 : id + 1;
  s.nextFlow = id === 0xffffffff ? 1 : id + 1;
  const flow: AgentFlow = { id, listener, host, port, lastSeen: Date.now() };
  s.flowsById.set(id, flow);
  let byPort = listener.clients.get(host);
  if (!byPort) listener.clients.set(host, byPort = new Map());
  byPort.set(port, flow);
  s.metrics.flowsOpened.inc();
  s.metrics.flowsActive.set(s.flowsById.size);
  return flow;
}

/** Forgets flows quiet since before `cutoff`. */
export function expireFlows(s: AgentState, cutoff: number): void {
  for (const flow of [...s.flowsById.values()]) {
    if (flow.lastSeen >= cutoff) continue;
    s.flowsById.delete(flow.id);
    flow.listener.clients.get(flow.host)?.delete(flow.port);
  }
  s.metrics.flowsActive.set(s.flowsById.size);
}
