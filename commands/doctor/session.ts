/**
 * The doctor's own QUIC session with a server: dial, HELLO, then questions
 * that change nothing on the server (PROBE, path-probe datagrams on channel
 * 0) and, when asked for, one round trip through a service. Every wait has a
 * deadline; every outcome is data for the checks to judge.
 */
import {
  alpnFor,
  CloseCode,
  type ControlMessage,
  type ControlReader,
  createControlReader,
  createSegmentReader,
  DATAGRAM_HEADER_LEN,
  datagramChannel,
  encodeControl,
  encodeEndSegment,
  encodePathProbe,
  encodeStreamHeader,
  type NackCode,
  PATH_PROBE_CHANNEL,
  type ProbeReply,
  PROTOCOL_VERSIONS,
  type Role,
  versionOfAlpn,
  writeDatagramHeader,
} from "../../core/frame/mod.ts";
import type { Address } from "../../core/net/address.ts";
import type { Config } from "../../core/quic/native.ts";
import { type CloseInfo, createEndpoint, type Endpoint, type QuicConnection } from "../../core/quic/endpoint.ts";
import { COMMIT, VERSION } from "../../core/version.ts";

export interface DialOptions {
  server: Address;
  serverName: string;
  config: Config;
  role: Role;
  /** Until WELCOME, from the first packet. */
  timeoutMs: number;
  maxUdpPayload?: number;
}

/** Why a dial did not reach WELCOME. */
export type DialFailure =
  /** ICMP: nothing listens on that UDP port (or the host refused). */
  | { kind: "unreachable"; ms: number; error: string }
  /** Not one packet came back before the deadline. */
  | { kind: "no_answer"; ms: number }
  /** Packets came back but the handshake or HELLO did not finish in time. */
  | { kind: "stalled"; ms: number; established: boolean; packetsIn: number }
  /** The connection was closed: by a TLS alert, by the server after HELLO, or by an idle timeout. */
  | { kind: "closed"; ms: number; established: boolean; info: CloseInfo };

export type ControlAnswer =
  | { ok: true; msg: ControlMessage; sentAt: number; receivedAt: number }
  | { ok: false; error: string; close?: CloseInfo };

export type TcpOutcome =
  | { kind: "answered"; ms: number; bytes: number; fin: boolean }
  | { kind: "reset"; ms: number; code: number }
  | { kind: "silent"; ms: number };

export interface DoctorSession {
  readonly conn: QuicConnection;
  /** From the first packet to the end of our side of the TLS handshake. */
  readonly handshakeMs: number;
  /** From the first packet to WELCOME. */
  readonly welcomeMs: number;
  readonly observed: Address;
  /** The server's certificate (DER), as it presented it. */
  readonly serverCertificate: Uint8Array | null;
  /** Services the server reported up or down since we opened them. */
  readonly serviceStatus: Map<string, boolean>;
  rttMs(): number;
  /** Largest DATAGRAM quiche lets us send on this connection. */
  maxDatagram(): number;
  probe(service: string, timeoutMs: number): Promise<ControlAnswer>;
  open(service: string, timeoutMs: number): Promise<ControlAnswer>;
  /** Sends path probes of each size (twice) on channel 0; resolves with the sizes that came back. */
  pathProbe(sizes: number[], waitMs: number): Promise<Set<number>>;
  /** One datagram through a service's channel; resolves with the reply time, or null. */
  udpRoundTrip(channel: number, payload: Uint8Array, timeoutMs: number): Promise<{ ms: number; bytes: number } | null>;
  /** Opens a TCP stream through the channel, ends our side at once, and waits for the service's answer. */
  tcpProbe(channel: number, timeoutMs: number): Promise<TcpOutcome>;
  /** The close, once the connection is gone. */
  closed(): CloseInfo | null;
  close(): Promise<void>;
}

/** A TCP probe waiting for the service's answer on its stream. */
interface StreamWaiter {
  onData(chunk: Uint8Array, fin: boolean): void;
  onReset(code: number): void;
}

