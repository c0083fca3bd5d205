// The ops HTTP surface every program exposes: liveness, readiness, metrics,
// and (where the program provides one) a JSON status document.
// Web-standard Request/Response only (via Hono), so it runs on any runtime
// and tests can drive it with `app.request()` without a socket.
import { Hono } from "hono";
import type { Registry } from "prom-client";

export interface Readiness {
  ready: boolean;
  /** Why not ready, e.g. "not registered with any server". */
  reason?: string;
}

export interface OpsAppOptions {
  registry: Registry;
  /** Liveness; defaults to always alive. */
  health?: () => boolean;
  ready: () => Readiness;
  /** `GET /status`: a JSON document of the program's state; absent = 404. */
  status?: () => unknown;
}

export function createOpsApp({ registry, health = () => true, ready, status }: OpsAppOptions): Hono {
  const app = new Hono();

  // Probes and scrapes must always see current state, never a cached copy.
  app.use("*", async (c, next) => {
    await next();
    c.header("Cache-Control", "no-store");
  });

  app.get("/healthz", (c) => (safe(health, false) ? c.text("ok") : c.text("unhealthy", 503)));

  app.get("/readyz", (c) => {
    const r = safe<Readiness>(ready, { ready: false, reason: "readiness check failed" });
    if (r.ready) return c.json({ ready: true });
    return c.json({ ready: false, reason: r.reason ?? "not ready" }, 503);
  });

  app.get("/metrics", async (c) => {
    try {
      const text = await registry.metrics();
      return c.body(text, 200, { "Content-Type": registry.contentType });
    } catch (e) {
      return c.text(`metrics collection failed: ${e instanceof Error ? e.message : String(e)}`, 500);
    }
  });

  if (status) {
    app.get("/status", (c) => {
      try {
        return c.json(status() as object);
      } catch (e) {
        return c.json({ error: `status failed: ${e instanceof Error ? e.message : String(e)}` }, 500);
      }
    });
  }

  app.notFound((c) => c.text("not found", 404));
  return app;
}

// A throwing probe callback must answer "not ok", not crash the handler.
function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}
