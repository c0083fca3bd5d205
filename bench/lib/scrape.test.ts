import { expect, test } from "bun:test";
import { delta, hops, memoryParts, parsePrometheus } from "./scrape.ts";

test("prometheus text to per-row hop counts", () => {
  const before = parsePrometheus(
    '# HELP x\nztna_agent_datagrams_total{direction="to_server"} 10\nprocess_cpu 3\nztna_agent_drops_total{reason="queue_full"} 0\n',
  );
  const after = parsePrometheus(
    'ztna_agent_datagrams_total{direction="to_server"} 110\nztna_agent_drops_total{reason="queue_full"} 4\n' +
      'ztna_server_datagrams_relayed_total{direction="agent_to_connector"} 95\n',
  );
  expect(before.has("process_cpu")).toBe(false);
  const h = hops(delta(before, after));
  expect(h).toEqual({
    agentToServer: 100,
    relayed: 95,
    connectorToService: 0,
    drops: { 'ztna_agent_drops_total{reason="queue_full"}': 4 },
  });
  expect(hops({}).agentToServer).toBeNull();
});

test("a program's memory split from its metrics", () => {
  const MiB = 2 ** 20;
  const metrics = parsePrometheus(
    [
      `ztna_process_resident_memory_bytes ${100 * MiB}`,
      `ztna_process_resident_memory_anon_bytes ${60 * MiB}`,
      `ztna_process_resident_memory_file_bytes ${40 * MiB}`,
      `ztna_nodejs_heap_size_used_bytes ${12 * MiB}`,
      `ztna_nodejs_external_memory_bytes ${8 * MiB}`,
    ].join("\n"),
  );
  expect(memoryParts(metrics)).toEqual({ rss: 100, files: 40, jsHeap: 12, external: 8, other: 40 });
  metrics.delete("ztna_process_resident_memory_anon_bytes");
  expect(memoryParts(metrics)).toBeNull();
});
