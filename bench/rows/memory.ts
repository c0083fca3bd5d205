/**
 * RSS of every tunnel program: idle (after start-up, before any row), peak
 * while the rows ran (sampled, and the kernel's high-water mark), and at the
 * end.
 */
import { MiB, readMemory, startRssSampler } from "../lib/proc.ts";
import { mib, table } from "../lib/table.ts";
import type { Kind, Tunnel } from "../lib/tunnel.ts";
import { round } from "./env.ts";

export interface ProgramMemory {
  label: string;
  kind: Kind;
  idleMiB: number | null;
  peakMiB: number | null;
  endMiB: number | null;
}

export interface MemoryResult {
  programs: ProgramMemory[];
}

const toMiB = (bytes: number | null | undefined) => (bytes == null ? null : round(bytes / MiB));

/** Takes the idle figures of the programs running now; `stop()` returns the whole picture. */
export function watchMemory(tunnel: Tunnel) {
  // Programs added later (the lossy row's agent) have no idle figure: left out.
  const pids = { ...tunnel.pids };
  const idle = Object.fromEntries(Object.entries(pids).map(([label, pid]) => [label, readMemory(pid)?.rss ?? null]));
  const sampler = startRssSampler(pids);
  return {
    stop(): MemoryResult {
      const peaks = sampler.stop();
      return {
        programs: Object.keys(pids).map((label) => {
          const p = peaks[label];
          const candidates = [p?.peakRss, p?.hwm].filter((v): v is number => v != null);
          return {
            label,
            kind: tunnel.kinds[label]!,
            idleMiB: toMiB(idle[label]),
            peakMiB: candidates.length ? toMiB(Math.max(...candidates)) : null,
            endMiB: toMiB(p?.rss),
          };
        }),
      };
    },
  };
}

export function renderMemory(m: MemoryResult): string[] {
  const rows = [["program", "idle", "peak", "end"]];
  for (const p of m.programs) rows.push([p.label, mib(p.idleMiB), mib(p.peakMiB), mib(p.endMiB)]);
  return ["RSS per program (idle = after start-up, peak = over the rows run)", ...table(rows, "lrrr")];
}
