/**
 * A link's life over many connections: dial, wait for the connection to end,
 * settle what it left behind, wait, dial again.
 *
 * After a planned restart (GOAWAY with a restart hint) the link waits the
 * hinted reconnect-in, then dials at a short fixed interval until the hinted
 * try-for has passed since the connection ended, so it is back within about
 * one interval of the new server listening. Any other loss, and a restart
 * that outlasts its window, uses exponential backoff with jitter.
 */
import { CloseCode, createControlReader, type RestartHint } from "../frame/mod.ts";
import { type Address, formatAddress } from "../net/address.ts";
import { QUIC_UDP_PAYLOAD } from "../quic/config.ts";
import type { Endpoint } from "../quic/endpoint.ts";
import type { CloseInfo, QuicConnection } from "../quic/types.ts";
import { resolveAddress } from "../runtime/dns.ts";
import { explainRefusal, hex } from "../tls-alerts.ts";
import { sleep } from "./backoff.ts";
import type { LinkInternals } from "./link-state.ts";
import { probeCandidate, probePath } from "./path-probe.ts";

/** A connection that stayed up this long resets the backoff (default of settings.healthyAfterMs). */
const HEALTHY_AFTER_MS = 5_000;
/** A path probe gives up after this long (then 1350 is used). */
const PROBE_TIMEOUT_MS = 1_000;
/** How long a probed packet size is trusted before it is probed again. */
const PROBE_TTL_MS = 10 * 60_000;

/** Dials until the link is closed or gives up. */
export async function runLink(l: LinkInternals, endpoint: Endpoint): Promise<void> {
  while (!l.stop.signal.aborted) {
    const reason = await connectOnce(l, endpoint);
    const wasReady = l.state === "ready";
    // Large packets on a connection that then timed out: the path may have shrunk. Probe again.
    if (reason === "timeout" && wasReady && l.probed !== null && l.probed.payload > QUIC_UDP_PAYLOAD) l.probed = null;
    const restart = wasReady ? l.announced : null;
    connectionEnded(l, reason, wasReady, restart);
    if (l.stop.signal.aborted) break;
    const wait = nextWait(l, reason, wasReady, restart);
    if (wait === null) {
      l.log.error("link_gave_up", { server: l.label, attempts: l.backoff.attempts });
      l.state = "closed";
      l.events.onGaveUp?.(l.link);
      return;
    }
    if (!wasReady) l.lastDownReason ||= "connect_failed";
    // Retries inside a restart window are frequent by design: logged at debug after the first.
    const quiet = wait.mode === "restart" && !restart;
    l.log[quiet ? "debug" : "info"]("link_backoff", {
      server: l.label,
      delay_ms: wait.delay,
      attempt: l.backoff.attempts,
      reason,
      mode: wait.mode,
    });
    if (wait.delay > 0 && !(await sleep(wait.delay, l.stop.signal))) break;
  }
  l.state = "closed";
}

/** One connection's life: resolves with the reason it ended (connect_failed if it never became ready). */
async function connectOnce(l: LinkInternals, endpoint: Endpoint): Promise<string> {
  l.reader = createControlReader(undefined, l.version);
  l.goaway = false;
  l.announced = null;
  l.state = "connecting";
  let remote: Address;
  try {
    remote = await resolveAddress(l.settings.server);
  } catch (error) {
    l.log.warn("resolve_failed", { server: l.label, error: (error as Error).message });
    return "connect_failed";
  }
  const payload = await pathPayload(l, remote);
  if (l.stop.signal.aborted) return "local";
  l.quicConfig.setMaxSendUdpPayloadSize(payload);
  l.quicConfig.setMaxRecvUdpPayloadSize(payload);
  return dial(l, endpoint, remote);
}

/**
 * The packet size for a connection to `remote`: the configured one, or
 * (auto) what a probe found the path to carry, remembered for PROBE_TTL_MS
 * and probed again after a connection timed out (the path may have changed).
 */
async function pathPayload(l: LinkInternals, remote: Address): Promise<number> {
  if (l.fixedPayload !== null) return l.fixedPayload;
  const key = formatAddress(remote);
  if (l.probed !== null && l.probed.key === key && Date.now() < l.probed.until) return l.probed.payload;
  const candidate = probeCandidate(remote);
  if (candidate === null) {
    l.probed = { key, payload: QUIC_UDP_PAYLOAD, until: Date.now() + PROBE_TTL_MS };
    return QUIC_UDP_PAYLOAD;
  }
  const started = performance.now();
  const found = await probePath({
    remote,
    serverName: l.settings.serverName,
    config: l.quicConfig,
    size: candidate,
    timeoutMs: Math.min(PROBE_TIMEOUT_MS, l.settings.connectTimeoutMs),
    signal: l.stop.signal,
  });
  const payload = found.payload ?? QUIC_UDP_PAYLOAD;
  l.log.info("path_probed", {
    server: l.label,
    tried: candidate,
    ok: found.payload !== null,
    payload,
    ms: Math.round(performance.now() - started),
    ...(found.reached ? {} : { detail: "no answer: the server is not up yet" }),
  });
  // Nobody answered: nothing learnt; dial at the safe size and probe on the next dial.
  if (found.reached) l.probed = { key, payload, until: Date.now() + PROBE_TTL_MS };
  return payload;
}

