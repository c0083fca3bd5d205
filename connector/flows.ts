/**
 * The connector's datagram paths. A datagram from a server goes to the
 * service from the flow's own local socket (opened on the flow's first
 * datagram); a reply on that socket, accepted only from exactly the forward
 * address, is framed into the one reused buffer and sent back on the flow.
 */
import { DATAGRAM_HEADER_LEN, MAX_TUNNEL_PAYLOAD, parseDatagram, writeDatagramHeader } from "../core/frame/mod.ts";
import { openUdp } from "../core/runtime/udp.ts";
import type { ConnectorState, FlowSocket, ServerSlot } from "./state.ts";

/** Payloads kept per flow while its socket opens; more are dropped as queue_full. */
const BACKLOG_LIMIT = 64;

/** A datagram from a server: to the service, from the flow's socket. */
export function handleTunnelDatagram(s: ConnectorState, server: ServerSlot, data: Uint8Array): void {
  const { header, drop } = s;
  const error = parseDatagram(data, data.length, header);
  if (error !== null) {
    (error.kind === "oversized" ? drop.oversized : drop.malformed).inc();
    return;
  }
  if (!server.registered || header.channel !== server.channel) {
    drop.unknown_channel.inc();
    return;
  }
  const flowId = header.flow;
  const flow = server.flows.get(flowId) ?? openFlow(s, server, flowId);
  flow.lastSeen = Date.now();
  const payload = data.subarray(DATAGRAM_HEADER_LEN);
  if (flow.socket !== null) return forwardPayload(s, flow, payload);
  if (flow.backlog!.length >= BACKLOG_LIMIT) {
    drop.queue_full.inc();
    return;
  }
  flow.backlog!.push(payload.slice());
}

/** A new flow: its socket opens in the background, payloads wait in the backlog meanwhile. */
function openFlow(s: ConnectorState, server: ServerSlot, flowId: number): FlowSocket {
  const { forward, drop, reply, fromService, bytesFrom, metrics, log } = s;
  const flow: FlowSocket = { server, flow: flowId, socket: null, backlog: [], lastSeen: Date.now(), closed: false };
  server.flows.set(flowId, flow);
  s.flowCount++;
  metrics.flowsOpened.inc();
  metrics.flowsActive.set(s.flowCount);
  openUdp({
    host: s.bindHost,
    port: 0,
    onPacket(data, port, host) {
      // Exact source check: address AND port must be forward_addr's.
      if (port !== forward.port || host !== forward.host) {
        drop.source_mismatch.inc();
        return;
      }
      if (data.length > MAX_TUNNEL_PAYLOAD) {
        drop.oversized.inc();
        return;
      }
      flow.lastSeen = Date.now();
      const buf = reply.buffer;
      buf.set(data, DATAGRAM_HEADER_LEN);
      writeDatagramHeader(buf, server.channel, flowId);
      if (!server.link.sendDatagram(reply.view(DATAGRAM_HEADER_LEN + data.length), flowId)) {
        drop.queue_full.inc();
        return;
      }
      fromService.inc();
      bytesFrom.inc(data.length);
    },
    onError(error) {
      // ICMP port unreachable from a service that is down: count, never crash.
      drop.send_error.inc();
      log.debug("flow_socket_error", { flow: flowId, error: error.message });
    },
  }).then(
    (socket) => {
      if (flow.closed) return socket.close();
      flow.socket = socket;
      const backlog = flow.backlog!;
      flow.backlog = null;
      for (const payload of backlog) forwardPayload(s, flow, payload);
    },
    (error) => {
      log.warn("flow_socket_failed", { error: (error as Error).message });
      drop.send_error.inc(flow.backlog?.length ?? 0);
      closeFlow(s, flow);
    },
  );
  return flow;
}

/** To the service from the flow's socket; counted as sent (or send_error) when the batch leaves. */
function forwardPayload(s: ConnectorState, flow: FlowSocket, payload: Uint8Array): void {
  s.toServiceBatch.send(flow.socket!, payload, s.forward.port, s.forward.host);
  s.bytesTo.inc(payload.length);
}

export function closeFlow(s: ConnectorState, flow: FlowSocket): void {
  if (flow.closed) return;
  flow.closed = true;
  // Under load the batcher may still hold datagrams for this socket (flush-pacer.ts): out first.
  s.toServiceBatch.flush();
  flow.socket?.close();
  flow.server.flows.delete(flow.flow);
  s.flowCount--;
  s.metrics.flowsActive.set(s.flowCount);
}

/** Every flow of one server: the server's flow ids die with its connection. */
export function closeServerFlows(s: ConnectorState, server: ServerSlot): void {
  for (const flow of [...server.flows.values()]) closeFlow(s, flow);
}

/** Closes flows quiet since before `cutoff`, counted as expired. */
export function expireFlows(s: ConnectorState, cutoff: number): void {
  for (const server of s.servers) {
    for (const flow of [...server.flows.values()]) {
      if (flow.lastSeen < cutoff) {
        closeFlow(s, flow);
        s.metrics.flowsExpired.inc();
      }
    }
  }
}
