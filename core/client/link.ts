/**
 * A client's link to one server: dials, says HELLO, keeps the connection
 * alive, and reconnects when it drops. Requests (REGISTER, OPEN, DEREGISTER)
 * travel on the reliable control stream and are answered by ACK/NACK with the
 * same request id: no retry loop of our own.
 *
 * Reconnecting: after a planned restart (GOAWAY with a restart hint) the link
 * waits the hinted reconnect-in, then dials at a short fixed interval until
 * the hinted try-for has passed since the connection ended, so it is back
 * within about one interval of the new server listening. Any other loss, and
 * a restart that outlasts its window, uses exponential backoff with jitter.
 */
import { CloseCode } from "../frame/close.ts";
import {
  type Address,
  type ControlMessage,
  type NackCode,
  type RestartHint,
  PROTOCOL_VERSIONS,
  alpnFor,
  createControlReader,
  encodeControl,
  versionOfAlpn,
} from "../frame/control.ts";
import { StreamResetCode } from "../frame/stream.ts";
import type { Logger } from "../log.ts";
import type { Config } from "../quic/native.ts";
import { createEndpoint, type Endpoint, type QuicConnection } from "../quic/endpoint.ts";
import { formatAddress } from "../net/address.ts";
import { createRepeatLog } from "../log-repeats.ts";
import { explainRefusal, hex } from "../tls-alerts.ts";
import { resolveAddress } from "../runtime/dns.ts";
import { COMMIT, VERSION } from "../version.ts";
import { createBackoff, sleep, type BackoffSettings } from "./backoff.ts";

/** Default interval of the fast retries after a planned restart. */
export const RESTART_RETRY_MS = 250;

export type LinkState = "connecting" | "ready" | "backoff" | "closed";

/** Numeric form of the state, for the `connection_state` gauges. */
export const LINK_STATE_VALUE: Record<LinkState | "draining", number> = {
  closed: 0,
  backoff: 0,
  connecting: 1,
  ready: 2,
  draining: 3,
};

export type RequestResult =
  | { ok: true; channel: number }
  | { ok: false; code: NackCode | "link_down"; reason: string };

type Request = Extract<ControlMessage, { type: "register" | "deregister" | "open" }>;
type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, "req"> : never) : never;

export interface LinkSettings {
  server: Address;
  /** TLS name to verify the server certificate against. */
  serverName: string;
  role: "agent" | "connector";
  name: string;
  quicConfig: Config;
  keepaliveMs: number;
  /** How long a dial may take before it counts as failed. */
  connectTimeoutMs: number;
  backoff: BackoffSettings;
  /** Largest QUIC packet sent (the configured max UDP payload). */
  maxUdpPayload?: number;
  /** A connection that stayed up this long resets the backoff. */
  healthyAfterMs?: number;
  /** Interval of the retries inside a restart window (jittered by ±20 %); default RESTART_RETRY_MS. */
  restartRetryMs?: number;
  /** Protocol versions offered by ALPN, newest first; default all (tests pin [1] to play an old client). */
  versions?: readonly number[];
  /** The build named in HELLO (protocol 2); default this one's version and commit. */
  software?: string;
  log: Logger;
}

export interface LinkEvents {
  /** The server answered HELLO: (re-)register or (re-)open now. */
  onReady(link: Link): void;
  /** The connection is gone; `reason` is one of timeout, peer_closed, goaway, local, connect_failed. */
  onDown(link: Link, reason: string): void;
  /** SERVICE_STATUS and GOAWAY (requests' answers are handled by the link). */
  onControl(link: Link, msg: ControlMessage): void;
  onDatagram(link: Link, data: Uint8Array): void;
  /** A reconnection succeeded after a loss: reason of the loss, and how long it took. */
  onReconnected?(link: Link, reason: string, downMs: number): void;
  /** Backoff attempts are used up: the link stays closed. */
  onGaveUp?(link: Link): void;
  /**
   * Bytes on a stream other than the control stream (TCP tunnels), on the
   * current connection only; `data` is valid only during the call. Without
   * this handler such streams are refused.
   */
  onStreamData?(link: Link, conn: QuicConnection, streamId: number, data: Uint8Array, fin: boolean): void;
  onStreamDrained?(link: Link, conn: QuicConnection, streamId: number): void;
  onStreamReset?(link: Link, conn: QuicConnection, streamId: number, code: number, how: "reset" | "stopped"): void;
}

