// Starts the ops HTTP server for a program, or nothing when it is disabled.
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import { serveHttp } from '../runtime/http.ts';
import type { HttpServer } from '../runtime/http.ts';
import { createOpsApp } from './app.ts';
import type { Readiness } from './app.ts';

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
  log?.info('ops_listening', { url: server.url });
  return server;
}
