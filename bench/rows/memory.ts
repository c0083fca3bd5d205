/**
 * RSS of every tunnel program: idle (after start-up, before any row), peak
 * while the rows ran (sampled, and the kernel's high-water mark), and at the
 * end. The idle figure is split into private memory and mapped-file pages
 * (mostly the Bun binary, shared by every Bun process), and a bare Bun
 * process measured in the same run is the anchor.
 */
import { type MemorySample, MiB, readMemory, startRssSampler } from "../lib/proc.ts";
import { mib, table } from "../lib/table.ts";
import type { Kind, Tunnel } from "../lib/tunnel.ts";
import { round } from "./env.ts";

/** RSS after start-up, and how much of it is private memory and how much mapped-file pages. */
export interface IdleMemory {
  idleMiB: number | null;
  idleAnonMiB: number | null;
  idleFileMiB: number | null;
}

export interface ProgramMemory extends IdleMemory {
  label: string;
  kind: Kind;
  peakMiB: number | null;
  endMiB: number | null;
}

export interface MemoryResult {
  programs: ProgramMemory[];
  /** The anchor: Bun running an empty timer, measured the same way. */
  bareBun?: IdleMemory;
}

const toMiB = (bytes: number | null | undefined) => (bytes == null ? null : round(bytes / MiB));

const idleMemory = (sample: MemorySample | null | undefined): IdleMemory => ({
  idleMiB: toMiB(sample?.rss),
  idleAnonMiB: toMiB(sample?.anon),
  idleFileMiB: toMiB(sample?.file),
});

/** Takes the idle figures of the programs running now; `stop()` returns the whole picture. */
export function watchMemory(tunnel: Tunnel) {
  // Programs added later (the lossy row's agent) have no idle figure: left out.
  const pids = { ...tunnel.pids };
  const idle = Object.fromEntries(Object.entries(pids).map(([label, pid]) => [label, readMemory(pid)]));
  const sampler = startRssSampler(pids);
  return {
    stop(bareBun?: MemorySample | null): MemoryResult {
      const peaks = sampler.stop();
      return {
        programs: Object.keys(pids).map((label) => {
          const p = peaks[label];
          const candidates = [p?.peakRss, p?.hwm].filter((v): v is number => v != null);
          return {
            label,
            kind: tunnel.kinds[label]!,
            ...idleMemory(idle[label]),
            peakMiB: candidates.length ? toMiB(Math.max(...candidates)) : null,
            endMiB: toMiB(p?.rss),
          };
        }),
        ...(bareBun === undefined ? {} : { bareBun: idleMemory(bareBun) }),
      };
    },
  };
}

/** RSS of this Bun running nothing but a timer, after the same settling time the programs get. */
export async function measureBareBun(settleMs = 1_000): Promise<MemorySample | null> {
  const proc = Bun.spawn([process.execPath, "-e", "setInterval(() => {}, 1000)"], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    await Bun.sleep(settleMs);
    return readMemory(proc.pid);
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

export function renderMemory(m: MemoryResult): string[] {
  const idleCells = (i: IdleMemory) => [mib(i.idleMiB), mib(i.idleAnonMiB), mib(i.idleFileMiB)];
  const rows = [["program", "idle", "private", "files", "peak", "end"]];
  for (const p of m.programs) rows.push([p.label, ...idleCells(p), mib(p.peakMiB), mib(p.endMiB)]);
  if (m.bareBun) rows.push(["bare Bun", ...idleCells(m.bareBun), "", ""]);
  return [
    "RSS per program (idle = after start-up, split into private memory and mapped files; peak = over the rows run)",
    ...table(rows, "lrrrrr"),
  ];
}
