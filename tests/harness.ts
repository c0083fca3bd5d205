/**
 * Test harness: real endpoints on loopback (QUIC server, connector, agent, UDP
 * echo service and clients), every wait bounded by a deadline.
 */
import { createHash } from "node:crypto";
import { alpnFor } from "../core/frame/mod.ts";
import { mkdtempSync, readFileSync } from "node:fs";
import { type AddressInfo, connect as connectTcp, createServer as createTcpServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Registry } from "prom-client";
import { type Agent, type AgentSettings, startAgent } from "../agent/agent.ts";
import { type AgentMetrics, createAgentMetrics } from "../agent/metrics.ts";
import { type Connector, type ConnectorSettings, startConnector } from "../connector/connector.ts";
import { type ConnectorMetrics, createConnectorMetrics } from "../connector/metrics.ts";
import { ensureDevCertificates } from "../core/certs.ts";
import type { Address } from "../core/net/address.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { clientQuicConfig } from "../core/quic/config.ts";
import { createRegistry } from "../core/metrics/registry.ts";
import { openUdp, type UdpSocket } from "../core/runtime/udp.ts";
import { createServerMetrics, type ServerMetrics } from "../server/metrics.ts";
import { type Server, type ServerSettings, startServer } from "../server/server.ts";

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

/** Flags for a loopback server with the development certificate (port 0: the OS chooses). */
export function devServerFlags(
  c: Certs,
  { ops = "off", port = 0, stateDir = c.dir }: { ops?: string; port?: number; stateDir?: string } = {},
): string[] {
  return [
    "--listen",
    `127.0.0.1:${port}`,
    "--ops",
    ops,
    "--cert",
    join(c.dir, "server.pem"),
    "--key",
    join(c.dir, "server-key.pem"),
    "--state-dir",
    stateDir,
  ];
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
    quicConfig: clientQuicConfig({ alpn: alpnFor(), caPem: c.caPem, insecure: false, idleTimeoutMs: 5_000 }),
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

// ---- TCP helpers (tests/tcp.test.ts) ----

/** Deterministic pseudo-random bytes (xorshift32): the same seed gives the same stream. */
export function* pseudoRandomChunks(total: number, seed: number, chunkSize = 64 * 1024): Generator<Uint8Array> {
  let x = seed >>> 0 || 0x9e3779b9;
  for (let sent = 0; sent < total;) {
    const n = Math.min(chunkSize, total - sent);
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    yield new Uint8Array(words.buffer, 0, n);
    sent += n;
  }
}

export interface TcpServiceConn {
  /** Bytes received after the command byte. */
  received: number;
  closed: boolean;
  /** Closed by an error (reset) rather than FIN. */
  error: string | null;
  closedAt: number;
}

export interface TcpService {
  readonly address: Address;
  /** Every accepted connection, in order. */
  readonly connections: TcpServiceConn[];
  close(): Promise<void>;
}

/**
 * A TCP service for tests; the first byte of each connection picks what it does:
 *  'E' echo everything back, FIN after the client's FIN;
 *  'D' read until EOF, then reply "<bytes> <sha256 hex>" and FIN (half-close);
 *  'S' then u32 length and u32 seed: send that many pseudo-random bytes, then FIN;
 *  'K' sink: count what arrives, reply nothing, FIN after the client's FIN;
 *  'P' stall: stop reading at once (the client's writes back up).
 */
export async function startTcpService(host = "127.0.0.1"): Promise<TcpService> {
  const connections: TcpServiceConn[] = [];
  const sockets = new Set<Socket>();
  const server = createTcpServer({ allowHalfOpen: true }, (socket) => {
    const conn: TcpServiceConn = { received: 0, closed: false, error: null, closedAt: 0 };
    connections.push(conn);
    sockets.add(socket);
    let mode = "";
    let head = Buffer.alloc(0);
    const hash = createHash("sha256");
    socket.on("error", (e: NodeJS.ErrnoException) => (conn.error = e.code ?? e.message));
    socket.on("close", () => {
      conn.closed = true;
      conn.closedAt = Date.now();
      sockets.delete(socket);
    });
    socket.on("end", () => {
      if (mode === "D") socket.end(`${conn.received} ${hash.digest("hex")}`);
      else if (mode !== "S") socket.end();
    });
    socket.on("data", (chunk: Buffer) => {
      if (mode === "") {
        mode = String.fromCharCode(chunk[0]!);
        chunk = chunk.subarray(1);
        if (mode === "P") return void socket.pause();
      }
      if (mode === "S" && head.length < 8) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 8) return;
        void writeAll(socket, pseudoRandomChunks(head.readUInt32BE(0), head.readUInt32BE(4)), true).catch(() => {});
        chunk = head.subarray(8);
      }
      conn.received += chunk.length;
      if (mode === "E") socket.write(chunk);
      else if (mode === "D") hash.update(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Connects over TCP; rejects on error (e.g. refused). */
export function tcpConnect(to: Address): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: to.host, port: to.port, allowHalfOpen: true, noDelay: true });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

/** Writes every chunk with backpressure, then FIN if `end`; resolves with the SHA-256 (hex) of what was written. */
export async function writeAll(socket: Socket, chunks: Iterable<Uint8Array>, end = true): Promise<string> {
  const hash = createHash("sha256");
  for (const chunk of chunks) {
    if (socket.destroyed) throw new Error("socket closed while writing");
    hash.update(chunk);
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onClose = () => reject(new Error("socket closed while writing"));
        socket.once("close", onClose);
        socket.once("drain", () => {
          socket.off("close", onClose);
          resolve();
        });
      });
    }
  }
  if (end) socket.end();
  return hash.digest("hex");
}

export interface ReadResult {
  bytes: number;
  sha256: string;
  /** The bytes themselves, when asked to keep them. */
  data: Buffer | null;
  /** How the read side ended: FIN, or an error code (ECONNRESET, ...). */
  end: "fin" | string;
}

/** Reads until FIN or error; never rejects (the result says how it ended). */
export function readAll(socket: Socket, keep = false): Promise<ReadResult> {
  return new Promise((resolve) => {
    const hash = createHash("sha256");
    const kept: Buffer[] = [];
    let bytes = 0;
    let done = false;
    const finish = (end: string) => {
      if (done) return;
      done = true;
      resolve({ bytes, sha256: hash.digest("hex"), data: keep ? Buffer.concat(kept) : null, end });
    };
    socket.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      if (keep) kept.push(chunk);
    });
    socket.on("end", () => finish("fin"));
    socket.on("error", (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    socket.on("close", () => finish("closed"));
  });
}
