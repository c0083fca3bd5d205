/**
 * A link's side of the control stream (docs/protocol.md §2): HELLO once the
 * handshake completes, a handler per message from the server, and requests
 * (REGISTER, OPEN, DEREGISTER) matched to their ACK or NACK by request id.
 */
import {
  CloseCode,
  type ControlMessage,
  type ControlType,
  createControlReader,
  encodeControl,
  StreamResetCode,
  versionOfAlpn,
} from "../frame/mod.ts";
import { formatAddress } from "../net/address.ts";
import type { QuicConnection } from "../quic/types.ts";
import { COMMIT, VERSION } from "../version.ts";
import type { LinkInternals } from "./link-state.ts";
import type { RequestBody, RequestResult } from "./link-types.ts";

/** The message of one type. */
type Message<T extends ControlType> = Extract<ControlMessage, { type: T }>;

/** The handshake completed: HELLO in the protocol version ALPN agreed on. */
export function sayHello(l: LinkInternals, c: QuicConnection): void {
  const agreed = versionOfAlpn(c.raw.applicationProto());
  if (agreed === undefined) {
    l.log.warn("protocol_error", { server: l.label, error: "no ztna protocol agreed by ALPN" });
    c.close(CloseCode.PROTOCOL_ERROR, "no ztna protocol agreed by ALPN");
    return;
  }
  l.version = agreed;
  l.reader = createControlReader(undefined, agreed);
  const software = l.settings.software ?? `${VERSION} (${COMMIT})`;
  const hello: ControlMessage = {
    type: "hello",
    version: agreed,
    role: l.settings.role,
    name: l.settings.name,
    software,
  };
  c.writeStream(0, encodeControl(hello, agreed));
}

/** Bytes on a stream of the current connection: control messages on stream 0, TCP tunnels on the others. */
export function handleStreamData(
  l: LinkInternals,
  c: QuicConnection,
  streamId: number,
  data: Uint8Array,
  fin: boolean,
): void {
  if (streamId !== 0) {
    if (l.events.onStreamData) l.events.onStreamData(l.link, c, streamId, data, fin);
    else c.shutdownStream(streamId, StreamResetCode.PROTOCOL);
    return;
  }
  for (const decoded of l.reader.push(data)) {
    if (!decoded.ok) {
      l.log.warn("protocol_error", { server: l.label, error: decoded.error.message });
      c.close(CloseCode.PROTOCOL_ERROR, decoded.error.kind);
      return;
    }
    handleMessage(l, decoded.value);
  }
}

/** One message from the server. */
export function handleMessage(l: LinkInternals, msg: ControlMessage): void {
  switch (msg.type) {
    case "welcome":
      return handleWelcome(l, msg);
    case "observed":
      l.observed = msg.observed;
      return;
    case "ack":
    case "nack":
      return handleAnswer(l, msg);
    case "goaway":
      return handleGoaway(l, msg);
    default:
      l.events.onControl(l.link, msg);
  }
}

/** WELCOME: the link is ready; its owner registers or opens now. */
function handleWelcome(l: LinkInternals, msg: Message<"welcome">): void {
  l.observed = msg.observed;
  l.state = "ready";
  l.readyAt = Date.now();
  l.restartUntil = 0;
  l.log.info("link_ready", {
    server: l.label,
    observed: formatAddress(msg.observed),
    max_datagram: l.conn?.maxDatagramSize() ?? 0,
    protocol: l.version,
  });
  if (l.lastDownReason) l.events.onReconnected?.(l.link, l.lastDownReason, Date.now() - l.downSince);
  l.events.onReady(l.link);
}

/** ACK or NACK: settles the request with that id. */
function handleAnswer(l: LinkInternals, msg: Message<"ack" | "nack">): void {
  const resolve = l.pending.get(msg.req);
  l.pending.delete(msg.req);
  resolve?.(
    msg.type === "ack" ? { ok: true, channel: msg.channel } : { ok: false, code: msg.code, reason: msg.reason },
  );
}

/** GOAWAY: the connection will end; a restart hint sets how the link comes back (link-dial.ts). */
function handleGoaway(l: LinkInternals, msg: Message<"goaway">): void {
  l.goaway = true;
  l.announced = msg.restart ?? null;
  l.events.onControl(l.link, msg);
}

/** Sends a request on the ready connection; resolves with its answer, or link_down if the connection ends first. */
export function sendRequest(l: LinkInternals, body: RequestBody): Promise<RequestResult> {
  const c = l.conn;
  if (l.state !== "ready" || c === null) {
    return Promise.resolve({ ok: false, code: "link_down", reason: "not connected" });
  }
  const req = l.nextReq;
  l.nextReq = req === 0xffffffff ? 1 : req + 1;
  return new Promise((resolve) => {
    l.pending.set(req, resolve);
    const msg: ControlMessage = { ...body, req };
    c.writeStream(0, encodeControl(msg, l.version));
  });
}
