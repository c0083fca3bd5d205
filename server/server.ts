/**
 * The Intermediate Server: accepts agents and connectors over QUIC, registers
 * connectors per service, tells each peer its observed address, and relays
 * DATAGRAMs per flow between them.
 *
 * Its state is declared in state.ts; control.ts has a handler per control
 * message, sessions.ts a connection's start and end, datagrams.ts the relay's
 * hot path, streams.ts the TCP splice. This file wires them to one QUIC
 * endpoint and offers the running server (types.ts) to its caller.
 */
import { CloseCode } from "../core/frame/mod.ts";
import type { Logger } from "../core/log.ts";
import { formatAddress } from "../core/net/address.ts";
import { engineDropLabel } from "../core/metrics/drops.ts";
import { serverQuicConfig } from "../core/quic/config.ts";
import { createEndpoint } from "../core/quic/endpoint.ts";
import type { Config } from "../core/quic/native.ts";
import { COMMIT, VERSION } from "../core/version.ts";
import { goaway, handleControlBytes, send } from "./control.ts";
import { createDatagramRelay } from "./datagrams.ts";
import type { ServerMetrics } from "./metrics.ts";
import { expireFlows } from "./relay.ts";
import { closeSession, openSession } from "./sessions.ts";
import { createServerState, type ServerPeer, type ServerState, type Session, updateGauges } from "./state.ts";
import { buildStatus } from "./status.ts";
import { createTrafficSampler, type TrafficSampler } from "./traffic.ts";
import type { Server, ServerSettings, ServerTls } from "./types.ts";

export type { RestartPlan, Server, ServerLimits, ServerSettings, ServerTls } from "./types.ts";

/** Least time between GOAWAY and closing, so GOAWAY reaches the peers first. */
const GOAWAY_SETTLE_MS = 250;

export async function startServer(
  settings: ServerSettings,
  metrics: ServerMetrics,
  log: Logger,
): Promise<Server> {
  const state = createServerState(settings, metrics, log);
  const { limits, streams } = state;
  const endpoint = await createEndpoint<Session>({
    bind: settings.listen,
    server: true,
    retry: true,
    retryKey: settings.retryKey,
    retryAbove: limits.retryAbove,
    keepaliveMs: settings.keepaliveMs,
    maxUdpPayload: state.packetCap,
    maxUnprovenPerAddress: limits.connectionsPerAddress,
    maxHandshakes: limits.handshakes,
    maxDatagramsPerSecond: limits.datagramsPerSecond,
    config: quicConfig(state, settings),
    statelessResetKey: settings.resetKey,
    onDrop: (reason) => state.dropped(engineDropLabel(reason)),
    onSocketError: (error) => log.debug("socket_error", { error: error.message }),
    handlers: {
      onEstablished: (conn) => openSession(state, conn),
      onStreamData(conn, streamId, data, fin) {
        const session = conn.context;
        if (!session) return;
        if (streamId === 0) handleControlBytes(state, session, data);
        else streams.onData(conn, streamId, data, fin);
      },
      onStreamDrained(conn, streamId) {
        if (streamId !== 0) streams.onDrained(conn, streamId);
      },
      onStreamReset(conn, streamId, code, how) {
        if (streamId !== 0) streams.onReset(conn, streamId, code, how);
      },
      onDatagram: createDatagramRelay(state),
      onClosed: (conn, info) => closeSession(state, conn, info),
    },
  });

  // Datagram and byte rates for /status, from a sample a second.
  const traffic = createTrafficSampler(state.relay);
  const timers = startTimers(state, traffic);
  log.info("listening", { addr: formatAddress(endpoint.address) });

  const close = async () => {
    if (state.closed) return;
    state.closed = true;
    timers.stop();
    state.refusals.close();
    await endpoint.close(CloseCode.SHUTDOWN, "server shutting down");
  };

  return {
    address: endpoint.address,
    get draining() {
      return state.draining;
    },
    ready: () =>
      state.closed
        ? { ready: false, reason: "closed" }
        : state.draining
        ? { ready: false, reason: "draining" }
        : { ready: true },
    drain: (alternate = "") => drain(state, alternate, close),
    close,
    flowCount: () => state.relay.flowCount,
    status: () =>
      traffic.addRates(
        buildStatus({
          relay: state.relay,
          peers: state.peers,
          // Every peer said HELLO on an established connection, which has its session.
          factsOf: (peer) => peer.conn.context!.facts,
          version: `${VERSION} (${COMMIT})`,
          startedAt: state.startedAt,
          now: Date.now(),
          draining: state.draining,
          restart: state.restart,
        }),
      ),
    reloadTls(tls) {
      endpoint.reconfigure(quicConfig(state, tls));
      log.info("tls_reloaded", { mtls: tls.clientCaPem !== undefined });
    },
  };
}

