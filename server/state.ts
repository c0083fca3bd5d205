/**
 * The server's state, declared in one place: what it was started with, who
 * is connected and what they registered and opened, and whether it is going
 * away. The handlers (control.ts, sessions.ts, datagrams.ts) read and change
 * it; server.ts wires them to the QUIC endpoint.
 */
import { alpnFor, type ControlReader, PROTOCOL_VERSIONS } from "../core/frame/mod.ts";
import type { Logger } from "../core/log.ts";
import { createRepeatLog, type RepeatLog } from "../core/log-repeats.ts";
import { dropCounter } from "../core/metrics/drops.ts";
import { MAX_QUIC_UDP_PAYLOAD } from "../core/quic/config.ts";
import type { QuicConnection } from "../core/quic/types.ts";
import type { ServerMetrics } from "./metrics.ts";
import { createRelay, type Peer, type Relay } from "./relay.ts";
import type { PeerFacts } from "./status.ts";
import { createStreamRelay, type StreamRelay } from "./streams.ts";
import { DEFAULT_LIMITS, type RestartPlan, type ServerLimits, type ServerSettings } from "./types.ts";

/** A connection to the server, with its session hung on it once established. */
export type ServerConn = QuicConnection<Session>;
/** A peer as the relay tables hold it: its role, channels and flows. */
export type ServerPeer = Peer<ServerConn>;

/** One established connection, from the handshake to its close. */
export interface Session {
  readonly conn: ServerConn;
  /** Protocol version agreed by ALPN: the layout of every control message on this connection. */
  readonly version: number;
  /** Set by HELLO; until then only HELLO is accepted, and datagrams are dropped. */
  peer: ServerPeer | null;
  /** Reassembles control messages from stream 0 (at most limits.controlMessage bytes each). */
  readonly reader: ControlReader;
  /** Closes the connection if HELLO does not come within limits.helloTimeoutMs; null once it came. */
  helloTimer: ReturnType<typeof setTimeout> | null;
  /** Services this connection registered, against limits.registrationsPerConnection. */
  registrations: number;
  /** Who the peer is, for /status: its address, certificate identity, build, registration times. */
  readonly facts: PeerFacts;
}

export interface ServerState {
  // ---- fixed at start
  readonly settings: ServerSettings;
  /** The abuse limits in force: settings.limits over DEFAULT_LIMITS. */
  readonly limits: ServerLimits;
  /** What GOAWAY announces on a drain: settings.restart, else reconnect at once and try for 60 s. */
  readonly restart: RestartPlan;
  /** ALPN identifiers offered, one per protocol version spoken; a client picks the newest it also speaks. */
  readonly alpn: string[];
  /** Largest UDP payload sent or accepted; each connection uses what its client advertises (probed). */
  readonly packetCap: number;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  /** When the server started (ms since epoch), for /status. */
  readonly startedAt: number;

  // ---- who is connected, and what they registered and opened
  /** Services with their connectors and agents, the channels granted, and the flow table (relay.ts). */
  readonly relay: Relay<ServerConn>;
  /** Every peer that said HELLO, agents and connectors. */
  readonly peers: Set<ServerPeer>;
  /** The id the next peer to say HELLO gets. */
  nextPeerId: number;
  /** TCP streams spliced between agents and connectors (streams.ts). */
  readonly streams: StreamRelay;

  // ---- going away
  /** Set by drain(): GOAWAY sent to every peer, no new registrations or flows. */
  draining: boolean;
  /** Set by close(): the endpoint is closing or closed. */
  closed: boolean;
  /** The other server GOAWAY names while draining (host:port, '' for none). */
  alternate: string;

  // ---- counting and logging
  /** Counts a dropped datagram or packet by reason (ztna_server_drops_total). */
  readonly dropped: (reason: string) => void;
  /** What clients repeat (refused requests, failed handshakes): logged once, then counted a minute. */
  readonly refusals: RepeatLog;
}

export function createServerState(settings: ServerSettings, metrics: ServerMetrics, log: Logger): ServerState {
  const relay = createRelay<ServerConn>();
  const state: ServerState = {
    settings,
    limits: { ...DEFAULT_LIMITS, ...settings.limits },
    restart: settings.restart ?? { reconnectInMs: 0, tryForMs: 60_000 },
    alpn: alpnFor(settings.versions ?? PROTOCOL_VERSIONS),
    packetCap: settings.maxUdpPayload ?? MAX_QUIC_UDP_PAYLOAD,
    metrics,
    log,
    startedAt: Date.now(),
    relay,
    peers: new Set(),
    nextPeerId: 1,
    streams: createStreamRelay({
      relay,
      metrics,
      log,
      peerOf: (conn: ServerConn) => conn.context?.peer ?? null,
      draining: () => state.draining,
    }),
    draining: false,
    closed: false,
    alternate: "",
    // Reasons come from the relay and the engine as data: cells are made on first use.
    dropped: dropCounter(metrics.drops, []).count,
    refusals: createRepeatLog(log),
  };
  return state;
}

/** Services with a live connector, and flows relayed, as gauges. */
export function updateGauges(state: ServerState): void {
  state.metrics.flowsActive.set(state.relay.flowCount);
  let up = 0;
  for (const s of state.relay.services.values()) if (s.connectors.some((b) => !b.draining)) up++;
  state.metrics.servicesRegistered.set(up);
}
