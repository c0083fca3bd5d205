// Options of the connector, declared as data for core/config.ts.
import { defineSpec, duration, hostPort, hostPortOrOff, load, opt, serviceName } from "../core/config.ts";
import type { HostPort, ReadFile } from "../core/config.ts";
import {
  checkClientOptions,
  type ClientOptions,
  commonOptions,
  DAY,
  HOUR,
  linkTimingOptions,
  serverOptions,
  trustOptions,
} from "../core/client/options.ts";

export interface ConnectorOptions extends ClientOptions {
  /** Service name this connector publishes. */
  service: string;
  /** Local target that flows are forwarded to. */
  forward: HostPort;
  ops: HostPort | null;
  /** Milliseconds. */
  flowIdle: number;
  grace: number;
}

export function connectorSpec(stdoutIsTty: boolean) {
  return defineSpec({
    program: "ztna-connector",
    summary: "Connector: publishes a local service through the relay server.",
    options: {
      ...serverOptions(),
      service: opt(serviceName(), { help: "Service name to publish", required: true }),
      forward: opt(hostPort({ allowPortZero: false }), { help: "Local target to forward flows to", required: true }),
      ops: opt(hostPortOrOff(), { help: "Health/metrics HTTP listener, or off", default: "127.0.0.1:9091" }),
      ...trustOptions(),
      flowIdle: opt(duration({ min: 1, max: DAY }), { help: "Close flows idle this long", default: "60s" }),
      grace: opt(duration({ max: HOUR }), { help: "Drain time on shutdown", default: "10s" }),
      ...linkTimingOptions(),
      ...commonOptions(stdoutIsTty),
    },
    finish: (v): ConnectorOptions => {
      checkClientOptions(v);
      return v;
    },
  });
}

/** Parse connector options (argv without the program name); throws ConfigError or HelpRequested. */
export function parseConnectorOptions(
  argv: string[],
  env: Record<string, string | undefined>,
  ctx: { stdoutIsTty?: boolean; readFile?: ReadFile } = {},
): ConnectorOptions {
  return load(connectorSpec(ctx.stdoutIsTty ?? false), argv, env, ctx.readFile);
}
