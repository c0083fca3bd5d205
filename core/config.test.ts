import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatAddress } from "./net/address.ts";
import {
  boolean,
  ConfigError,
  custom,
  defineSpec,
  duration,
  envName,
  fieldLabel,
  flagName,
  formatDuration,
  HelpRequested,
  hostPort,
  hostPortOrOff,
  integer,
  isValidServiceName,
  list,
  load,
  loadOrExit,
  MAX_DURATION_MS,
  oneOf,
  opt,
  parseDuration,
  parseHostPort,
  requireBothOrNeither,
  serviceName,
  string,
  usage,
} from "./config.ts";
import type { ProcessIo, ReadFile } from "./config.ts";

const spec = defineSpec({
  program: "demo",
  summary: "Demo program.",
  options: {
    name: opt(string(), { help: "A name", default: "dflt" }),
    count: opt(integer({ min: 1, max: 10 }), { help: "A count", default: "3" }),
    verbose: opt(boolean(), { help: "Chatty" }),
    flowIdle: opt(duration(), { help: "Idle", default: "120s" }),
    listen: opt(hostPort(), { help: "Listen", default: "0.0.0.0:4433" }),
    forward: opt(hostPort({ allowPortZero: false }), { help: "Forward" }),
    ops: opt(hostPortOrOff(), { help: "Ops", default: "127.0.0.1:9090" }),
    level: opt(oneOf(["debug", "info"] as const), { help: "Level", default: "info" }),
    server: opt(list(hostPort()), { help: "Servers" }),
    tag: opt(
      list(custom("K=V", (raw) => {
        const [k, v] = raw.split("=");
        if (!k || v === undefined) throw new Error(`expected K=V, got ${JSON.stringify(raw)}`);
        return { k, v };
      })),
      { help: "Tags" },
    ),
    cert: opt(string("FILE"), { help: "Cert" }),
    key: opt(string("FILE"), { help: "Key" }),
  },
  finish: (v) => {
    requireBothOrNeither(v, "cert", "key");
    return v;
  },
});

/** An in-memory file system for --config. */
function files(map: Record<string, string>): ReadFile {
  return (path) => {
    const text = map[path];
    if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return text;
  };
}

