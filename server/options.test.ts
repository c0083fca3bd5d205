import { describe, expect, onTestFinished, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, envName, flagName, HelpRequested, usage } from "../core/config.ts";
import { parseServerOptions, serverSpec } from "./options.ts";

const noFiles = (path: string): string => {
  throw new Error(`ENOENT: ${path}`);
};
const parse = (
  argv: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
  stdoutIsTty = false,
) =>
  parseServerOptions(argv, env, {
    stdoutIsTty,
    readFile: (p) => files[p] ?? noFiles(p),
  });

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.field;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("server options", () => {
  test("defaults", () => {
    expect(parse([])).toEqual({
      config: undefined,
      listen: { host: "0.0.0.0", port: 4433 },
      ops: { host: "127.0.0.1", port: 9090 },
      stateDir: ".ztna",
      cert: undefined,
      key: undefined,
      ca: undefined,
      grace: 10_000,
      alternate: undefined,
      restartTryFor: 60_000,
      restartReconnectIn: 0,
      idleTimeout: 30_000,
      keepalive: 10_000,
      flowIdle: 120_000,
      maxConnectionsPerAddress: 256,
      maxHandshakes: 1024,
      retryAbove: 32,
      maxFlowsPerAgent: 4096,
      maxRegistrationsPerConnection: 64,
      maxControlMessage: 4096,
      maxDatagramRate: 200_000,
      maxUdpPayload: 16383,
      logFormat: "json",
      logLevel: "info",
    });
  });

  test("log format defaults to text on a terminal", () => {
    expect(parse([], {}, {}, true).logFormat).toBe("text");
    expect(parse(["--log-format", "json"], {}, {}, true).logFormat).toBe("json");
  });

  test("precedence flags > env > file > defaults", () => {
    const files = {
      "s.json": JSON.stringify({ listen: "127.0.0.1:1", grace: 1, logLevel: "warn", ops: "off", stateDir: "/f" }),
    };
    const env = { ZTNA_CONFIG: "s.json", ZTNA_LISTEN: "127.0.0.1:2", ZTNA_GRACE: "2s" };
    const v = parse(["--listen", "[::]:3"], env, files);
    expect(v.listen).toEqual({ host: "::", port: 3 });
    expect(v.grace).toBe(2000);
    expect(v.logLevel).toBe("warn");
    expect(v.ops).toBeNull();
    expect(v.stateDir).toBe("/f");
    expect(v.flowIdle).toBe(120_000);
  });

  test("cert and key: both or neither", () => {
    expect(parse(["--cert", "c", "--key", "k"])).toMatchObject({ cert: "c", key: "k" });
    expect(fieldOf(() => parse(["--cert", "c"]))).toBe("cert");
    expect(fieldOf(() => parse(["--key", "k"]))).toBe("key");
  });

  test("restart announcement: try-for and reconnect-in in u32 milliseconds; reconnect-in needs a restart", () => {
    expect(parse(["--restart-try-for", "2m", "--restart-reconnect-in", "1.5s"])).toMatchObject({
      restartTryFor: 120_000,
      restartReconnectIn: 1_500,
    });
    expect(parse(["--restart-try-for", "0"])).toMatchObject({ restartTryFor: 0, restartReconnectIn: 0 });
    expect(parse([], { ZTNA_RESTART_TRY_FOR: "15s" }).restartTryFor).toBe(15_000);
    expect(fieldOf(() => parse(["--restart-try-for", "0", "--restart-reconnect-in", "1s"]))).toBe("restartReconnectIn");
    expect(fieldOf(() => parse(["--restart-try-for", "50d"]))).toBe("restartTryFor"); // over 2^32-1 ms
  });

  test("errors name the field", () => {
    expect(fieldOf(() => parse(["--listen", "4433"]))).toBe("listen");
    expect(fieldOf(() => parse(["--ops", "maybe"]))).toBe("ops");
    expect(fieldOf(() => parse(["--log-level", "trace"]))).toBe("logLevel");
    expect(fieldOf(() => parse(["--log-format", "xml"]))).toBe("logFormat");
    expect(fieldOf(() => parse(["--idle-timeout", "0"]))).toBe("idleTimeout");
    expect(fieldOf(() => parse(["--keepalive", "30s"]))).toBe("keepalive"); // not < idleTimeout
    expect(fieldOf(() => parse(["--map", "x=udp://a:1"]))).toBe("--map");
  });

  test("help lists every option", () => {
    const text = usage(serverSpec(false));
    for (
      const name of [
        "listen",
        "ops",
        "stateDir",
        "cert",
        "key",
        "ca",
        "grace",
        "idleTimeout",
        "keepalive",
        "flowIdle",
        "maxUdpPayload",
        "logFormat",
        "logLevel",
        "config",
      ]
    ) {
      expect(text).toContain(`--${flagName(name)}`);
      expect(text).toContain(envName(name));
    }
    expect(() => parse(["--help"])).toThrow(HelpRequested);
  });

  test("loadOrExit in a real process: exit 2 with one line, --help exits 0", () => {
    const script = `import { loadOrExit } from ${
      JSON.stringify(new URL("../core/config.ts", import.meta.url).pathname)
    };
import { serverSpec } from ${JSON.stringify(new URL("./options.ts", import.meta.url).pathname)};
loadOrExit(serverSpec(false), process.argv.slice(2), process.env);
console.log('ok');`;
    const dir = mkdtempSync(join(tmpdir(), "ztna-opts-"));
    const file = join(dir, "main.ts");
    writeFileSync(file, script);
    const run = (args: string[]) => Bun.spawnSync([process.execPath, file, ...args], { env: {} });
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const bad = run(["--listen", "abc"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toBe(
      'error: invalid config: --listen (ZTNA_LISTEN): expected HOST:PORT, got "abc"\n',
    );
    const help = run(["--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout.toString()).toContain("Usage: ztna-server");
    const ok = run([]);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout.toString()).toBe("ok\n");
  });
});

describe("upper bounds", () => {
  const message = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      if (err instanceof ConfigError) return err.message;
      throw err;
    }
    throw new Error("expected a ConfigError");
  };

  test("maxFlowsPerAgent: 1e12 is refused when parsed, from a flag, the environment or the config file", () => {
    expect(message(() => parse(["--max-flows-per-agent", "1000000000000"]))).toBe(
      'invalid config: --max-flows-per-agent (ZTNA_MAX_FLOWS_PER_AGENT): expected an integer in 1..1000000, got "1000000000000"',
    );
    expect(message(() => parse([], { ZTNA_MAX_FLOWS_PER_AGENT: "1000000000000" }))).toContain(
      "expected an integer in 1..1000000",
    );
    expect(message(() => parse(["--config", "c.json"], {}, { "c.json": '{"maxFlowsPerAgent": 1e12}' }))).toBe(
      'invalid config: --max-flows-per-agent (ZTNA_MAX_FLOWS_PER_AGENT) in config file "c.json": expected an integer in 1..1000000, got "1000000000000"',
    );
    expect(parse(["--max-flows-per-agent", "1000000"]).maxFlowsPerAgent).toBe(1_000_000);
  });

  test("every numeric option has a bound, shown in --help", () => {
    const cases: [string, string][] = [
      ["--max-connections-per-address", "65537"],
      ["--max-handshakes", "100001"],
      ["--max-registrations-per-connection", "65536"],
      ["--max-datagram-rate", "10000001"],
      ["--max-control-message", "4097"],
      ["--max-udp-payload", "65528"],
      ["--grace", "2h"],
      ["--idle-timeout", "61m"],
      ["--keepalive", "11m"],
      ["--flow-idle", "25h"],
    ];
    for (const [flag, value] of cases) expect(message(() => parse([flag, value]))).toContain(`${flag} (`);
    expect(message(() => parse(["--flow-idle", "25h"]))).toContain('expected a duration of at most 24h, got "25h"');
    // Timers cannot hold more than 2^31-1 ms: no duration goes past that, whatever its own bound.
    expect(message(() => parse(["--flow-idle", "999999999999"]))).toContain("at most 24h");
    const help = usage(serverSpec(false));
    expect(help).toContain("Range: 1..1000000.");
    expect(help).toContain("Range: 1ms..24h.");
  });
});
