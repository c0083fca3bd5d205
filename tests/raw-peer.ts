/** A bare QUIC client for tests that speak the protocol by hand, or break it on purpose. */
import { createControlReader, encodeControl, type Address, type ControlMessage } from "../core/frame/control.ts";
import { clientQuicConfig } from "../core/quic/config.ts";
import { createEndpoint, type CloseInfo, type QuicConnection } from "../core/quic/endpoint.ts";
import { devCerts } from "./harness.ts";

export interface RawPeer {
  conn: QuicConnection;
  control: Uint8Array[];
  /** The control messages decoded from `control`. */
  messages: ControlMessage[];
  datagrams: Uint8Array[];
  closed: CloseInfo | null;
  send(msg: ControlMessage): void;
  /** True once the handshake completed. */
  readonly established: boolean;
  close(): Promise<void>;
}

/** A bare QUIC client that speaks the protocol by hand (or not at all). */
export async function rawPeer(server: Address, options: { waitMs?: number } = {}): Promise<RawPeer> {
  const c = await devCerts();
  const peer = { control: [] as Uint8Array[], messages: [] as ControlMessage[], datagrams: [] as Uint8Array[], closed: null as CloseInfo | null } as RawPeer;
  const reader = createControlReader();
  let established = false;
  const endpoint = await createEndpoint({
    bind: { host: "127.0.0.1", port: 0 },
    server: false,
    config: clientQuicConfig({ caPem: c.caPem, insecure: false, idleTimeoutMs: 5_000 }),
    handlers: {
      onEstablished: () => void (established = true),
      onStreamData: (_c, _id, data) => {
        peer.control.push(data.slice());
        for (const m of reader.push(data)) if (m.ok) peer.messages.push(m.value);
      },
      onDatagram: (_c, data) => void peer.datagrams.push(data.slice()),
      onClosed: (_c, info) => void (peer.closed = info),
    },
  });
  peer.close = () => endpoint.close();
  peer.conn = endpoint.connect(server, "localhost");
  peer.send = (msg) => peer.conn.writeStream(0, encodeControl(msg));
  Object.defineProperty(peer, "established", { get: () => established });
  const deadline = Date.now() + (options.waitMs ?? 3_000);
  while (!established && peer.closed === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return peer;
}

