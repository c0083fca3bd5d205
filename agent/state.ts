/**
 * The agent's state, declared in one place: its local listeners and flows,
 * the server links (the active one, a candidate being brought up, old ones
 * lingering for late replies), what it told the world about each service, and
 * the counters of the hot paths. datagrams.ts moves datagrams, servers.ts
 * keeps the links; agent.ts wires them together.
 */
import { type Link, RESTART_RETRY_MS } from "../core/client/link.ts";
import type { DatagramHeader } from "../core/frame/mod.ts";
import type { Logger } from "../core/log.ts";
import { createRepeatLog, type RepeatLog } from "../core/log-repeats.ts";
import type { CounterCell } from "../core/metrics/cells.ts";
import { dropCounter, engineDropLabel } from "../core/metrics/drops.ts";
import { createSendBatcher, type SendBatcher } from "../core/net/send-batch.ts";
import type { Config } from "../core/quic/native.ts";
import { type SampledRates, sampleRates } from "../core/rates.ts";
import type { UdpSocket } from "../core/runtime/udp.ts";
import { type BufferViews, createBufferViews } from "../core/runtime/views.ts";
import { AGENT_DROP_REASONS, type AgentDropReason, type AgentMetrics } from "./metrics.ts";
import { type AgentTcp, createAgentTcp, type TcpRoute } from "./tcp.ts";
import type { AgentSettings } from "./types.ts";

/** A local UDP listener standing in for one remote service. */
export interface Listener {
  readonly service: string;
  readonly socket: UdpSocket;
  /** Flows by local client: host, then port. */
  readonly clients: Map<string, Map<number, AgentFlow>>;
}

/** One local client address of one listener: its own flow id on the wire. */
export interface AgentFlow {
  readonly id: number;
  readonly listener: Listener;
  readonly host: string;
  readonly port: number;
  lastSeen: number;
}

/** A service as opened on one link. */
export interface OpenService {
  /** The channel the server granted in its ACK. */
  readonly channel: number;
  /** Whether a connector serves it, as the server last said (SERVICE_STATUS). */
  up: boolean;
}

/** One server link and what it has opened. */
export interface LinkSlot {
  /** Index of the server in settings.servers. */
  readonly index: number;
  readonly link: Link;
  /** Services opened on this link, by name. */
  readonly open: Map<string, OpenService>;
  /** Service name by channel on this link, to route replies. */
  readonly channels: Map<number, string>;
  /** SERVICE_STATUS that arrived before the OPEN's ACK was processed. */
  readonly earlyStatus: Map<string, boolean>;
  /** Set when this slot is no longer used for new datagrams. */
  retired: boolean;
  /** When the link last became ready (ms since epoch). */
  readyAt: number;
}

export interface AgentState {
  // ---- fixed at start
  readonly settings: AgentSettings;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  /** The services mapped, each once, in the order of the maps. */
  readonly names: string[];
  /** How long a retired link stays open for replies already on their way. */
  readonly lingerMs: number;
  /** How often an OPEN refused as unknown_service is asked again. */
  readonly reopenMs: number;
  /** Dial interval inside a server's announced restart window. */
  readonly restartRetryMs: number;
  /** More than one server is configured: on GOAWAY or loss the agent moves to the next. */
  readonly multi: boolean;
  readonly startedAt: number;
  /** TLS configuration of links started from now on; replaced on reload. */
  quicConfig: Config;

  // ---- the local side
  /** Bound UDP listeners, in the order of the maps. */
  readonly listeners: Listener[];
  /** Every flow by its id. */
  readonly flowsById: Map<number, AgentFlow>;
  /** The next flow id to try (u32, never 0). */
  nextFlow: number;
  /** TCP listeners and the connections tunnelled from them (tcp.ts). */
  readonly tcp: AgentTcp;

  // ---- the servers
  /** The link new datagrams go to. */
  active: LinkSlot | null;
  /** A link being brought up to replace the active one (make before break). */
  candidate: LinkSlot | null;
  /** A candidate's link is being started (no second one is started meanwhile). */
  startingCandidate: boolean;
  /** Retired links, open a moment longer for replies in flight. */
  readonly lingering: Set<LinkSlot>;
  /** Each service's state as last published (gauge, counter, log), as the active link sees it. */
  readonly published: Map<string, boolean>;
  /** The NACK code of each service's last refused OPEN, while refused (for /status). */
  readonly refusedNow: Map<string, string>;
  /** Refused OPENs are asked again every `reopenMs`: logged once, then counted a minute. */
  readonly refusals: RepeatLog;