/** Everything one doctor session knows, from the dial to the close; every function below takes it as `s`. */
interface SessionState {
  /** Where to dial, as whom, and how long to wait for WELCOME. */
  readonly options: DialOptions;
  /** performance.now() when the dial began: every `ms` of the session counts from here. */
  readonly started: number;
  /** From the first packet to the end of our side of the TLS handshake (0 until then). */
  handshakeMs: number;
  /** The close, once the connection is gone; later questions are answered with it. */
  closeInfo: CloseInfo | null;
  /** The first socket error (an ICMP unreachable, say): it ends the wait for WELCOME. */
  socketError: string | null;
  /** The server's WELCOME: the address it saw us from, and when it came. */
  welcome: { observed: Address; ms: number } | null;
  /** Decodes stream 0; replaced at the handshake by one for the agreed version. */
  reader: ControlReader;
  /** The protocol version ALPN agreed (the newest both speak), for every message after HELLO. */
  version: number;
  /** The request id of the next PROBE or OPEN. */
  nextReq: number;
  /** Questions asked and not yet answered, by request id. */
  readonly pending: Map<number, (a: ControlAnswer) => void>;
  /** Services the server reported up or down since we opened them. */
  readonly serviceStatus: Map<string, boolean>;
  /** While a path probe runs: takes the size of each datagram echoed on channel 0. */
  onEchoed: ((size: number) => void) | null;
  /** UDP round trips waiting for their reply, by channel. */
  readonly channelWaiters: Map<number, (bytes: number) => void>;
  /** TCP probes waiting for their answer, by stream id. */
  readonly streamWaiters: Map<number, StreamWaiter>;
  /** Ends the current sleep of the wait for WELCOME early; set only while it sleeps. */
  wake: (() => void) | null;
}

export async function dial(
  options: DialOptions,
): Promise<{ ok: true; session: DoctorSession } | { ok: false; failure: DialFailure }> {
  const s: SessionState = {
    options,
    started: performance.now(),
    handshakeMs: 0,
    closeInfo: null,
    socketError: null,
    welcome: null,
    reader: createControlReader(),
    version: PROTOCOL_VERSIONS[0]!,
    nextReq: 1,
    pending: new Map(),
    serviceStatus: new Map(),
    onEchoed: null,
    channelWaiters: new Map(),
    streamWaiters: new Map(),
    wake: null,
  };
  const endpoint: Endpoint = await createEndpoint({
    bind: { host: options.server.host.includes(":") ? "::" : "0.0.0.0", port: 0 },
    server: false,
    config: options.config,
    maxUdpPayload: options.maxUdpPayload,
    keepaliveMs: 1_000,
    onSocketError(error) {
      s.socketError ??= error.message;
      poke(s);
    },
    handlers: {
      onEstablished: (c) => handleEstablished(s, c),
      onStreamData: (c, streamId, data, fin) => handleStreamData(s, c, streamId, data, fin),
      onStreamReset: (_c, streamId, code) => s.streamWaiters.get(streamId)?.onReset(code),
      onDatagram: (_c, data) => handleDatagram(s, data),
      onClosed: (_c, info) => handleClosed(s, info),
    },
  });

  // Offer every protocol version, as the programs do, so old and new servers both answer.
  options.config.setApplicationProtos(alpnFor(PROTOCOL_VERSIONS));
  const c = endpoint.connect(options.server, options.serverName);
  await waitForWelcome(s, s.started + options.timeoutMs);
  const hello = s.welcome;
  if (hello === null) {
    const failure = dialFailure(s, c);
    c.close(CloseCode.NO_ERROR, "ztna doctor gave up");
    await endpoint.close();
    return { ok: false, failure };
  }
  return { ok: true, session: openSession(s, endpoint, c, hello) };
}

/** Milliseconds since the dial began, to a tenth. */
function elapsed(s: SessionState): number {
  return Math.round((performance.now() - s.started) * 10) / 10;
}

/** Something the wait for WELCOME watches changed: look again now. */
function poke(s: SessionState): void {
  s.wake?.();
}

/** Our side of the handshake is done: take the version ALPN agreed and say HELLO in it. */
function handleEstablished(s: SessionState, c: QuicConnection): void {
  s.handshakeMs = elapsed(s);
  const agreed = versionOfAlpn(c.raw.applicationProto());
  if (agreed === undefined) {
    c.close(CloseCode.PROTOCOL_ERROR, "no ztna protocol agreed by ALPN");
    return;
  }
  s.version = agreed;
  s.reader = createControlReader(undefined, s.version);
  c.writeStream(
    0,
    encodeControl({
      type: "hello",
      version: s.version,
      role: s.options.role,
      name: "ztna-doctor",
      software: `ztna doctor ${VERSION} (${COMMIT})`,
    }, s.version),
  );
}

