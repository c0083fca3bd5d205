/**
 * Bun's allocator (mimalloc) gives a freed page back to the kernel once it has
 * been free for 100 ms. The relay frees and allocates a buffer per socket read
 * and per datagram (Bun hands each one over in fresh memory), so under load
 * the same pages go back and are faulted in again thousands of times a
 * second, each a madvise, a TLB shootdown and a fault: 2,000–8,500 page
 * faults/s per program in the TCP bulk row, on a VM where those are dear.
 * Kept for 10 s, the pages are reused instead: about half the faults, and
 * TCP bulk through the tunnel averaged 963 / 974 Mbit/s (up / down) over 13
 * runs against 737 / 816 over 8 runs with the default. Measured again
 * (2026-12-02, 4 alternating runs each, 4 s per direction): 100 ms 639 / 687
 * Mbit/s with the worst program's peak RSS at 95-101 MiB; 1 s 865 / 936 and
 * 96-102 MiB; 10 s 955 / 1048 and 107-112 MiB. Ten seconds buys a tenth
 * more throughput than one for about 10 MiB of peak. Memory still goes
 * back: what stays free for 10 s is returned, and after a burst of refused
 * handshakes the release in memory.ts still brings the server back within
 * 30 MiB of idle in 1–1.5 s, because mimalloc still frees the holes in its
 * pages whenever the loop is idle. (The runs that kept ~30 MiB for 20 s or
 * more, with mimalloc's default as well, were glibc's heap held by the QUIC
 * binding's header arrays: see core/quic/long-header.ts.)
 *
 * mimalloc reads its options from the environment once, when the process
 * starts, and Bun offers no call to change them later. So a relay program
 * started without the setting runs itself again, in place (execve keeps the
 * pid, the open files, the arguments and, as it runs the same file, the
 * process name), with it set.
 *
 * An operator's own MIMALLOC_PURGE_DELAY wins: set it (100 is mimalloc's
 * default) to run with another value and without the second start.
 * Elsewhere (not Bun, not Linux) this does nothing.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { loadLibc } from "./libc.ts";

/** How long a free page stays with the process before it goes back to the kernel. */
export const PURGE_DELAY_MS = 10_000;

/** The settings, as the environment mimalloc reads at start-up. */
export const ALLOCATOR_ENV: Readonly<Record<string, string>> = {
  MIMALLOC_PURGE_DELAY: String(PURGE_DELAY_MS),
};

declare const Bun: unknown;

/**
 * Runs this program again in place with ALLOCATOR_ENV when it was started
 * without it. Call first thing in a relay program's entry point, never from
 * a library or a test process. Returns only when nothing was done (already
 * tuned, not Bun on Linux, or the exec failed: the program then simply runs
 * with the defaults).
 */
export function reexecWithTunedAllocator(): void {
  // Already set, by our own first start or by the operator.
  if (typeof Bun === "undefined" || process.platform !== "linux" || process.env.MIMALLOC_PURGE_DELAY !== undefined) {
    return;
  }
  const libc = loadLibc();
  if (libc === null) return;
  let argv: string[];
  try {
    // The arguments exactly as this process got them, argv[0] included.
    argv = readFileSync("/proc/self/cmdline", "utf8").split("\0");
  } catch {
    return;
  }
  if (argv.at(-1) === "") argv.pop();
  if (argv.length === 0) return;
  // The binary by its own path, not /proc/self/exe: the kernel names the
  // process after the file it runs, and `pkill -x ztna`, ps and the
  // operator's monitoring must still see "ztna", not "exe".
  let binary: string;
  try {
    binary = readlinkSync("/proc/self/exe");
  } catch {
    return;
  }
  // Replaced on disk since this process started (a binary swap): run on as we are.
  if (binary.endsWith(" (deleted)")) return;
  const env = { ...process.env, ...ALLOCATOR_ENV };
  const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  libc.execve(binary, argv, envp);
}
