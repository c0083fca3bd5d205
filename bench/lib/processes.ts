/**
 * Every process the bench starts is registered here, so one call stops them
 * all: at the end of a run, on an error, on Ctrl-C, or when the run's deadline
 * passes. Commands are also wrapped in `setpriv --pdeathsig KILL` where that
 * exists, so even a SIGKILLed orchestrator leaves no orphans behind.
 */
import { existsSync } from "node:fs";

export interface Stoppable {
  readonly name: string;
  stop(): Promise<unknown>;
}

const live = new Set<Stoppable>();
let aborting = false;

/** True once Ctrl-C or the deadline cut the run short: start nothing new. */
export const aborted = () => aborting;

/** Registers a process to stop with the others (stopping twice is harmless). */
export function track(p: Stoppable): void {
  // Started while the run is being torn down: it would outlive the teardown.
  if (aborting) void p.stop();
  else live.add(p);
}

/** What is registered now: `stopAll(mark)` then stops only what came later. */
export function mark(): ReadonlySet<Stoppable> {
  return new Set(live);
}

/** Stops every registered process (or those newer than `since`), newest first: clients before their servers. */
export async function stopAll(since?: ReadonlySet<Stoppable>): Promise<void> {
  const all = [...live].filter((p) => !since?.has(p)).reverse();
  for (const p of all) live.delete(p);
  for (const p of all) {
    try {
      await p.stop();
    } catch {
      // already gone
    }
  }
}

const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));

/** `command` made to die with this process (Linux `setpriv`); unchanged where it is missing. */
export function guarded(command: string[]): string[] {
  return SETPRIV ? [SETPRIV, "--pdeathsig", "KILL", "--", ...command] : command;
}

/**
 * Runs `main`, then stops everything. SIGINT/SIGTERM and the deadline also
 * stop everything and exit non-zero. Returns main's result.
 */
export async function withCleanup<T>(main: () => Promise<T>, deadlineMs: number): Promise<T> {
  const bail = async (why: string, code: number) => {
    if (aborting) return;
    aborting = true;
    process.stderr.write(`bench: ${why}, stopping every process\n`);
    await stopAll();
    process.exit(code);
  };
  const watchdog = setTimeout(() => void bail(`over the ${Math.round(deadlineMs / 1000)} s budget`, 2), deadlineMs);
  const onSignal = (signal: NodeJS.Signals) => void bail(signal, 130);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await main();
  } finally {
    clearTimeout(watchdog);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await stopAll();
  }
}
