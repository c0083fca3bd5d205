/**
 * Reads the programs' /metrics around a goodput row so the report can say
 * where datagrams were lost (agent listener, relay, connector, service).
 * Metric names come from server/agent/connector metrics.ts; a renamed series
 * shows up as null rather than breaking the bench.
 */
import { MiB } from "./proc.ts";

export type Snapshot = Map<string, number>;

/** Every `ztna_*` sample of the Prometheus text format, keyed by `name{labels}`. */
export function parsePrometheus(text: string): Snapshot {
  const out: Snapshot = new Map();
  for (const line of text.split("\n")) {
    if (!line.startsWith("ztna_")) continue;
    const space = line.lastIndexOf(" ");
    const value = Number(line.slice(space + 1));
    if (Number.isFinite(value)) out.set(line.slice(0, space), value);
  }
  return out;
}

export async function scrape(port: number, timeoutMs = 2_000): Promise<Snapshot> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    return parsePrometheus(await res.text());
  } catch {
    return new Map();
  }
}

/** after - before for every series that changed. */
export function delta(before: Snapshot, after: Snapshot): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of after) {
    const d = value - (before.get(key) ?? 0);
    if (d !== 0) out[key] = d;
  }
  return out;
}

export interface Hops {
  /** Datagrams the agent read from its listener and sent towards the server. */
  agentToServer: number | null;
  /** Datagrams the server relayed from the agent to the connector. */
  relayed: number | null;
  /** Datagrams the connector wrote to the service. */
  connectorToService: number | null;
  /** Non-zero drop counters, by series. */
  drops: Record<string, number>;
}

export function hops(changes: Record<string, number>): Hops {
  const pick = (key: string) => changes[key] ?? (Object.keys(changes).length ? 0 : null);
  const drops: Record<string, number> = {};
  for (const [key, value] of Object.entries(changes)) if (key.includes("_drops_total")) drops[key] = value;
  return {
    agentToServer: pick('ztna_agent_datagrams_total{direction="to_server"}'),
    relayed: pick('ztna_server_datagrams_relayed_total{direction="agent_to_connector"}'),
    connectorToService: pick('ztna_connector_datagrams_total{direction="to_service"}'),
    drops,
  };
}

/**
 * A program's memory, MiB, from its own metrics (core/metrics/process.ts):
 * RSS = mapped files + private, and the private part split into the JS heap,
 * memory outside it the engine reports (external: ArrayBuffers' bytes), and
 * the rest (allocators' free pages, native state, JIT data).
 */
export interface MemoryParts {
  rss: number;
  files: number;
  jsHeap: number;
  external: number;
  other: number;
}

export function memoryParts(s: Snapshot): MemoryParts | null {
  const read = (name: string) => s.get(`ztna_${name}`);
  const rss = read("process_resident_memory_bytes");
  const anon = read("process_resident_memory_anon_bytes");
  const files = read("process_resident_memory_file_bytes");
  const jsHeap = read("nodejs_heap_size_used_bytes");
  const external = read("nodejs_external_memory_bytes");
  if (
    rss === undefined || anon === undefined || files === undefined || jsHeap === undefined || external === undefined
  ) {
    return null;
  }
  const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
  return {
    rss: mib(rss),
    files: mib(files),
    jsHeap: mib(jsHeap),
    external: mib(external),
    other: mib(Math.max(0, anon - jsHeap - external)),
  };
}
