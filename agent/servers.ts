/**
 * The agent's server links. It uses one server at a time (the active link)
 * and OPENs every mapped service there. With several servers configured, a
 * GOAWAY or a loss brings up a link to the next one (the candidate); once
 * that one has opened the services it becomes active, and the old link
 * lingers a moment for replies already on their way.
 */
import { LINK_STATE_VALUE, linkSettingsFor, startLink } from "../core/client/link.ts";
import { CloseCode, type ControlMessage } from "../core/frame/mod.ts";
import { formatAddress } from "../core/net/address.ts";
import { onReply } from "./datagrams.ts";
import type { AgentState, LinkSlot } from "./state.ts";

/** For this long after its link became ready, an agent re-asks a refused OPEN at the restart interval. */
const FRESH_LINK_MS = 5_000;

/**
 * Starts the link to server `index`. The first becomes the active link, any
 * later one the candidate (one that started after close() is left to its caller).
 */
export async function startSlot(s: AgentState, index: number): Promise<LinkSlot> {
  const { settings, metrics, tcp } = s;
  const address = settings.servers[index]!;
  const label = formatAddress(address);
  metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.connecting);
  // Events come from the network, so never before startLink has returned and `slot` is set.
  const link = await startLink(
    {
      ...linkSettingsFor(settings, address, "agent", settings.name ?? "agent", s.log),
      quicConfig: s.quicConfig,
      // With other servers to try, give up on this one quickly and move on.
      backoff: s.multi ? { ...settings.backoff, maxAttempts: 2 } : settings.backoff,
    },
    {
      onReady: () => handleReady(s, slot),
      onDown: (_link, reason) => handleDown(s, slot, reason),
      onReconnected(_link, reason) {
        metrics.reconnections.child({ reason }).inc();
      },
      onDrop: (_link, reason) => s.engineDropped(reason),
      onGaveUp: () => handleGaveUp(s, slot),
      onControl: (_link, msg) => handleControl(s, slot, msg),
      onDatagram(_link, data) {
        onReply(s, slot, data);
      },
      onStreamData: (link, conn, id, data, fin) => tcp.onStreamData(link, conn, id, data, fin),
      onStreamDrained: (link, conn, id) => tcp.onStreamDrained(link, conn, id),
      onStreamReset: (link, conn, id, code) => tcp.onStreamReset(link, conn, id, code),
    },
  );
  const slot: LinkSlot = {
    index,
    link,
    open: new Map(),
    channels: new Map(),
    earlyStatus: new Map(),
    retired: false,
    readyAt: 0,
  };
  if (s.closed) return slot;
  if (s.active === null) s.active = slot;
  else s.candidate = slot;
  return slot;
}

/** The link is ready (again): OPEN every service on it. */
function handleReady(s: AgentState, slot: LinkSlot): void {
  s.metrics.connectionState.child({ server: slot.link.label }).set(LINK_STATE_VALUE.ready);
  slot.readyAt = Date.now();
  slot.open.clear();
  slot.channels.clear();
  void openAll(s, slot);
}

/** The connection is gone with its channels; losing the active link moves to the next server, if any. */
function handleDown(s: AgentState, slot: LinkSlot, reason: string): void {
  const label = slot.link.label;
  s.metrics.connectionState.child({ server: label }).set(LINK_STATE_VALUE.backoff);
  slot.open.clear();
  slot.channels.clear();
  s.tcp.linkDown(slot.link);
  if (slot !== s.active || slot.retired) return;
  s.log.warn("server_lost", { server: label, reason });
  publish(s);
  if (!s.multi || s.closed) return;
  // Break before make is all that is left: use the candidate if it is up already.
  if (s.candidate && s.candidate.link.state === "ready") promote(s, s.candidate, reason);
  else startCandidate(s, slot.index, reason);
}

/** The link used up its attempts: try the next server. */
function handleGaveUp(s: AgentState, slot: LinkSlot): void {
  if (slot === s.candidate) {
    s.candidate = null;
    void slot.link.close();
    startCandidate(s, slot.index, "gave_up");
  } else if (slot === s.active && s.multi) {
    startCandidate(s, slot.index, "gave_up");
  }
}

function handleControl(s: AgentState, slot: LinkSlot, msg: ControlMessage): void {
  if (msg.type === "service_status") handleServiceStatus(s, slot, msg);
  else if (msg.type === "goaway") handleGoaway(s, slot, msg);
}

/** SERVICE_STATUS: a service went up or down (before its OPEN's ACK, it is kept for then). */
function handleServiceStatus(
  s: AgentState,
  slot: LinkSlot,
  msg: Extract<ControlMessage, { type: "service_status" }>,
): void {
  const open = slot.open.get(msg.service);
  if (open === undefined) slot.earlyStatus.set(msg.service, msg.up);
  else open.up = msg.up;
  if (slot === s.active) publish(s);
}

