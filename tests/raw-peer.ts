/** A bare QUIC client for tests that speak the protocol by hand, or break it on purpose. */
import {
  alpnFor,
  type ControlMessage,
  createControlReader,
  encodeControl,
  PROTOCOL_VERSION,
} from "../core/frame/mod.ts";
import type { Address } from "../core/net/address.ts";
import { clientQuicConfig } from "../core/quic/config.ts";
import { quiche } from "../core/quic/native.ts";
import { type CloseInfo, createEndpoint, type QuicConnection } from "../core/quic/endpoint.ts";
import { devCerts } from "./harness.ts";

export interface RawPeer {
  conn: QuicConnection;
  control: Uint8Array[];
  /** The control messages decoded from `control`. */
  messages: ControlMessage[];
  /** Control bytes that did not decode, as the error sentence (an old client would close on these). */
  errors: string[];
  datagrams: Uint8Array[];
  closed: CloseInfo | null;
  send(msg: ControlMessage): void;
  /** True once the handshake completed. */
  readonly established: boolean;
  close(): Promise<void>;
}

/**
 * A bare QUIC client that speaks the protocol by hand (or not at all).
 * `version` pins the one protocol version it offers (ALPN) and decodes and
 * encodes with: 1 plays a client built before version 2 existed.
 */
export async function rawPeer(server: Address, options: { waitMs?: number; version?: number } = {}): Promise<RawPeer> {
  const c = await devCerts();
  const version = options.version ?? PROTOCOL_VERSION;
  const peer = {
    control: [] as Uint8Array[],
    messages: [] as ControlMessage[],
    errors: [] as string[],
    datagrams: [] as Uint8Array[],
    closed: null as CloseInfo | null,
  } as RawPeer;
  const reader = createControlReader(undefined, version);
  const config = clientQuicConfig({ alpn: alpnFor(), caPem: c.caPem, insecure: false, idleTimeoutMs: 5_000 });
  config.setApplicationProtos(alpnFor([version]));
  let established = false;
  const endpoint = await createEndpoint({
    bind: { host: "127.0.0.1", port: 0 },
    server: false,
    config,
    handlers: {
      onEstablished: () => void (established = true),
      onStreamData: (_c, _id, data) => {
        peer.control.push(data.slice());
        for (const m of reader.push(data)) {
          if (m.ok) peer.messages.push(m.value);
          else peer.errors.push(m.error.message);
        }
      },
      onDatagram: (_c, data) => void peer.datagrams.push(data.slice()),
      onClosed: (_c, info) => void (peer.closed = info),
    },
  });
  peer.close = () => endpoint.close();
  peer.conn = endpoint.connect(server, "localhost");
  peer.send = (msg) => peer.conn.writeStream(0, encodeControl(msg, version));
  Object.defineProperty(peer, "established", { get: () => established });
  const deadline = Date.now() + (options.waitMs ?? 3_000);
  while (!established && peer.closed === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return peer;
}

/**
 * The first datagram of a real client (quiche dialling from `local` to
 * `server`, nothing sent): a decryptable Initial with a fresh random DCID and
 * an empty token, for tests that hand packets to a server or a parser.
 */
export function clientFirstInitial(local: Address, server: Address): Uint8Array {
  const config = clientQuicConfig({ alpn: alpnFor(), caPem: null, insecure: true, idleTimeoutMs: 5_000 });
  const conn = quiche.Connection.connect(
    "localhost",
    crypto.getRandomValues(new Uint8Array(16)),
    local,
    server,
    config,
  );
  const out = new Uint8Array(1500);
  const [n] = conn.send(out)!;
  return out.slice(0, n);
}
