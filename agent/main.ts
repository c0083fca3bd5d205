/** `ztna agent`: local listeners mapped to remote services through the relay. */
import { loadOrExit } from "../core/config.ts";
import { linkBasics } from "../core/client/options.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { createRegistry } from "../core/metrics/registry.ts";
import { startOps } from "../core/ops/serve.ts";
import type { HttpServer } from "../core/runtime/http.ts";
import { onShutdownSignals } from "../core/runtime/signals.ts";
import { startAgent, type Agent } from "./agent.ts";
import { createAgentMetrics } from "./metrics.ts";
import { agentSpec, type AgentOptions } from "./options.ts";

export interface AgentProgram {
  agent: Agent;
  ops: HttpServer | null;
  log: Logger;
  shutdown(): Promise<void>;
}

export async function runAgent(options: AgentOptions, log?: Logger): Promise<AgentProgram> {
  log ??= createLogger({ component: "agent", format: options.logFormat, level: options.logLevel });
  const registry = createRegistry("agent");
  const metrics = createAgentMetrics(registry);
  const agent = await startAgent(
    {
      ...linkBasics(options, log),
      maps: options.map,
      flowIdleMs: options.flowIdle,
    },
    metrics,
    log,
  );
  const ops = startOps({ listen: options.ops, registry, ready: agent.ready, log });
  return {
    agent,
    ops,
    log,
    async shutdown() {
      await agent.drain(options.grace);
      await ops?.stop();
    },
  };
}

export async function main(argv = process.argv.slice(2), env: Record<string, string | undefined> = process.env) {
  const options = loadOrExit(agentSpec(Boolean(process.stderr.isTTY)), argv, env);
  const program = await runAgent(options);
  onShutdownSignals(() => program.shutdown(), program.log);
}

if (import.meta.main) await main();