function run(argv: string[], env: Record<string, string | undefined> = {}, fs: Record<string, string> = {}) {
  return load(spec, argv, env, files(fs));
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("names", () => {
  test("flag, env and label derive from the camelCase name", () => {
    expect(flagName("flowIdle")).toBe("flow-idle");
    expect(envName("flowIdle")).toBe("ZTNA_FLOW_IDLE");
    expect(envName("reconnectMaxAttempts")).toBe("ZTNA_RECONNECT_MAX_ATTEMPTS");
    expect(fieldLabel("forward")).toBe("--forward (ZTNA_FORWARD)");
  });
});

describe("defaults", () => {
  test("every option resolves without input", () => {
    const v = run([]);
    expect(v).toEqual({
      config: undefined,
      name: "dflt",
      count: 3,
      verbose: false,
      flowIdle: 120_000,
      listen: { host: "0.0.0.0", port: 4433 },
      forward: undefined,
      ops: { host: "127.0.0.1", port: 9090 },
      level: "info",
      server: [],
      tag: [],
      cert: undefined,
      key: undefined,
    });
  });
});

describe("precedence: flags > env > file > defaults", () => {
  const fs = {
    "c.json": JSON.stringify({
      name: "file",
      count: 4,
      verbose: true,
      flowIdle: 30,
      listen: "1.1.1.1:1",
      level: "debug",
      server: ["f:1", "f:2"],
    }),
  };

  test("file beats defaults", () => {
    const v = run(["--config", "c.json"], {}, fs);
    expect(v.config).toBe("c.json");
    expect(v.name).toBe("file");
    expect(v.count).toBe(4);
    expect(v.verbose).toBe(true);
    expect(v.flowIdle).toBe(30_000);
    expect(v.listen).toEqual({ host: "1.1.1.1", port: 1 });
    expect(v.level).toBe("debug");
    expect(v.server).toEqual([{ host: "f", port: 1 }, { host: "f", port: 2 }]);
    expect(v.ops).toEqual({ host: "127.0.0.1", port: 9090 }); // not in file: default
  });

  test("env beats file", () => {
    const env = {
      ZTNA_CONFIG: "c.json",
      ZTNA_NAME: "env",
      ZTNA_COUNT: "5",
      ZTNA_VERBOSE: "false",
      ZTNA_FLOW_IDLE: "500ms",
      ZTNA_LISTEN: "[::1]:2",
      ZTNA_SERVER: "e:1,e:2,e:3",
    };
    const v = run([], env, fs);
    expect(v.name).toBe("env");
    expect(v.count).toBe(5);
    expect(v.verbose).toBe(false);
    expect(v.flowIdle).toBe(500);
    expect(v.listen).toEqual({ host: "::1", port: 2 });
    expect(v.server.map((s) => s.host)).toEqual(["e", "e", "e"]);
    expect(v.level).toBe("debug"); // only in file
  });

  test("flags beat env", () => {
    const env = { ZTNA_NAME: "env", ZTNA_COUNT: "5", ZTNA_FLOW_IDLE: "1", ZTNA_SERVER: "e:1" };
    const v = run(
      ["--config=c.json", "--name", "flag", "--count=6", "--verbose", "--flow-idle", "2m", "--server", "x:1,y:2"],
      env,
      fs,
    );
    expect(v.name).toBe("flag");
    expect(v.count).toBe(6);
    expect(v.verbose).toBe(true);
    expect(v.flowIdle).toBe(120_000);
    expect(v.server).toEqual([{ host: "x", port: 1 }, { host: "y", port: 2 }]);
  });

  test("--config flag beats ZTNA_CONFIG", () => {
    const v = run(["--config", "b.json"], { ZTNA_CONFIG: "a.json" }, {
      "a.json": '{"name":"a"}',
      "b.json": '{"name":"b"}',
    });
    expect(v.name).toBe("b");
    expect(v.config).toBe("b.json");
  });

  test("empty env values count as unset", () => {
    expect(run([], { ZTNA_NAME: "", ZTNA_COUNT: "  " }).name).toBe("dflt");
  });

  test("a later flag wins for single-valued options", () => {
    expect(run(["--name", "a", "--name", "b"]).name).toBe("b");
  });
});

describe("flag forms", () => {
  test("booleans: bare, =true/=false, env words", () => {
    expect(run(["--verbose"]).verbose).toBe(true);
    expect(run(["--verbose=false"]).verbose).toBe(false);
    expect(run(["--verbose=true"]).verbose).toBe(true);
    expect(run([], { ZTNA_VERBOSE: "1" }).verbose).toBe(true);
    expect(run([], { ZTNA_VERBOSE: "yes" }).verbose).toBe(true);
    expect(run(["--verbose=false"], { ZTNA_VERBOSE: "true" }).verbose).toBe(false);
  });

  test("a bare boolean does not swallow the next argument", () => {
    const v = run(["--verbose", "--name", "n"]);
    expect(v.verbose).toBe(true);
    expect(v.name).toBe("n");
  });

  test("repeatable flags accumulate and each occurrence splits on commas", () => {
    const v = run(["--tag", "a=1", "--tag=b=2,c=3"]);
    expect(v.tag).toEqual([{ k: "a", v: "1" }, { k: "b", v: "2" }, { k: "c", v: "3" }]);
  });

  test("repeatable env form is comma-separated, JSON form is an array", () => {
    expect(run([], { ZTNA_TAG: "a=1, b=2" }).tag).toHaveLength(2);
    expect(run(["--config", "c"], {}, { c: '{"tag":["a=1","b=2","c=3"]}' }).tag).toHaveLength(3);
    expect(run(["--config", "c"], {}, { c: '{"server":"a:1,b:2"}' }).server).toHaveLength(2);
  });

  test('values may contain "="', () => {
    expect(run(["--name=a=b"]).name).toBe("a=b");
  });

  test("JSON null means unset", () => {
    expect(run(["--config", "c"], {}, { c: '{"name":null}' }).name).toBe("dflt");
  });
});

describe("value kinds", () => {
  test("durations", () => {
    expect(parseDuration("10")).toBe(10_000);
    expect(parseDuration("10s")).toBe(10_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("0")).toBe(0);
    for (const bad of ["", "abc", "-1s", "10x", "s", "1 s"]) expect(() => parseDuration(bad)).toThrow();
    expect(() =>
      load(defineSpec({ program: "p", summary: "", options: { d: opt(duration({ min: 1 }), { help: "d" }) } }), [
        "--d",
        "0",
      ], {})
    )
      .toThrow('--d (ZTNA_D): expected a duration of at least 1ms, got "0"');
  });

  test("host:port", () => {
    expect(parseHostPort("example.com:443")).toEqual({ host: "example.com", port: 443 });
    expect(parseHostPort("[::1]:4433")).toEqual({ host: "::1", port: 4433 });
    expect(parseHostPort("[fe80::1%eth0]:1")).toEqual({ host: "fe80::1%eth0", port: 1 });
    expect(parseHostPort("0.0.0.0:0")).toEqual({ host: "0.0.0.0", port: 0 });
    expect(parseHostPort("h:65535").port).toBe(65535);
    for (const bad of ["abc", ":80", "h:", "h:65536", "h:-1", "::1:80", "[::1]", "[::1]:x", "a b:1", "h:1x", "[a]:1"]) {
      expect(() => parseHostPort(bad)).toThrow();
    }
    expect(() => parseHostPort("h:0", false)).toThrow("non-zero port");
    // What parseHostPort reads, formatAddress (core/net/address.ts) writes back.
    for (const text of ["[::1]:1", "a:1", "127.0.0.1:0"]) expect(formatAddress(parseHostPort(text))).toBe(text);
  });

  test("host:port or off", () => {
    expect(run(["--ops", "off"]).ops).toBeNull();
    expect(run([], { ZTNA_OPS: "OFF" }).ops).toBeNull();
    expect(run(["--ops", "127.0.0.1:0"]).ops).toEqual({ host: "127.0.0.1", port: 0 });
    expect(configError(() => run(["--ops", "nope"])).message).toBe(
      'invalid config: --ops (ZTNA_OPS): expected HOST:PORT or off, got "nope"',
    );
  });

  test("service names", () => {
    expect(isValidServiceName("web-1.prod_x")).toBe(true);
    expect(isValidServiceName("a".repeat(63))).toBe(true);
    expect(isValidServiceName("a".repeat(64))).toBe(false);
    expect(isValidServiceName("")).toBe(false);
    expect(isValidServiceName("-a")).toBe(false);
    expect(isValidServiceName("a/b")).toBe(false);
    expect(isValidServiceName("é")).toBe(false);
    expect(() => serviceName().parse("*")).toThrow("expected a service name");
  });
});

describe("errors name the field", () => {
  const cases: Array<[string, () => unknown, string, string]> = [
    [
      "bad host:port flag",
      () => run(["--forward", "abc"]),
      "forward",
      'invalid config: --forward (ZTNA_FORWARD): expected HOST:PORT, got "abc"',
    ],
    [
      "port zero refused",
      () => run(["--forward", "h:0"]),
      "forward",
      "--forward (ZTNA_FORWARD): expected HOST:PORT with a non-zero port",
    ],
    ["port too big", () => run(["--listen", "h:70000"]), "listen", "port 0..65535"],
    [
      "bad integer",
      () => run(["--count", "x"]),
      "count",
      '--count (ZTNA_COUNT): expected an integer in 1..10, got "x"',
    ],
    ["integer range", () => run([], { ZTNA_COUNT: "11" }), "count", 'expected an integer in 1..10, got "11"'],
    ["integer fraction", () => run(["--count", "1.5"]), "count", "expected an integer"],
    [
      "bad boolean",
      () => run(["--verbose=maybe"]),
      "verbose",
      '--verbose (ZTNA_VERBOSE): expected true or false, got "maybe"',
    ],
    [
      "bad duration env",
      () => run([], { ZTNA_FLOW_IDLE: "soon" }),
      "flowIdle",
      "--flow-idle (ZTNA_FLOW_IDLE): expected a duration",
    ],
    [
      "bad enum",
      () => run(["--level", "loud"]),
      "level",
      '--level (ZTNA_LEVEL): expected one of debug|info, got "loud"',
    ],
    [
      "bad list element",
      () => run(["--server", "a:1,b"]),
      "server",
      '--server (ZTNA_SERVER): expected HOST:PORT, got "b"',
    ],
    ["custom parser", () => run(["--tag", "x"]), "tag", '--tag (ZTNA_TAG): expected K=V, got "x"'],
    ["empty string", () => run(["--name="]), "name", "--name (ZTNA_NAME): expected a non-empty STRING"],
    ["missing value", () => run(["--name"]), "name", "--name (ZTNA_NAME): expected STRING after --name"],
    ["flag as value", () => run(["--name", "--verbose"]), "name", "expected STRING after --name"],
    ["unknown flag", () => run(["--nmae", "x"]), "--nmae", "invalid config: unknown flag --nmae"],
    ["unknown flag with =", () => run(["--nmae=x"]), "--nmae", "unknown flag --nmae"],
    ["single-dash flag", () => run(["-n"]), "-n", "unknown flag -n"],
    ["positional", () => run(["stray"]), "stray", 'unexpected argument "stray"'],
    ["cert without key", () => run(["--cert", "c.pem"]), "cert", "--cert (ZTNA_CERT): --key must be given too"],
    ["key without cert", () => run([], { ZTNA_KEY: "k.pem" }), "key", "--key (ZTNA_KEY): --cert must be given too"],
    [
      "missing file",
      () => run(["--config", "nope.json"]),
      "config",
      '--config (ZTNA_CONFIG): cannot read config file "nope.json"',
    ],
    [
      "invalid JSON",
      () => run(["--config", "c"], {}, { c: "{ name: 1" }),
      "config",
      'config file "c" is not valid JSON',
    ],
    ["JSON not an object", () => run(["--config", "c"], {}, { c: "[1]" }), "config", "must contain a JSON object"],
    [
      "unknown JSON key",
      () => run(["--config", "c"], {}, { c: '{"flow_idle": 3}' }),
      "flow_idle",
      'unknown key "flow_idle" in config file "c"',
    ],
    ["nested config key", () => run(["--config", "c"], {}, { c: '{"config": "x"}' }), "config", 'unknown key "config"'],
    [
      "bad JSON value",
      () => run(["--config", "c"], {}, { c: '{"listen": 4433}' }),
      "listen",
      '--listen (ZTNA_LISTEN) in config file "c": expected HOST:PORT, got "4433"',
    ],
    [
      "JSON wrong type",
      () => run(["--config", "c"], {}, { c: '{"name": {"a":1}}' }),
      "name",
      'expected STRING, got {"a":1}',
    ],
    [
      "JSON list wrong type",
      () => run(["--config", "c"], {}, { c: '{"server": 5}' }),
      "server",
      "expected an array of HOST:PORT, got 5",
    ],
  ];
  for (const [what, fn, field, message] of cases) {
    test(what, () => {
      const err = configError(fn);
      expect(err.field).toBe(field);
      expect(err.message).toContain(message);
      expect(err.message.startsWith("invalid config: ")).toBe(true);
      expect(err.message).not.toContain("\n");
    });
  }

  test("a real file on disk is read with node:fs by default", () => {
    const dir = mkdtempSync(join(tmpdir(), "ztna-config-"));
    try {
      const path = join(dir, "c.json");
      writeFileSync(path, '{"count": 7}');
      expect(load(spec, ["--config", path], {}).count).toBe(7);
      writeFileSync(path, "not json");
      expect(configError(() => load(spec, ["--config", path], {})).message).toContain(`"${path}" is not valid JSON`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("required options", () => {
    const s = defineSpec({
      program: "p",
      summary: "",
      options: { must: opt(list(string()), { help: "x", required: true }) },
    });
    const err = configError(() => load(s, [], {}));
    expect(err.field).toBe("must");
    expect(err.message).toContain("--must (ZTNA_MUST): required");
    expect(configError(() => load(s, ["--must", ","], {})).field).toBe("must"); // empty list counts as missing
  });
});

describe("help", () => {
  test("--help throws HelpRequested with usage listing every option", () => {
    let usageText = "";
    try {
      run(["--bogus", "--help"]);
    } catch (err) {
      expect(err).toBeInstanceOf(HelpRequested);
      usageText = (err as HelpRequested).usage;
    }
    for (const name of [...Object.keys(spec.options), "config"]) {
      expect(usageText).toContain(`--${flagName(name)}`);
      expect(usageText).toContain(envName(name));
    }
    expect(usageText).toContain("Usage: demo [options]");
    expect(usageText).toContain("Default: 120s");
    expect(usageText).toContain("--help");
    expect(usage(spec)).toBe(usageText);
  });
});

describe("loadOrExit", () => {
  class Exit extends Error {
    constructor(readonly code: number) {
      super(`exit ${code}`);
    }
  }
  function io() {
    const out: string[] = [];
    const err: string[] = [];
    const value: ProcessIo = {
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      exit: (code) => {
        throw new Exit(code);
      },
      readFile: files({}),
    };
    return { out, err, value };
  }

  test("returns values on success", () => {
    const x = io();
    expect(loadOrExit(spec, ["--count", "2"], {}, x.value).count).toBe(2);
  });

  test("config errors print one line and exit 2", () => {
    const x = io();
    expect(() => loadOrExit(spec, ["--forward", "abc"], {}, x.value)).toThrow(new Exit(2));
    expect(x.err).toEqual(['error: invalid config: --forward (ZTNA_FORWARD): expected HOST:PORT, got "abc"']);
    expect(x.out).toEqual([]);
  });

  test("--help prints usage and exits 0", () => {
    const x = io();
    expect(() => loadOrExit(spec, ["-h"], {}, x.value)).toThrow(new Exit(0));
    expect(x.out[0]).toContain("Usage: demo");
    expect(x.err).toEqual([]);
  });

  test("other errors propagate", () => {
    const s = defineSpec({
      program: "p",
      summary: "",
      options: {},
      finish: () => {
        throw new TypeError("bug");
      },
    });
    expect(() => loadOrExit(s, [], {}, io().value)).toThrow(TypeError);
  });
});

test("defineSpec reserves config and help", () => {
  expect(() => defineSpec({ program: "p", summary: "", options: { config: opt(string(), { help: "x" }) } })).toThrow();
});

describe("duration bounds", () => {
  const spec = (kind: ReturnType<typeof duration>) =>
    defineSpec({ program: "p", summary: "", options: { d: opt(kind, { help: "d" }) } });
  test("max, and a hard cap that a timer can hold", () => {
    expect(load(spec(duration({ max: 60_000 })), ["--d", "1m"], {}).d).toBe(60_000);
    expect(() => load(spec(duration({ max: 60_000 })), ["--d", "61s"], {})).toThrow(
      'expected a duration of at most 1m, got "61s"',
    );
    expect(MAX_DURATION_MS).toBe(2 ** 31 - 1);
    expect(() => load(spec(duration()), ["--d", "600h"], {})).toThrow(
      `expected a duration of at most ${MAX_DURATION_MS}ms`,
    );
    expect(formatDuration(3_600_000)).toBe("1h");
    expect(formatDuration(90_000)).toBe("90s");
    expect(formatDuration(1_500)).toBe("1500ms");
  });
});
