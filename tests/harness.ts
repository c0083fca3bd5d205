/**
 * Test harness: real endpoints on loopback (QUIC server, connector, agent, UDP
 * echo service and clients), every wait bounded by a deadline.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Registry } from "prom-client";
import { startAgent, type Agent, type AgentSettings } from "../agent/agent.ts";
import { createAgentMetrics, type AgentMetrics } from "../agent/metrics.ts";
import { startConnector, type Connector, type ConnectorSettings } from "../connector/connector.ts";
import { createConnectorMetrics, type ConnectorMetrics } from "../connector/metrics.ts";
import { ensureDevCertificates } from "../core/certs.ts";
import type { Address } from "../core/frame/control.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { clientQuicConfig } from "../core/quic/config.ts";
import { createRegistry } from "../core/metrics/registry.ts";
import { openUdp, type UdpSocket } from "../core/runtime/udp.ts";
import { createServerMetrics, type ServerMetrics } from "../server/metrics.ts";
import { startServer, type Server, type ServerSettings } from "../server/server.ts";

export interface Certs {
  dir: string;
  caPem: Uint8Array;
  certPem: Uint8Array;
  keyPem: Uint8Array;
}

let certs: Promise<Certs> | null = null;

/** One development CA and server certificate per test process. */
export function devCerts(): Promise<Certs> {
  certs ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "ztna-test-"));
    const made = await ensureDevCertificates(dir);
    return {
      dir,
      caPem: readFileSync(made.caCertPath),
      certPem: readFileSync(made.certPath),
      keyPem: readFileSync(made.keyPath),
    };
  })();
  return certs;
}

/** A logger that keeps its lines, so tests can assert on what a component logged. */
export function captureLogger(component: string): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({
    component,
    format: "json",
    level: process.env.ZTNA_TEST_LOG === "debug" ? "debug" : "info",
    write: (line) => {
      lines.push(line);
      if (process.env.ZTNA_TEST_LOG) process.stderr.write(line + "\n");
    },
  });
  return Object.assign(logger, { lines });
}

export function logged(logger: { lines: string[] }, event: string): Record<string, unknown>[] {
  return logger.lines.map((l) => JSON.parse(l)).filter((e) => e.event === event);
}

export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A UDP echo service: sends every datagram back to its sender. */
export async function startEcho(host = "127.0.0.1"): Promise<UdpSocket> {
  const socket: UdpSocket = await openUdp({
    host,
    port: 0,
    onPacket: (data, port, from) => socket.send(data, port, from),
    onError: () => {},
  });
  return socket;
}

/** A local UDP client that collects what it receives. */
export interface UdpClient {
  readonly address: Address;
  readonly received: Uint8Array[];
  send(payload: Uint8Array, to: Address): void;
  /** Waits for the next unread datagram. */
  next(timeoutMs?: number): Promise<Uint8Array>;
  close(): void;
}

export async function udpClient(): Promise<UdpClient> {
  const received: Uint8Array[] = [];
  let read = 0;
  const socket = await openUdp({
    host: "127.0.0.1",
    port: 0,
    onPacket: (data) => received.push(data.slice()),
    onError: () => {},
  });
  return {
    address: socket.address,
    received,
    send: (payload, to) => void socket.send(payload, to.port, to.host),
    async next(timeoutMs = 2_000) {
      await waitFor(() => received.length > read, timeoutMs, "a datagram");
      return received[read++]!;
    },
    close: () => socket.close(),
  };
}

export interface TestServer {
  server: Server;
  metrics: ServerMetrics;
  registry: Registry;
  log: Logger & { lines: string[] };
}

export async function startTestServer(overrides: Partial<ServerSettings> = {}): Promise<TestServer> {
  const c = await devCerts();
  const registry = createRegistry("server");
  const metrics = createServerMetrics(registry);
  const log = captureLogger("server");
  const server = await startServer(
    {
      listen: { host: "127.0.0.1", port: 0 },
      certPem: c.certPem,
      keyPem: c.keyPem,
      graceMs: 2_000,
      idleTimeoutMs: 30_000,
      keepaliveMs: 1_000,
      flowIdleMs: 60_000,
      ...overrides,
    },
    metrics,
    log,
  );
  return { server, metrics, registry, log };
}

async function clientDefaults() {
  const c = await devCerts();
  return {
    serverName: "localhost",
    quicConfig: clientQuicConfig({ caPem: c.caPem, insecure: false, idleTimeoutMs: 5_000 }),
    keepaliveMs: 1_000,
    connectTimeoutMs: 3_000,
    backoff: { baseMs: 50, capMs: 1_000, maxAttempts: 0 },
    flowIdleMs: 60_000,
  };
}

export interface TestConnector {
  connector: Connector;
  metrics: ConnectorMetrics;
  registry: Registry;
  log: Logger & { lines: string[] };
}

export async function startTestConnector(
  servers: Address[],
  service: string,
  forward: Address,
  overrides: Partial<ConnectorSettings> = {},
): Promise<TestConnector> {
  const registry = createRegistry("connector");
  const metrics = createConnectorMetrics(registry);
  const log = captureLogger("connector");
  const connector = await startConnector(
    { ...(await clientDefaults()), servers, service, forward, graceMs: 2_000, ...overrides },
    metrics,
    log,
  );
  return { connector, metrics, registry, log };
}

export interface TestAgent {
  agent: Agent;
  metrics: AgentMetrics;
  registry: Registry;
  log: Logger & { lines: string[] };
  /** Local listener address of a service. */
  listen(service: string): Address;
}

export async function startTestAgent(
  servers: Address[],
  services: string[],
  overrides: Partial<AgentSettings> = {},
): Promise<TestAgent> {
  const registry = createRegistry("agent");
  const metrics = createAgentMetrics(registry);
  const log = captureLogger("agent");
  const agent = await startAgent(
    {
      ...(await clientDefaults()),
      servers,
      maps: services.map((service) => ({ service, protocol: "udp" as const, listen: { host: "127.0.0.1", port: 0 } })),
      ...overrides,
    },
    metrics,
    log,
  );
  return {
    agent,
    metrics,
    registry,
    log,
    listen(service) {
      const l = agent.listeners.find((x) => x.service === service);
      if (!l) throw new Error(`agent has no listener for ${service}`);
      return { host: "127.0.0.1", port: l.address.port };
    },
  };
}

/** Collects teardown steps so every test cleans up even when it fails. */
export function cleanup() {
  const steps: (() => unknown)[] = [];
  return {
    add<T>(value: T, close: (v: T) => unknown): T {
      steps.push(() => close(value));
      return value;
    },
    async run() {
      for (const step of steps.reverse()) {
        try {
          await step();
        } catch {
          // keep tearing down the rest
        }
      }
      steps.length = 0;
    },
  };
}

export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 17) & 0xff;
  return out;
}
