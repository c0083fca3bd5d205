/**
 * A client's link to one server: dials, says HELLO, keeps the connection
 * alive, and reconnects when it drops. Requests (REGISTER, OPEN, DEREGISTER)
 * travel on the reliable control stream and are answered by ACK/NACK with the
 * same request id: no retry loop of our own.
 *
 * Its state is declared in link-state.ts; link-control.ts handles the
 * control stream, link-dial.ts dials and decides when to dial again (planned
 * restarts at a short interval, other losses with backoff). This file wires
 * them to one QUIC endpoint and offers the Link (link-types.ts) to its owner.
 */
import { alpnFor, CloseCode, PROTOCOL_VERSIONS, type Role } from "../frame/mod.ts";
import type { Logger } from "../log.ts";
import type { Address } from "../net/address.ts";
import { createEndpoint } from "../quic/endpoint.ts";
import { handleStreamData, sayHello, sendRequest } from "./link-control.ts";
import { connectionClosed, runLink, socketError } from "./link-dial.ts";
import { createLinkInternals } from "./link-state.ts";
import { MAX_AUTO_UDP_PAYLOAD } from "./path-probe.ts";
import type { Link, LinkEvents, LinkSettings } from "./link-types.ts";

export {
  type Link,
  LINK_STATE_VALUE,
  type LinkEvents,
  type LinkSettings,
  type LinkState,
  type RequestBody,
  type RequestResult,
  RESTART_RETRY_MS,
} from "./link-types.ts";

/** What every client program configures for its links, whichever server they go to. */
export type ClientLinkSettings =
  & Pick<
    LinkSettings,
    "quicConfig" | "keepaliveMs" | "connectTimeoutMs" | "maxUdpPayload" | "backoff" | "restartRetryMs"
  >
  & { serverName?: string };

/** The settings of a link to `server` from a client program's settings. */
export function linkSettingsFor(
  program: ClientLinkSettings,
  server: Address,
  role: Role,
  name: string,
  log: Logger,
): LinkSettings {
  return {
    server,
    serverName: program.serverName ?? server.host,
    role,
    name,
    quicConfig: program.quicConfig,
    keepaliveMs: program.keepaliveMs,
    connectTimeoutMs: program.connectTimeoutMs,
    maxUdpPayload: program.maxUdpPayload,
    backoff: program.backoff,
    restartRetryMs: program.restartRetryMs,
    log,
  };
}

export async function startLink(settings: LinkSettings, events: LinkEvents): Promise<Link> {
  // The link decides which protocol versions it speaks; the server picks the newest both do.
  const alpn = alpnFor(settings.versions ?? PROTOCOL_VERSIONS);
  settings.quicConfig.setApplicationProtos(alpn);

  // The owner's view. Its methods read `l`, `endpoint` and `running`, all set before it is returned.
  const link: Link = {
    server: settings.server,
    get label() {
      return l.label;
    },
    get state() {
      return l.state;
    },
    get observed() {
      return l.observed;
    },
    request: (body) => sendRequest(l, body),
    sendDatagram: (data, flow = 0) => l.state === "ready" && l.conn !== null && l.conn.sendDatagram(data, 0, flow),
    canSendDatagram: (flow = 0) => l.state === "ready" && l.conn !== null && l.conn.canSendDatagram(0, flow),
    datagramsWaiting: (flow = 0) => l.state === "ready" && l.conn !== null ? l.conn.datagramsWaiting(0, flow) : 0,
    rttSeconds: () => l.conn?.rttSeconds() ?? 0,
    connection: () => (l.state === "ready" ? l.conn : null),
    bounce(reason) {
      l.conn?.close(CloseCode.NO_ERROR, reason);
    },
    reconfigure(config) {
      l.quicConfig = config;
      config.setApplicationProtos(alpn);
      endpoint.reconfigure(config);
    },
    async close(code = CloseCode.NO_ERROR, reason = "client shutting down") {
      l.conn?.close(code, reason);
      l.stop.abort();
      await running;
      await endpoint.close(code, reason);
      l.refusals.close();
    },
  };
  const l = createLinkInternals(settings, events, link);

  const endpoint = await createEndpoint({
    bind: { host: settings.server.host.includes(":") ? "::" : "0.0.0.0", port: 0 },
    server: false,
    config: l.quicConfig,
    maxUdpPayload: l.fixedPayload ?? MAX_AUTO_UDP_PAYLOAD,
    keepaliveMs: settings.keepaliveMs,
    onSocketError: (error) => socketError(l, error),
    onDrop: (reason) => events.onDrop?.(link, reason),
    // Only the current connection is heard: a late event of an earlier one is ignored.
    handlers: {
      onEstablished(c) {
        if (c === l.conn) sayHello(l, c);
      },
      onStreamData(c, streamId, data, fin) {
        if (c === l.conn) handleStreamData(l, c, streamId, data, fin);
      },
      onStreamDrained(c, streamId) {
        if (c === l.conn && streamId !== 0) events.onStreamDrained?.(link, c, streamId);
      },
      onStreamReset(c, streamId, code, how) {
        if (c === l.conn && streamId !== 0) events.onStreamReset?.(link, c, streamId, code, how);
      },
      onDatagram(c, data) {
        if (c === l.conn && l.state === "ready") events.onDatagram(link, data);
      },
      onClosed: (c, info) => connectionClosed(l, c, info),
    },
  });

  const running = runLink(l, endpoint);
  return link;
}
