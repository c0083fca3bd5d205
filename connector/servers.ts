/**
 * The connector's side of each server link: REGISTER whenever the link is
 * ready, its flows dropped when it goes down, GOAWAY logged (the link itself
 * comes back, at once after a planned restart), DEREGISTER on a drain.
 */
import { LINK_STATE_VALUE, linkSettingsFor, startLink } from "../core/client/link.ts";
import type { ControlMessage } from "../core/frame/mod.ts";
import { type Address, formatAddress } from "../core/net/address.ts";
import { closeServerFlows, handleTunnelDatagram } from "./flows.ts";
import type { ConnectorState, ServerSlot } from "./state.ts";

/** Starts the link to one server; the slot joins `s.servers`. */
export async function startServerSlot(s: ConnectorState, address: Address): Promise<ServerSlot> {
  const { settings, metrics, tcp } = s;
  const label = formatAddress(address);
  metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.connecting);
  metrics.registered.child({ server: label }).set(0);
  // Events come from the network, so never before startLink has returned and `slot` is set.
  const link = await startLink(
    linkSettingsFor(settings, address, "connector", settings.name ?? `connector:${settings.service}`, s.log),
    {
      onReady: () => handleReady(s, slot),
      onDown: (_link, reason) => handleDown(s, slot, reason),
      onReconnected(_link, reason) {
        metrics.reconnections.child({ reason }).inc();
      },
      onDrop: (_link, reason) => s.engineDropped(reason),
      onControl: (_link, msg) => handleControl(s, slot, msg),
      onDatagram(_link, data) {
        handleTunnelDatagram(s, slot, data);
      },
      onStreamData: (link, conn, id, data, fin) => tcp.onStreamData(link, conn, id, data, fin),
      onStreamDrained: (link, conn, id) => tcp.onStreamDrained(link, conn, id),
      onStreamReset: (link, conn, id, code) => tcp.onStreamReset(link, conn, id, code),
    },
  );
  const slot: ServerSlot = { link, channel: 0, registered: false, downAt: 0, registeredAt: 0, flows: new Map() };
  s.servers.push(slot);
  return slot;
}

/** The link is ready (again): register, unless draining. */
function handleReady(s: ConnectorState, slot: ServerSlot): void {
  s.metrics.connectionState.child({ server: slot.link.label }).set(LINK_STATE_VALUE.ready);
  if (!s.draining) void register(s, slot);
}

/** The connection is gone, and with it the registration and the server's flow ids. */
function handleDown(s: ConnectorState, slot: ServerSlot, reason: string): void {
  const label = slot.link.label;
  slot.registered = false;
  slot.registeredAt = 0;
  slot.downAt = Date.now();
  s.metrics.registered.child({ server: label }).set(0);
  s.metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.backoff);
  s.log.warn("server_lost", { server: label, reason });
  // Server-side flow ids die with the connection.
  closeServerFlows(s, slot);
  s.tcp.linkDown(slot.link);
}

/** SERVICE_STATUS is for agents; GOAWAY is logged, and the link comes back on its own. */
function handleControl(s: ConnectorState, slot: ServerSlot, msg: ControlMessage): void {
  if (msg.type !== "goaway") return;
  s.log.info("server_goaway", {
    server: slot.link.label,
    reason: msg.reason,
    restart_try_for_ms: msg.restart?.tryForMs ?? 0,
    restart_reconnect_in_ms: msg.restart?.reconnectInMs ?? 0,
  });
}

/** REGISTER: the channel to frame replies with; a refusal bounces the connection to retry on the next. */
async function register(s: ConnectorState, slot: ServerSlot): Promise<void> {
  const { settings, metrics, log } = s;
  const label = slot.link.label;
  const result = await slot.link.request({ type: "register", service: settings.service });
  if (result.ok) {
    slot.channel = result.channel;
    slot.registered = true;
    slot.registeredAt = Date.now();
    metrics.registrations.child({ result: "ack", reason: "ok" }).inc();
    metrics.registered.child({ server: label }).set(1);
    if (slot.downAt > 0) metrics.reregistration.observe((Date.now() - slot.downAt) / 1000);
    slot.downAt = 0;
    log.info("registered", { server: label, service: settings.service, channel: result.channel });
  } else if (result.code !== "link_down") {
    metrics.registrations.child({ result: "nack", reason: result.code }).inc();
    s.refusals.log("error", "registration_refused", `${label}|${result.code}`, {
      server: label,
      service: settings.service,
      code: result.code,
      reason: result.reason,
    });
    // A refusal will not change by asking again at once; retry on the next connection.
    slot.link.bounce(`registration refused: ${result.code}`);
  }
}

/** DEREGISTER everywhere we are registered, and wait for the acknowledgements: after them no server sends new flows here. */
export async function deregisterEverywhere(s: ConnectorState): Promise<void> {
  await Promise.all(
    s.servers
      .filter((slot) => slot.registered)
      .map(async (slot) => {
        const label = slot.link.label;
        if (label) s.metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.draining);
        const result = await slot.link.request({ type: "deregister", service: s.settings.service });
        s.log.info("deregistered", { server: label, ok: result.ok });
      }),
  );
}
