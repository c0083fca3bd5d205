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
  createControlReader,
  createSegmentReader,
  DATAGRAM_HEADER_LEN,
  encodeControl,
  encodeEndSegment,
  encodeStreamHeader,
  type NackCode,
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

export async function dial(
  options: DialOptions,
): Promise<{ ok: true; session: DoctorSession } | { ok: false; failure: DialFailure }> {
  const started = performance.now();
  const ms = () => Math.round((performance.now() - started) * 10) / 10;
  let conn: QuicConnection | null = null;
  let handshakeMs = 0;
  let closeInfo: CloseInfo | null = null;
  let socketError: string | null = null;
  let welcome: { observed: Address; ms: number } | null = null;
  let reader = createControlReader();
  /** The protocol version ALPN agreed (the newest both speak), for every message after HELLO. */
  let version = PROTOCOL_VERSIONS[0]!;
  let nextReq = 1;
  const pending = new Map<number, (a: ControlAnswer) => void>();
  const serviceStatus = new Map<string, boolean>();
  let onEchoed: ((size: number) => void) | null = null;
  const channelWaiters = new Map<number, (bytes: number) => void>();
  const streamWaiters = new Map<
    number,
    { onData(chunk: Uint8Array, fin: boolean): void; onReset(code: number): void }
  >();
  let wake: (() => void) | null = null;
  const poke = () => wake?.();

  const endpoint: Endpoint = await createEndpoint({
    bind: { host: options.server.host.includes(":") ? "::" : "0.0.0.0", port: 0 },
    server: false,
    config: options.config,
    maxUdpPayload: options.maxUdpPayload,
    keepaliveMs: 1_000,
    onSocketError(error) {
      socketError ??= error.message;
      poke();
    },
    handlers: {
      onEstablished(c) {
        handshakeMs = ms();
        const agreed = versionOfAlpn(c.raw.applicationProto());
        if (agreed === undefined) {
          c.close(CloseCode.PROTOCOL_ERROR, "no ztna protocol agreed by ALPN");
          return;
        }
        version = agreed;
        reader = createControlReader(undefined, version);
        c.writeStream(
          0,
          encodeControl({
            type: "hello",
            version,
            role: options.role,
            name: "ztna-doctor",
            software: `ztna doctor ${VERSION} (${COMMIT})`,
          }, version),
        );
      },
      onStreamData(c, streamId, data, fin) {
        if (streamId !== 0) {
          streamWaiters.get(streamId)?.onData(data, fin);
          return;
        }
        for (const decoded of reader.push(data)) {
          if (!decoded.ok) {
            c.close(CloseCode.PROTOCOL_ERROR, decoded.error.kind);
            return;
          }
          onMessage(decoded.value);
        }
      },
      onStreamReset(_c, streamId, code) {
        streamWaiters.get(streamId)?.onReset(code);
      },
      onDatagram(_c, data) {
        if (data.length < DATAGRAM_HEADER_LEN) return;
        const channel = (data[0]! << 8) | data[1]!;
        if (channel === 0) onEchoed?.(data.length);
        else channelWaiters.get(channel)?.(data.length - DATAGRAM_HEADER_LEN);
      },
      onClosed(_c, info) {
        closeInfo = info;
        for (const resolve of pending.values()) resolve({ ok: false, error: "connection closed", close: info });
        pending.clear();
        poke();
      },
    },
  });

  function onMessage(msg: ControlMessage) {
    switch (msg.type) {
      case "welcome":
        welcome = { observed: msg.observed, ms: ms() };
        poke();
        return;
      case "ack":
      case "nack":
      case "probe_reply": {
        const resolve = pending.get(msg.req);
        pending.delete(msg.req);
        resolve?.({ ok: true, msg, sentAt: 0, receivedAt: Date.now() });
        return;
      }
      case "service_status":
        serviceStatus.set(msg.service, msg.up);
        return;
      default:
        return;
    }
  }

  // Offer every protocol version, as the programs do, so old and new servers both answer.
  options.config.setApplicationProtos(alpnFor(PROTOCOL_VERSIONS));
  conn = endpoint.connect(options.server, options.serverName);
  const deadline = started + options.timeoutMs;
  // Wait for WELCOME, a close, an ICMP error or the deadline, whichever comes first.
  while (welcome === null && closeInfo === null && socketError === null && performance.now() < deadline) {
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, Math.max(1, Math.min(50, deadline - performance.now())));
    });
    wake = null;
  }
  const c = conn;
  if (welcome === null) {
    const packetsIn = c.raw.stats().recv;
    let failure: DialFailure;
    if (closeInfo !== null) failure = { kind: "closed", ms: ms(), established: c.established, info: closeInfo };
    else if (socketError !== null && packetsIn === 0) failure = { kind: "unreachable", ms: ms(), error: socketError };
    else if (packetsIn === 0) failure = { kind: "no_answer", ms: ms() };
    else failure = { kind: "stalled", ms: ms(), established: c.established, packetsIn };
    c.close(CloseCode.NO_ERROR, "ztna doctor gave up");
    await endpoint.close();
    return { ok: false, failure };
  }
  const hello = welcome as { observed: Address; ms: number };

  const ask = (body: ControlMessage & { req: number }, timeoutMs: number): Promise<ControlAnswer> => {
    if (closeInfo !== null) return Promise.resolve({ ok: false, error: "connection closed", close: closeInfo });
    const sentAt = Date.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(body.req);
        resolve({ ok: false, error: `no answer within ${timeoutMs} ms` });
      }, timeoutMs);
      pending.set(body.req, (a) => {
        clearTimeout(timer);
        resolve(a.ok ? { ...a, sentAt } : a);
      });
      c.writeStream(0, encodeControl(body, version));
    });
  };

  const session: DoctorSession = {
    conn: c,
    handshakeMs,
    welcomeMs: hello.ms,
    observed: hello.observed,
    serverCertificate: (c.raw.peerCertChain() ?? [])[0] ?? null,
    serviceStatus,
    rttMs: () => c.rttSeconds() * 1000,
    maxDatagram: () => c.maxDatagramSize(),
    probe: (service, timeoutMs) => ask({ type: "probe", req: nextReq++, service }, timeoutMs),
    open: (service, timeoutMs) => ask({ type: "open", req: nextReq++, service }, timeoutMs),
    async pathProbe(sizes, waitMs) {
      const back = new Set<number>();
      onEchoed = (size) => back.add(size);
      for (let round = 0; round < 2; round++) {
        for (const size of sizes) {
          const d = new Uint8Array(size);
          writeDatagramHeader(d, 0, size);
          c.sendDatagram(d);
        }
        await new Promise((r) => setTimeout(r, waitMs / 2));
      }
      onEchoed = null;
      return back;
    },
    udpRoundTrip(channel, payload, timeoutMs) {
      const d = new Uint8Array(DATAGRAM_HEADER_LEN + payload.length);
      writeDatagramHeader(d, channel, 1);
      d.set(payload, DATAGRAM_HEADER_LEN);
      const sent = performance.now();
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          channelWaiters.delete(channel);
          resolve(null);
        }, timeoutMs);
        channelWaiters.set(channel, (bytes) => {
          clearTimeout(timer);
          channelWaiters.delete(channel);
          resolve({ ms: performance.now() - sent, bytes });
        });
        if (!c.sendDatagram(d)) {
          clearTimeout(timer);
          channelWaiters.delete(channel);
          resolve(null);
        }
      });
    },
    tcpProbe(channel, timeoutMs) {
      const id = c.openStream();
      const sent = performance.now();
      const segments = createSegmentReader();
      let bytes = 0;
      return new Promise((resolve) => {
        const finish = (outcome: TcpOutcome) => {
          clearTimeout(timer);
          streamWaiters.delete(id);
          c.shutdownStream(id, 0);
          resolve(outcome);
        };
        const timer = setTimeout(() => finish({ kind: "silent", ms: performance.now() - sent }), timeoutMs);
        streamWaiters.set(id, {
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
    },
    closed: () => closeInfo,
    async close() {
      c.close(CloseCode.NO_ERROR, "ztna doctor done");
      await endpoint.close();
    },
  };
  return { ok: true, session };
}

/** A NACK's code from an answer, if it was one. */
export function nackOf(answer: ControlAnswer): { code: NackCode; reason: string } | null {
  return answer.ok && answer.msg.type === "nack" ? { code: answer.msg.code, reason: answer.msg.reason } : null;
}

export function probeReplyOf(answer: ControlAnswer): ProbeReply | null {
  return answer.ok && answer.msg.type === "probe_reply" ? answer.msg : null;
}
