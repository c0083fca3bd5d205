// Options of the connector, declared as data for core/config.ts.
import {
  boolean,
  defineSpec,
  duration,
  forbidBoth,
  hostPort,
  hostPortOrOff,
  integer,
  list,
  load,
  LOG_FORMATS,
  LOG_LEVELS,
  oneOf,
  opt,
  requireBothOrNeither,
  requireLess,
  serviceName,
  string,
} from '../core/config.ts';
import type { HostPort, LogFormat, LogLevel, ReadFile } from '../core/config.ts';

export interface ConnectorOptions {
  /** Relay servers, tried in order. */
  server: HostPort[];
  /** Service name this connector publishes. */
  service: string;
  /** Local target that flows are forwarded to. */
  forward: HostPort;
  ops: HostPort | null;
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
  flowIdle: number;
  grace: number;
  keepalive: number;
  idleTimeout: number;
  reconnectBase: number;
  reconnectCap: number;
  /** 0 = retry forever. */
  reconnectMaxAttempts: number;
  stateDir: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
  config?: string;
}

export function connectorSpec(stdoutIsTty: boolean) {
  return defineSpec({
    program: 'ztna-connector',
    summary: 'Connector: publishes a local service through the relay server.',
    options: {
      server: opt(list(hostPort({ allowPortZero: false })), { help: 'Relay server address(es)', required: true }),
      service: opt(serviceName(), { help: 'Service name to publish', required: true }),
      forward: opt(hostPort({ allowPortZero: false }), { help: 'Local target to forward flows to', required: true }),
      ops: opt(hostPortOrOff(), { help: 'Health/metrics HTTP listener, or off', default: '127.0.0.1:9091' }),
      ca: opt(string('FILE'), { help: 'CA PEM for verifying the server (default: <state-dir>/ca.pem if present)' }),
      insecure: opt(boolean(), { help: 'Do not verify the server certificate (development only)' }),
      cert: opt(string('FILE'), { help: 'Client certificate PEM for mTLS (with --key)' }),
      key: opt(string('FILE'), { help: 'Client private key PEM for mTLS (with --cert)' }),
      serverName: opt(string('NAME'), { help: 'TLS server name to verify (default: the server host)' }),
      flowIdle: opt(duration({ min: 1 }), { help: 'Close flows idle this long', default: '60s' }),
      grace: opt(duration(), { help: 'Drain time on shutdown', default: '10s' }),
      keepalive: opt(duration({ min: 1 }), { help: 'Keepalive ping interval', default: '1s' }),
      idleTimeout: opt(duration({ min: 1 }), { help: 'Declare a silent server dead after this long', default: '5s' }),
      reconnectBase: opt(duration({ min: 1 }), { help: 'First reconnect backoff delay', default: '100ms' }),
      reconnectCap: opt(duration({ min: 1 }), { help: 'Maximum reconnect backoff delay', default: '30s' }),
      reconnectMaxAttempts: opt(integer({ min: 0 }), { help: 'Give up after this many failed reconnects (0 = never)', default: '0' }),
      stateDir: opt(string('DIR'), { help: 'State directory', default: '.ztna' }),
      logFormat: opt(oneOf(LOG_FORMATS), {
        help: 'Log output format',
        default: stdoutIsTty ? 'text' : 'json',
        defaultHelp: 'text on a terminal, else json',
      }),
      logLevel: opt(oneOf(LOG_LEVELS), { help: 'Minimum log level', default: 'info' }),
    },
    finish: (v): ConnectorOptions => {
      forbidBoth(v, 'ca', 'insecure');
      requireBothOrNeither(v, 'cert', 'key');
      requireLess(v, 'keepalive', 'idleTimeout');
      requireLess(v, 'reconnectBase', 'reconnectCap', true);
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
