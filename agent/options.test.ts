import { describe, expect, test } from "bun:test";
import { ConfigError, envName, flagName, usage } from "../core/config.ts";
import { agentSpec, parseAgentOptions, parseMapping } from "./options.ts";

const parse = (argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}) =>
  parseAgentOptions(argv, env, {
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT: ${p}`);
      return text;
    },
  });

function error(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

const BASE = ["--server", "relay:4433"];

describe("agent mappings", () => {
  test("parse NAME=PROTO://HOST:PORT", () => {
    expect(parseMapping("dns=udp://127.0.0.1:5353")).toEqual({
      service: "dns",
      protocol: "udp",
      listen: { host: "127.0.0.1", port: 5353 },
    });
    expect(parseMapping("web=tcp://[::1]:8080")).toEqual({
      service: "web",
      protocol: "tcp",
      listen: { host: "::1", port: 8080 },
    });
    expect(parseMapping("any=udp://localhost:0").listen.port).toBe(0);
    for (
      const bad of [
        "dns",
        "dns=127.0.0.1:53",
        "dns=http://h:1",
        "=udp://h:1",
        "*=udp://h:1",
        "dns=udp://h",
        "dns=udp://h:99999",
      ]
    ) {
      expect(() => parseMapping(bad)).toThrow();
    }
  });

  test("flags repeat, env is comma-separated, JSON is an array", () => {
    const fromFlags = parse([...BASE, "--map", "a=udp://127.0.0.1:1", "--map=b=tcp://127.0.0.1:2,c=udp://127.0.0.1:3"]);
    expect(fromFlags.map.map((m) => m.service)).toEqual(["a", "b", "c"]);
    const fromEnv = parse(BASE, { ZTNA_MAP: "a=udp://1.2.3.4:5,b=udp://1.2.3.4:6" });
    expect(fromEnv.map).toHaveLength(2);
    const fromFile = parse(["--config", "a.json"], {}, {
      "a.json": JSON.stringify({ server: ["r:1"], map: ["x=tcp://127.0.0.1:1"] }),
    });
    expect(fromFile.map).toEqual([{ service: "x", protocol: "tcp", listen: { host: "127.0.0.1", port: 1 } }]);
  });

  test("flags replace env and file lists instead of merging", () => {
    const v = parse([...BASE, "--map", "f=udp://127.0.0.1:1"], { ZTNA_MAP: "e=udp://127.0.0.1:2" });
    expect(v.map.map((m) => m.service)).toEqual(["f"]);
  });

  test("same port on udp and tcp is fine; same protocol and address is not", () => {
    expect(parse([...BASE, "--map", "a=udp://127.0.0.1:1", "--map", "a=tcp://127.0.0.1:1"]).map).toHaveLength(2);
    expect(parse([...BASE, "--map", "a=udp://127.0.0.1:0", "--map", "b=udp://127.0.0.1:0"]).map).toHaveLength(2);
    const err = error(() => parse([...BASE, "--map", "a=udp://127.0.0.1:1,b=udp://127.0.0.1:1"]));
    expect(err.field).toBe("map");
    expect(err.message).toBe("invalid config: --map (ZTNA_MAP): duplicate listen address udp://127.0.0.1:1");
  });
});

describe("agent options", () => {
  test("defaults", () => {
    const v = parse([...BASE, "--map", "a=udp://127.0.0.1:1"]);
    expect(v).toMatchObject({
      ops: { host: "127.0.0.1", port: 9092 },
      insecure: false,
      keepalive: 2_000,
      idleTimeout: 5_000,
      reconnectBase: 100,
      reconnectCap: 30_000,
      restartRetry: 250,
      reconnectMaxAttempts: 0,
      maxUdpPayload: "auto",
      flowIdle: 60_000,
      grace: 5_000,
      stateDir: ".ztna",
      logFormat: "json",
      logLevel: "info",
    });
    expect(v.ca).toBeUndefined();
    expect(v.serverName).toBeUndefined();
  });

  test("precedence flags > env > file > defaults", () => {
    const files = {
      "a.json": JSON.stringify({
        server: "f:1",
        map: ["a=udp://127.0.0.1:1"],
        grace: 1,
        ops: "127.0.0.1:7",
        logLevel: "error",
      }),
    };
    const v = parse(["--config", "a.json", "--grace", "3s"], { ZTNA_GRACE: "2s", ZTNA_OPS: "off" }, files);
    expect(v.grace).toBe(3_000);
    expect(v.ops).toBeNull();
    expect(v.logLevel).toBe("error");
    expect(v.server).toEqual([{ host: "f", port: 1 }]);
  });

  test("errors name the field", () => {
    const cases: Array<[string[], Record<string, string>, string, string]> = [
      [["--map", "a=udp://127.0.0.1:1"], {}, "server", "--server (ZTNA_SERVER): required"],
      [BASE, {}, "map", "--map (ZTNA_MAP): required"],
      [[...BASE, "--map", "bad name=udp://h:1"], {}, "map", '--map (ZTNA_MAP): invalid service name "bad name"'],
      [
        [...BASE, "--map", "a=sctp://h:1"],
        {},
        "map",
        'expected NAME=udp://HOST:PORT or NAME=tcp://HOST:PORT, got "a=sctp://h:1"',
      ],
      [[...BASE, "--map", "a=udp://h"], {}, "map", 'expected HOST:PORT, got "h" in "a=udp://h"'],
      [[...BASE, "--map", "a=udp://h:1", "--ca", "c", "--insecure"], {}, "insecure", "cannot be combined with --ca"],
      [[...BASE, "--map", "a=udp://h:1", "--cert", "c"], {}, "cert", "--key must be given too"],
      [
        [...BASE, "--map", "a=udp://h:1", "--idle-timeout", "500ms"],
        {},
        "keepalive",
        "must be less than --idle-timeout",
      ],
      [[...BASE, "--map", "a=udp://h:1", "--forward", "h:1"], {}, "--forward", "unknown flag --forward"],
      [["--config", "a.json"], {}, "map", '--map (ZTNA_MAP) in config file "a.json": expected an array'],
    ];
    for (const [argv, env, field, message] of cases) {
      const err = error(() => parse(argv, env, { "a.json": '{"server":["r:1"],"map":{"a":"udp://h:1"}}' }));
      expect(err.field).toBe(field);
      expect(err.message).toContain(message);
    }
  });

  test("help lists every option", () => {
    const text = usage(agentSpec(true));
    const names = [
      "server",
      "map",
      "ops",
      "ca",
      "insecure",
      "cert",
      "key",
      "serverName",
      "keepalive",
      "idleTimeout",
      "reconnectBase",
      "reconnectCap",
      "restartRetry",
      "reconnectMaxAttempts",
      "maxUdpPayload",
      "flowIdle",
      "grace",
      "stateDir",
      "logFormat",
      "logLevel",
      "config",
    ];
    for (const name of names) {
      expect(text).toContain(`--${flagName(name)}`);
      expect(text).toContain(envName(name));
    }
    expect(Object.keys(agentSpec(true).options).length + 1).toBe(names.length);
  });
});

describe("packet size", () => {
  const base = ["--server", "127.0.0.1:4433", "--map", "db=udp://127.0.0.1:5432"];
  test("auto by default, a number fixes it, anything else is refused", () => {
    expect(parse(base).maxUdpPayload).toBe("auto");
    expect(parse([...base, "--max-udp-payload", "9000"]).maxUdpPayload).toBe(9000);
    expect(parse([...base, "--max-udp-payload", "auto"]).maxUdpPayload).toBe("auto");
    expect(() => parse([...base, "--max-udp-payload", "big"])).toThrow(/max-udp-payload/);
    expect(() => parse([...base, "--max-udp-payload", "900"])).toThrow(/1200\.\.65527/);
  });
});
