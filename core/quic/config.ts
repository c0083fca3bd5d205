/** Builds quiche transport configurations for the two sides of a ztna connection. */
import { type Config, quiche } from "./native.ts";

/** The UDP payload QUIC packets are sized to: safe on any real path (IPv6 minimum MTU 1280 + headroom). */
export const QUIC_UDP_PAYLOAD = 1350;
/**
 * The largest packet worth configuring: quiche 0.18 never sends a packet over
 * 16383 bytes (its length must fit a 2-byte varint). Servers accept this much;
 * clients go beyond QUIC_UDP_PAYLOAD only after probing the path.
 */
export const MAX_QUIC_UDP_PAYLOAD = 16383;
/** The ACK delay we promise the peer (transport parameter max_ack_delay). */
export const MAX_ACK_DELAY_MS = 5;

export interface TransportOptions {
  /** Application protocols offered (client) or accepted (server), by ALPN identifier. */
  alpn: readonly string[];
  /** Idle timeout advertised to the peer; the effective one is the smaller of both sides'. */
  idleTimeoutMs: number;
  /** DATAGRAM queue lengths (frames) in each direction inside quiche. */
  datagramQueue?: number;
  /**
   * Largest UDP payload of a QUIC packet, sent and accepted (default 1350, safe
   * on any path). Raise it only where the path MTU allows (jumbo frames,
   * loopback): fewer, larger packets carry TCP streams much faster.
   */
  maxUdpPayload?: number;
}

export interface ServerTlsOptions extends TransportOptions {
  certPem: Uint8Array;
  keyPem: Uint8Array;
  /** When given, clients must present a certificate signed by this CA (mTLS). */
  clientCaPem?: Uint8Array;
}

export interface ClientTlsOptions extends TransportOptions {
  /** CA that signed the server certificate; null only with `insecure`. */
  caPem: Uint8Array | null;
  insecure: boolean;
  certPem?: Uint8Array;
  keyPem?: Uint8Array;
}

function applyTransport(config: Config, options: TransportOptions): Config {
  // Deep enough to ride out a burst, short enough not to turn overload into
  // seconds of queueing delay: for UDP, a quick drop beats a late packet.
  const queue = options.datagramQueue ?? 1024;
  config.setApplicationProtos([...options.alpn]);
  config.setMaxIdleTimeout(options.idleTimeoutMs);
  const payload = options.maxUdpPayload ?? QUIC_UDP_PAYLOAD;
  config.setMaxRecvUdpPayloadSize(payload);
  config.setMaxSendUdpPayloadSize(payload);
  config.setInitialMaxData(16 * 1024 * 1024);
  config.setInitialMaxStreamDataBidiLocal(4 * 1024 * 1024);
  config.setInitialMaxStreamDataBidiRemote(4 * 1024 * 1024);
  config.setInitialMaxStreamsBidi(1024);
  // No unidirectional streams: ztna never opens one, and leaving their
  // parameters out keeps the server's transport parameters inside quiche
  // 0.18's 128-byte buffer when a client's original DCID is 20 bytes long.
  config.setInitialMaxStreamDataUni(0);
  config.setInitialMaxStreamsUni(0);
  config.setMaxConnectionWindow(quiche.MAX_CONNECTION_WINDOW);
  config.setMaxStreamWindow(quiche.MAX_STREAM_WINDOW);
  config.enableDgram(true, queue, queue);
  // Peers are identified by connection ID, but ztna has no use for migration yet.
  config.setDisableActiveMigration(true);
  // BBR, not CUBIC: on a lossy path CUBIC shrinks the window to two packets,
  // so a lost packet and a lost ACK leave both ends waiting for a probe
  // timeout; the late ACK then reads as a huge RTT sample, the next timeout
  // grows with it, and the link spirals into seconds of RTT that it never
  // leaves (issue 8). BBR keeps its window from measured bandwidth and
  // minimum RTT, so random loss costs retransmissions, not the link.
  // ZTNA_CC=cubic|reno exists for side-by-side measurements only (bench, lossy tests).
  config.setCcAlgorithm(
    process.env.ZTNA_CC === "cubic"
      ? quiche.CongestionControlAlgorithm.CUBIC
      : process.env.ZTNA_CC === "reno"
      ? quiche.CongestionControlAlgorithm.Reno
      : quiche.CongestionControlAlgorithm.BBR,
  );
  // Our engine sends ACKs within ACK_DELAY_MS (core/quic/endpoint.ts);
  // promising a shorter delay than quiche's 25 ms default shortens the probe
  // timeout that recovers a lost tail.
  config.setMaxAckDelay(MAX_ACK_DELAY_MS);
  config.enablePacing(false);
  config.grease(false);
  return config;
}

export function serverQuicConfig(options: ServerTlsOptions): Config {
  const mtls = options.clientCaPem !== undefined;
  const config = quiche.Config.withBoringSslCtx(
    mtls,
    false,
    options.clientCaPem ?? null,
    [options.keyPem],
    [options.certPem],
    null,
  );
  return applyTransport(config, options);
}

export function clientQuicConfig(options: ClientTlsOptions): Config {
  const identity = options.certPem && options.keyPem;
  const config = quiche.Config.withBoringSslCtx(
    !options.insecure,
    false,
    options.insecure ? null : options.caPem,
    identity ? [options.keyPem!] : null,
    identity ? [options.certPem!] : null,
    null,
  );
  return applyTransport(config, options);
}
