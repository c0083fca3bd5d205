// Starts the ops HTTP server for a program, or nothing when it is disabled.
import type { Registry } from "prom-client";
import type { Logger } from "../log.ts";
import { bindError, resolveFlag } from "../startup.ts";
import { serveHttp } from "../runtime/http.ts";
import type { HttpServer } from "../runtime/http.ts";
import { createOpsApp } from "./app.ts";
import type { Readiness } from "./app.ts";

export interface OpsOptions {
  /** Where to listen; null disables the ops endpoint. */
  listen: { host: string; port: number } | null;
  registry: Registry;
  ready: () => Readiness;
  health?: () => boolean;
  /** JSON for `GET /status` (see createOpsApp). */
  status?: () => unknown;
  log?: Logger;
}

export function startOps({ listen, registry, ready, health, status, log }: OpsOptions): HttpServer | null {
  if (listen === null) return null;
  const app = createOpsApp({ registry, ready, ...(health ? { health } : {}), ...(status ? { status } : {}) });
  const server = serveHttp({ host: listen.host, port: listen.port, fetch: (req) => app.fetch(req) });
  log?.info("ops_listening", { url: server.url });
  return server;
}

/**
 * startOps for a program's start-up: resolves the host first and turns a
 * failed bind into one line naming `--ops` and the port (core/startup.ts).
 * Logs nothing: the program says `ops_listening` once everything is up.
 */
export async function bindOps(options: Omit<OpsOptions, "log">): Promise<HttpServer | null> {
  if (options.listen === null) return null;
  const listen = await resolveFlag("--ops", options.listen);
  try {
    return startOps({ ...options, listen });
  } catch (error) {
    throw bindError(error, "--ops", "TCP", listen);
  }
}
