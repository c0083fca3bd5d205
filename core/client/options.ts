// Options every client program (connector, agent) shares: which servers, how to
// trust them, keepalive and reconnect timing, logging. Declared once here so
// the two programs cannot drift apart.
import {
  boolean,
  custom,
  duration,
  forbidBoth,
  hostPort,
  integer,
  list,
  LOG_FORMATS,
  LOG_LEVELS,
  oneOf,
  opt,
  requireBothOrNeither,
  requireLess,
  string,
} from "../config.ts";
import type { HostPort, Kind, LogFormat, LogLevel } from "../config.ts";
import { QUIC_UDP_PAYLOAD } from "../quic/config.ts";
import { MAX_AUTO_UDP_PAYLOAD } from "./path-probe.ts";
import type { Logger } from "../log.ts";
import type { BackoffSettings } from "./backoff.ts";
import { type ClientTls, clientTls } from "./tls.ts";
import type { Config } from "../quic/native.ts";

export interface ClientOptions {
  /** Relay servers, tried in order. */
  server: HostPort[];
  /** CA PEM for the server certificate; neither this nor insecure: `<stateDir>/ca.pem` if present. */
  ca?: string;
  /** Skip server certificate verification (development only). */
  insecure: boolean;
  /** Client certificate/key PEM paths (mTLS); both or neither. */
  cert?: string;
  key?: string;
  /** TLS server name override (defaults to the server host). */
  serverName?: string;
  /** All durations are milliseconds. */
  keepalive: number;
  idleTimeout: number;
  reconnectBase: number;
  reconnectCap: number;
  /** Dial interval inside a restart window announced by the server (GOAWAY). */
  restartRetry: number;
  /** 0 = retry forever. */
  reconnectMaxAttempts: number;
  /** Bytes, or auto; see `quicPacketOption`. */
  maxUdpPayload: number | "auto";
  stateDir: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
  config?: string;
}

// Upper bounds of duration options (milliseconds): generous, but a typo such as
// `--flow-idle 1000h` is refused when parsed rather than misbehaving later.
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** The server list and trust options, first in every client's help. */
export function serverOptions() {
  return {
    server: opt(list(hostPort({ allowPortZero: false })), { help: "Relay server address(es)", required: true }),
  };
}

export function trustOptions() {
  return {
    ca: opt(string("FILE"), { help: "CA PEM for verifying the server (default: <state-dir>/ca.pem if present)" }),
    insecure: opt(boolean(), { help: "Do not verify the server certificate (development only)" }),
    cert: opt(string("FILE"), { help: "Client certificate PEM for mTLS (with --key)" }),
    key: opt(string("FILE"), { help: "Client private key PEM for mTLS (with --cert)" }),
    serverName: opt(string("NAME"), { help: "TLS server name to verify (default: the server host)" }),
  };
}

export function linkTimingOptions() {
  return {
    keepalive: opt(duration({ min: 1, max: 10 * MINUTE }), {
      help: "PING after this long without hearing the server (keeps NAT bindings; below --idle-timeout)",
      default: "2s",
    }),
    idleTimeout: opt(duration({ min: 1, max: HOUR }), {
      help: "Declare a silent server dead after this long",
      default: "5s",
    }),
    reconnectBase: opt(duration({ min: 1, max: HOUR }), { help: "First reconnect backoff delay", default: "100ms" }),
    reconnectCap: opt(duration({ min: 1, max: DAY }), { help: "Maximum reconnect backoff delay", default: "30s" }),
    restartRetry: opt(duration({ min: 10, max: 60_000 }), {
      help: "Dial interval while a server that announced a restart comes back (instead of the backoff)",
      default: "250ms",
    }),
    reconnectMaxAttempts: opt(integer({ min: 0, max: 1_000_000 }), {
      help: "Give up after this many failed reconnects (0 = never)",
      default: "0",
    }),
    ...quicPacketOption(),
  };
}

/**
 * QUIC packet size of a connector or agent: `auto` (1350, or more where a
 * probe shows the path to the server carries more: loopback, jumbo frames),
 * or a fixed number of bytes.
 */
export function quicPacketOption() {
  return {
    maxUdpPayload: opt(payloadOrAuto(), {
      help:
        `Largest UDP payload of a QUIC packet: auto (${QUIC_UDP_PAYLOAD}, or up to ${MAX_AUTO_UDP_PAYLOAD} where a probe shows the path to the server carries it), or a fixed number of bytes`,
      default: "auto",
    }),
  };
}

/** A packet-size cap (the server's: each connection uses what its client found the path to carry). */
export function serverPacketOption(
  help =
    `Largest UDP payload of a QUIC packet the server sends or accepts; each connection uses the size its client probed (${QUIC_UDP_PAYLOAD} on ordinary paths)`,
) {
  return {
    maxUdpPayload: opt(integer({ min: 1200, max: 65527 }), { help, default: String(MAX_AUTO_UDP_PAYLOAD) }),
  };
}

function payloadOrAuto(): Kind<number | "auto"> {
  const bytes = integer({ min: 1200, max: 65527 });
  return custom("N|auto", (raw) => (raw.trim() === "auto" ? "auto" : bytes.parse(raw)));
}

/** State directory and logging, shared by all three programs. */
export function commonOptions(stdoutIsTty: boolean) {
  return {
    stateDir: opt(string("DIR"), { help: "State directory", default: ".ztna" }),
    logFormat: opt(oneOf(LOG_FORMATS), {
      help: "Log output format",
      default: stdoutIsTty ? "text" : "json",
      defaultHelp: "text on a terminal, else json",
    }),
    logLevel: opt(oneOf(LOG_LEVELS), { help: "Minimum log level", default: "info" }),
  };
}

/** Cross-field rules of the client options. */
export function checkClientOptions(v: Record<string, unknown>): void {
  forbidBoth(v, "ca", "insecure");
  requireBothOrNeither(v, "cert", "key");
  requireLess(v, "keepalive", "idleTimeout");
  requireLess(v, "reconnectBase", "reconnectCap", true);
}

export interface LinkBasics {
  servers: HostPort[];
  serverName?: string;
  quicConfig: Config;
  keepaliveMs: number;
  connectTimeoutMs: number;
  backoff: BackoffSettings;
  maxUdpPayload: number | "auto";
  restartRetryMs: number;
}

/**
 * The link settings a client program derives from its options; `tls` is what
 * `clientTls` loaded (it is read, and its files checked, before anything listens).
 */
export function linkBasics(options: ClientOptions, log: Logger, tls: ClientTls = clientTls(options, log)): LinkBasics {
  return {
    servers: options.server,
    serverName: options.serverName,
    quicConfig: tls.quicConfig,
    keepaliveMs: options.keepalive,
    connectTimeoutMs: Math.max(options.idleTimeout, 1_000),
    backoff: { baseMs: options.reconnectBase, capMs: options.reconnectCap, maxAttempts: options.reconnectMaxAttempts },
    maxUdpPayload: options.maxUdpPayload,
    restartRetryMs: options.restartRetry,
  };
}