/** The transport configuration for certificates `tls`, offering every protocol version this server speaks. */
function quicConfig(state: ServerState, tls: ServerTls): Config {
  // Every version we speak: a client picks the newest it also speaks (docs/protocol.md §1).
  return serverQuicConfig({
    alpn: state.alpn,
    certPem: tls.certPem,
    keyPem: tls.keyPem,
    clientCaPem: tls.clientCaPem,
    idleTimeoutMs: state.settings.idleTimeoutMs,
    maxUdpPayload: state.packetCap,
  });
}

/** A sample of the traffic rates a second, and idle flows expired a few times per flow-idle period. */
function startTimers(state: ServerState, traffic: TrafficSampler): { stop(): void } {
  const flowIdleMs = state.settings.flowIdleMs;
  traffic.sample();
  const sampler = setInterval(() => traffic.sample(), 1_000);
  const sweeper = setInterval(() => {
    const expired = expireFlows(state.relay, state.peers, Date.now() - flowIdleMs);
    if (expired > 0) state.log.debug("flows_expired", { count: expired });
    updateGauges(state);
  }, Math.max(250, Math.min(5_000, flowIdleMs / 4)));
  return {
    stop() {
      clearInterval(sweeper);
      clearInterval(sampler);
    },
  };
}

/** Graceful: GOAWAY to everyone, relay existing flows and streams for the grace period, then close. */
async function drain(state: ServerState, alternate: string, close: () => Promise<void>): Promise<void> {
  const { settings, relay, peers, restart } = state;
  if (state.draining || state.closed) return;
  state.draining = true;
  state.alternate = alternate;
  state.metrics.draining.set(1);
  state.log.info("draining", {
    grace_ms: settings.graceMs,
    flows: relay.flowCount,
    peers: peers.size,
    restart_try_for_ms: restart.tryForMs,
    restart_reconnect_in_ms: restart.reconnectInMs,
  });
  let maxRttMs = 0;
  for (const peer of peers) {
    send(peer.conn, goaway(state));
    maxRttMs = Math.max(maxRttMs, peer.conn.rttSeconds() * 1000);
  }
  const started = Date.now();
  const deadline = started + settings.graceMs;
  // Closing discards stream data not yet sent, and a lost packet is only
  // resent after a PTO: give GOAWAY a few round trips to arrive, or a
  // client would see a bare close and take it for an unplanned loss.
  const announced = started + Math.min(settings.graceMs, Math.max(GOAWAY_SETTLE_MS, 4 * maxRttMs + 100));
  while (Date.now() < deadline) {
    const busy = (relay.flowCount > 0 || state.streams.active > 0) && hasAgents(peers);
    if (!busy && Date.now() >= announced) break;
    await new Promise((r) => setTimeout(r, busy ? 50 : 10));
  }
  state.log.info("drained", { flows_left: relay.flowCount });
  await close();
}

function hasAgents(peers: Set<ServerPeer>): boolean {
  for (const p of peers) if (p.role === "agent") return true;
  return false;
}
