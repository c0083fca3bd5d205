import { afterEach, describe, expect, test } from "bun:test";
import { Registry } from "prom-client";
import { createLogger } from "../log.ts";
import { counter } from "../metrics/cells.ts";
import type { HttpServer } from "../runtime/http.ts";
import { startOps } from "./serve.ts";

let running: HttpServer | null = null;
afterEach(async () => {
  await running?.stop();
  running = null;
});

describe("startOps", () => {
  test("null listen disables the endpoint", () => {
    expect(startOps({ listen: null, registry: new Registry(), ready: () => ({ ready: true }) })).toBeNull();
  });

  test("serves /healthz, /readyz, /metrics on a real port 0 socket and logs the bound URL", async () => {
    const registry = new Registry();
    counter(registry, "ztna_test_total", "h").inc(7);
    const lines: string[] = [];
    const log = createLogger({ component: "server", format: "json", level: "info", write: (l) => lines.push(l) });
    let ready = false;
    running = startOps({
      listen: { host: "127.0.0.1", port: 0 },
      registry,
      ready: () => (ready ? { ready: true } : { ready: false, reason: "starting" }),
      log,
    });
    expect(running).not.toBeNull();
    const { url, port } = running!;
    expect(port).toBeGreaterThan(0);
    expect(url).toBe(`http://127.0.0.1:${port}/`);
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: "ops_listening", url });

    const health = await fetch(new URL("healthz", url));
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok");

    let r = await fetch(new URL("readyz", url));
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({ ready: false, reason: "starting" });
    ready = true;
    r = await fetch(new URL("readyz", url));
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ready: true });

    const m = await fetch(new URL("metrics", url));
    expect(m.headers.get("content-type")).toBe(registry.contentType);
    expect(await m.text()).toContain("ztna_test_total 7");

    expect((await fetch(new URL("other", url))).status).toBe(404);
  });

  test("stop() releases the port", async () => {
    const server = startOps({
      listen: { host: "127.0.0.1", port: 0 },
      registry: new Registry(),
      ready: () => ({ ready: true }),
    })!;
    const url = server.url;
    expect((await fetch(new URL("healthz", url))).status).toBe(200);
    await server.stop();
    await expect(fetch(new URL("healthz", url))).rejects.toThrow();
  });

  test("a taken port throws", () => {
    running = startOps({
      listen: { host: "127.0.0.1", port: 0 },
      registry: new Registry(),
      ready: () => ({ ready: true }),
    });
    const port = running!.port;
    expect(() =>
      startOps({ listen: { host: "127.0.0.1", port }, registry: new Registry(), ready: () => ({ ready: true }) })
    ).toThrow();
  });
});

test("IPv6 hosts are bracketed in the URL", async () => {
  let server: HttpServer | null;
  try {
    server = startOps({ listen: { host: "::1", port: 0 }, registry: new Registry(), ready: () => ({ ready: true }) });
  } catch {
    return; // no IPv6 loopback on this host
  }
  running = server;
  expect(server!.url).toBe(`http://[::1]:${server!.port}/`);
  expect((await fetch(new URL("healthz", server!.url))).status).toBe(200);
});
