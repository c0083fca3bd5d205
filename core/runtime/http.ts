/**
 * The one adapter that serves a web-standard fetch handler over HTTP:
 * `Bun.serve` under Bun, `Deno.serve` under Deno. Everything above it (Hono
 * apps) only sees Request/Response.
 */
import { formatAddress } from "../net/address.ts";

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface HttpServeOptions {
  host: string;
  /** 0 picks a free port; the bound one is reported back. */
  port: number;
  fetch: FetchHandler;
}

export interface HttpServer {
  /** e.g. `http://127.0.0.1:9090/` (IPv6 hosts in brackets). */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

// Just the slices of the runtime APIs used here, so this file type-checks
// without either runtime's full type declarations.
interface BunLike {
  serve(opts: {
    hostname: string;
    port: number;
    fetch: FetchHandler;
    development?: boolean;
    reusePort?: boolean;
  }): { port?: number; stop(closeActiveConnections?: boolean): Promise<void> | void };
}

interface DenoLike {
  serve(
    opts: { hostname: string; port: number; onListen?: (addr: { port: number }) => void },
    handler: FetchHandler,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}

/** Binds synchronously (both runtimes do); throws if the address is unavailable. */
export function serveHttp(opts: HttpServeOptions): HttpServer {
  const g = globalThis as { Bun?: BunLike; Deno?: DenoLike };
  if (g.Bun !== undefined) return serveBun(g.Bun, opts);
  if (g.Deno !== undefined) return serveDeno(g.Deno, opts);
  throw new Error("serveHttp: unsupported runtime (need Bun or Deno)");
}

function serveBun(bun: BunLike, { host, port, fetch }: HttpServeOptions): HttpServer {
  // development:false: never answer with Bun's HTML error page. Bun then
  // defaults to SO_REUSEPORT, which would let a second process silently share
  // a taken port; reusePort:false makes that an error instead.
  const server = bun.serve({ hostname: host, port, fetch, development: false, reusePort: false });
  const bound = server.port ?? port;
  return {
    url: httpUrl(host, bound),
    port: bound,
    // true: close keep-alive connections too, or stop() would wait on idle clients.
    stop: async () => {
      await server.stop(true);
    },
  };
}

function serveDeno(deno: DenoLike, { host, port, fetch }: HttpServeOptions): HttpServer {
  // A no-op onListen keeps Deno from printing its own "Listening on" line.
  const server = deno.serve({ hostname: host, port, onListen: () => {} }, fetch);
  const bound = server.addr.port;
  return { url: httpUrl(host, bound), port: bound, stop: () => server.shutdown() };
}

function httpUrl(host: string, port: number): string {
  return `http://${formatAddress({ host, port })}/`;
}
