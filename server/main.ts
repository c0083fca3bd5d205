/** `ztna server`: the Intermediate Server program. */
import { readFileSync } from "node:fs";
import { ensureDevCertificates } from "../core/certs.ts";
import { loadOrExit } from "../core/config.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { createRegistry } from "../core/metrics/registry.ts";
import { startOps } from "../core/ops/serve.ts";
import type { HttpServer } from "../core/runtime/http.ts";
import { loadOrCreateSecret } from "../core/runtime/secret.ts";
import { onShutdownSignals } from "../core/runtime/signals.ts";
import { createServerMetrics } from "./metrics.ts";
import { serverSpec, type ServerOptions } from "./options.ts";
import { startServer, type Server } from "./server.ts";

export interface ServerProgram {
  server: Server;
  ops: HttpServer | null;
  log: Logger;
  /** Drain (GOAWAY, grace period), then close everything. */
  shutdown(): Promise<void>;
}

export async function runServer(options: ServerOptions, log?: Logger): Promise<ServerProgram> {
  log ??= createLogger({ component: "server", format: options.logFormat, level: options.logLevel });
  let certPem: Uint8Array;
  let keyPem: Uint8Array;
  if (options.cert && options.key) {
    certPem = readFileSync(options.cert);
    keyPem = readFileSync(options.key);
  } else {
    const dev = await ensureDevCertificates(options.stateDir);
    log.info(dev.created ? "dev_certificates_created" : "dev_certificates_reused", {
      ca: dev.caCertPath,
      cert: dev.certPath,
      hint: `clients verify this server with --ca ${dev.caCertPath}`,
    });
    certPem = readFileSync(dev.certPath);
    keyPem = readFileSync(dev.keyPath);
  }
  const clientCaPem = options.ca ? readFileSync(options.ca) : undefined;
  if (!clientCaPem) log.warn("open_mode", { detail: "no --ca: client certificates are not required; any peer may register or open services" });
  const registry = createRegistry("server");
  const metrics = createServerMetrics(registry);
  const server = await startServer(
    {
      listen: options.listen,
      certPem,
      keyPem,
      clientCaPem,
      graceMs: options.grace,
      idleTimeoutMs: options.idleTimeout,
      keepaliveMs: options.keepalive,
      flowIdleMs: options.flowIdle,
      retryKey: loadOrCreateSecret(options.stateDir, "retry.key"),
    },
    metrics,
    log,
  );
  const ops = startOps({ listen: options.ops, registry, ready: server.ready, log });
  return {
    server,
    ops,
    log,
    async shutdown() {
      await server.drain();
      await ops?.stop();
    },
  };
}

export async function main(argv = process.argv.slice(2), env: Record<string, string | undefined> = process.env) {
  const options = loadOrExit(serverSpec(Boolean(process.stderr.isTTY)), argv, env);
  const program = await runServer(options);
  onShutdownSignals(() => program.shutdown(), program.log);
}

if (import.meta.main) await main();
