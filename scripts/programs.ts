/**
 * Starts the real programs (server, connector, agent) as child processes with
 * JSON logs, and reads their bound addresses from those logs. Used by the
 * demo, the benchmark and the process-level tests.
 */
import { join } from "node:path";

export type ProgramName = "server" | "connector" | "agent";

const ROOT = join(import.meta.dir, "..");

export interface LogEntry {
  event: string;
  level: string;
  [field: string]: unknown;
}

export interface Program {
  readonly name: ProgramName;
  readonly pid: number;
  readonly logs: LogEntry[];
  /** Waits for a log event (already logged or future) matching `match`. */
  waitForLog(event: string, timeoutMs?: number, match?: (e: LogEntry) => boolean): Promise<LogEntry>;
  /** Sends a signal and waits for the exit code (SIGKILL after the deadline). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number>;
  readonly exited: Promise<number>;
}

export interface SpawnOptions {
  /** The command that runs a program; defaults to this Bun running the source entry. */
  command?: (name: ProgramName) => string[];
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Left out of the environment the program inherits. */
  unsetEnv?: string[];
  /** Echo the program's log lines to our stderr. */
  echo?: boolean;
}

/**
 * This Bun running the program's entry file. ZTNA_PROGRAM_BUN_FLAGS adds Bun
 * flags to every program started this way, e.g. to profile them in the bench:
 * `ZTNA_PROGRAM_BUN_FLAGS="--cpu-prof-md --cpu-prof-dir=/tmp/prof" npm run bench -- --only goodput`.
 */
export function sourceCommand(name: ProgramName): string[] {
  const flags = (process.env.ZTNA_PROGRAM_BUN_FLAGS ?? "").split(/\s+/).filter(Boolean);
  return [process.execPath, ...flags, join(ROOT, name, "main.ts")];
}

export function spawnProgram(name: ProgramName, args: string[], options: SpawnOptions = {}): Program {
  const command = (options.command ?? sourceCommand)(name);
  const proc = Bun.spawn([...command, ...args, "--log-format", "json"], {
    cwd: options.cwd,
    env: { ...withoutNames(process.env, options.unsetEnv ?? []), ...options.env },
    stdout: "ignore",
    stderr: "pipe",
    stdin: "ignore",
  });
  const logs: LogEntry[] = [];
  const waiters = new Set<() => void>();
  const exitWatchers = new Set<() => void>();
  void (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (options.echo) process.stderr.write(`[${name}] ${line}\n`);
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ event: "raw", level: "info", line });
        }
        for (const w of waiters) w();
      }
    }
  })();
  const exited = proc.exited;
  // A waiter for a log line must not hang on a dead process.
  void exited.then(() => setTimeout(() => exitWatchers.forEach((w) => w()), 50));
  return {
    name,
    pid: proc.pid,
    logs,
    exited,
    waitForLog(event, timeoutMs = 10_000, match = () => true) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = logs.find((e) => e.event === event && match(e));
          if (found) {
            done();
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          done();
          const tail = logs.slice(-5).map((e) => JSON.stringify(e)).join("\n");
          reject(new Error(`${name}: no "${event}" log within ${timeoutMs} ms; last lines:\n${tail}`));
        }, timeoutMs);
        const onExit = () => {
          done();
          reject(
            new Error(
              `${name} exited before logging "${event}": ${logs.slice(-3).map((e) => JSON.stringify(e)).join(" ")}`,
            ),
          );
        };
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
          exitWatchers.delete(onExit);
        };
        waiters.add(check);
        exitWatchers.add(onExit);
        check();
      });
    },
    async stop(signal = "SIGTERM", timeoutMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode ?? 128;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

function withoutNames(env: Record<string, string | undefined>, names: string[]): Record<string, string | undefined> {
  const out = { ...env };
  for (const name of names) delete out[name];
  return out;
}

export function addressOf(entry: LogEntry, field = "addr"): { host: string; port: number } {
  const text = String(entry[field]);
  const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(text);
  if (!m) throw new Error(`not an address: ${text}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export function portOfUrl(entry: LogEntry): number {
  return Number(new URL(String(entry.url)).port);
}
