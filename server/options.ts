// Options of the relay server, declared as data for core/config.ts.
import {
  ConfigError,
  defineSpec,
  duration,
  hostPort,
  hostPortOrOff,
  integer,
  load,
  opt,
  requireBothOrNeither,
  requireLess,
  string,
} from "../core/config.ts";
import type { HostPort, LogFormat, LogLevel, ReadFile } from "../core/config.ts";
import { commonOptions, DAY, HOUR, MINUTE, serverPacketOption } from "../core/client/options.ts";
import { MAX_CONTROL_MESSAGE } from "../core/frame/mod.ts";
import { DEFAULT_LIMITS } from "./types.ts";

export interface ServerOptions {
  /** QUIC listen address. */
  listen: HostPort;
  /** Ops (health/metrics) listener, or null when `off`. */
  ops: HostPort | null;
  stateDir: string;
  /** Server certificate/key PEM paths; both or neither (neither: dev certificates in stateDir). */
  cert?: string;
  key?: string;
  /** CA bundle for verifying client certificates (mTLS). */
  ca?: string;
  /** All durations are milliseconds. */
  grace: number;
  /** Another server's HOST:PORT named in GOAWAY when this one drains. */
  alternate?: string;
  /** GOAWAY on a drain announces a restart: clients wait this long, then dial at a short interval... */
  restartReconnectIn: number;
  /** ...for this long after the connection ended; 0 = a drain is not a restart (clients back off). */
  restartTryFor: number;
  idleTimeout: number;
  keepalive: number;
  flowIdle: number;
  /** Largest UDP payload of a QUIC packet, bytes. */
  maxUdpPayload: number;
  /** Abuse limits; each is counted when hit. */
  maxConnectionsPerAddress: number;
  maxHandshakes: number;
  retryAbove: number;
  maxFlowsPerAgent: number;
  maxRegistrationsPerConnection: number;
  maxControlMessage: number;
  maxDatagramRate: number;
  logFormat: LogFormat;
  logLevel: LogLevel;
  config?: string;
}

/** Largest value of a u32 millisecond field on the wire (GOAWAY restart times). */
const U32_MAX = 0xffffffff;

/** The server spec; the log format default depends on whether stdout is a terminal. */
export function serverSpec(stdoutIsTty: boolean) {
  return defineSpec({
    program: "ztna-server",
    summary: "Relay server: accepts QUIC connections from connectors and agents and splices their flows.",
    options: {
      listen: opt(hostPort(), {
        help: "QUIC (UDP) listen address; port 0 lets the OS choose",
        default: "0.0.0.0:4433",
      }),
      ops: opt(hostPortOrOff(), { help: "Health/metrics HTTP listener, or off", default: "127.0.0.1:9090" }),
      cert: opt(string("FILE"), { help: "Server certificate chain PEM (with --key)" }),
      key: opt(string("FILE"), { help: "Server private key PEM (with --cert)" }),
      ca: opt(string("FILE"), { help: "CA PEM for verifying client certificates (mTLS)" }),
      grace: opt(duration({ max: HOUR }), {
        help: "Drain time on shutdown before connections are closed",
        default: "10s",
      }),
      alternate: opt(string("HOST:PORT"), { help: "Another server to name in GOAWAY when draining" }),
      restartTryFor: opt(duration({ max: U32_MAX }), {
        help:
          "On SIGTERM, GOAWAY tells clients the server restarts: they dial at a short interval for this long (0 = not a restart: they back off)",
        default: "60s",
      }),
      restartReconnectIn: opt(duration({ max: U32_MAX }), {
        help: "How long after the connection ends clients wait before their first dial to the restarted server",
        default: "0s",
      }),
      idleTimeout: opt(duration({ min: 1, max: HOUR }), { help: "QUIC idle timeout for silent peers", default: "30s" }),
      keepalive: opt(duration({ min: 1, max: 10 * MINUTE }), {
        help: "PING a peer silent this long (clients ping first: theirs is shorter)",
        default: "10s",
      }),
      flowIdle: opt(duration({ min: 1, max: DAY }), { help: "Close relayed flows idle this long", default: "120s" }),
      maxConnectionsPerAddress: opt(integer({ min: 1, max: 65_536 }), {
        help:
          "Connections one source address may hold before they say HELLO (handshaking or silent); when full, the oldest is closed. Peers that said HELLO never count",
        default: String(DEFAULT_LIMITS.connectionsPerAddress),
      }),
      maxHandshakes: opt(integer({ min: 1, max: 100_000 }), {
        help: "Handshakes in progress at once",
        default: String(DEFAULT_LIMITS.handshakes),
      }),
      retryAbove: opt(integer({ min: 0, max: 100_000 }), {
        help:
          "Handshakes in progress from which a new client must first prove its address with a retry (one more round trip); below it, clients connect at once. 0: always retry",
        default: String(DEFAULT_LIMITS.retryAbove),
      }),
      maxFlowsPerAgent: opt(integer({ min: 1, max: 1_000_000 }), {
        help: "Flows one agent connection may open",
        default: String(DEFAULT_LIMITS.flowsPerAgent),
      }),
      maxRegistrationsPerConnection: opt(integer({ min: 1, max: 65_535 }), {
        help: "Services one connector connection may register",
        default: String(DEFAULT_LIMITS.registrationsPerConnection),
      }),
      maxControlMessage: opt(integer({ min: 64, max: MAX_CONTROL_MESSAGE }), {
        help: "Largest control message accepted, bytes",
        default: String(DEFAULT_LIMITS.controlMessage),
      }),
      maxDatagramRate: opt(integer({ min: 1, max: 10_000_000 }), {
        help: "DATAGRAMs per second one connection may send",
        default: String(DEFAULT_LIMITS.datagramsPerSecond),
      }),
      ...serverPacketOption(),
      ...commonOptions(stdoutIsTty),
    },
    finish: (v): ServerOptions => {
      requireBothOrNeither(v, "cert", "key");
      requireLess(v, "keepalive", "idleTimeout");
      if (v.restartTryFor === 0 && v.restartReconnectIn > 0) {
        throw new ConfigError(
          "restartReconnectIn",
          "--restart-reconnect-in needs --restart-try-for above 0 (a drain that is no restart has no reconnect time)",
        );
      }
      return v;
    },
  });
}

/** Parse server options (argv without the program name); throws ConfigError or HelpRequested. */
export function parseServerOptions(
  argv: string[],
  env: Record<string, string | undefined>,
  ctx: { stdoutIsTty?: boolean; readFile?: ReadFile } = {},
): ServerOptions {
  return load(serverSpec(ctx.stdoutIsTty ?? false), argv, env, ctx.readFile);
}