/** Stream 0 carries control messages; any other stream is a TCP probe's. */
function handleStreamData(s: SessionState, c: QuicConnection, streamId: number, data: Uint8Array, fin: boolean): void {
  if (streamId !== 0) {
    s.streamWaiters.get(streamId)?.onData(data, fin);
    return;
  }
  for (const decoded of s.reader.push(data)) {
    if (!decoded.ok) {
      c.close(CloseCode.PROTOCOL_ERROR, decoded.error.kind);
      return;
    }
    handleMessage(s, decoded.value);
  }
}

/** Channel 0 echoes our path probes; any other channel answers a UDP round trip. */
function handleDatagram(s: SessionState, data: Uint8Array): void {
  const channel = datagramChannel(data);
  if (channel === null) return;
  if (channel === PATH_PROBE_CHANNEL) s.onEchoed?.(data.length);
  else s.channelWaiters.get(channel)?.(data.length - DATAGRAM_HEADER_LEN);
}

/** The connection is gone: every open question gets the close as its answer. */
function handleClosed(s: SessionState, info: CloseInfo): void {
  s.closeInfo = info;
  for (const resolve of s.pending.values()) resolve({ ok: false, error: "connection closed", close: info });
  s.pending.clear();
  poke(s);
}

function handleMessage(s: SessionState, msg: ControlMessage): void {
  switch (msg.type) {
    case "welcome":
      s.welcome = { observed: msg.observed, ms: elapsed(s) };
      poke(s);
      return;
    case "ack":
    case "nack":
    case "probe_reply": {
      const resolve = s.pending.get(msg.req);
      s.pending.delete(msg.req);
      resolve?.({ ok: true, msg, sentAt: 0, receivedAt: Date.now() });
      return;
    }
    case "service_status":
      s.serviceStatus.set(msg.service, msg.up);
      return;
    default:
      return;
  }
}

/** Waits for WELCOME, a close, an ICMP error or the deadline, whichever comes first. */
async function waitForWelcome(s: SessionState, deadline: number): Promise<void> {
  while (s.welcome === null && s.closeInfo === null && s.socketError === null && performance.now() < deadline) {
    await new Promise<void>((resolve) => {
      s.wake = resolve;
      setTimeout(resolve, Math.max(1, Math.min(50, deadline - performance.now())));
    });
    s.wake = null;
  }
}

/** Why the wait ended without WELCOME, judged from what came back. */
function dialFailure(s: SessionState, c: QuicConnection): DialFailure {
  const packetsIn = c.raw.stats().recv;
  const ms = elapsed(s);
  if (s.closeInfo !== null) return { kind: "closed", ms, established: c.established, info: s.closeInfo };
  if (s.socketError !== null && packetsIn === 0) return { kind: "unreachable", ms, error: s.socketError };
  if (packetsIn === 0) return { kind: "no_answer", ms };
  return { kind: "stalled", ms, established: c.established, packetsIn };
}

/** The session the checks use, once WELCOME came. */
function openSession(
  s: SessionState,
  endpoint: Endpoint,
  c: QuicConnection,
  hello: { observed: Address; ms: number },
): DoctorSession {
  return {
    conn: c,
    handshakeMs: s.handshakeMs,
    welcomeMs: hello.ms,
    observed: hello.observed,
    serverCertificate: (c.raw.peerCertChain() ?? [])[0] ?? null,
    serviceStatus: s.serviceStatus,
    rttMs: () => c.rttSeconds() * 1000,
    maxDatagram: () => c.maxDatagramSize(),
    probe: (service, timeoutMs) => ask(s, c, { type: "probe", req: s.nextReq++, service }, timeoutMs),
    open: (service, timeoutMs) => ask(s, c, { type: "open", req: s.nextReq++, service }, timeoutMs),
    pathProbe: (sizes, waitMs) => pathProbe(s, c, sizes, waitMs),
    udpRoundTrip: (channel, payload, timeoutMs) => udpRoundTrip(s, c, channel, payload, timeoutMs),
    tcpProbe: (channel, timeoutMs) => tcpProbe(s, c, channel, timeoutMs),
    closed: () => s.closeInfo,
    async close() {
      c.close(CloseCode.NO_ERROR, "ztna doctor done");
      await endpoint.close();
    },
  };
}

