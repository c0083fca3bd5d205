/**
 * Many agents in one process: the project's own QUIC engine
 * (core/quic/endpoint.ts) as thousands of clients of one server, for the scale
 * and abuse rows. An agent here is a connection that completes the handshake
 * and HELLO -> WELCOME ("registration"), then idles with the agents' default
 * keepalive, as a real agent with nothing to send would.
 *
 *   --target HOST:PORT --ca FILE [--server-name localhost] [--concurrency 64]
 *
 * Connections spread over local addresses 127.1.x.y, at most --per-address
 * each (below the server's per-address limit), as many real agents would come
 * from many addresses. Commands on stdin, one JSON report each:
 *   ramp N [MS]  dial until N agents are registered, or for at most MS ms:
 *              {agents, outOfTime, dialled, failed, seconds, perSecond, latency}
 *   probe M [W]  W warm-up dials, then M dials one after another, each closed
 *              after WELCOME: {latency, failed} of the M
 *   refuse N   N dials without a client certificate (against an mTLS server):
 *              {refused, registered, seconds, reasons}
 *   count      {agents, lost}: registered agents still up, and those that went down
 */
import { readFileSync } from "node:fs";
import { alpnFor } from "../../core/frame/mod.ts";
import { parseAgentOptions } from "../../agent/options.ts";
import { type ControlReader, createControlReader, encodeControl, PROTOCOL_VERSION } from "../../core/frame/mod.ts";
import { clientQuicConfig } from "../../core/quic/config.ts";
import { createEndpoint, type Endpoint, type QuicConnection } from "../../core/quic/endpoint.ts";
import { flag, numberFlag, onCommands, parseHostPort, report } from "../lib/child-io.ts";
import { summarize } from "../lib/stats.ts";

const target = parseHostPort(flag("target", ""));
const serverName = flag("server-name", "localhost");
const caPem = readFileSync(flag("ca", ""));
const concurrency = numberFlag("concurrency", 64);
const perAddress = numberFlag("per-address", 200);
// The agents' own defaults, so this row follows them if they change.
const agentDefaults = parseAgentOptions(["--server", "127.0.0.1:1", "--map", "x=udp://127.0.0.1:0"], {});
const keepaliveMs = agentDefaults.keepalive;
const DIAL_TIMEOUT_MS = Math.max(agentDefaults.idleTimeout, 1_000);

interface Dial {
  started: number;
  reader: ControlReader;
  registered: boolean;
  /** Called once: ms from dial to WELCOME, or an error reason. */
  settle(result: { ok: true; ms: number } | { ok: false; reason: string }): void;
  timer: ReturnType<typeof setTimeout>;
  /** Close the connection as soon as it registers (probes). */
  closeWhenRegistered: boolean;
}

let agents = 0;
let lost = 0;

const handlers = {
  onEstablished(c: QuicConnection) {
    c.writeStream(0, encodeControl({ type: "hello", version: PROTOCOL_VERSION, role: "agent", name: `swarm-${c.id}` }));
  },
  onStreamData(c: QuicConnection, streamId: number, data: Uint8Array) {
    const dial = c.context as Dial;
    if (streamId !== 0 || dial.registered) return;
    for (const m of dial.reader.push(data)) {
      if (!m.ok) return void dial.settle({ ok: false, reason: `protocol:${m.error.kind}` });
      if (m.value.type !== "welcome") continue;
      dial.registered = true;
      dial.settle({ ok: true, ms: performance.now() - dial.started });
      if (dial.closeWhenRegistered) c.close(0, "probe done");
      else agents++;
      return;
    }
  },
  onClosed(
    c: QuicConnection,
    info: {
      peer: { errorCode: number } | null;
      local: { errorCode: number } | null;
      timedOut: boolean;
      reason: string;
    },
  ) {
    const dial = c.context as Dial;
    if (dial.registered) {
      if (!dial.closeWhenRegistered) {
        agents--;
        lost++;
      }
      return;
    }
    const code = info.peer ?? info.local;
    dial.settle({
      ok: false,
      reason: info.timedOut
        ? "timeout"
        : code
        ? `${info.peer ? "peer" : "local"}:0x${code.errorCode.toString(16)}`
        : "closed",
    });
  },
};

// No client certificate: the scale server runs without --ca (any agent may
// connect), and the abuse row's mTLS server must refuse exactly that.
const config = clientQuicConfig({ alpn: alpnFor(), caPem, insecure: false, idleTimeoutMs: agentDefaults.idleTimeout });

/** Endpoints, one per local address, each holding at most `perAddress` dials. */
const endpoints: { endpoint: Endpoint; used: number }[] = [];
let addressIndex = 0;

