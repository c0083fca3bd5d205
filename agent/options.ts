// Options of the agent, declared as data for core/config.ts.
import {
  boolean,
  custom,
  defineSpec,
  duration,
  forbidBoth,
  formatHostPort,
  hostPort,
  hostPortOrOff,
  integer,
  isValidServiceName,
  list,
  load,
  LOG_FORMATS,
  LOG_LEVELS,
  oneOf,
  opt,
  optionError,
  parseHostPort,
  requireBothOrNeither,
  requireLess,
  string,
} from '../core/config.ts';
import type { HostPort, LogFormat, LogLevel, ReadFile } from '../core/config.ts';

/** One local listener that the agent exposes for a remote service. */
export interface AgentMapping {
  service: string;
  protocol: 'udp' | 'tcp';
  listen: HostPort;
}

export interface AgentOptions {
  /** Relay servers, tried in order. */
  server: HostPort[];
  /** At least one mapping. */
  map: AgentMapping[];
  ops: HostPort | null;
  ca?: string;
  insecure: boolean;
  cert?: string;
  key?: string;
  serverName?: string;
  /** All durations are milliseconds. */
  keepalive: number;
  idleTimeout: number;
  reconnectBase: number;
  reconnectCap: number;
  /** 0 = retry forever. */
  reconnectMaxAttempts: number;
  flowIdle: number;
  grace: number;
  stateDir: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
  config?: string;
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
  return { service, protocol: m[2] as 'udp' | 'tcp', listen };
}

/** Two mappings may not bind the same protocol/address (port 0 binds distinct ephemeral ports). */
function checkDuplicateListeners(mappings: AgentMapping[]): void {
  const seen = new Set<string>();
  for (const { protocol, listen } of mappings) {
    if (listen.port === 0) continue;
    const key = `${protocol}://${formatHostPort(listen)}`;
    if (seen.has(key)) throw optionError('map', `duplicate listen address ${key}`);
    seen.add(key);
  }
}

export function agentSpec(stdoutIsTty: boolean) {
  return defineSpec({
    program: 'ztna-agent',
    summary: 'Agent: exposes remote services on local UDP/TCP ports through the relay server.',
    options: {
      server: opt(list(hostPort({ allowPortZero: false })), { help: 'Relay server address(es)', required: true }),
      map: opt(list(custom('NAME=udp|tcp://HOST:PORT', parseMapping)), {
        help: 'Expose service NAME on a local listener',
        required: true,
      }),
      ops: opt(hostPortOrOff(), { help: 'Health/metrics HTTP listener, or off', default: '127.0.0.1:9092' }),
      ca: opt(string('FILE'), { help: 'CA PEM for verifying the server (default: <state-dir>/ca.pem if present)' }),
      insecure: opt(boolean(), { help: 'Do not verify the server certificate (development only)' }),
      cert: opt(string('FILE'), { help: 'Client certificate PEM for mTLS (with --key)' }),
      key: opt(string('FILE'), { help: 'Client private key PEM for mTLS (with --cert)' }),
      serverName: opt(string('NAME'), { help: 'TLS server name to verify (default: the server host)' }),
      keepalive: opt(duration({ min: 1 }), { help: 'Keepalive ping interval', default: '1s' }),
      idleTimeout: opt(duration({ min: 1 }), { help: 'Declare a silent server dead after this long', default: '5s' }),
      reconnectBase: opt(duration({ min: 1 }), { help: 'First reconnect backoff delay', default: '100ms' }),
      reconnectCap: opt(duration({ min: 1 }), { help: 'Maximum reconnect backoff delay', default: '30s' }),
      reconnectMaxAttempts: opt(integer({ min: 0 }), { help: 'Give up after this many failed reconnects (0 = never)', default: '0' }),
      flowIdle: opt(duration({ min: 1 }), { help: 'Close flows idle this long', default: '60s' }),
      grace: opt(duration(), { help: 'Drain time on shutdown', default: '5s' }),
      stateDir: opt(string('DIR'), { help: 'State directory', default: '.ztna' }),
      logFormat: opt(oneOf(LOG_FORMATS), {
        help: 'Log output format',
        default: stdoutIsTty ? 'text' : 'json',
        defaultHelp: 'text on a terminal, else json',
      }),
      logLevel: opt(oneOf(LOG_LEVELS), { help: 'Minimum log level', default: 'info' }),
    },
    finish: (v): AgentOptions => {
      checkDuplicateListeners(v.map);
      forbidBoth(v, 'ca', 'insecure');
      requireBothOrNeither(v, 'cert', 'key');
      requireLess(v, 'keepalive', 'idleTimeout');
      requireLess(v, 'reconnectBase', 'reconnectCap', true);
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
