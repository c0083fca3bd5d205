/** What every row gets: the configuration, a scratch directory, and the parties already running. */
import type { BenchConfig } from "../lib/flags.ts";
import type { BunChain } from "../lib/floor.ts";
import type { Service, Sink } from "../lib/services.ts";
import type { SshForwards } from "../lib/ssh.ts";
import type { Address, LaunchOptions, Tunnel } from "../lib/tunnel.ts";

export interface Env {
  cfg: BenchConfig;
  /** Scratch directory, removed at the end. */
  work: string;
  launch: LaunchOptions;
  log(message: string): void;
  /** The direct services (present when a row that needs them was selected). */
  echo?: Service;
  sink?: Sink;
  bulk?: Service;
  kv?: Service;
  tunnel?: Tunnel;
  /** The noisy neighbour's second tunnel: agent B's own server and sink connector. */
  apart?: Tunnel;
  /** The Bun floor's chains (bench/lib/floor.ts) to the services, by service. */
  floor?: Partial<Record<"echo" | "sink" | "bulk" | "kv", BunChain>>;
  /** ssh -L forwards to the TCP services ("bulk", "kv"), or why there are none. */
  ssh?: SshForwards;
}

/** Tunnel service and agent names the rows use. */
export const SERVICE = { echo: "echo", sink: "sink", bulk: "bulk", kv: "kv" } as const;
/** Agent A carries the measured traffic; agent B is the noisy neighbour. */
export const AGENT = { a: "a", b: "b" } as const;

export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`bench setup: ${what} was not started`);
  return value;
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export type { Address };
