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

export interface ProgramMemory {
  label: string;
  kind: Kind;
  idleMiB: number | null;
  /** Of idle: private memory. */
  idleAnonMiB: number | null;
  /** Of idle: mapped-file pages. */
  idleFileMiB: number | null;
  peakMiB: number | null;
  endMiB: number | null;
}

export interface MemoryResult {
  programs: ProgramMemory[];
  /** The anchor: Bun running an empty timer, measured the same way. */
  bareBun?: { rssMiB: number | null; anonMiB: number | null; fileMiB: number | null };
}

const toMiB = (bytes: number | null | undefined) => (bytes == null ? null : round(bytes / MiB));

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
            idleMiB: toMiB(idle[label]?.rss),
            idleAnonMiB: toMiB(idle[label]?.anon),
            idleFileMiB: toMiB(idle[label]?.file),
            peakMiB: candidates.length ? toMiB(Math.max(...candidates)) : null,
            endMiB: toMiB(p?.rss),
          };
        }),
        ...(bareBun === undefined ? {} : {
          bareBun: { rssMiB: toMiB(bareBun?.rss), anonMiB: toMiB(bareBun?.anon), fileMiB: toMiB(bareBun?.file) },
        }),
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
  const rows = [["program", "idle", "private", "files", "peak", "end"]];
  for (const p of m.programs) {
    rows.push([p.label, mib(p.idleMiB), mib(p.idleAnonMiB), mib(p.idleFileMiB), mib(p.peakMiB), mib(p.endMiB)]);
  }
  if (m.bareBun) rows.push(["bare Bun", mib(m.bareBun.rssMiB), mib(m.bareBun.anonMiB), mib(m.bareBun.fileMiB), "", ""]);
  return [
    "RSS per program (idle = after start-up, split into private memory and mapped files; peak = over the rows run)",
    ...table(rows, "lrrrrr"),
  ];
}
