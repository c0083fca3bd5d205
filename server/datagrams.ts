/**
 * The relay's hot path: every DATAGRAM from a peer, rewritten in place with
 * the other side's channel and flow and sent on (docs/protocol.md §3.2).
 * Nothing here allocates: the header is parsed into one reused object and
 * every counter is a cell found once.
 */
import {
  datagramChannel,
  type DatagramHeader,
  parseDatagram,
  PATH_PROBE_CHANNEL,
  writeDatagramHeader,
} from "../core/frame/mod.ts";
import { routeFromAgent, routeFromConnector } from "./relay.ts";
import type { ServerConn, ServerState } from "./state.ts";

/** The DATAGRAM handler of a server's connections. */
export function createDatagramRelay(state: ServerState): (conn: ServerConn, buf: Uint8Array) => void {
  const { relay, limits, metrics, dropped } = state;
  const header: DatagramHeader = { channel: 0, flow: 0, payloadLength: 0 };
  const relayedA2C = metrics.datagramsRelayed.child({ direction: "agent_to_connector" });
  const relayedC2A = metrics.datagramsRelayed.child({ direction: "connector_to_agent" });
  const bytesA2C = metrics.bytesRelayed.child({ direction: "agent_to_connector" });
  const bytesC2A = metrics.bytesRelayed.child({ direction: "connector_to_agent" });
  const flowsOpened = metrics.flowsOpened;

  return function onDatagram(conn: ServerConn, buf: Uint8Array) {
    const len = buf.length;
    // Channel 0 is never granted: it is the path probe (a link sizing its packets, ztna doctor),
    // sent back as it came, whatever its size, also before HELLO (a probe connection says none).
    if (datagramChannel(buf) === PATH_PROBE_CHANNEL) {
      if (!conn.sendDatagram(buf)) dropped("queue_full");
      return;
    }
    const peer = conn.context?.peer;
    if (peer == null) return dropped("before_hello");
    const error = parseDatagram(buf, len, header);
    if (error !== null) return dropped(error.kind === "oversized" ? "oversized" : "malformed");
    const now = Date.now();
    if (peer.role === "agent") {
      const flowsBefore = relay.flowCount;
      const flow = routeFromAgent(relay, peer, header.channel, header.flow, now, !state.draining, limits.flowsPerAgent);
      if (typeof flow === "string") return dropped(flow);
      if (relay.flowCount !== flowsBefore) {
        flowsOpened.inc();
        metrics.flowsActive.set(relay.flowCount);
      }
      writeDatagramHeader(buf, flow.connector.channel, flow.connectorFlow);
      // Fair turns at the connector's connection: per agent, then per flow.
      if (!flow.connector.peer.conn.sendDatagram(buf, peer.id, header.flow)) return dropped("queue_full");
      relayedA2C.inc();
      bytesA2C.inc(header.payloadLength);
      flow.traffic.datagramsToConnector++;
      flow.traffic.bytesToConnector += header.payloadLength;
    } else {
      const flow = routeFromConnector(peer, header.channel, header.flow, now);
      if (flow === undefined) return dropped("unknown_flow");
      writeDatagramHeader(buf, flow.agent.channel, flow.agentFlow);
      if (!flow.agent.peer.conn.sendDatagram(buf, peer.id, header.flow)) return dropped("queue_full");
      relayedC2A.inc();
      bytesC2A.inc(header.payloadLength);
      flow.traffic.datagramsToAgent++;
      flow.traffic.bytesToAgent += header.payloadLength;
    }
  };
}
