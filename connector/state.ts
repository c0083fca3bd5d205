/**
 * The connector's state, declared in one place: the service it forwards to,
 * one slot per configured server (its link, registration and flows), and the
 * counters of the hot paths. flows.ts moves datagrams, servers.ts registers
 * with each server; connector.ts wires them together.
 */
import type { Link } from "../core/client/link.ts";
import type { DatagramHeader } from "../core/frame/mod.ts";
import type { Logger } from "../core/log.ts";
import { createRepeatLog, type RepeatLog } from "../core/log-repeats.ts";
import type { CounterCell } from "../core/metrics/cells.ts";
import { dropCounter, engineDropLabel } from "../core/metrics/drops.ts";
import type { Address } from "../core/net/address.ts";
import { createSendBatcher, type SendBatcher } from "../core/net/send-batch.ts";
import { type SampledRates, sampleRates } from "../core/rates.ts";
import type { UdpSocket } from "../core/runtime/udp.ts";
import { type BufferViews, createBufferViews } from "../core/runtime/views.ts";
import { CONNECTOR_DROP_REASONS, type ConnectorDropReason, type ConnectorMetrics } from "./metrics.ts";
import { createTcpForwarder, type TcpForwarder } from "./tcp.ts";
import type { ConnectorSettings } from "./types.ts";

/** One configured server: its link, our registration there, and the flows it sends us. */
export interface ServerSlot {
  readonly link: Link;
  /** The channel of our registration; meaningful while `registered`. */
  channel: number;
  /** REGISTER was acknowledged on the current connection. */
  registered: boolean;
  /** When the link went down (ms since epoch), to time re-registration; 0 once registered again. */
  downAt: number;
  /** When the current registration was accepted (ms since epoch), 0 while not registered. */
  registeredAt: number;
  /** Flows by the server's flow id; ids die with the connection. */
  readonly flows: Map<number, FlowSocket>;
}

/** One flow: a local UDP socket towards the service, so its replies come back to this flow. */
export interface FlowSocket {
  readonly server: ServerSlot;
  readonly flow: number;
  /** Null while the socket is still opening. */
  socket: UdpSocket | null;
  /** Payloads that arrived while the socket was still opening (at most BACKLOG_LIMIT); null once open. */
  backlog: Uint8Array[] | null;
  lastSeen: number;
  closed: boolean;
}

export interface ConnectorState {
  // ---- fixed at start
  readonly settings: ConnectorSettings;
  readonly metrics: ConnectorMetrics;
  readonly log: Logger;
  /** The service's address, resolved at start: datagrams go there, replies are taken only from exactly it. */
  readonly forward: Address;
  /** The wildcard address flow sockets bind to, in the family of `forward`. */
  readonly bindHost: string;
  readonly startedAt: number;

  // ---- servers and flows
  /** One slot per configured server, in the configured order. */
  readonly servers: ServerSlot[];
  /** Open flows over every server (the flows_active gauge). */
  flowCount: number;
  /** TCP connections to the service, one per stream a server opens (tcp.ts). */
  readonly tcp: TcpForwarder;

  // ---- going away
  /** Set by drain(): deregistered everywhere, finishing the flows in flight. */
  draining: boolean;
  /** Set by close(). */
  closed: boolean;

  // ---- the hot paths' scratch and counters
  /** The one reused buffer replies are framed in: never a fresh allocation per reply. */
  readonly reply: BufferViews;
  /** Parsed datagram header, filled in place for every datagram from a server. */
  readonly header: DatagramHeader;
  readonly toService: CounterCell;
  readonly fromService: CounterCell;
  readonly bytesTo: CounterCell;
  readonly bytesFrom: CounterCell;
  readonly drop: { readonly [R in ConnectorDropReason]: CounterCell };
  /** Counts what the QUIC engine dropped, by its reason (`engineDropLabel`). */
  readonly engineDropped: (reason: string) => void;
  /** Datagrams to the service, one sendmmsg per flow socket and turn (a large QUIC packet carries many). */
  readonly toServiceBatch: SendBatcher;
  /** Datagram and byte rates to and from the service, for /status (sampled every second). */
  readonly rates: SampledRates;
  /** Refused registrations are asked again at every reconnection: logged once, then counted a minute. */
  readonly refusals: RepeatLog;
}

export function createConnectorState(
  settings: ConnectorSettings,
  forward: Address,
  metrics: ConnectorMetrics,
  log: Logger,
): ConnectorState {
  const servers: ServerSlot[] = [];
  const toService = metrics.datagrams.child({ direction: "to_service" });
  const fromService = metrics.datagrams.child({ direction: "from_service" });
  const bytesTo = metrics.bytes.child({ direction: "to_service" });
  const bytesFrom = metrics.bytes.child({ direction: "from_service" });
  const drops = dropCounter(metrics.drops, CONNECTOR_DROP_REASONS);
  const drop = drops.cells;
  return {
    settings,
    metrics,
    log,
    forward,
    bindHost: forward.host.includes(":") ? "::" : "0.0.0.0",
    startedAt: Date.now(),
    servers,
    flowCount: 0,
    tcp: createTcpForwarder({
      forward,
      channelOf: (link) => {
        const s = servers.find((x) => x.link === link);
        return s?.registered ? s.channel : null;
      },
      metrics,
      log,
    }),
    draining: false,
    closed: false,
    reply: createBufferViews(64 * 1024),
    header: { channel: 0, flow: 0, payloadLength: 0 },
    toService,
    fromService,
    bytesTo,
    bytesFrom,
    drop,
    engineDropped: (reason) => drops.count(engineDropLabel(reason)),
    toServiceBatch: createSendBatcher((sent, failed) => {
      toService.inc(sent);
      if (failed > 0) drop.send_error.inc(failed);
    }),
    rates: sampleRates(() => [toService.value, fromService.value, bytesTo.value, bytesFrom.value]),
    refusals: createRepeatLog(log),
  };
}
