/** `ztna server`: the Intermediate Server program. */
import { readFileSync } from "node:fs";
import { countCertificates, keyMatches } from "../core/identity.ts";
import { loadOrExit } from "../core/config.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { createRegistry } from "../core/metrics/registry.ts";
import { startOps } from "../core/ops/serve.ts";
import type { HttpServer } from "../core/runtime/http.ts";
import { loadOrCreateSecret } from "../core/runtime/secret.ts";
import { onShutdownSignals } from "../core/runtime/signals.ts";
import { createAuthoriser } from "./authorise.ts";
import { createServerMetrics } from "./metrics.ts";
import { serverSpec, type ServerOptions } from "./options.ts";
import { startServer, type Server } from "./server.ts";

export interface ServerProgram {
  server: Server;
  ops: HttpServer | null;
  log: Logger;
  /** Drain (GOAWAY, grace period), then close everything. */
  shutdown(): Promise<void>;
  /**
   * Re-reads the certificate, key and client CA files (SIGHUP) for connections
   * accepted from now on. On any error logs `tls_reload_failed` and keeps the
   * running configuration; resolves to whether the new files took effect.
   */
  reloadTls(): Promise<boolean>;
}

interface TlsFiles {
  cert: string;
  key: string;
  ca?: string;
}

interface TlsMaterial {
  certPem: Uint8Array;
  keyPem: Uint8Array;
  clientCaPem?: Uint8Array;
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/**
 * Reads and checks the PEM files. The QUIC binding silently accepts a file
 * without certificates or a key of another certificate and only fails in
 * every later handshake, so those are caught here instead.
 */
async function readTls(files: TlsFiles): Promise<TlsMaterial> {
  const certPem = readFileSync(files.cert);
  const keyPem = readFileSync(files.key);
  const clientCaPem = files.ca ? readFileSync(files.ca) : undefined;
  if (countCertificates(text(certPem), files.cert) === 0) throw new Error(`${files.cert}: no PEM certificate`);
  if (clientCaPem && countCertificates(text(clientCaPem), files.ca!) === 0) throw new Error(`${files.ca}: no PEM certificate`);
  if (keyMatches(text(certPem), text(keyPem)) === false) {
    throw new Error(`${files.key} is not the private key of ${files.cert}`);
  }
  return { certPem, keyPem, clientCaPem };
}

export async function runServer(options: ServerOptions, log?: Logger): Promise<ServerProgram> {
  log ??= createLogger({ component: "server", format: options.logFormat, level: options.logLevel });
  let files: TlsFiles;
  if (options.cert && options.key) {
    files = { cert: options.cert, key: options.key, ca: options.ca };
  } else {
    // Loaded only here: the issuing library is heavy and a server with its own certificate never needs it.
    const { ensureDevCertificates } = await import("../core/certs.ts");
    const dev = await ensureDevCertificates(options.stateDir);
    log.info(dev.created ? "dev_certificates_created" : "dev_certificates_reused", {
      ca: dev.caCertPath,
      cert: dev.certPath,
      hint: `clients verify this server with --ca ${dev.caCertPath}`,
    });
    files = { cert: dev.certPath, key: dev.keyPath, ca: options.ca };
  }
  const tls = await readTls(files);
  if (options.ca) {
    log.info("mtls_enabled", { ca: options.ca, detail: "clients need a certificate from this CA; its ztna:// URIs decide what they may register or open" });
  } else {
    log.warn("open_mode", { detail: "no --ca: client certificates are not required; any peer may register or open services" });
  }
  const registry = createRegistry("server");
  const metrics = createServerMetrics(registry);
  const server = await startServer(
    {
      listen: options.listen,
      ...tls,
      authorise: options.ca ? createAuthoriser() : undefined,
      graceMs: options.grace,
      idleTimeoutMs: options.idleTimeout,
      keepaliveMs: options.keepalive,
      flowIdleMs: options.flowIdle,
      maxUdpPayload: options.maxUdpPayload,
      restart: { reconnectInMs: options.restartReconnectIn, tryForMs: options.restartTryFor },
      retryKey: loadOrCreateSecret(options.stateDir, "retry.key"),
      resetKey: loadOrCreateSecret(options.stateDir, "reset.key"),
      limits: {
        connectionsPerAddress: options.maxConnectionsPerAddress,
        handshakes: options.maxHandshakes,
        flowsPerAgent: options.maxFlowsPerAgent,
        registrationsPerConnection: options.maxRegistrationsPerConnection,
        controlMessage: options.maxControlMessage,
        datagramsPerSecond: options.maxDatagramRate,
      },
    },
    metrics,
    log,
  );
  const ops = startOps({ listen: options.ops, registry, ready: server.ready, status: server.status, log });
  // One reload at a time, so a quick second SIGHUP cannot be overtaken by the first one's older read.
  let reloading: Promise<boolean> = Promise.resolve(true);
  const reloadOnce = async (): Promise<boolean> => {
    try {
      server.reloadTls(await readTls(files)); // logs tls_reloaded
      return true;
    } catch (error) {
      log.error("tls_reload_failed", { error: (error as Error).message, detail: "keeping the previous certificates" });
      return false;
    }
  };
  return {
    server,
    ops,
    log,
    async shutdown() {
      await server.drain(options.alternate ?? "");
      await ops?.stop();
    },
    reloadTls() {
      reloading = reloading.then(reloadOnce);
      return reloading;
    },
  };
}

export async function main(argv = process.argv.slice(2), env: Record<string, string | undefined> = process.env) {
  const options = loadOrExit(serverSpec(Boolean(process.stderr.isTTY)), argv, env);
  // SIGHUP: new certificates without a restart (e.g. after rotation); live connections keep theirs.
  // Installed before startup so an early SIGHUP is not fatal (its default action); one that arrives
  // while starting is applied once the server runs.
  let program: ServerProgram | null = null;
  let reloadWhenStarted = false;
  if (process.platform !== "win32") {
    process.on("SIGHUP", () => {
      if (program === null) return void (reloadWhenStarted = true);
      program.log.info("tls_reload_requested", { signal: "SIGHUP" });
      void program.reloadTls();
    });
  }
  program = await runServer(options);
  onShutdownSignals(() => program!.shutdown(), program.log);
  if (reloadWhenStarted) void program.reloadTls();
}

if (import.meta.main) await main();
