import { describe, expect, test } from "bun:test";
import { Registry } from "prom-client";
import { counter } from "../metrics/cells.ts";
import { createOpsApp } from "./app.ts";
import type { Readiness } from "./app.ts";

function setup(opts: { health?: () => boolean; ready?: () => Readiness; status?: () => unknown } = {}) {
  const registry = new Registry();
  const hits = counter(registry, "ztna_test_hits_total", "test counter");
  const app = createOpsApp({
    registry,
    ready: opts.ready ?? (() => ({ ready: true })),
    ...(opts.health ? { health: opts.health } : {}),
    ...(opts.status ? { status: opts.status } : {}),
  });
  return { app, registry, hits };
}

describe("/healthz", () => {
  test("200 ok by default", async () => {
    const res = await setup().app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  test("503 when health() is false or throws", async () => {
    expect((await setup({ health: () => false }).app.request("/healthz")).status).toBe(503);
    const throwing = setup({
      health: () => {
        throw new Error("x");
      },
    });
    expect((await throwing.app.request("/healthz")).status).toBe(503);
  });
});

describe("/readyz", () => {
  test('200 {"ready":true}', async () => {
    const res = await setup().app.request("/readyz");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(await res.text()).toBe('{"ready":true}');
  });

  test("503 with reason; state is read per request", async () => {
    let state: Readiness = { ready: false, reason: "not registered" };
    const { app } = setup({ ready: () => state });
    let res = await app.request("/readyz");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false, reason: "not registered" });
    state = { ready: true };
    res = await app.request("/readyz");
    expect(res.status).toBe(200);
  });

  test("a throwing ready() reports not ready", async () => {
    const res = await setup({
      ready: () => {
        throw new Error("x");
      },
    }).app.request("/readyz");
    expect(res.status).toBe(503);
    expect((await res.json()).ready).toBe(false);
  });
});

describe("/metrics", () => {
  test("Prometheus text with the registry content type and current values", async () => {
    const { app, registry, hits } = setup();
    hits.inc(3);
    const res = await app.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(registry.contentType);
    expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const text = await res.text();
    expect(text).toContain("# HELP ztna_test_hits_total test counter");
    expect(text).toContain("ztna_test_hits_total 3");
  });

  test("500 if a collector fails", async () => {
    const { app, registry } = setup();
    registry.registerMetric({
      name: "broken",
      get: () => Promise.reject(new Error("collector down")),
      reset() {},
    } as never);
    const res = await app.request("/metrics");
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("collector down");
  });
});

describe("/status", () => {
  test("JSON from the callback, read per request, never cached", async () => {
    let n = 0;
    const { app } = setup({ status: () => ({ component: "test", calls: ++n }) });
    let res = await app.request("/status");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ component: "test", calls: 1 });
    res = await app.request("/status");
    expect(await res.json()).toEqual({ component: "test", calls: 2 });
  });

  test("a throwing callback is a 500 with the reason, not a crash", async () => {
    const { app } = setup({
      status: () => {
        throw new Error("tables busy");
      },
    });
    const res = await app.request("/status");
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: "status failed: tables busy" });
  });

  test("404 for a program without a status document", async () => {
    expect((await setup().app.request("/status")).status).toBe(404);
  });
});

test("anything else is 404", async () => {
  const { app } = setup();
  for (const [path, method] of [["/", "GET"], ["/nope", "GET"], ["/metrics", "POST"], ["/healthz/x", "GET"]] as const) {
    const res = await app.request(path, { method });
    expect(res.status).toBe(404);
  }
});
