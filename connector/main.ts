/** `ztna connector`: the App Connector program. */
import { loadOrExit } from "../core/config.ts";
import { linkBasics } from "../core/client/options.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { createRegistry } from "../core/metrics/registry.ts";
import { startOps } from "../core/ops/serve.ts";
import type { HttpServer } from "../core/runtime/http.ts";
import { onShutdownSignals } from "../core/runtime/signals.ts";
import { startConnector, type Connector } from "./connector.ts";
import { createConnectorMetrics } from "./metrics.ts";
import { connectorSpec, type ConnectorOptions } from "./options.ts";

export interface ConnectorProgram {
  connector: Connector;
  ops: HttpServer | null;
  log: Logger;
  /** Deregister (acknowledged), finish in-flight flows, close. */
  shutdown(): Promise<void>;
}

export async function runConnector(options: ConnectorOptions, log?: Logger): Promise<ConnectorProgram> {
  log ??= createLogger({ component: "connector", format: options.logFormat, level: options.logLevel });
  const registry = createRegistry("connector");
  const metrics = createConnectorMetrics(registry);
  const connector = await startConnector(
    {
      ...linkBasics(options, log),
      service: options.service,
      forward: options.forward,
      flowIdleMs: options.flowIdle,
      graceMs: options.grace,
    },
    metrics,
    log,
  );
  const ops = startOps({ listen: options.ops, registry, ready: connector.ready, log });
  return {
    connector,
    ops,
    log,
    async shutdown() {
      await connector.drain();
      await ops?.stop();
    },
  };
}

export async function main(argv = process.argv.slice(2), env: Record<string, string | undefined> = process.env) {
  const options = loadOrExit(connectorSpec(Boolean(process.stderr.isTTY)), argv, env);
  const program = await runConnector(options);
  onShutdownSignals(() => program.shutdown(), program.log);
}

if (import.meta.main) await main();
