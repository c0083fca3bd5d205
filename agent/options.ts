// Options of the agent, declared as data for core/config.ts.
import {
  custom,
  defineSpec,
  duration,
  hostPortOrOff,
  isValidServiceName,
  list,
  load,
  opt,
  optionError,
  parseHostPort,
} from "../core/config.ts";
import type { HostPort, ReadFile } from "../core/config.ts";
import { formatAddress } from "../core/net/address.ts";
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

/** One local listener that the agent exposes for a remote service. */
export interface AgentMapping {
  service: string;
  protocol: "udp" | "tcp";
  listen: HostPort;
}

export interface AgentOptions extends ClientOptions {
  /** At least one mapping. */
  map: AgentMapping[];
  ops: HostPort | null;
  /** Milliseconds. */
  flowIdle: number;
  grace: number;
}

/** Parse `NAME=udp://HOST:PORT` or `NAME=tcp://HOST:PORT`. */
export function parseMapping(raw: string): AgentMapping {
  const text = raw.trim();
  const m = /^([^=]*)=(udp|tcp):\/\/(.+)$/.exec(text);
  if (!m) throw new Error(`expected NAME=udp://HOST:PORT or NAME=tcp://HOST:PORT, got ${JSON.stringify(raw)}`);
  const service = m[1]!;
  if (!isValidServiceName(service)) {
    throw new Error(`invalid service name ${JSON.stringify(service)} in ${JSON.stringify(raw)}`);
  }
  let listen: HostPort;
  try {
    listen = parseHostPort(m[3]!);
  } catch (err) {
    throw new Error(`${(err as Error).message} in ${JSON.stringify(raw)}`);
  }
  return { service, protocol: m[2] as "udp" | "tcp", listen };
}

/** Two mappings may not bind the same protocol/address (port 0 binds distinct ephemeral ports). */
function checkDuplicateListeners(mappings: AgentMapping[]): void {
  const seen = new Set<string>();
  for (const { protocol, listen } of mappings) {
    if (listen.port === 0) continue;
    const key = `${protocol}://${formatAddress(listen)}`;
    if (seen.has(key)) throw optionError("map", `duplicate listen address ${key}`);
    seen.add(key);
  }
}

export function agentSpec(stdoutIsTty: boolean) {
  return defineSpec({
    program: "ztna-agent",
    summary: "Agent: exposes remote services on local UDP/TCP ports through the relay server.",
    options: {
      ...serverOptions(),
      map: opt(list(custom("NAME=udp|tcp://HOST:PORT", parseMapping)), {
        help: "Expose service NAME on a local listener",
        required: true,
      }),
      ops: opt(hostPortOrOff(), { help: "Health/metrics HTTP listener, or off", default: "127.0.0.1:9092" }),
      ...trustOptions(),
      ...linkTimingOptions(),
      flowIdle: opt(duration({ min: 1, max: DAY }), { help: "Close flows idle this long", default: "60s" }),
      grace: opt(duration({ max: HOUR }), { help: "Drain time on shutdown", default: "5s" }),
      ...commonOptions(stdoutIsTty),
    },
    finish: (v): AgentOptions => {
      checkDuplicateListeners(v.map);
      checkClientOptions(v);
      return v;
    },
  });
}

/** Parse agent options (argv without the program name); throws ConfigError or HelpRequested. */
export function parseAgentOptions(
  argv: string[],
  env: Record<string, string | undefined>,
  ctx: { stdoutIsTty?: boolean; readFile?: ReadFile } = {},
): AgentOptions {
  return load(agentSpec(ctx.stdoutIsTty ?? false), argv, env, ctx.readFile);
}
