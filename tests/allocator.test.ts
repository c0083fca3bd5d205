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
import { type Program, sourceCommand, spawnProgram } from "../scripts/programs.ts";
import { cleanup, devCerts, devServerFlags } from "./harness.ts";

const teardown = cleanup();
const ALLOCATOR_NAMES = [...Object.keys(ALLOCATOR_ENV), "MIMALLOC_VERBOSE"];
afterEach(() => teardown.run());

/** Starts the server with `env` added and the allocator settings it may have inherited left out, and waits until it listens. */
async function startServer(env: Record<string, string>) {
  const server = spawnProgram("server", devServerFlags(await devCerts()), { env, unsetEnv: ALLOCATOR_NAMES });
  teardown.add(server, (p) => p.stop("SIGKILL", 2_000));
  await server.waitForLog("listening", 15_000);
  return server;
}

/** What the program wrote that is not a JSON log line (mimalloc's verbose output), in order. */
const rawLines = (p: Program) => p.logs.filter((e) => e.event === "raw").map((e) => String(e.line));

/** The purge delays mimalloc reported, once per start of the process. */
const purgeDelays = (p: Program) =>
  rawLines(p).flatMap((line) => [...line.matchAll(/option 'purge_delay': (-?\d+)/g)].map((m) => m[1]));

function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

const cmdlineOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);

describe.if(process.platform === "linux")("allocator settings", () => {
  test("a server started without them runs again in place with them, and mimalloc takes them", async () => {
    const server = await startServer({ MIMALLOC_VERBOSE: "1" });
    // Same process (the pid we spawned), same arguments, the settings in its environment.
    const environ = environOf(server.pid);
    for (const [name, value] of Object.entries(ALLOCATOR_ENV)) expect(environ[name]).toBe(value);
    expect(cmdlineOf(server.pid)).toEqual([
      ...sourceCommand("server"),
      ...devServerFlags(await devCerts()),
      "--log-format",
      "json",
    ]);
    // And the same name (the kernel's, from the file run): `pkill -x` and ps still find it.
    expect(readFileSync(`/proc/${server.pid}/comm`, "utf8").trim()).toBe(
      basename(realpathSync(process.execPath)).slice(0, 15),
    );
    // mimalloc printed its options twice: the defaults on the first start, ours on the second.
    expect(purgeDelays(server)).toEqual(["100", ALLOCATOR_ENV.MIMALLOC_PURGE_DELAY]);
    // The program itself started once: one "listening" line.
    expect(server.logs.filter((e) => e.event === "listening").length).toBe(1);
  });

  test("an operator's own MIMALLOC_PURGE_DELAY is kept, with no second start", async () => {
    const server = await startServer({ MIMALLOC_PURGE_DELAY: "250", MIMALLOC_VERBOSE: "1" });
    const environ = environOf(server.pid);
    expect(environ.MIMALLOC_PURGE_DELAY).toBe("250");
    expect(purgeDelays(server)).toEqual(["250"]);
  });
});
