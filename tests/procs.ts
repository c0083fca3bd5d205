/**
 * Process-level test helpers: the real programs as child processes (so they
 * can be SIGKILLed and SIGTERMed), sharing one state directory and the
 * harness's development certificates.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addressOf, type Program, type ProgramName, spawnProgram } from "../scripts/programs.ts";
import { devCerts, devServerFlags } from "./harness.ts";

export interface Fleet {
  stateDir: string;
  /** Starts a program; every program started here is killed by `stopAll`. */
  start(name: ProgramName, args: string[]): Program;
  server(port?: number, extra?: string[]): Promise<{ program: Program; port: number }>;
  /** Client flags for these server ports; the reconnect backoff is quick unless `backoff` says otherwise. */
  clientArgs(ports: number[], backoff?: { base: string; cap: string }): Promise<string[]>;
  stopAll(): Promise<void>;
}

export function createFleet(): Fleet {
  const stateDir = mkdtempSync(join(tmpdir(), "ztna-fleet-"));
  const programs = new Set<Program>();
  const start = (name: ProgramName, args: string[]) => {
    const program = spawnProgram(name, args, { cwd: stateDir, echo: Boolean(process.env.ZTNA_TEST_LOG) });
    programs.add(program);
    return program;
  };
  return {
    stateDir,
    start,
    async server(port = 0, extra = []) {
      const c = await devCerts();
      const program = start("server", [...devServerFlags(c, { port, stateDir }), ...extra]);
      const bound = addressOf(await program.waitForLog("listening"));
      return { program, port: bound.port };
    },
    async clientArgs(ports, backoff = { base: "50ms", cap: "1s" }) {
      const c = await devCerts();
      return [
        "--server",
        ports.map((p) => `127.0.0.1:${p}`).join(","),
        "--server-name",
        "localhost",
        "--ca",
        join(c.dir, "ca.pem"),
        "--ops",
        "off",
        "--state-dir",
        stateDir,
        "--reconnect-base",
        backoff.base,
        "--reconnect-cap",
        backoff.cap,
      ];
    },
    async stopAll() {
      await Promise.all([...programs].map((p) => p.stop("SIGKILL", 2_000)));
      programs.clear();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * Continuous request/response traffic through a UDP address: every request
 * carries a sequence number, and the echoes are matched by it.
 */
export async function steadyTraffic(target: { host: string; port: number }, perSecond: number) {
  const { openUdp } = await import("../core/runtime/udp.ts");
  const answered = new Set<number>();
  let sent = 0;
  const socket = await openUdp({
    host: "127.0.0.1",
    port: 0,
    onPacket(data) {
      if (data.length >= 4) answered.add(new DataView(data.buffer, data.byteOffset).getUint32(0));
    },
    onError() {},
  });
  const payload = new Uint8Array(64);
  const view = new DataView(payload.buffer);
  const interval = 1000 / perSecond;
  const started = performance.now();
  let running = true;
  const loop = (async () => {
    while (running) {
      const due = Math.floor((performance.now() - started) / interval);
      while (sent < due) {
        view.setUint32(0, sent);
        socket.send(payload, target.port, target.host);
        sent++;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    get sent() {
      return sent;
    },
    get answered() {
      return answered.size;
    },
    /** Stops sending, waits for the last answers, and reports what never came back. */
    async stop(settleMs = 1_000) {
      running = false;
      await loop;
      const deadline = Date.now() + settleMs;
      while (answered.size < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      socket.close();
      const lost: number[] = [];
      for (let i = 0; i < sent; i++) if (!answered.has(i)) lost.push(i);
      return { sent, answered: answered.size, lost };
    },
  };
}
