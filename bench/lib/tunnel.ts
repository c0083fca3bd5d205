/**
 * Starts the real programs for the bench: one server, one connector per
 * service, and agents mapping those services to local listeners. Every
 * program is its own process, tied to this one (see processes.ts).
 */
import { join } from "node:path";
import { ensureDevCertificates } from "../../core/certs.ts";
import { type Address, formatAddress } from "../../core/net/address.ts";
import {
  addressOf,
  portOfUrl,
  type Program,
  type ProgramName,
  sourceCommand,
  spawnProgram,
} from "../../scripts/programs.ts";
import { guarded, track } from "./processes.ts";

export type { Address } from "../../core/net/address.ts";

export interface LaunchOptions {
  cwd: string;
  verbose: boolean;
  /** --max-udp-payload for every program, or null for their default. */
  maxUdpPayload: number | null;
}

/** A program that is stopped (SIGTERM, then SIGKILL) with everything else at the end. */
export function launch(name: ProgramName, args: string[], options: LaunchOptions): Program {
  const packet = options.maxUdpPayload === null ? [] : ["--max-udp-payload", String(options.maxUdpPayload)];
  const program = spawnProgram(name, [...args, ...packet], {
    cwd: options.cwd,
    echo: options.verbose,
    command: (n) => guarded(sourceCommand(n)),
  });
  track({ name, stop: () => program.stop("SIGTERM", 5_000) });
  return program;
}

export interface RunningServer {
  program: Program;
  address: Address;
  opsPort: number;
  stateDir: string;
  /** The CA that signed the server's certificate (clients verify with it). */
  caPath: string;
}

/**
 * A server with a certificate from a development CA in `stateDir`, given with
 * --cert/--key as a deployment would. `extra` adds flags (e.g. --ca for mTLS).
 */
export async function startServer(
  stateDir: string,
  options: LaunchOptions,
  extra: string[] = [],
): Promise<RunningServer> {
  const dev = await ensureDevCertificates(stateDir);
  const program = launch(
    "server",
    [
      "--listen",
      "127.0.0.1:0",
      "--ops",
      "127.0.0.1:0",
      "--state-dir",
      stateDir,
      "--grace",
      "1s",
      "--cert",
      dev.certPath,
      "--key",
      dev.keyPath,
      ...extra,
    ],
    options,
  );
  const address = addressOf(await program.waitForLog("listening", 20_000));
  const opsPort = portOfUrl(await program.waitForLog("ops_listening", 20_000));
  return { program, address, opsPort, stateDir, caPath: dev.caCertPath };
}

export interface ServiceSpec {
  name: string;
  forward: Address;
}

export interface AgentSpec {
  name: string;
  maps: { service: string; proto: "udp" | "tcp" }[];
}

export type Kind = "server" | "connector" | "agent";

export interface Tunnel {
  server: RunningServer;
  programs: Record<string, Program>;
  /** Every program by label: "server", "connector:<service>", "agent:<name>". */
  pids: Record<string, number>;
  kinds: Record<string, Kind>;
  opsPorts: Record<string, number>;
  addAgent(agent: AgentSpec, via?: Address): Promise<void>;
  /** The local listener of `agent` for `service`. */
  listener(agent: string, service: string): Address;
  /** SIGTERM to agents, then connectors, then the server: each exit code and how long it took. */
  stop(): Promise<Record<string, { exitCode: number; ms: number }>>;
}

export async function startTunnel(
  work: string,
  services: ServiceSpec[],
  agents: AgentSpec[],
  options: LaunchOptions,
): Promise<Tunnel> {
  const server = await startServer(join(work, "tunnel-state"), options);
  const pids: Record<string, number> = { server: server.program.pid };
  const kinds: Record<string, Kind> = { server: "server" };
  const opsPorts: Record<string, number> = { server: server.opsPort };
  const programs: Record<string, Program> = { server: server.program };
  const client = [
    "--server",
    formatAddress(server.address),
    "--server-name",
    "localhost",
    "--ca",
    server.caPath,
    "--state-dir",
    server.stateDir,
    "--ops",
    "127.0.0.1:0",
    "--grace",
    "1s",
  ];

  const started: Promise<void>[] = [];
  for (const s of services) {
    const label = `connector:${s.name}`;
    const p = launch("connector", [...client, "--service", s.name, "--forward", formatAddress(s.forward)], options);
    programs[label] = p;
    pids[label] = p.pid;
    kinds[label] = "connector";
    started.push((async () => {
      await p.waitForLog("registered", 20_000);
      opsPorts[label] = portOfUrl(await p.waitForLog("ops_listening", 20_000));
    })());
  }
  await Promise.all(started);

  const listeners = new Map<string, Address>();
  /** Launches an agent (towards `via` instead of the server, e.g. an impairment proxy) and waits for its listeners. */
  const addAgent = async (a: AgentSpec, via?: Address) => {
    const label = `agent:${a.name}`;
    const maps = a.maps.map((m) => `${m.service}=${m.proto}://127.0.0.1:0`).join(",");
    const args = via ? client.map((arg, i) => (client[i - 1] === "--server" ? formatAddress(via) : arg)) : client;
    // Through a proxy that stands for a wide-area path: internet-sized packets (unless the run fixes one).
    const wide = via && options.maxUdpPayload === null ? ["--max-udp-payload", "1350"] : [];
    const p = launch("agent", [...args, ...wide, "--map", maps], options);
    programs[label] = p;
    pids[label] = p.pid;
    kinds[label] = "agent";
    for (const m of a.maps) {
      const addr = addressOf(await p.waitForLog("listening", 20_000, (e) => e.service === m.service));
      listeners.set(`${a.name}/${m.service}`, addr);
      // A TCP listener is ready once the service is up; a UDP one once its flow opened.
      await p.waitForLog(m.proto === "tcp" ? "service_up" : "service_opened", 20_000, (e) => e.service === m.service);
    }
    opsPorts[label] = portOfUrl(await p.waitForLog("ops_listening", 20_000));
  };
  await Promise.all(agents.map((a) => addAgent(a)));

  return {
    server,
    addAgent,
    programs,
    pids,
    kinds,
    opsPorts,
    listener(agent, service) {
      const a = listeners.get(`${agent}/${service}`);
      if (!a) throw new Error(`agent ${agent} has no listener for ${service}`);
      return a;
    },
    async stop() {
      const order = Object.keys(programs).sort((a, b) => rank(kinds[a]!) - rank(kinds[b]!));
      const out: Record<string, { exitCode: number; ms: number }> = {};
      for (const label of order) {
        const t = performance.now();
        out[label] = { exitCode: await programs[label]!.stop("SIGTERM", 5_000), ms: Math.round(performance.now() - t) };
      }
      return out;
    },
  };
}

const rank = (k: Kind) => (k === "agent" ? 0 : k === "connector" ? 1 : 2);
