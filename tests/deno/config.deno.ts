/**
 * The option loader under Deno: precedence flag > env > JSON file >
 * default, and one ConfigError naming the field for a bad value.
 */
import assert from "node:assert/strict";
import {
  ConfigError,
  defineSpec,
  duration,
  hostPort,
  list,
  load,
  opt,
  parseHostPort,
  serviceName,
  string,
} from "../../core/config.ts";
import { parseServerOptions } from "../../server/options.ts";
import { denoTest } from "./deno.ts";

const spec = defineSpec({
  program: "probe",
  summary: "test spec",
  options: {
    listen: opt(hostPort(), { help: "listen", default: "127.0.0.1:4433" }),
    flowIdle: opt(duration({ min: 1 }), { help: "idle", default: "60s" }),
    name: opt(string("NAME"), { help: "name" }),
    services: opt(list(serviceName()), { help: "services" }),
  },
});

const file = (json: unknown) => () => JSON.stringify(json);

denoTest("flag beats env beats config file beats default", () => {
  const json = file({ flowIdle: "5m", name: "from-file", services: ["a", "b"] });
  const env = { ZTNA_FLOW_IDLE: "30s", ZTNA_CONFIG: "conf.json" };
  const v = load(spec, ["--flow-idle", "500ms"], env, json);
  assert.equal(v.flowIdle, 500);
  assert.equal(load(spec, [], env, json).flowIdle, 30_000);
  assert.equal(load(spec, [], { ZTNA_CONFIG: "conf.json" }, json).flowIdle, 300_000);
  assert.equal(load(spec, [], {}, json).flowIdle, 60_000);
  assert.deepEqual(load(spec, [], env, json).services, ["a", "b"]);
  assert.deepEqual(load(spec, ["--services", "x,y", "--services=z"], {}).services, ["x", "y", "z"]);
  assert.deepEqual(load(spec, [], {}).listen, { host: "127.0.0.1", port: 4433 });
});

denoTest("bad values, unknown flags and unknown file keys are ConfigErrors naming the field", () => {
  const fails = (argv: string[], env: Record<string, string> = {}, read?: () => string) => {
    try {
      load(spec, argv, env, read);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.field;
    }
    assert.fail(`no error for ${argv.join(" ")}`);
  };
  assert.equal(fails(["--listen", "nowhere"]), "listen");
  assert.equal(fails([], { ZTNA_FLOW_IDLE: "soon" }), "flowIdle");
  assert.equal(fails(["--services", "ok,-bad"]), "services");
  assert.equal(fails(["--nope"]), "--nope");
  assert.equal(fails(["--config", "c.json"], {}, file({ typo: 1 })), "typo");
});

denoTest("HOST:PORT parsing keeps IPv6 in brackets apart from the port", () => {
  assert.deepEqual(parseHostPort("[::1]:4433"), { host: "::1", port: 4433 });
  assert.deepEqual(parseHostPort("relay.example:0"), { host: "relay.example", port: 0 });
  assert.throws(() => parseHostPort("::1:4433"));
  assert.throws(() => parseHostPort("host:65536"));
});

denoTest("the real server options parse under Deno, as the Containerfile's CMD gives them", () => {
  const o = parseServerOptions(
    ["--listen", "0.0.0.0:4433", "--ops", "0.0.0.0:9090", "--state-dir", "/var/lib/ztna"],
    {},
  );
  assert.deepEqual(o.listen, { host: "0.0.0.0", port: 4433 });
  assert.deepEqual(o.ops, { host: "0.0.0.0", port: 9090 });
  assert.equal(o.stateDir, "/var/lib/ztna");
});
