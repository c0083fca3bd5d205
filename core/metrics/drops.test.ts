import { describe, expect, test } from "bun:test";
import { Registry } from "prom-client";
import { counterFamily } from "./cells.ts";
import { dropCounter, engineDropLabel } from "./drops.ts";

function family() {
  const registry = new Registry();
  return { registry, drops: counterFamily<{ reason: string }>(registry, "t_drops_total", "drops", ["reason"]) };
}

describe("dropCounter", () => {
  test("the named reasons' cells are the family's own series", () => {
    const { drops } = family();
    const counter = dropCounter(drops, ["queue_full", "oversized"]);
    counter.cells.queue_full.inc();
    counter.cells.queue_full.inc(2);
    expect(drops.child({ reason: "queue_full" }).value).toBe(3);
    expect(drops.child({ reason: "oversized" }).value).toBe(0);
  });

  test("count() adds to a named reason's cell and makes a cell for a reason first seen at run time", async () => {
    const { registry, drops } = family();
    const counter = dropCounter(drops, ["queue_full"]);
    counter.count("queue_full");
    counter.count("packet_short", 4);
    counter.count("packet_short");
    expect(counter.cells.queue_full.value).toBe(1);
    expect(drops.child({ reason: "packet_short" }).value).toBe(5);
    const text = await registry.metrics();
    expect(text).toContain('t_drops_total{reason="packet_short"} 5');
    expect(text).toContain('t_drops_total{reason="queue_full"} 1');
  });

  test("count may be passed around on its own (it does not use this)", () => {
    const { drops } = family();
    const { count } = dropCounter(drops, []);
    count("before_hello");
    expect(drops.child({ reason: "before_hello" }).value).toBe(1);
  });
});

test("the engine's datagram and limit drops keep their names; stray packets are packet_*", () => {
  expect(engineDropLabel("oversized")).toBe("oversized");
  expect(engineDropLabel("queue_full")).toBe("queue_full");
  expect(engineDropLabel("rate_limited")).toBe("rate_limited");
  expect(engineDropLabel("handshake_limit")).toBe("handshake_limit");
  expect(engineDropLabel("unknown_connection")).toBe("packet_unknown_connection");
  expect(engineDropLabel("bad_header")).toBe("packet_bad_header");
});
