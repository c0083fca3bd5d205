/**
 * The compiled `ztna` binary on its own: built once with scripts/build.ts,
 * moved into an empty directory (no node_modules, no sources), then used for
 * everything: `--version`, `certs init/issue/show`, and a full mTLS relay
 * round trip with server, connector and agent all started from that binary.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_TUNNEL_PAYLOAD } from "../core/frame/mod.ts";
import { ALLOCATOR_ENV } from "../core/runtime/allocator.ts";
import type { UdpSocket } from "../core/runtime/udp.ts";
import { VERSION } from "../core/version.ts";
import { build, type BuildResult } from "../scripts/build.ts";
import { addressOf, type Program, type ProgramName, spawnProgram } from "../scripts/programs.ts";
import { bytes, startEcho, type UdpClient, udpClient } from "./harness.ts";

// Measured here: a build takes 2-4 s on 2 cores; the budget covers a cold, busy machine.
const BUILD_TIMEOUT_MS = 120_000;

let buildDir = "";
let runDir = "";
let bin = "";
let built: BuildResult;
const programs: Program[] = [];
let echo: UdpSocket | undefined;
let client: UdpClient | undefined;

beforeAll(async () => {
  buildDir = mkdtempSync(join(tmpdir(), "ztna-build-"));
  runDir = mkdtempSync(join(tmpdir(), "ztna-bin-"));
  built = await build({ outfile: join(buildDir, "ztna") });
  bin = join(runDir, "ztna");
  renameSync(built.outfile, bin); // same filesystem: no 100 MB copy
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  // Clients before the server, so the server's drain has nothing to wait for.
  for (const p of programs.reverse()) await p.stop("SIGTERM", 5_000);
  client?.close();
  echo?.close();
  for (const dir of [buildDir, runDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs the binary to completion from the empty directory. */
function ztna(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([bin, ...args], { cwd: runDir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Runs the binary without blocking this process (which serves the echo the doctor probes). */
async function ztnaAsync(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn([bin, ...args], { cwd: runDir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
  const [code, stdout, stderr] = await Promise.all([
    p.exited,
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Starts `ztna <name> args` from the empty directory. */
function start(name: ProgramName, args: string[]): Program {
  const p = spawnProgram(name, args, { command: (n) => [bin, n], cwd: runDir });
  programs.push(p);
  return p;
}

describe("compiled binary", () => {
  test("is a single file with a matching sha256 file", () => {
    expect(readdirSync(runDir)).toEqual(["ztna"]);
    expect(statSync(bin).size).toBe(built.bytes);
    const sum = readFileSync(join(buildDir, "ztna.sha256"), "utf8");
    const actual = createHash("sha256").update(readFileSync(bin)).digest("hex");
    expect(sum).toBe(`${actual}  ztna\n`);
  });

  test("prints the version and the embedded commit", () => {
    const want = `ztna ${VERSION} (${built.commit})`;
    expect(built.commit).toMatch(/^([0-9a-f]{4,40}|unknown)$/);
    for (
      const args of [["--version"], ["version"], ["agent", "--version"], ["server", "--version"], [
        "certs",
        "--version",
      ]]
    ) {
      const r = ztna(...args);
      expect({ args, code: r.code, out: r.stdout.trim() }).toEqual({ args, code: 0, out: want });
    }
    expect(ztna("nonsense").code).toBe(2);
  });

  test("issues a PKI with `certs` and relays UDP over mTLS with those certificates", async () => {
    const pki = "pki";
    expect(ztna("certs", "init", "--out", pki).code).toBe(0);
    const issues = [
      ["--role", "server", "--dns", "localhost", "--ip", "127.0.0.1"],
      ["--role", "connector", "--service", "echo"],
      ["--role", "agent", "--service", "echo"],
    ];
    for (const args of issues) {
      const r = ztna("certs", "issue", ...args, "--ca-dir", pki, "--out", pki);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" });
    }
    const shown = ztna("certs", "show", `${pki}/connector-echo.pem`);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("URI:ztna://connector/echo");
    expect(ztna("certs", "issue", "--role", "bogus", "--ca-dir", pki, "--out", pki).code).toBe(2);

    echo = await startEcho();
    const common = ["--ops", "127.0.0.1:0", "--log-level", "info"];
    const server = start("server", [
      "--listen",
      "127.0.0.1:0",
      "--cert",
      `${pki}/server.pem`,
      "--key",
      `${pki}/server-key.pem`,
      "--ca",
      `${pki}/ca.pem`,
      "--state-dir",
      "state",
      "--grace",
      "1s",
      ...common,
    ]);
    const target = `127.0.0.1:${addressOf(await server.waitForLog("listening", 15_000)).port}`;
    // The compiled relay ran itself again with the allocator setting (core/runtime/allocator.ts).
    const purgeDelay = process.env.MIMALLOC_PURGE_DELAY ?? ALLOCATOR_ENV.MIMALLOC_PURGE_DELAY;
    expect(readFileSync(`/proc/${server.pid}/environ`, "utf8").split("\0")).toContain(
      `MIMALLOC_PURGE_DELAY=${purgeDelay}`,
    );
    // Still named ztna after running itself again: `pkill -x ztna` and the operator's ps find it.
    expect(readFileSync(`/proc/${server.pid}/comm`, "utf8")).toBe("ztna\n");
    const clientFlags = (role: string) => [
      "--server",
      target,
      "--server-name",
      "localhost",
      "--ca",
      `${pki}/ca.pem`,
      "--cert",
      `${pki}/${role}-echo.pem`,
      "--key",
      `${pki}/${role}-echo-key.pem`,
      "--state-dir",
      "state",
      ...common,
    ];
    const connector = start("connector", [
      ...clientFlags("connector"),
      "--service",
      "echo",
      "--forward",
      `127.0.0.1:${echo.address.port}`,
    ]);
    // The agent starts once echo is registered, so it has no reason to log a refused open.
    await connector.waitForLog("registered", 15_000);
    const agent = start("agent", [...clientFlags("agent"), "--map", "echo=udp://127.0.0.1:0"]);
    const listen = addressOf(await agent.waitForLog("listening", 15_000));
    await agent.waitForLog("service_opened", 15_000);

    client = await udpClient();
    for (const [i, size] of [0, 1, 64, 512, 1000, MAX_TUNNEL_PAYLOAD].entries()) {
      const payload = bytes(size, i + 1);
      client.send(payload, listen);
      const reply = await client.next(5_000);
      expect(Buffer.from(reply).equals(Buffer.from(payload))).toBe(true);
    }
    // No program fell over along the way.
    for (const p of programs) expect(p.logs.filter((e) => e.level === "error")).toEqual([]);

    // The operator's tools from the same binary: doctor (all seven checks, a round trip through echo) and status.
    const doctor = await ztnaAsync(
      "doctor",
      ...clientFlags("agent").slice(0, 10),
      "--service",
      "echo",
      "--probe",
      "udp",
    );
    expect({ code: doctor.code, last: doctor.stdout.trim().split("\n").at(-1) }).toEqual({
      code: 0,
      last: "All checks passed.",
    });
    const ops = String((await server.waitForLog("ops_listening")).url);
    const status = await ztnaAsync("status", "--ops", ops);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^ztna server /);
    expect(status.stdout).toMatch(/\necho +1 +1 +1 /);
  }, 60_000);
});
