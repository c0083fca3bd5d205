/** Memory and CPU of child processes, from /proc (Linux only; null elsewhere). */
import { readFileSync } from "node:fs";
import { type ResidentMemory, residentMemory } from "../../core/metrics/process.ts";

/** Memory of a child process now, bytes (core/metrics/process.ts reads it for the programs' own metrics too). */
export type MemorySample = ResidentMemory;

export function readMemory(pid: number): MemorySample | null {
  return residentMemory(`/proc/${pid}/status`);
}

const TICKS_PER_SECOND = 100; // USER_HZ on every Linux ABI we run on

/** User + system CPU seconds consumed so far. */
export function readCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name (which may contain spaces).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** CPU seconds each pid spends from now until `read()` (null where /proc is unreadable). */
export function cpuMeter(pids: Record<string, number>) {
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, readCpuSeconds(pid)]));
  const t0 = performance.now();
  return {
    read(): { seconds: number; cpu: Record<string, number | null> } {
      const cpu: Record<string, number | null> = {};
      for (const [name, pid] of Object.entries(pids)) {
        const now = readCpuSeconds(pid);
        const before = start[name];
        cpu[name] = now === null || before == null ? null : now - before;
      }
      return { seconds: (performance.now() - t0) / 1000, cpu };
    },
  };
}

export const MiB = 2 ** 20;

/** Resident set of each pid now, MiB (null where unreadable). */
export function rssMiB(pids: Record<string, number>): Record<string, number | null> {
  return Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => {
      const m = readMemory(pid);
      return [name, m ? m.rss / MiB : null];
    }),
  );
}

/** Polls VmRSS every `intervalMs` and keeps the maximum per pid. */
export function startRssSampler(pids: Record<string, number>, intervalMs = 250) {
  const peak: Record<string, number> = {};
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      const m = readMemory(pid);
      if (m) peak[name] = Math.max(peak[name] ?? 0, m.rss);
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    /** Stops sampling; returns peak sampled VmRSS and the kernel's VmHWM per name, bytes. */
    stop(): Record<string, { peakRss: number | null; hwm: number | null; rss: number | null }> {
      clearInterval(timer);
      sample();
      const out: Record<string, { peakRss: number | null; hwm: number | null; rss: number | null }> = {};
      for (const [name, pid] of Object.entries(pids)) {
        const m = readMemory(pid);
        out[name] = { peakRss: peak[name] ?? null, hwm: m?.hwm ?? null, rss: m?.rss ?? null };
      }
      return out;
    },
  };
}