export interface Link {
  readonly server: Address;
  readonly label: string;
  readonly state: LinkState;
  readonly observed: Address | null;
  request(body: RequestBody): Promise<RequestResult>;
  /** Sends a DATAGRAM if the link is ready; false otherwise (the caller counts the drop). */
  /** Queues a DATAGRAM of `flow` (flows take fair turns while the connection is congested). */
  sendDatagram(data: Uint8Array, flow?: number): boolean;
  /** False when a DATAGRAM would be refused now (not ready, or the queue is full). */
  canSendDatagram(): boolean;
  rttSeconds(): number;
  /** The current QUIC connection while the link is ready (for opening streams), else null. */
  connection(): QuicConnection | null;
  /** Closes the current connection (reconnecting later) without stopping the link. */
  bounce(reason: string): void;
  /** New TLS files (SIGHUP) for the next connection; the current one keeps its own. */
  reconfigure(config: Config): void;
  /** Stops for good: closes the connection and ends any backoff wait at once. */
  close(code?: number, reason?: string): Promise<void>;
}

export async function startLink(settings: LinkSettings, events: LinkEvents): Promise<Link> {
  const log = settings.log;
  const label = formatAddress(settings.server);
  const backoff = createBackoff(settings.backoff);
  const stop = new AbortController();
  const pending = new Map<number, (result: RequestResult) => void>();
  let nextReq = 1;
  let state: LinkState = "connecting";
  let conn: QuicConnection | null = null;
  let observed: Address | null = null;
  let reader = createControlReader();
  let readyAt = 0;
  let lastDownReason = "";
  let downSince = 0;
  let goaway = false;
  /** The restart announced on the current connection, if any. */
  let announced: RestartHint | null = null;
  /** While now < restartUntil, dial at the short fixed interval (a planned restart is under way). */
  let restartUntil = 0;
  /** RTT of the last connection, to size dials inside a restart window. */
  let lastRttMs = 0;
  let version = PROTOCOL_VERSIONS[0]!;
  let onConnClosed: ((reason: string) => void) | null = null;
  const restartRetryMs = settings.restartRetryMs ?? RESTART_RETRY_MS;
  // The link decides which protocol versions it speaks; the server picks the newest both do.
  settings.quicConfig.setApplicationProtos(alpnFor(settings.versions ?? PROTOCOL_VERSIONS));

  // A refused client redials with backoff: the reason is logged once, then counted.
  const refusals = createRepeatLog(log);
  const endpoint: Endpoint = await createEndpoint({
    bind: { host: settings.server.host.includes(":") ? "::" : "0.0.0.0", port: 0 },
    server: false,
    config: settings.quicConfig,
    maxUdpPayload: settings.maxUdpPayload,
    keepaliveMs: settings.keepaliveMs,
    onSocketError: (error) => {
      log.debug("socket_error", { server: label, error: error.message });
      // ICMP unreachable while dialing: nobody listens there, so back off now
      // rather than waiting out the connect timeout. (Once connected, a stray
      // ICMP is not trusted to end a working connection.)
      if (state === "connecting" && conn !== null && onConnClosed) {
        conn.close(CloseCode.NO_ERROR, "unreachable");
        onConnClosed("connect_failed");
      }
    },
    handlers: {
      onEstablished(c) {
        if (c !== conn) return;
        const agreed = versionOfAlpn(c.raw.applicationProto());
        if (agreed === undefined) {
          log.warn("protocol_error", { server: label, error: "no ztna protocol agreed by ALPN" });
          c.close(CloseCode.PROTOCOL_ERROR, "no ztna protocol agreed by ALPN");
          return;
        }
        version = agreed;
        reader = createControlReader(undefined, version);
        const software = settings.software ?? `${VERSION} (${COMMIT})`;
        c.writeStream(0, encodeControl({ type: "hello", version, role: settings.role, name: settings.name, software }, version));
      },
      onStreamData(c, streamId, data, fin) {
        if (c !== conn) return;
        if (streamId !== 0) {
          if (events.onStreamData) events.onStreamData(link, c, streamId, data, fin);
          else c.shutdownStream(streamId, StreamResetCode.PROTOCOL);
          return;
        }
        for (const decoded of reader.push(data)) {
          if (!decoded.ok) {
            log.warn("protocol_error", { server: label, error: decoded.error.message });
            c.close(CloseCode.PROTOCOL_ERROR, decoded.error.kind);
            return;
          }
          onMessage(decoded.value);
        }
      },
      onStreamDrained(c, streamId) {
        if (c === conn && streamId !== 0) events.onStreamDrained?.(link, c, streamId);
      },
      onStreamReset(c, streamId, code, how) {
        if (c === conn && streamId !== 0) events.onStreamReset?.(link, c, streamId, code, how);
      },
      onDatagram(c, data) {
        if (c === conn && state === "ready") events.onDatagram(link, data);
      },
      onClosed(c, info) {
        if (c !== conn) return;
        const reason = goaway
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
          refusals.log("warn", "handshake_refused", `${label}|${refusal.by}|${refusal.alert}`, {
            server: label,
            alert: refusal.alert,
            code: hex(refusal.code),
            refused_by: refusal.by,
            cause: refusal.cause,
            fix: refusal.fix,
          });
        }
        log.info("link_closed", { server: label, reason: refusal ? "handshake_refused" : reason, detail: info.reason || refusal?.alert || "" });
        onConnClosed?.(reason);
      },
    },
  });

  function onMessage(msg: ControlMessage) {
    switch (msg.type) {
      case "welcome":
        observed = msg.observed;
        state = "ready";
        readyAt = Date.now();
        restartUntil = 0;
        log.info("link_ready", {
          server: label,
          observed: formatAddress(msg.observed),
          max_datagram: conn?.maxDatagramSize() ?? 0,
          protocol: version,
        });
        if (lastDownReason) events.onReconnected?.(link, lastDownReason, Date.now() - downSince);
        events.onReady(link);
        return;
      case "observed":
        observed = msg.observed;
        return;
      case "ack":
      case "nack": {
        const resolve = pending.get(msg.req);
        pending.delete(msg.req);
        resolve?.(msg.type === "ack" ? { ok: true, channel: msg.channel } : { ok: false, code: msg.code, reason: msg.reason });
        return;
      }
      case "goaway":
        goaway = true;
        announced = msg.restart ?? null;
        events.onControl(link, msg);
        return;
      default:
        events.onControl(link, msg);
    }
  }

  /** One connection's life: resolves with the reason it ended. */
  async function connectOnce(): Promise<string> {
    reader = createControlReader(undefined, version);
    goaway = false;
    announced = null;
    state = "connecting";
    let remote: Address;
    try {
      remote = await resolveAddress(settings.server);
    } catch (error) {
      log.warn("resolve_failed", { server: label, error: (error as Error).message });
      return "connect_failed";
    }
    return new Promise((resolve) => {
      const c = endpoint.connect(remote, settings.serverName);
      conn = c;
      // Inside a restart window a dial that hears nothing is given up soon and
      // tried afresh: an Initial sent before the new server listened is only
      // retransmitted after quiche's first PTO (about 1 s).
      const dialMs =
        Date.now() < restartUntil
          ? Math.min(settings.connectTimeoutMs, Math.max(2 * restartRetryMs, 4 * lastRttMs))
          : settings.connectTimeoutMs;
      const timer = setTimeout(() => {
        if (state === "ready") return;
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
        onConnClosed = null;
        resolve(state === "ready" ? reason : "connect_failed");
      };
      onConnClosed = finish;
      stop.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  async function run() {
    while (!stop.signal.aborted) {
      const reason = await connectOnce();
      const wasReady = state === "ready";
      const restart = wasReady ? announced : null;
      if (wasReady && conn) {
        try {
          lastRttMs = conn.rttSeconds() * 1000;
        } catch {
          // statistics of a freed connection: keep the previous figure
        }
      }
      conn = null;
      state = "backoff";
      for (const resolve of pending.values()) resolve({ ok: false, code: "link_down", reason });
      pending.clear();
      if (wasReady) {
        events.onDown(link, reason);
        lastDownReason = reason;
        downSince = Date.now();
        if (Date.now() - readyAt >= (settings.healthyAfterMs ?? 5_000)) backoff.reset();
        // A planned restart opens a window of fast retries; any other loss closes it.
        restartUntil = restart ? downSince + restart.tryForMs : 0;
        if (restart) {
          backoff.reset();
          log.info("server_restarting", {
            server: label,
            reconnect_in_ms: restart.reconnectInMs,
            try_for_ms: restart.tryForMs,
            retry_ms: restartRetryMs,
          });
        }
      }
      if (stop.signal.aborted) break;
      let delay: number | null;
      let mode = "backoff";
      if (restart) {
        delay = restart.reconnectInMs;
        mode = "restart";
      } else if (Date.now() < restartUntil) {
        // Fixed interval, lightly jittered so a fleet does not dial in lockstep; backoff attempts are not spent.
        delay = Math.round(restartRetryMs * (0.8 + 0.4 * Math.random()));
        mode = "restart";
      } else {
        // A server that said GOAWAY or restarted is worth retrying at once.
        delay = wasReady && (reason === "goaway" || reason === "peer_closed") && backoff.attempts === 0 ? 0 : backoff.next();
      }
      if (delay === null) {
        log.error("link_gave_up", { server: label, attempts: backoff.attempts });
        state = "closed";
        events.onGaveUp?.(link);
        return;
      }
      if (!wasReady) lastDownReason ||= "connect_failed";
      // Retries inside a restart window are frequent by design: logged at debug after the first.
      const quiet = mode === "restart" && !restart;
      log[quiet ? "debug" : "info"]("link_backoff", { server: label, delay_ms: delay, attempt: backoff.attempts, reason, mode });
      if (delay > 0 && !(await sleep(delay, stop.signal))) break;
    }
    state = "closed";
  }

  const link: Link = {
    server: settings.server,
    label,
    get state() {
      return state;
    },
    get observed() {
      return observed;
    },
    request(body) {
      if (state !== "ready" || conn === null) {
        return Promise.resolve({ ok: false, code: "link_down", reason: "not connected" });
      }
      const req = nextReq;
      nextReq = nextReq === 0xffffffff ? 1 : nextReq + 1;
      const c = conn;
      return new Promise((resolve) => {
        pending.set(req, resolve);
        c.writeStream(0, encodeControl({ ...body, req } as ControlMessage, version));
      });
    },
    sendDatagram(data, flow = 0) {
      return state === "ready" && conn !== null && conn.sendDatagram(data, 0, flow);
    },
    canSendDatagram() {
      return state === "ready" && conn !== null && conn.canSendDatagram();
    },
    rttSeconds() {
      return conn?.rttSeconds() ?? 0;
    },
    connection() {
      return state === "ready" ? conn : null;
    },
    bounce(reason) {
      conn?.close(CloseCode.NO_ERROR, reason);
    },
    reconfigure(config) {
      endpoint.reconfigure(config);
    },
    async close(code = CloseCode.NO_ERROR, reason = "client shutting down") {
      conn?.close(code, reason);
      stop.abort();
      await running;
      await endpoint.close(code, reason);
      refusals.close();
    },
  };

  const running = run();
  return link;
}

export { formatAddress };
