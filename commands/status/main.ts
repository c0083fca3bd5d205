/**
 * `ztna status`: what a running server, connector or agent is doing, from
 * its ops listener's `GET /status`. A readable table, `--json` for scripts,
 * `--watch` to refresh it. `--ops` (or ZTNA_OPS, or `ops` in the program's
 * own --config file) says which program; the default is a local server.
 */
import {
  boolean,
  ConfigError,
  custom,
  defineSpec,
  duration,
  HelpRequested,
  load,
  opt,
  parseHostPort,
} from "../../core/config.ts";
import { formatAddress } from "../../core/net/address.ts";
import { render } from "./render.ts";

export interface StatusIo {
  out(text: string): void;
  err(text: string): void;
  /** Redraw in place (a terminal) rather than print frame after frame. */
  tty?: boolean;
}

/** `HOST:PORT` or an http(s) URL, to the `/status` URL. */
export function statusUrl(raw: string): string {
  const text = raw.trim();
  if (text.toLowerCase() === "off") {
    throw new Error("this program's ops listener is off (--ops off): it has no /status to read");
  }
  if (/^https?:\/\//i.test(text)) {
    const url = new URL(text);
    if (url.pathname === "/" || url.pathname === "") url.pathname = "/status";
    return url.toString();
  }
  const hp = parseHostPort(text, false);
  // A wildcard listen address is reached on loopback.
  const host = hp.host === "0.0.0.0" ? "127.0.0.1" : hp.host === "::" ? "::1" : hp.host;
  return `http://${formatAddress({ host, port: hp.port })}/status`;
}

export function statusSpec() {
  return defineSpec({
    program: "ztna status",
    summary:
      "Shows what a running server, connector or agent is doing, from GET /status on its ops listener: services, connectors, " +
      "agents, flows and rates (server); links, registrations, RTT and rates (connector, agent). --config may name the program's own config file.",
    foreignConfig: true,
    options: {
      ops: opt(custom("HOST:PORT|URL", statusUrl), {
        help: "The program's ops listener",
        default: "127.0.0.1:9090",
        defaultHelp: "127.0.0.1:9090, a local server",
      }),
      json: opt(boolean(), { help: "Print the /status JSON document as it is" }),
      watch: opt(boolean(), { help: "Refresh until interrupted" }),
      interval: opt(duration({ min: 100, max: 3_600_000 }), { help: "Refresh interval of --watch", default: "2s" }),
      timeout: opt(duration({ min: 100, max: 60_000 }), { help: "How long to wait for an answer", default: "3s" }),
    },
  });
}

async function fetchStatus(
  url: string,
  timeoutMs: number,
): Promise<{ ok: true; doc: unknown } | { ok: false; error: string }> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const e = error as Error & { code?: string; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code ?? e.name;
    const why = code === "ConnectionRefused" || code === "ECONNREFUSED"
      ? "connection refused"
      : code === "TimeoutError"
      ? `no answer within ${timeoutMs} ms`
      : e.message;
    return { ok: false, error: `cannot reach ${url}: ${why}; is the program running with this --ops address?` };
  }
  if (response.status === 404) {
    return { ok: false, error: `${url}: 404, no /status there (not a ztna ops listener, or an older ztna)` };
  }
  if (!response.ok) {
    return {
      ok: false,
      error: `${url}: HTTP ${response.status} ${await response.text().catch(() => "")}`.trim(),
    };
  }
  try {
    return { ok: true, doc: await response.json() };
  } catch {
    return { ok: false, error: `${url}: the answer is not JSON` };
  }
}

/** `ztna status` as a function: the exit status (1 when the program cannot be read, 2 for bad usage). */
export async function run(
  argv: string[],
  env: Record<string, string | undefined>,
  io: StatusIo,
  stop: AbortSignal = new AbortController().signal,
): Promise<number> {
  let options;
  try {
    options = load(statusSpec(), argv, env);
  } catch (error) {
    if (error instanceof HelpRequested) {
      io.out(error.usage);
      return 0;
    }
    if (error instanceof ConfigError) {
      io.err(`ztna status: ${error.message}`);
      return 2;
    }
    throw error;
  }
  const once = async (): Promise<boolean> => {
    const got = await fetchStatus(options.ops, options.timeout);
    const stamp = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    if (!got.ok) {
      io.err(`ztna status: ${got.error}`);
      return false;
    }
    if (options.json) io.out(options.watch ? JSON.stringify(got.doc) : JSON.stringify(got.doc, null, 2));
    else {
      const text = render(got.doc).join("\n");
      if (options.watch && io.tty) {
        io.out(
          `\u001b[H\u001b[2J${text}\n\n${options.ops} at ${stamp}, every ${options.interval / 1000} s (Ctrl-C to stop)`,
        );
      } else if (options.watch) io.out(`--- ${options.ops} at ${stamp}\n${text}\n`);
      else io.out(text);
    }
    return true;
  };
  if (!options.watch) return (await once()) ? 0 : 1;
  while (!stop.aborted) {
    await once();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.interval);
      stop.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
  return 0;
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  const code = await run(argv, process.env, {
    out: (t) => console.log(t),
    err: (t) => console.error(t),
    tty: Boolean(process.stdout.isTTY),
  }, stop.signal);
  process.exit(code);
}
