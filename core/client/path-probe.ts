/**
 * How large a QUIC packet the path to a server carries, found out before a
 * link uses it. quiche 0.18 has no path-MTU discovery, and a packet size the
 * path cannot carry is a black hole (every full packet lost), so a link only
 * goes beyond the safe 1350 bytes after a probe: a short-lived connection
 * that allows the larger size sends one DATAGRAM that fills such a packet on
 * channel 0, and the server sends it back (docs/protocol.md: path probe). If
 * the echo returns, the path carries that size both ways.
 *
 * Candidates come from the interface MTU toward the server (loopback, jumbo
 * frames); on an ordinary 1500-byte path there is nothing to gain and no
 * probe is made.
 */
import { datagramChannel, encodePathProbe, PATH_PROBE_CHANNEL } from "../frame/mod.ts";
import type { Address } from "../net/address.ts";
import type { Config } from "../quic/native.ts";
import { MAX_QUIC_UDP_PAYLOAD, QUIC_UDP_PAYLOAD } from "../quic/config.ts";
import { createEndpoint } from "../quic/endpoint.ts";
import { routeUdpPayload } from "../runtime/route-mtu.ts";

/** The largest packet an automatic probe tries. */
export const MAX_AUTO_UDP_PAYLOAD = MAX_QUIC_UDP_PAYLOAD;
/** Below this gain over the safe default, a probe is not worth a handshake. */
const MIN_GAIN = 1.5;

/** The size worth probing toward `remote`, or null when the safe default is all there is to have. */
export function probeCandidate(remote: Address, max = MAX_AUTO_UDP_PAYLOAD): number | null {
  const route = routeUdpPayload(remote.host);
  if (route === null) return null;
  const candidate = Math.min(route, max);
  return candidate >= QUIC_UDP_PAYLOAD * MIN_GAIN ? candidate : null;
}

export interface ProbeOptions {
  remote: Address;
  serverName: string;
  /** The link's configuration; its payload sizes are set for the probe (quiche copies them at connect). */
  config: Config;
  size: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ProbeResult {
  /** The packet size that went to the server and came back (at most `size`, as much as the server allows), or null. */
  payload: number | null;
  /** False when no handshake completed (nobody listening yet): nothing was learnt about the path. */
  reached: boolean;
}

export async function probePath(options: ProbeOptions): Promise<ProbeResult> {
  const { config, size } = options;
  config.setMaxSendUdpPayloadSize(size);
  config.setMaxRecvUdpPayloadSize(size);
  let settle: (payload: number | null) => void = () => {};
  const result = new Promise<number | null>((resolve) => (settle = resolve));
  let probeLen = 0;
  let payload = 0;
  const endpoint = await createEndpoint({
    bind: { host: options.remote.host.includes(":") ? "::" : "0.0.0.0", port: 0 },
    server: false,
    config,
    maxUdpPayload: size,
    // ICMP unreachable: nobody listens there (yet); give up at once.
    onSocketError: () => settle(null),
    handlers: {
      onDatagram(_c, data) {
        if (probeLen > 0 && data.length === probeLen && datagramChannel(data) === PATH_PROBE_CHANNEL) settle(payload);
      },
      onClosed: () => settle(null),
    },
  });
  const timer = setTimeout(() => settle(null), options.timeoutMs);
  const onAbort = () => settle(null);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const conn = endpoint.connect(options.remote, options.serverName);
  // Once established, quiche allows the smaller of our size and the server's;
  // a probe DATAGRAM fills such a packet (sent twice: one loss must not decide).
  const poll = setInterval(() => {
    if (probeLen > 0 || !conn.established) return;
    payload = conn.raw.maxSendUdpPayloadSize();
    if (payload < QUIC_UDP_PAYLOAD * MIN_GAIN) return settle(null);
    probeLen = conn.maxDatagramSize();
    const probe = encodePathProbe(probeLen);
    conn.sendDatagram(probe);
    setTimeout(() => conn.sendDatagram(probe), 20);
  }, 2);
  try {
    const found = await result;
    return { payload: found, reached: conn.established };
  } finally {
    clearInterval(poll);
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    await endpoint.close(0, "path probe done");
  }
}
