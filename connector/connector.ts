/**
 * The App Connector: registers one service with every configured server and
 * forwards tunnelled datagrams to `forward_addr`, one local UDP socket per
 * flow. Replies are accepted only from exactly `forward_addr` (address and
 * port) and are framed into one reused 64 KiB buffer.
 *
 * Its state is declared in state.ts; servers.ts registers with each server,
 * flows.ts moves datagrams, tcp.ts splices TCP streams. This file wires them
 * together and offers the running connector (types.ts) to its caller.
 */
import { type ConnectorStatusDocument, fourRates, linkStatus, processFacts } from "../core/client/status.ts";
import { CloseCode } from "../core/frame/mod.ts";
import type { Logger } from "../core/log.ts";
import { type Address, formatAddress } from "../core/net/address.ts";
import { resolveAddress } from "../core/runtime/dns.ts";
import { COMMIT, VERSION } from "../core/version.ts";
import { closeServerFlows, expireFlows } from "./flows.ts";
import type { ConnectorMetrics } from "./metrics.ts";
import { deregisterEverywhere, startServerSlot } from "./servers.ts";
import { type ConnectorState, createConnectorState } from "./state.ts";
import type { Connector, ConnectorSettings } from "./types.ts";

export type { Connector, ConnectorSettings } from "./types.ts";

export async function startConnector(
  settings: ConnectorSettings,
  metrics: ConnectorMetrics,
  log: Logger,
): Promise<Connector> {
  const s = createConnectorState(settings, await resolveAddress(settings.forward), metrics, log);
  for (const address of settings.servers) await startServerSlot(s, address);

  const sweeper = setInterval(() => {
    expireFlows(s, Date.now() - settings.flowIdleMs);
    for (const server of s.servers) {
      metrics.serverRtt.child({ server: server.link.label }).set(server.link.rttSeconds());
    }
  }, Math.max(100, Math.min(5_000, settings.flowIdleMs / 4)));

  async function close() {
    if (s.closed) return;
    s.closed = true;
    clearInterval(sweeper);
    s.rates.stop();
    s.refusals.close();
    for (const server of s.servers) closeServerFlows(s, server);
    await s.tcp.close();
    await Promise.all(s.servers.map((server) => server.link.close(CloseCode.NO_ERROR, "connector shutting down")));
  }

  log.info("connector_started", {
    service: settings.service,
    forward: formatAddress(s.forward),
    servers: settings.servers.map(formatAddress).join(","),
  });

  return {
    forward: s.forward,
    ready() {
      if (s.closed) return { ready: false, reason: "closed" };
      if (s.draining) return { ready: false, reason: "draining" };
      if (s.servers.some((server) => server.registered)) return { ready: true };
      return { ready: false, reason: "not registered with any server" };
    },
    registeredWith: () => s.servers.filter((server) => server.registered).map((server) => server.link.label),
    reloadTls(config) {
      for (const server of s.servers) server.link.reconfigure(config);
    },
    status: () => statusOf(s),
    flowSockets() {
      const out: Address[] = [];
      for (const server of s.servers) {
        for (const f of server.flows.values()) if (f.socket) out.push(f.socket.address);
      }
      return out;
    },
    async drain() {
      if (s.draining || s.closed) return;
      s.draining = true;
      log.info("draining", { grace_ms: settings.graceMs });
      await deregisterEverywhere(s);
      await quietFlows(s);
      await close();
    },
    close,
  };
}

/** Finishes in-flight requests: waits until every flow has been quiet for a moment, or the grace period ends. */
async function quietFlows(s: ConnectorState): Promise<void> {
  const graceMs = s.settings.graceMs;
  const deadline = Date.now() + graceMs;
  const quietMs = Math.min(1_000, graceMs / 4);
  for (;;) {
    const now = Date.now();
    let busy = s.tcp.active > 0;
    for (const server of s.servers) {
      for (const f of server.flows.values()) if (now - f.lastSeen < quietMs) busy = true;
    }
    if (!busy || now >= deadline) break;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The connector's `GET /status` document. */
function statusOf(s: ConnectorState): ConnectorStatusDocument {
  const r = fourRates(s.rates);
  return {
    component: "connector",
    ...processFacts(`${VERSION} (${COMMIT})`, s.startedAt),
    draining: s.draining,
    service: s.settings.service,
    forward: formatAddress(s.forward),
    servers: s.servers.map((server) => ({
      ...linkStatus(server.link),
      registered: server.registered,
      channel: server.registered ? server.channel : null,
      since: server.registeredAt > 0 ? new Date(server.registeredAt).toISOString() : null,
      flows: server.flows.size,
    })),
    flows: s.flowCount,
    tcpConnections: s.tcp.active,
    rates: {
      datagramsPerSecond: { toService: r.d0, fromService: r.d1 },
      bytesPerSecond: { toService: r.b0, fromService: r.b1 },
      windowSeconds: r.windowSeconds,
    },
  };
}
