/**
 * Process metrics (CPU, memory, file descriptors, heap, event-loop lag) under
 * the names prom-client's default collector uses, read at scrape time.
 * prom-client's collector module pulls in cluster, push-gateway and
 * OpenTelemetry support (about 10 MiB resident per program) and samples the
 * event loop a hundred times a second even when idle; this reads /proc and
 * process.* only when scraped, and times the loop twice a second.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { Registry } from "prom-client";
import { Counter, Gauge } from "./prom.ts";

const CLOCK_TICKS = 100;
const PAGE_SIZE = 4096;
/** Event-loop lag samples kept for the quantiles (one every LAG_EVERY_MS: a minute's worth). */
const LAG_SAMPLES = 120;
const LAG_EVERY_MS = 500;

export function registerProcessMetrics(registry: Registry, prefix: string): () => void {
  const gauge = (name: string, help: string, read: () => number | null, labelNames: string[] = []) =>
    new Gauge({
      name: prefix + name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        const v = read();
        if (v !== null) this.set(v);
      },
    });
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name: prefix + name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });

  const cpu = () => process.cpuUsage();
  counter("process_cpu_user_seconds_total", "Total user CPU time spent in seconds.", () => cpu().user / 1e6);
  counter("process_cpu_system_seconds_total", "Total system CPU time spent in seconds.", () => cpu().system / 1e6);
  counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", () => {
    const c = cpu();
    return (c.user + c.system) / 1e6;
  });
  const startSeconds = processStartSeconds();
  gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", () => startSeconds);
  gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
    () => statm()?.rss ?? process.memoryUsage().rss,
  );
  // RSS in two parts: under load the private part is what grows (the JS
  // heap, buffers, the allocators' free pages); the mapped files are mostly
  // the runtime's own code, about 40 MiB whatever the load.
  gauge(
    "process_resident_memory_anon_bytes",
    "Private (anonymous) part of the resident memory in bytes.",
    () => residentSplit()?.anon ?? null,
  );
  gauge(
    "process_resident_memory_file_bytes",
    "Mapped-file part of the resident memory in bytes.",
    () => residentSplit()?.file ?? null,
  );
  gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", () => statm()?.vsize ?? null);
  gauge("process_heap_bytes", "Process heap size in bytes.", () => process.memoryUsage().heapTotal);
  gauge("process_open_fds", "Number of open file descriptors.", () => openFds());
  gauge("process_max_fds", "Maximum number of open file descriptors.", () => maxFds());
  gauge(
    "nodejs_heap_size_total_bytes",
    "Process heap size from JavaScript in bytes.",
    () => process.memoryUsage().heapTotal,
  );
  gauge(
    "nodejs_heap_size_used_bytes",
    "Process heap size used from JavaScript in bytes.",
    () => process.memoryUsage().heapUsed,
  );
  gauge(
    "nodejs_external_memory_bytes",
    "JavaScript external memory size in bytes.",
    () => process.memoryUsage().external,
  );

  const lag = createLagSampler();
  gauge("nodejs_eventloop_lag_seconds", "Lag of the event loop in seconds (last sample).", () => lag.last());
  gauge(
    "nodejs_eventloop_lag_p50_seconds",
    "The 50th percentile of the event loop lag over the last minute.",
    () => lag.quantile(0.5),
  );
  gauge(
    "nodejs_eventloop_lag_p99_seconds",
    "The 99th percentile of the event loop lag over the last minute.",
    () => lag.quantile(0.99),
  );
  return lag.stop;
}

function statm(): { rss: number; vsize: number } | null {
  try {
    const [size, resident] = readFileSync("/proc/self/statm", "utf8").split(" ").map(Number);
    return { vsize: size! * PAGE_SIZE, rss: resident! * PAGE_SIZE };
  } catch {
    return null;
  }
}

/** Resident memory of a process, bytes, from /proc/<pid>/status (Linux). */
export interface ResidentMemory {
  /** Resident set now. */
  rss: number;
  /** Peak resident set ("high water mark") since start. */
  hwm: number;
  /** Of `rss`: private memory (heaps, stacks). */
  anon: number;
  /** Of `rss`: pages of mapped files (the Bun binary, native modules), shared with every process mapping them. */
  file: number;
}

/** Reads `statusPath` (this process's by default); a field the kernel leaves out is NaN; null off Linux. */
export function residentMemory(statusPath = "/proc/self/status"): ResidentMemory | null {
  try {
    const status = readFileSync(statusPath, "utf8");
    const kib = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rss: kib("VmRSS"), hwm: kib("VmHWM"), anon: kib("RssAnon"), file: kib("RssFile") };
  } catch {
    return null;
  }
}

/** RssAnon and RssFile of this process, or null where they cannot be read. */
function residentSplit(): { anon: number; file: number } | null {
  const m = residentMemory();
  return m !== null && Number.isFinite(m.anon) && Number.isFinite(m.file) ? m : null;
}

function openFds(): number | null {
  try {
    return readdirSync("/proc/self/fd").length - 1;
  } catch {
    return null;
  }
}

function maxFds(): number | null {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.split(/\s+/)[3]);
    return Number.isFinite(soft) ? soft : null;
  } catch {
    return null;
  }
}

function processStartSeconds(): number {
  try {
    // Field 22 of /proc/self/stat: start time in clock ticks after boot.
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    const bootLine = readFileSync("/proc/stat", "utf8").split("\n").find((l) => l.startsWith("btime "));
    const boot = Number(bootLine?.split(" ")[1]);
    if (Number.isFinite(ticks) && Number.isFinite(boot)) return boot + ticks / CLOCK_TICKS;
  } catch {
    // not Linux
  }
  return Math.round(Date.now() / 1000 - process.uptime());
}

/** How late a timer fires, twice a second: what a busy loop makes every packet wait. */
function createLagSampler() {
  const samples: number[] = [];
  let expected = performance.now() + LAG_EVERY_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    samples.push(Math.max(0, now - expected) / 1000);
    if (samples.length > LAG_SAMPLES) samples.shift();
    expected = now + LAG_EVERY_MS;
  }, LAG_EVERY_MS);
  (timer as { unref?: () => void }).unref?.();
  return {
    last: () => samples[samples.length - 1] ?? 0,
    quantile(q: number) {
      if (samples.length === 0) return 0;
      const sorted = [...samples].sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    },
    stop: () => clearInterval(timer),
  };
}