/** GOAWAY: with other servers configured, bring up the next one before this one goes. */
function handleGoaway(s: AgentState, slot: LinkSlot, msg: Extract<ControlMessage, { type: "goaway" }>): void {
  s.log.info("server_goaway", {
    server: slot.link.label,
    reason: msg.reason,
    alternate: msg.alternate,
    restart_try_for_ms: msg.restart?.tryForMs ?? 0,
  });
  if (slot === s.active && s.multi) startCandidate(s, slot.index, "goaway");
}

/** Publishes each service's state as the active link sees it: gauge, counter, log. */
export function publish(s: AgentState): void {
  const active = s.active;
  for (const name of s.names) {
    const up = active?.open.get(name)?.up ?? false;
    if (s.published.get(name) === up) continue;
    s.published.set(name, up);
    s.metrics.serviceUp.child({ service: name }).set(up ? 1 : 0);
    s.metrics.serviceChanges.child({ service: name, state: up ? "up" : "down" }).inc();
    s.log.info(up ? "service_up" : "service_down", { service: name, server: active?.link.label ?? null });
  }
}

/** OPENs every service on a ready link; a candidate that opened them becomes the active link. */
async function openAll(s: AgentState, slot: LinkSlot): Promise<void> {
  const started = Date.now();
  await Promise.all(s.names.map((name) => openOne(s, slot, name)));
  if (slot.retired || slot.link.state !== "ready") return;
  if (slot === s.candidate) promote(s, slot, "switch");
  if (slot === s.active) s.metrics.reopen.observe((Date.now() - started) / 1000);
}

/** OPENs one service, asking again while it is refused (its connectors may be on their way). */
async function openOne(s: AgentState, slot: LinkSlot, name: string): Promise<void> {
  const { metrics, log } = s;
  while (!s.closed && !slot.retired && slot.link.state === "ready") {
    const result = await slot.link.request({ type: "open", service: name });
    if (slot.retired) return;
    if (result.ok) {
      slot.channels.set(result.channel, name);
      // Up unless the server said otherwise together with the ACK.
      slot.open.set(name, { channel: result.channel, up: slot.earlyStatus.get(name) ?? true });
      slot.earlyStatus.delete(name);
      s.refusedNow.delete(name);
      metrics.opens.child({ result: "ack", reason: "ok" }).inc();
      log.info("service_opened", { service: name, channel: result.channel, server: slot.link.label });
      if (slot === s.active) publish(s);
      return;
    }
    if (result.code === "link_down") return;
    metrics.opens.child({ result: "nack", reason: result.code }).inc();
    s.refusedNow.set(name, result.code);
    s.refusals.log("error", "open_refused", `${name}|${result.code}|${slot.link.label}`, {
      service: name,
      code: result.code,
      reason: result.reason,
      server: slot.link.label,
    });
    // A service nobody registered yet may appear (a connector restarting); ask again later.
    // Right after a (re)connection its connectors are likely re-registering too: ask often.
    const fresh = Date.now() - slot.readyAt < FRESH_LINK_MS;
    await new Promise((r) => setTimeout(r, fresh ? Math.min(s.reopenMs, s.restartRetryMs) : s.reopenMs));
  }
}

/** Makes `slot` the active link; the previous one lingers for replies already under way. */
function promote(s: AgentState, slot: LinkSlot, reason: string): void {
  const old = s.active;
  s.active = slot;
  if (s.candidate === slot) s.candidate = null;
  if (old && old !== slot) {
    retire(s, old);
    s.metrics.reconnections.child({ reason }).inc();
    s.log.info("switched_server", { from: old.link.label, to: slot.link.label, reason });
  }
  publish(s);
}

function retire(s: AgentState, slot: LinkSlot): void {
  slot.retired = true;
  s.lingering.add(slot);
  setTimeout(() => {
    s.lingering.delete(slot);
    void slot.link.close(CloseCode.NO_ERROR, "agent moved to another server");
  }, s.lingerMs);
}

/** Brings up a link to the next server while the active one (if any) keeps serving. */
function startCandidate(s: AgentState, after: number, reason: string): void {
  if (s.closed || s.candidate !== null || s.startingCandidate) return;
  const index = (after + 1) % s.settings.servers.length;
  s.log.info("trying_server", { server: formatAddress(s.settings.servers[index]!), reason });
  s.startingCandidate = true;
  startSlot(s, index).then(
    (slot) => {
      s.startingCandidate = false;
      if (s.closed) void slot.link.close();
    },
    (error) => {
      s.startingCandidate = false;
      s.log.warn("link_failed", { server: formatAddress(s.settings.servers[index]!), error: (error as Error).message });
    },
  );
}
