/** `ztna agent`: local listeners mapped to remote services through the relay. */
import { loadOrExit } from "../core/config.ts";
import { formatAddress } from "../core/net/address.ts";
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
import { type Agent, startAgent } from "./agent.ts";
import { createAgentMetrics } from "./metrics.ts";
import { type AgentOptions, agentSpec } from "./options.ts";

export interface AgentProgram {
  agent: Agent;
  ops: HttpServer | null;
  log: Logger;
  /**
   * Re-reads --cert, --key and --ca (SIGHUP) for the connections made from
   * now on; live connections keep theirs. Resolves to whether the new files
   * took effect (a bad file is logged and the previous ones stay).
   */
  reloadTls(): Promise<boolean>;
  shutdown(): Promise<void>;
}

/**
 * Starts the agent: files, names and ports are checked before any link
 * starts; a problem throws an error whose message is one line.
 */
export async function runAgent(options: AgentOptions, log?: Logger): Promise<AgentProgram> {
  log ??= createLogger({ component: "agent", format: options.logFormat, level: options.logLevel });
  const registry = createRegistry("agent");
  const metrics = createAgentMetrics(registry);
  const tls = await prepareClient("agent", options, metrics.certificateExpiry, log);
  warnIfCertificateOmitsServices(tls.files.chain[0], options.map.map((m) => m.service), log);
  const maps = [];
  for (const m of options.map) {
    maps.push({
      ...m,
      listen: await resolveFlag(`--map ${m.service}=${m.protocol}://${formatAddress(m.listen)}`, m.listen),
    });
  }
  let agent: Agent | null = null;
  const ops = await bindOps({
    listen: options.ops,
    registry,
    ready: () => agent?.ready() ?? { ready: false, reason: "starting" },
    status: () => agent?.status() ?? { component: "agent", starting: true },
  });
  try {
    agent = await startAgent({ ...linkBasics(options, log, tls), maps, flowIdleMs: options.flowIdle }, metrics, log);
  } catch (error) {
    await ops?.stop();
    throw error;
  }
  announceTrust(tls, log);
  if (ops) log.info("ops_listening", { url: ops.url });
  const started = agent;
  const logger = log;
  return {
    agent: started,
    ops,
    log,
    async reloadTls() {
      const next = reloadClientTls("agent", options, metrics.certificateExpiry, logger);
      if (next) started.reloadTls(next.quicConfig);
      return next !== null;
    },
    async shutdown() {
      await started.drain(options.grace);
      await ops?.stop();
    },
  };
}

/** Services the certificate does not name get `not_authorised` from an mTLS server at every try: say so now. */
function warnIfCertificateOmitsServices(
  cert: { role?: string; services: string[] } | undefined,
  services: string[],
  log: Logger,
) {
  if (!cert) return;
  const allowed = (s: string) => cert.role === "agent" && (cert.services.includes("*") || cert.services.includes(s));
  const missing = [...new Set(services.filter((s) => !allowed(s)))];
  if (missing.length === 0) return;
  log.warn("certificate_mismatch", {
    services: missing.join(","),
    role: cert.role ?? null,
    detail: `--cert does not name ${
      missing.map((s) => `ztna://agent/${s}`).join(", ")
    }: a server with --ca will refuse to open them (not_authorised)`,
  });
}

export async function main(argv = process.argv.slice(2), env: Record<string, string | undefined> = process.env) {
  const options = loadOrExit(agentSpec(Boolean(process.stderr.isTTY)), argv, env);
  const log = createLogger({ component: "agent", format: options.logFormat, level: options.logLevel });
  const reload = onReloadSignal();
  const program = await startOrExit(log, () => runAgent(options, log));
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