/** Dials `remote`; resolves when the connection ends, the dial times out, or the link is closed. */
function dial(l: LinkInternals, endpoint: Endpoint, remote: Address): Promise<string> {
  const { settings, stop } = l;
  return new Promise((resolve) => {
    const c = endpoint.connect(remote, settings.serverName);
    l.conn = c;
    // Inside a restart window a dial that hears nothing is given up soon and
    // tried afresh: an Initial sent before the new server listened is only
    // retransmitted after quiche's first PTO (about 1 s).
    const dialMs = Date.now() < l.restartUntil
      ? Math.min(settings.connectTimeoutMs, Math.max(2 * l.restartRetryMs, 4 * l.lastRttMs))
      : settings.connectTimeoutMs;
    const timer = setTimeout(() => {
      if (l.state === "ready") return;
      c.close(CloseCode.NO_ERROR, "connect timeout");
      finish("connect_failed");
    }, dialMs);
    let done = false;
    const onAbort = () => finish("local");
    const finish = (reason: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // One listener per connection: remove it, or a long-lived link that
      // reconnects often would pile them up on the stop signal.
      stop.signal.removeEventListener("abort", onAbort);
      l.onConnClosed = null;
      resolve(l.state === "ready" ? reason : "connect_failed");
    };
    l.onConnClosed = finish;
    stop.signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The connection is over: requests fail, the owner hears of it, and a planned restart opens its window. */
function connectionEnded(l: LinkInternals, reason: string, wasReady: boolean, restart: RestartHint | null): void {
  if (wasReady && l.conn) {
    try {
      l.lastRttMs = l.conn.rttSeconds() * 1000;
    } catch {
      // statistics of a freed connection: keep the previous figure
    }
  }
  l.conn = null;
  l.state = "backoff";
  for (const resolve of l.pending.values()) resolve({ ok: false, code: "link_down", reason });
  l.pending.clear();
  if (!wasReady) return;
  l.events.onDown(l.link, reason);
  l.lastDownReason = reason;
  l.downSince = Date.now();
  if (Date.now() - l.readyAt >= (l.settings.healthyAfterMs ?? HEALTHY_AFTER_MS)) l.backoff.reset();
  // A planned restart opens a window of fast retries; any other loss closes it.
  l.restartUntil = restart ? l.downSince + restart.tryForMs : 0;
  if (restart) {
    l.backoff.reset();
    l.log.info("server_restarting", {
      server: l.label,
      reconnect_in_ms: restart.reconnectInMs,
      try_for_ms: restart.tryForMs,
      retry_ms: l.restartRetryMs,
    });
  }
}

/** How long to wait before the next dial, and why; null when the backoff's attempts are used up. */
function nextWait(
  l: LinkInternals,
  reason: string,
  wasReady: boolean,
  restart: RestartHint | null,
): { delay: number; mode: "backoff" | "restart" } | null {
  if (restart) return { delay: restart.reconnectInMs, mode: "restart" };
  if (Date.now() < l.restartUntil) {
    // Fixed interval, lightly jittered so a fleet does not dial in lockstep; backoff attempts are not spent.
    return { delay: Math.round(l.restartRetryMs * (0.8 + 0.4 * Math.random())), mode: "restart" };
  }
  // A server that said GOAWAY or restarted is worth retrying at once.
  const atOnce = wasReady && (reason === "goaway" || reason === "peer_closed") && l.backoff.attempts === 0;
  const delay = atOnce ? 0 : l.backoff.next();
  return delay === null ? null : { delay, mode: "backoff" };
}

/** The engine closed the current connection: why, and for a refused handshake what to check. */
export function connectionClosed(l: LinkInternals, c: QuicConnection, info: CloseInfo): void {
  if (c !== l.conn) return;
  const reason = l.goaway
    ? "goaway"
    : info.timedOut
    ? "timeout"
    : info.peer
    ? "peer_closed"
    : info.local
    ? "local"
    : "reset";
  // A refused handshake (a close with a TLS alert; a client may already count itself
  // established when the server refuses its certificate) says why, and what to check.
  const refusal = explainRefusal(info);
  if (refusal) {
    l.refusals.log("warn", "handshake_refused", `${l.label}|${refusal.by}|${refusal.alert}`, {
      server: l.label,
      alert: refusal.alert,
      code: hex(refusal.code),
      refused_by: refusal.by,
      cause: refusal.cause,
      fix: refusal.fix,
    });
  }
  l.log.info("link_closed", {
    server: l.label,
    reason: refusal ? "handshake_refused" : reason,
    detail: info.reason || refusal?.alert || "",
  });
  l.onConnClosed?.(reason);
}

/**
 * ICMP unreachable while dialing: nobody listens there, so back off now
 * rather than waiting out the connect timeout. (Once connected, a stray ICMP
 * is not trusted to end a working connection.)
 */
export function socketError(l: LinkInternals, error: Error): void {
  l.log.debug("socket_error", { server: l.label, error: error.message });
  if (l.state === "connecting" && l.conn !== null && l.onConnClosed) {
    l.conn.close(CloseCode.NO_ERROR, "unreachable");
    l.onConnClosed("connect_failed");
  }
}