async function freeEndpoint(): Promise<{ endpoint: Endpoint; used: number }> {
  const last = endpoints[endpoints.length - 1];
  if (last && last.used < perAddress) return last;
  const i = addressIndex++;
  const host = `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const endpoint = await createEndpoint({
    bind: { host, port: 0 },
    server: false,
    config,
    keepaliveMs,
    handlers,
    onSocketError: () => {},
  });
  const slot = { endpoint, used: 0 };
  endpoints.push(slot);
  return slot;
}

/** One dial; resolves with ms to WELCOME or the reason it failed. */
async function dial(closeWhenRegistered = false): Promise<{ ok: true; ms: number } | { ok: false; reason: string }> {
  const slot = await freeEndpoint();
  slot.used++;
  return new Promise((resolve) => {
    const started = performance.now();
    const conn = slot.endpoint.connect(target, serverName);
    let settled = false;
    const state: Dial = {
      started,
      reader: createControlReader(),
      registered: false,
      closeWhenRegistered,
      timer: setTimeout(() => {
        state.settle({ ok: false, reason: "dial_timeout" });
        conn.close(0, "dial timeout");
      }, DIAL_TIMEOUT_MS),
      settle(result) {
        if (settled) return;
        settled = true;
        clearTimeout(state.timer);
        if (!result.ok || closeWhenRegistered) slot.used--; // the slot frees once quiche forgets it; close enough
        resolve(result);
      },
    };
    conn.context = state;
  });
}

/**
 * Dials with `concurrency` in flight until `enough(inFlight)` says stop or
 * `maxDials` have been made.
 */
async function dialMany(maxDials: number, enough: (inFlight: number) => boolean) {
  const latencies: number[] = [];
  const reasons: Record<string, number> = {};
  let dialled = 0;
  let failed = 0;
  let inFlight = 0;
  const started = performance.now();
  const worker = async () => {
    while (dialled < maxDials && !enough(inFlight)) {
      dialled++;
      inFlight++;
      const r = await dial();
      inFlight--;
      if (r.ok) latencies.push(r.ms * 1000);
      else {
        failed++;
        reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { dialled, failed, reasons, latencies, seconds: (performance.now() - started) / 1000 };
}

async function ramp(n: number, budgetMs: number) {
  const from = agents;
  const deadline = performance.now() + budgetMs;
  let outOfTime = false;
  // Failures are counted and retried, but a server that refuses everything ends the ramp.
  const r = await dialMany(Math.max(0, n - agents) * 2, (inFlight) => {
    outOfTime ||= performance.now() > deadline;
    return outOfTime || agents + inFlight >= n;
  });
  report({
    outOfTime,
    agents,
    added: agents - from,
    dialled: r.dialled,
    failed: r.failed,
    reasons: r.reasons,
    seconds: r.seconds,
    perSecond: (agents - from) / r.seconds,
    latency: summarize(r.latencies),
  });
}

async function probe(m: number, warmup: number) {
  const latencies: number[] = [];
  const reasons: Record<string, number> = {};
  // As the RTT rows do: a long-running server has its handshake path compiled.
  for (let i = 0; i < warmup; i++) {
    await dial(true);
    await Bun.sleep(2);
  }
  for (let i = 0; i < m; i++) {
    const r = await dial(true);
    if (r.ok) latencies.push(r.ms * 1000);
    else reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
    await Bun.sleep(2); // low load: one dial at a time, a little apart
  }
  report({ latency: summarize(latencies), failed: m - latencies.length, reasons });
}

async function refuse(n: number) {
  const before = agents;
  const r = await dialMany(n, () => false);
  const registered = agents - before;
  report({
    dialled: r.dialled,
    refused: r.failed,
    registered,
    seconds: r.seconds,
    perSecond: r.dialled / r.seconds,
    reasons: r.reasons,
  });
}

// Commands run one at a time, in order.
let queue = Promise.resolve();
onCommands((line) => {
  const [cmd, arg, arg2] = line.split(/\s+/);
  const n = Number(arg ?? 0);
  queue = queue.then(async () => {
    if (cmd === "ramp") await ramp(n, Number(arg2 ?? Infinity));
    else if (cmd === "probe") await probe(n, Number(arg2 ?? 0));
    else if (cmd === "refuse") await refuse(n);
    else if (cmd === "count") report({ agents, lost });
    else report({ error: `unknown command ${line}` });
  });
});
report({ ready: true, keepaliveMs, idleTimeoutMs: agentDefaults.idleTimeout });
