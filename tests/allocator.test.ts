/**
 * The relay programs run with Bun's allocator tuned (core/runtime/allocator.ts):
 * started without the settings, a program runs itself again in place, with the
 * same pid and arguments, and the allocator really takes them; an operator's
 * own setting is left alone. The real server is spawned, as an operator would.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, realpathSync } from "node:fs";
import { basename } from "node:path";
import { ALLOCATOR_ENV } from "../core/runtime/allocator.ts";
import { sourceCommand } from "../scripts/programs.ts";
import { cleanup, devCerts, devServerFlags } from "./harness.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

/** This test's environment without any allocator settings it may have been started with. */
function envWithout(names: string[], extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !names.includes(k)) env[k] = v;
  return { ...env, ...extra };
}

/** Starts the server and returns its pid, its arguments and its stderr so far once it listens. */
async function startServer(env: Record<string, string>) {
  const args = [...sourceCommand("server"), ...devServerFlags(await devCerts()), "--log-format", "json"];
  const proc = Bun.spawn(args, { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  teardown.add(proc, (p) => {
    p.kill("SIGKILL");
    return p.exited;
  });
  let stderr = "";
  const reader = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) stderr += decoder.decode(chunk);
  })();
  const deadline = Date.now() + 15_000;
  while (!stderr.includes('"listening"')) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`server did not listen:\n${stderr}`);
    await Bun.sleep(20);
  }
  void reader;
  return { pid: proc.pid, args, stderr: () => stderr };
}

function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

const cmdlineOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);

const ALLOCATOR_NAMES = [...Object.keys(ALLOCATOR_ENV), "MIMALLOC_VERBOSE"];

describe.if(process.platform === "linux")("allocator settings", () => {
  test("a server started without them runs again in place with them, and mimalloc takes them", async () => {
    const server = await startServer(envWithout(ALLOCATOR_NAMES, { MIMALLOC_VERBOSE: "1" }));
    // Same process (the pid we spawned), same arguments, the settings in its environment.
    const environ = environOf(server.pid);
    for (const [name, value] of Object.entries(ALLOCATOR_ENV)) expect(environ[name]).toBe(value);
    expect(cmdlineOf(server.pid)).toEqual(server.args);
    // And the same name (the kernel's, from the file run): `pkill -x` and ps still find it.
    expect(readFileSync(`/proc/${server.pid}/comm`, "utf8").trim()).toBe(
      basename(realpathSync(process.execPath)).slice(0, 15),
    );
    // mimalloc printed its options twice: the defaults on the first start, ours on the second.
    const delays = [...server.stderr().matchAll(/option 'purge_delay': (-?\d+)/g)].map((m) => m[1]);
    expect(delays).toEqual(["100", ALLOCATOR_ENV.MIMALLOC_PURGE_DELAY]);
    // The program itself started once: one "listening" line.
    expect(server.stderr().match(/"listening"/g)?.length).toBe(1);
  });

  test("an operator's own MIMALLOC_PURGE_DELAY is kept, with no second start", async () => {
    const server = await startServer(
      envWithout(ALLOCATOR_NAMES, { MIMALLOC_PURGE_DELAY: "250", MIMALLOC_VERBOSE: "1" }),
    );
    const environ = environOf(server.pid);
    expect(environ.MIMALLOC_PURGE_DELAY).toBe("250");
    const delays = [...server.stderr().matchAll(/option 'purge_delay': (-?\d+)/g)].map((m) => m[1]);
    expect(delays).toEqual(["250"]);
  });
});