/** Sends one question on stream 0 and waits for its ACK, NACK or PROBE_REPLY, the close, or the timeout. */
function ask(
  s: SessionState,
  c: QuicConnection,
  body: ControlMessage & { req: number },
  timeoutMs: number,
): Promise<ControlAnswer> {
  if (s.closeInfo !== null) return Promise.resolve({ ok: false, error: "connection closed", close: s.closeInfo });
  const sentAt = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.pending.delete(body.req);
      resolve({ ok: false, error: `no answer within ${timeoutMs} ms` });
    }, timeoutMs);
    s.pending.set(body.req, (a) => {
      clearTimeout(timer);
      resolve(a.ok ? { ...a, sentAt } : a);
    });
    c.writeStream(0, encodeControl(body, s.version));
  });
}

async function pathProbe(s: SessionState, c: QuicConnection, sizes: number[], waitMs: number): Promise<Set<number>> {
  const back = new Set<number>();
  s.onEchoed = (size) => back.add(size);
  for (let round = 0; round < 2; round++) {
    for (const size of sizes) {
      c.sendDatagram(encodePathProbe(size, size));
    }
    await new Promise((r) => setTimeout(r, waitMs / 2));
  }
  s.onEchoed = null;
  return back;
}

function udpRoundTrip(
  s: SessionState,
  c: QuicConnection,
  channel: number,
  payload: Uint8Array,
  timeoutMs: number,
): Promise<{ ms: number; bytes: number } | null> {
  const d = new Uint8Array(DATAGRAM_HEADER_LEN + payload.length);
  writeDatagramHeader(d, channel, 1);
  d.set(payload, DATAGRAM_HEADER_LEN);
  const sent = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.channelWaiters.delete(channel);
      resolve(null);
    }, timeoutMs);
    s.channelWaiters.set(channel, (bytes) => {
      clearTimeout(timer);
      s.channelWaiters.delete(channel);
      resolve({ ms: performance.now() - sent, bytes });
    });
    if (!c.sendDatagram(d)) {
      clearTimeout(timer);
      s.channelWaiters.delete(channel);
      resolve(null);
    }
  });
}

function tcpProbe(s: SessionState, c: QuicConnection, channel: number, timeoutMs: number): Promise<TcpOutcome> {
  const id = c.openStream();
  const sent = performance.now();
  const segments = createSegmentReader();
  let bytes = 0;
  return new Promise((resolve) => {
    const finish = (outcome: TcpOutcome) => {
      clearTimeout(timer);
      s.streamWaiters.delete(id);
      c.shutdownStream(id, 0);
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: "silent", ms: performance.now() - sent }), timeoutMs);
    s.streamWaiters.set(id, {
      // The answering direction has no header: segments only. Any payload, or the service's END, is an answer.
      onData(chunk, fin) {
        const result = segments.push(chunk, (payload) => (bytes += payload.length));
        if (bytes > 0 || result === "end" || fin) {
          finish({ kind: "answered", ms: performance.now() - sent, bytes, fin: result === "end" || fin });
        }
      },
      onReset(code) {
        finish({ kind: "reset", ms: performance.now() - sent, code });
      },
    });
    // Our side has nothing to say: header, then END with the FIN (a half-close, as a client that only listens).
    c.writeStream(id, encodeStreamHeader(channel));
    c.writeStream(id, encodeEndSegment(), true);
  });
}

/** A NACK's code from an answer, if it was one. */
export function nackOf(answer: ControlAnswer): { code: NackCode; reason: string } | null {
  return answer.ok && answer.msg.type === "nack" ? { code: answer.msg.code, reason: answer.msg.reason } : null;
}

export function probeReplyOf(answer: ControlAnswer): ProbeReply | null {
  return answer.ok && answer.msg.type === "probe_reply" ? answer.msg : null;
}
