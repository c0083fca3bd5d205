/** `ztna server`: the Intermediate Server program. */
import { loadOrExit } from "../core/config.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { certificatesInUse, publishCertificates } from "../core/metrics/certificates.ts";
import { createRegistry } from "../core/metrics/registry.ts";
import { bindOps } from "../core/ops/serve.ts";
import { reexecWithTunedAllocator } from "../core/runtime/allocator.ts";
import type { HttpServer } from "../core/runtime/http.ts";
import { loadOrCreateSecret } from "../core/runtime/secret.ts";
import { onReloadSignal, onShutdownSignals } from "../core/runtime/signals.ts";
import { bindError, resolveFlag, startOrExit } from "../core/startup.ts";
import { describeFinding, loadTlsFiles, type TlsFileSpec, type TlsInspection } from "../core/tls-files.ts";
import { createAuthoriser } from "./authorise.ts";
import { createServerMetrics, type ServerMetrics } from "./metrics.ts";
import { type ServerOptions, serverSpec } from "./options.ts";
import { type Server, startServer } from "./server.ts";

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

/**
 * Reads and checks the PEM files (core/tls-files.ts): a file without
 * certificates, a key of another certificate or an expired certificate would
 * otherwise be accepted by the QUIC binding and fail every later handshake.
 * Certificates close to expiry are logged as warnings and every certificate's
 * expiry is exported as a metric.
 */
function readTls(files: TlsFileSpec, metrics: ServerMetrics, log: Logger): TlsInspection {
  const tls = loadTlsFiles(files);
  for (const finding of tls.findings) {
    log.warn("certificate_warning", { error: describeFinding(finding), hint: finding.fix });
  }
  publishCertificates(metrics.certificateExpiry, certificatesInUse("server", tls));
  return tls;
}

function material(tls: TlsInspection) {
  return { certPem: tls.certPem!, keyPem: tls.keyPem!, clientCaPem: tls.caPem };
}

/**
 * Starts the server: files first, then names, then the listeners, so any
 * problem stops it before it serves, with an error (a StartupError for
 * files, names and ports) whose message is one line.
 */
export async function runServer(options: ServerOptions, log?: Logger): Promise<ServerProgram> {
  log ??= createLogger({ component: "server", format: options.logFormat, level: options.logLevel });
  let files: TlsFileSpec;
  if (options.cert && options.key) {
    files = { cert: { path: options.cert, flag: "--cert" }, key: { path: options.key, flag: "--key" } };
  } else {
    // Loaded only here: the issuing library is heavy and a server with its own certificate never needs it.
    const { ensureDevCertificates } = await import("../core/certs.ts");
    const dev = await ensureDevCertificates(options.stateDir);
    log.info(dev.created ? "dev_certificates_created" : "dev_certificates_reused", {
      ca: dev.caCertPath,
      cert: dev.certPath,
      hint: `clients verify this server with --ca ${dev.caCertPath}`,
    });
    files = {
      cert: { path: dev.certPath, flag: "--cert (development certificate)" },
      key: { path: dev.keyPath, flag: "--key (development certificate)" },
    };
  }
  if (options.ca) files.ca = { path: options.ca, flag: "--ca" };
  const registry = createRegistry("server");
  const metrics = createServerMetrics(registry);
  const tls = readTls(files, metrics, log);
  const listen = await resolveFlag("--listen", options.listen);
  // The ops listener binds first and says so last: a port problem on either leaves one line, not a half start.
  let server: Server | null = null;
  const ops = await bindOps({
    listen: options.ops,
    registry,
    ready: () => server?.ready() ?? { ready: false, reason: "starting" },
    status: () => server?.status() ?? { component: "server", starting: true },
  });
  try {
    server = await startServer(
      {
        listen,
        ...material(tls),
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
          retryAbove: options.retryAbove,
          flowsPerAgent: options.maxFlowsPerAgent,
          registrationsPerConnection: options.maxRegistrationsPerConnection,
          controlMessage: options.maxControlMessage,
          datagramsPerSecond: options.maxDatagramRate,
        },
      },
      metrics,
      log,
    );
  } catch (error) {
    await ops?.stop();
    throw bindError(error, "--listen", "UDP", listen);
  }
  if (ops) log.info("ops_listening", { url: ops.url });
  if (options.ca) {
    log.info("mtls_enabled", {
      ca: options.ca,
      detail: "clients need a certificate from this CA; its ztna:// URIs decide what they may register or open",
    });
  } else {
    log.warn("open_mode", {
      detail: "no --ca: client certificates are not required; any peer may register or open services",
    });
  }
  const running = server;
  // One reload at a time, so a quick second SIGHUP cannot be overtaken by the first one's older read.
  let reloading: Promise<boolean> = Promise.resolve(true);
  const reloadOnce = async (): Promise<boolean> => {
    try {
      running.reloadTls(material(readTls(files, metrics, log))); // logs tls_reloaded
      return true;
    } catch (error) {
      log.error("tls_reload_failed", { error: (error as Error).message, detail: "keeping the previous certificates" });
      return false;
    }
  };
  return {
    server: running,
    ops,
    log,
    async shutdown() {
      await running.drain(options.alternate ?? "");
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
  const reload = onReloadSignal();
  const log = createLogger({ component: "server", format: options.logFormat, level: options.logLevel });
  const program = await startOrExit(log, () => runServer(options, log));
  onShutdownSignals(() => program.shutdown(), program.log);
  reload.ready(() => {
    program.log.info("tls_reload_requested", { signal: "SIGHUP" });
    void program.reloadTls();
  });
}

if (import.meta.main) {
  reexecWithTunedAllocator();
  await main();
}
