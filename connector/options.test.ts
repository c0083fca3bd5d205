import { describe, expect, test } from "bun:test";
import { ConfigError, envName, flagName, usage } from "../core/config.ts";
import { connectorSpec, parseConnectorOptions } from "./options.ts";

const REQUIRED = ["--server", "relay:4433", "--service", "web", "--forward", "127.0.0.1:8080"];

const parse = (argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}) =>
  parseConnectorOptions(argv, env, {
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

describe("connector options", () => {
  test("required options and defaults", () => {
    expect(parse(REQUIRED)).toEqual({
      config: undefined,
      server: [{ host: "relay", port: 4433 }],
      service: "web",
      forward: { host: "127.0.0.1", port: 8080 },
      ops: { host: "127.0.0.1", port: 9091 },
      ca: undefined,
      insecure: false,
      cert: undefined,
      key: undefined,
      serverName: undefined,
      flowIdle: 60_000,
      grace: 10_000,
      keepalive: 2_000,
      idleTimeout: 5_000,
      reconnectBase: 100,
      reconnectCap: 30_000,
      restartRetry: 250,
      reconnectMaxAttempts: 0,
      maxUdpPayload: "auto",
      stateDir: ".ztna",
      logFormat: "json",
      logLevel: "info",
    });
  });

  test("everything from env", () => {
    const v = parse([], {
      ZTNA_SERVER: "a:1,[::1]:2",
      ZTNA_SERVICE: "dns",
      ZTNA_FORWARD: "[::1]:53",
      ZTNA_INSECURE: "true",
      ZTNA_RECONNECT_MAX_ATTEMPTS: "7",
      ZTNA_SERVER_NAME: "relay.example",
    });
    expect(v.server).toEqual([{ host: "a", port: 1 }, { host: "::1", port: 2 }]);
    expect(v.forward).toEqual({ host: "::1", port: 53 });
    expect(v.insecure).toBe(true);
    expect(v.reconnectMaxAttempts).toBe(7);
    expect(v.serverName).toBe("relay.example");
  });

  test("precedence flags > env > file > defaults", () => {
    const files = {
      "c.json": JSON.stringify({
        server: ["file:1"],
        service: "fromfile",
        forward: "10.0.0.1:1",
        flowIdle: 5,
        reconnectCap: "1m",
        reconnectMaxAttempts: 3,
      }),
    };
    const v = parse(["--config", "c.json", "--service", "fromflag", "--reconnect-max-attempts", "9"], {
      ZTNA_SERVICE: "fromenv",
      ZTNA_FLOW_IDLE: "7s",
      ZTNA_RECONNECT_MAX_ATTEMPTS: "4",
    }, files);
    expect(v.service).toBe("fromflag");
    expect(v.reconnectMaxAttempts).toBe(9);
    expect(v.flowIdle).toBe(7_000);
    expect(v.reconnectCap).toBe(60_000);
    expect(v.server).toEqual([{ host: "file", port: 1 }]);
    expect(v.reconnectBase).toBe(100);
  });

  test("validation errors name the field", () => {
    const cases: Array<[string[], Record<string, string>, string, string]> = [
      [[], {}, "server", "--server (ZTNA_SERVER): required"],
      [["--server", "r:1", "--forward", "h:1"], {}, "service", "--service (ZTNA_SERVICE): required"],
      [["--server", "r:1", "--service", "s"], {}, "forward", "--forward (ZTNA_FORWARD): required"],
      [
        [...REQUIRED, "--forward", "abc"],
        {},
        "forward",
        'invalid config: --forward (ZTNA_FORWARD): expected HOST:PORT, got "abc"',
      ],
      [[...REQUIRED, "--forward", "h:0"], {}, "forward", "non-zero port"],
      [[...REQUIRED, "--server", "r:0"], {}, "server", "non-zero port"],
      [[...REQUIRED, "--service", "-bad"], {}, "service", "--service (ZTNA_SERVICE): expected a service name"],
      [[...REQUIRED, "--service", "x".repeat(64)], {}, "service", "expected a service name"],
      [[...REQUIRED, "--service", "a/b"], {}, "service", "expected a service name"],
      [
        [...REQUIRED, "--ca", "ca.pem", "--insecure"],
        {},
        "insecure",
        "--insecure (ZTNA_INSECURE): cannot be combined with --ca",
      ],
      [REQUIRED, { ZTNA_CA: "ca.pem", ZTNA_INSECURE: "1" }, "insecure", "cannot be combined with --ca"],
      [[...REQUIRED, "--cert", "c.pem"], {}, "cert", "--key must be given too"],
      [[...REQUIRED, "--key", "k.pem"], {}, "key", "--cert must be given too"],
      [
        [...REQUIRED, "--reconnect-max-attempts", "-1"],
        {},
        "reconnectMaxAttempts",
        "expected an integer in 0..1000000",
      ],
      [
        [...REQUIRED, "--reconnect-base", "1m", "--reconnect-cap", "10s"],
        {},
        "reconnectBase",
        "must be at most --reconnect-cap",
      ],
      [[...REQUIRED, "--keepalive", "5s"], {}, "keepalive", "must be less than --idle-timeout"],
      [[...REQUIRED, "--grace", "later"], {}, "grace", "--grace (ZTNA_GRACE): expected a duration"],
      [[...REQUIRED, "--insecure=perhaps"], {}, "insecure", "expected true or false"],
      [[...REQUIRED, "--listen", "x:1"], {}, "--listen", "unknown flag --listen"],
    ];
    for (const [argv, env, field, message] of cases) {
      const err = error(() => parse(argv, env));
      expect(err.field).toBe(field);
      expect(err.message).toContain(message);
    }
  });

  test("ca alone, insecure alone and neither are accepted", () => {
    expect(parse([...REQUIRED, "--ca", "x.pem"]).ca).toBe("x.pem");
    expect(parse([...REQUIRED, "--insecure"]).insecure).toBe(true);
    expect(parse([...REQUIRED, "--ca", "x.pem", "--insecure=false"]).insecure).toBe(false);
    expect(parse(REQUIRED).ca).toBeUndefined();
  });

  test("help lists every option", () => {
    const text = usage(connectorSpec(false));
    const names = [
      "server",
      "service",
      "forward",
      "ops",
      "ca",
      "insecure",
      "cert",
      "key",
      "serverName",
      "flowIdle",
      "grace",
      "keepalive",
      "idleTimeout",
      "reconnectBase",
      "reconnectCap",
      "restartRetry",
      "reconnectMaxAttempts",
      "maxUdpPayload",
      "stateDir",
      "logFormat",
      "logLevel",
      "config",
    ];
    for (const name of names) {
      expect(text).toContain(`--${flagName(name)}`);
      expect(text).toContain(envName(name));
    }
    expect(Object.keys(connectorSpec(false).options).length + 1).toBe(names.length);
  });
});