  // ---- going away
  /** Set by drain(): new datagrams and connections are refused, replies still delivered. */
  draining: boolean;
  /** Set by close(). */
  closed: boolean;
  /** When the last reply reached a local client (ms since epoch): a drain waits for replies to stop. */
  lastReply: number;

  // ---- the hot paths' scratch and counters
  /** The one reused buffer datagrams to the server are framed in. */
  readonly out: BufferViews;
  /** Parsed datagram header, filled in place for every reply. */
  readonly header: DatagramHeader;
  /** Replies to local clients, one sendmmsg per listener and turn (a large QUIC packet carries many). */
  readonly toClients: SendBatcher;
  /** Clients held back in the kernel while their flow's queue is full (agent/overload.ts). */
  readonly overload: {
    throttled: Map<Listener, AgentFlow[]>;
    timer: ReturnType<typeof setTimeout> | null;
    /** Each listener's kernel drop counter as last read. */
    kernelSeen: Map<Listener, number>;
  };
  readonly toServer: CounterCell;
  readonly fromServer: CounterCell;
  readonly bytesTo: CounterCell;
  readonly bytesFrom: CounterCell;
  readonly drop: { readonly [R in AgentDropReason]: CounterCell };
  /** Counts what the QUIC engine dropped, by its reason (`engineDropLabel`). */
  readonly engineDropped: (reason: string) => void;
  /** When an oversized datagram was last logged (at most one line per 5 s). */
  lastOversizeLog: number;
  /** Datagram and byte rates to and from the server, for /status (sampled every second). */
  readonly rates: SampledRates;
}

export function createAgentState(settings: AgentSettings, metrics: AgentMetrics, log: Logger): AgentState {
  const toServer = metrics.datagrams.child({ direction: "to_server" });
  const fromServer = metrics.datagrams.child({ direction: "from_server" });
  const bytesTo = metrics.bytes.child({ direction: "to_server" });
  const bytesFrom = metrics.bytes.child({ direction: "from_server" });
  const drops = dropCounter(metrics.drops, AGENT_DROP_REASONS);
  const state: AgentState = {
    settings,
    metrics,
    log,
    names: [...new Set(settings.maps.map((m) => m.service))],
    lingerMs: settings.lingerMs ?? 2_000,
    reopenMs: settings.reopenMs ?? 1_000,
    restartRetryMs: settings.restartRetryMs ?? RESTART_RETRY_MS,
    multi: settings.servers.length > 1,
    startedAt: Date.now(),
    quicConfig: settings.quicConfig,
    listeners: [],
    flowsById: new Map(),
    nextFlow: 1,
    // Connections are accepted only once it listens, after `state` is set.
    tcp: createAgentTcp({ route: (service) => tcpRoute(state, service), metrics, log }),
    active: null,
    candidate: null,
    startingCandidate: false,
    lingering: new Set(),
    published: new Map(),
    refusedNow: new Map(),
    refusals: createRepeatLog(log),
    draining: false,
    closed: false,
    lastReply: 0,
    out: createBufferViews(64 * 1024),
    header: { channel: 0, flow: 0, payloadLength: 0 },
    toClients: createSendBatcher(),
    overload: { throttled: new Map(), timer: null, kernelSeen: new Map() },
    toServer,
    fromServer,
    bytesTo,
    bytesFrom,
    drop: drops.cells,
    engineDropped: (reason) => drops.count(engineDropLabel(reason)),
    lastOversizeLog: 0,
    rates: sampleRates(() => [toServer.value, fromServer.value, bytesTo.value, bytesFrom.value]),
  };
  for (const name of state.names) {
    state.published.set(name, false);
    metrics.serviceUp.child({ service: name }).set(0);
  }
  return state;
}

/** New TCP connections use the active link, like new datagrams. */
function tcpRoute(s: AgentState, service: string): TcpRoute {
  if (s.draining || s.closed) return "draining";
  const active = s.active;
  const conn = active?.link.connection() ?? null;
  if (active === null || conn === null) return "not_connected";
  const open = active.open.get(service);
  if (open === undefined || !open.up) return "service_down";
  return { link: active.link, conn, channel: open.channel };
}
