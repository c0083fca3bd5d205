/**
 * Kernel-side UDP receive drops per process (socket buffer overflows), from
 * the `drops` column of /proc/net/udp{,6} for the sockets a pid holds. These
 * are losses no program metric can see. Linux only; null elsewhere.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  return inodes;
}

/** Sum of `drops` over the UDP sockets of `pid`. */
export function udpDrops(pid: number): number | null {
  try {
    const inodes = socketInodes(pid);
    let drops = 0;
    for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
      let text: string;
      try {
        text = readFileSync(table, "utf8");
      } catch {
        continue;
      }
      for (const line of text.split("\n").slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length >= 13 && inodes.has(cols[9]!)) drops += Number(cols[cols.length - 1]);
      }
    }
    return drops;
  } catch {
    return null;
  }
}
