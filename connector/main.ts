/** `ztna connector`: the App Connector program. */
import { loadOrExit } from "../core/config.ts";
import { linkBasics } from "../core/client/options.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { createRegistry } from "../core/metrics/registry.ts";
import { prepareClient, reloadClientTls } from "../core/client/prepare.ts";
import { announceTrust } from "../core/client/tls.ts";
import { bindOps } from "../core/ops/serve.ts";
import { reexecWithTunedAllocator } from "../core/runtime/allocator.ts";
import type { HttpServer } from "../core/runtime/http.ts";
import { onReloadSignal, onShutdownSignals } from "../core/runtime/signals.ts";
import { resolveFlag, startOrExit } from "../core/startup.ts";
import { type Connector, startConnector } from "./connector.ts";
import { createConnectorMetrics } from "./metrics.ts";
import { type ConnectorOptions, connectorSpec } from "./options.ts";

export interface ConnectorProgram {
  connector: Connector;
  ops: HttpServer | null;
  log: Logger;
  /**
   * Re-reads --cert, --key and --ca (SIGHUP) for the connections made from
   * now on; live connections keep theirs. Resolves to whether the new files
   * took effect (a bad file is logged and the previous ones stay).
   */
  reloadTls(): Promise<boolean>;
  /** Deregister (acknowledged), finish in-flight flows, close. */
  shutdown(): Promise<void>;
}

/**
 * Starts the connector: files, names and the ops port are checked before any
 * link starts; a problem throws an error whose message is one line.
 */
export async function runConnector(options: ConnectorOptions, log?: Logger): Promise<ConnectorProgram> {
  log ??= createLogger({ component: "connector", format: options.logFormat, level: options.logLevel });
  const registry = createRegistry("connector");
  const metrics = createConnectorMetrics(registry);
  const tls = await prepareClient("connector", options, metrics.certificateExpiry, log);
  warnIfCertificateOmitsService(tls.files.chain[0], options.service, log);
  const forward = await resolveFlag("--forward", options.forward);
  let connector: Connector | null = null;
  const ops = await bindOps({
    listen: options.ops,
    registry,
    ready: () => connector?.ready() ?? { ready: false, reason: "starting" },
    status: () => connector?.status() ?? { component: "connector", starting: true },
  });
  try {
    connector = await startConnector(
      {
        ...linkBasics(options, log, tls),
        service: options.service,
        forward,
        flowIdleMs: options.flowIdle,
        graceMs: options.grace,
      },
      metrics,
      log,
    );
  } catch (error) {
    await ops?.stop();
    throw error;
  }
  announceTrust(tls, log);
  if (ops) log.info("ops_listening", { url: ops.url });
  const started = connector;
  const logger = log;
  return {
    connector: started,
    ops,
    log,
    async reloadTls() {
      const next = reloadClientTls("connector", options, metrics.certificateExpiry, logger);
      if (next) started.reloadTls(next.quicConfig);
      return next !== null;
    },
    async shutdown() {
      await started.drain();
      await ops?.stop();
    },
  };
}

/** A certificate that does not name the service gets `not_authorised` from an mTLS server at every try: say so now. */
function warnIfCertificateOmitsService(
  cert: { role?: string; services: string[] } | undefined,
  service: string,
  log: Logger,
) {
  if (!cert) return;
  if (cert.role !== "connector" || !cert.services.includes(service)) {
    log.warn("certificate_mismatch", {
      service,
      role: cert.role ?? null,
      services: cert.services.join(","),
      detail:
        `--cert does not name ztna://connector/${service}: a server with --ca will refuse the registration (not_authorised)`,
    });
  }
}

export async function main(argv = process.argv.slice(2), env: Record<string, string | undefined> = process.env) {
  const options = loadOrExit(connectorSpec(Boolean(process.stderr.isTTY)), argv, env);
  const log = createLogger({ component: "connector", format: options.logFormat, level: options.logLevel });
  const reload = onReloadSignal();
  const program = await startOrExit(log, () => runConnector(options, log));
  reload.ready(() => {
    log.info("tls_reload_requested", { signal: "SIGHUP" });
    void program.reloadTls();
  });
  onShutdownSignals(() => program.shutdown(), program.log);
}

if (import.meta.main) {
  reexecWithTunedAllocator();
  await main();
}
