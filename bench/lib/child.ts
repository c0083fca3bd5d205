/**
 * The orchestrator side of the bench's process protocol (see child-io.ts):
 * spawns a bench script with this Bun, reads its JSON result lines, writes
 * command lines to its stdin.
 */
import { join } from "node:path";
import { guarded, track } from "./processes.ts";

const TOOLS = join(import.meta.dir, "..", "tools");

export interface BenchChild {
  readonly name: string;
  readonly pid: number;
  /** The next JSON line not yet consumed (rejects after `timeoutMs` or on exit). */
  next(timeoutMs: number): Promise<Record<string, unknown>>;
  send(command: string): void;
  /** Closes stdin (the child's cue to exit), then SIGKILL after a grace period. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: Promise<number>;
}

/** Spawns `bench/tools/<script>`; it is stopped with every other process at the end of the run. */
export function spawnBenchChild(name: string, script: string, args: string[]): BenchChild {
  const proc = Bun.spawn(guarded([process.execPath, join(TOOLS, script), ...args]), {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const lines: Record<string, unknown>[] = [];
  const waiter: { wake: (() => void) | null } = { wake: null };
  let ended = false;
  void (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        try {
          lines.push(JSON.parse(line));
        } catch {
          process.stderr.write(`[${name}] ${line}\n`);
        }
        waiter.wake?.();
      }
    }
    ended = true;
    waiter.wake?.();
  })();
  let stdinOpen = true;
  const child: BenchChild = {
    name,
    pid: proc.pid,
    exited: proc.exited,
    async next(timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      while (lines.length === 0) {
        if (ended) throw new Error(`${name} exited (code ${proc.exitCode}) before reporting`);
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`${name}: no report within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiter.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        waiter.wake = null;
      }
      return lines.shift()!;
    },
    send(command) {
      if (!stdinOpen) return;
      proc.stdin.write(`${command}\n`);
      void proc.stdin.flush();
    },
    async stop(graceMs = 2_000) {
      if (stdinOpen) {
        stdinOpen = false;
        try {
          void proc.stdin.end();
        } catch {
          // already closed
        }
      }
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await proc.exited;
      clearTimeout(timer);
    },
  };
  track(child);
  return child;
}

/** Runs a one-shot tool and returns its single report. */
export async function runOnce(
  name: string,
  script: string,
  args: string[],
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const c = spawnBenchChild(name, script, args);
  try {
    return await c.next(timeoutMs);
  } finally {
    await c.stop();
  }
}
