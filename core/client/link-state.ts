/**
 * A link's state, declared in one place: what it was started with, the
 * connection it has now and the requests waiting on it, and what it remembers
 * across connections to decide when to dial again. link-control.ts handles
 * the server's control messages, link-dial.ts dials and reconnects.
 */
import { type ControlReader, createControlReader, PROTOCOL_VERSIONS, type RestartHint } from "../frame/mod.ts";
import type { Logger } from "../log.ts";
import { createRepeatLog, type RepeatLog } from "../log-repeats.ts";
import { type Address, formatAddress } from "../net/address.ts";
import type { Config } from "../quic/native.ts";
import type { QuicConnection } from "../quic/types.ts";
import { type Backoff, createBackoff } from "./backoff.ts";
import {
  type Link,
  type LinkEvents,
  type LinkSettings,
  type LinkState,
  type RequestResult,
  RESTART_RETRY_MS,
} from "./link-types.ts";

export interface LinkInternals {
  // ---- fixed at start
  readonly settings: LinkSettings;
  readonly events: LinkEvents;
  /** The owner's view of this link, passed with every event. */
  readonly link: Link;
  readonly log: Logger;
  /** The server as host:port, for logs and metric labels. */
  readonly label: string;
  /** Interval of the dials inside a restart window (settings.restartRetryMs or RESTART_RETRY_MS). */
  readonly restartRetryMs: number;
  /** Aborted by close(): ends a dial or a backoff wait at once. */
  readonly stop: AbortController;
  /** Refused handshakes: the reason is logged once, then counted (a refused client redials with backoff). */
  readonly refusals: RepeatLog;
  /** The packet size configured as a number; null for auto (probe the path). */
  readonly fixedPayload: number | null;
  /** The TLS and transport configuration of the next connection; replaced by reconfigure(). */
  quicConfig: Config;

  // ---- the current connection
  /** connecting (dialled, no WELCOME yet), ready, backoff (between connections), closed (for good). */
  state: LinkState;
  /** The connection being dialled or in use; null between connections. */
  conn: QuicConnection | null;
  /** Protocol version agreed by ALPN: the layout of control messages on this connection. */
  version: number;
  /** Reassembles control messages from stream 0 of this connection. */
  reader: ControlReader;
  /** Requests waiting for their ACK or NACK, by request id; answered link_down when the connection ends. */
  readonly pending: Map<number, (result: RequestResult) => void>;
  /** The next request id (u32, never 0). */
  nextReq: number;
  /** This client's address as the server sees it (WELCOME, OBSERVED). */
  observed: Address | null;
  /** When this connection became ready (ms since epoch). */
  readyAt: number;
  /** The server said GOAWAY on this connection. */
  goaway: boolean;
  /** The restart the server announced on this connection (GOAWAY, protocol 2), if any. */
  announced: RestartHint | null;
  /** Ends the current dial or connection with its reason; null when none is under way. */
  onConnClosed: ((reason: string) => void) | null;

  // ---- across connections
  /** Waits between failed dials; reset after a healthy connection or an announced restart. */
  readonly backoff: Backoff;
  /** Why the last ready connection ended ('' before the first loss), for onReconnected. */
  lastDownReason: string;
  /** When the last ready connection ended (ms since epoch). */
  downSince: number;
  /** While now < restartUntil, dial at the short fixed interval (a planned restart is under way). */
  restartUntil: number;
  /** RTT of the last connection, to size dials inside a restart window. */
  lastRttMs: number;
  /** The packet size the path to the server was found to carry (auto), and until when to trust it. */
  probed: { key: string; payload: number; until: number } | null;
}

export function createLinkInternals(settings: LinkSettings, events: LinkEvents, link: Link): LinkInternals {
  return {
    settings,
    events,
    link,
    log: settings.log,
    label: formatAddress(settings.server),
    restartRetryMs: settings.restartRetryMs ?? RESTART_RETRY_MS,
    stop: new AbortController(),
    refusals: createRepeatLog(settings.log),
    fixedPayload: typeof settings.maxUdpPayload === "number" ? settings.maxUdpPayload : null,
    quicConfig: settings.quicConfig,
    state: "connecting",
    conn: null,
    version: PROTOCOL_VERSIONS[0]!,
    reader: createControlReader(),
    pending: new Map(),
    nextReq: 1,
    observed: null,
    readyAt: 0,
    goaway: false,
    announced: null,
    onConnClosed: null,
    backoff: createBackoff(settings.backoff),
    lastDownReason: "",
    downSince: 0,
    restartUntil: 0,
    lastRttMs: 0,
    probed: null,
  };
}
