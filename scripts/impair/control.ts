/**
 * Starts the impairment proxy (scripts/impair/proxy.ts) as a child process
 * and drives it: change a direction's impairments while traffic flows, read
 * its counters, stop it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Direction, Impairment } from "./model.ts";

export type { Direction, Impairment } from "./model.ts";

export interface LineStats {
  received: number;
  sent: number;
  dropped: number;
  held: number;
  duplicated: number;
  bytes: number;
}

export interface ImpairmentProxy {
  /** Where clients send: the proxy forwards to the target from one socket per client. */
  readonly address: { host: string; port: number };
  /** Changes one direction ("up" = toward the target) or both; resolves once applied. */
  set(dir: Direction | "both", settings: Partial<Impairment>): Promise<void>;
  stats(): Promise<{ up: LineStats; down: LineStats; clients: number }>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

export interface ImpairmentOptions {
  target: { host: string; port: number };
  seed?: number;
  listenHost?: string;
  /** Initial impairments (both directions). */
  initial?: Partial<Impairment>;
  /** Time allowed for the proxy to start. */
  startTimeoutMs?: number;
}

const PROXY = fileURLToPath(new URL("./proxy.ts", import.meta.url));

const FLAG: Record<keyof Impairment, string> = {
  loss: "--loss",
  reorder: "--reorder",
  reorderHoldMs: "--reorder-hold",
  duplicate: "--duplicate",
  delayMs: "--delay",
  jitterMs: "--jitter",
  maxPayload: "--max-payload",
};

export async function startImpairment(options: ImpairmentOptions): Promise<ImpairmentProxy> {
  const args = [
    PROXY,
    "--target",
    `${options.target.host}:${options.target.port}`,
    "--listen",
    `${options.listenHost ?? "127.0.0.1"}:0`,
    "--seed",
    String(options.seed ?? 1),
  ];
  for (const [key, value] of Object.entries(options.initial ?? {})) {
    args.push(FLAG[key as keyof Impairment], String(value));
  }
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));

  const waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let onListening: ((addr: { host: string; port: number }) => void) | null = null;
  let buffered = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let msg: any;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.event === "listening") onListening?.({ host: msg.host, port: msg.port });
      else if (typeof msg.id === "number") {
        const w = waiting.get(msg.id);
        waiting.delete(msg.id);
        if (msg.error) w?.reject(new Error(`impairment proxy: ${msg.error}`));
        else w?.resolve(msg);
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => {
    for (const w of waiting.values()) w.reject(new Error(`impairment proxy exited: ${stderr.trim()}`));
    waiting.clear();
  });

  const timeout = options.startTimeoutMs ?? 10_000;
  const address = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`impairment proxy did not start within ${timeout} ms: ${stderr.trim()}`));
    }, timeout);
    onListening = (a) => {
      clearTimeout(timer);
      resolve(a);
    };
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`impairment proxy exited at start: ${stderr.trim()}`));
    });
  });

  const request = (command: Record<string, unknown>): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`impairment proxy did not answer ${JSON.stringify(command)} within 5 s`));
      }, 5_000);
      waiting.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      child.stdin!.write(JSON.stringify({ id, ...command }) + "\n");
    });

  return {
    address,
    async set(dir, settings) {
      await request({ op: "set", dir, settings });
    },
    async stats() {
      const r = await request({ op: "stats" });
      return { up: r.up, down: r.down, clients: r.clients };
    },
    async resetStats() {
      await request({ op: "reset" });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end();
      const killer = setTimeout(() => child.kill("SIGKILL"), 2_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
