/**
 * `/status` on every program and `ztna status` reading it: the real server,
 * connector and agent as processes, real traffic through them, and the
 * command's table, JSON and --watch output.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentStatusDocument, ConnectorStatusDocument } from "../core/client/status.ts";
import { addressOf, portOfUrl, type Program, spawnProgram } from "../scripts/programs.ts";
import type { ServerStatusWithRates } from "../server/traffic.ts";
import { run } from "../commands/status/main.ts";
import { cleanup, startEcho, udpClient, waitFor } from "./harness.ts";

const dir = mkdtempSync(join(tmpdir(), "ztna-status-"));
const fleet: Program[] = [];
const ops: Record<"server" | "connector" | "agent", string> = { server: "", connector: "", agent: "" };
const teardown = cleanup();
afterEach(() => teardown.run());
let stopEcho: () => void = () => {};

beforeAll(async () => {
  const echo = await startEcho();
  stopEcho = () => echo.close();
  const start = (name: "server" | "connector" | "agent", args: string[]) => {
    const p = spawnProgram(name, [...args, "--ops", "127.0.0.1:0", "--state-dir", dir]);
    fleet.push(p);
    return p;
  };
  const server = start("server", ["--listen", "127.0.0.1:0"]);
  const port = addressOf(await server.waitForLog("listening")).port;
  ops.server = `127.0.0.1:${portOfUrl(await server.waitForLog("ops_listening"))}`;
  const client = ["--server", `127.0.0.1:${port}`, "--ca", join(dir, "ca.pem"), "--server-name", "localhost"];
  const connector = start("connector", [...client, "--service", "echo", "--forward", `127.0.0.1:${echo.address.port}`]);
  ops.connector = `127.0.0.1:${portOfUrl(await connector.waitForLog("ops_listening"))}`;
  await connector.waitForLog("registered");
  const agent = start("agent", [...client, "--map", "echo=udp://127.0.0.1:0", "--map", "nothing=udp://127.0.0.1:0"]);
  ops.agent = `127.0.0.1:${portOfUrl(await agent.waitForLog("ops_listening"))}`;
  const listen = addressOf(await agent.waitForLog("listening", 5_000, (e) => e.service === "echo"));
  await agent.waitForLog("service_opened");
  // Steady traffic for two seconds, so the rates have something to show.
  const c = await udpClient();
  const until = Date.now() + 2_000;
  while (Date.now() < until) {
    c.send(new Uint8Array(100), listen);
    await new Promise((r) => setTimeout(r, 5));
  }
  await waitFor(() => c.received.length > 100, 2_000, "echoes");
  c.close();
});

afterAll(async () => {
  await Promise.all(fleet.map((p) => p.stop("SIGKILL", 2_000)));
  stopEcho();
  rmSync(dir, { recursive: true, force: true });
});

async function statusOf<T>(where: string): Promise<T> {
  const response = await fetch(`http://${where}/status`);
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

async function statusText(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, {}, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("/status documents", () => {
  test("server: services with connectors, agents, flows, and datagram and byte rates", async () => {
    const s = await statusOf<ServerStatusWithRates>(ops.server);
    expect(s).toMatchObject({ component: "server", draining: false, connectors: 1, agents: 1 });
    const echo = s.services.find((x) => x.name === "echo")!;
    expect(echo).toMatchObject({ agents: 1, flows: 1 });
    expect(echo.connectors).toHaveLength(1);
    // About 200 datagrams of 100 bytes a second each way for 2 s, averaged over a window that may include idle start-up time.
    expect(echo.rates.datagramsPerSecond.toConnector).toBeGreaterThan(10);
    expect(echo.rates.datagramsPerSecond.toAgent).toBeGreaterThan(10);
    expect(echo.rates.bytesPerSecond.toConnector).toBeCloseTo(echo.rates.datagramsPerSecond.toConnector * 100, -2);
    expect(s.rates.windowSeconds).toBeGreaterThanOrEqual(1);
    expect(s.rates.datagramsPerSecond.toConnector).toBeGreaterThan(10);
  });

  test("connector: its service, the link to each server with RTT and registration, rates", async () => {
    const c = await statusOf<ConnectorStatusDocument>(ops.connector);
    expect(c).toMatchObject({ component: "connector", service: "echo", draining: false, flows: 1 });
    expect(c.servers).toHaveLength(1);
    expect(c.servers[0]).toMatchObject({ state: "ready", registered: true, channel: 1, flows: 1 });
    expect(typeof c.servers[0]!.rttMs).toBe("number");
    expect(c.servers[0]!.since).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(c.rates.datagramsPerSecond.toService).toBeGreaterThan(10);
  });

  test("agent: the active server, each mapped service up or refused, rates", async () => {
    const a = await statusOf<AgentStatusDocument>(ops.agent);
    expect(a).toMatchObject({ component: "agent", draining: false, flows: 1 });
    expect(a.activeServer).toBe(a.servers[0]!.address);
    expect(a.servers[0]).toMatchObject({ state: "ready", active: true });
    expect(a.services.map((s) => [s.name, s.protocol, s.up, s.refused])).toEqual([
      ["echo", "udp", true, null],
      ["nothing", "udp", false, "unknown_service"],
    ]);
    expect(a.rates.datagramsPerSecond.toServer).toBeGreaterThan(10);
  });
});

describe("ztna status", () => {
  test("a readable table for each program", async () => {
    const server = await statusText(["--ops", ops.server]);
    expect(server.code).toBe(0);
    expect(server.out).toMatch(/^ztna server \S+ \(\S+\) {3}up \d+s {3}serving\n/);
    expect(server.out).toMatch(/services 1 · connectors 1 · agents 1 · flows 1 · \d+ dgram\/s/);
    expect(server.out).toMatch(
      /\nSERVICE {2}CONNECTORS {2}AGENTS {2}FLOWS {2}DGRAM\/S →conn\/→agent {2}BYTES\/S →conn\/→agent\necho {5}1 {11}1 {7}1 {6}\d+ \/ \d+/,
    );
    expect(server.out).toMatch(
      /\n {2}└ 127\.0\.0\.1:\d+ {2}\(no certificate\) {2}(\S+ \(\S+\)|version unknown) {2}since /,
    );
    const connector = await statusText(["--ops", `http://${ops.connector}/`]);
    expect(connector.out).toContain("service echo → 127.0.0.1:");
    expect(connector.out).toMatch(/\n127\.0\.0\.1:\d+ {2}ready {2}yes {9}1 /);
    const agent = await statusText(["--ops", ops.agent]);
    expect(agent.out).toMatch(/^ztna agent .* {3}1 SERVICE DOWN\n/);
    expect(agent.out).toMatch(/\nnothing {2}udp {4}127\.0\.0\.1:\d+ {2}DOWN {2}unknown_service/);
  });

  test("--json prints the document; the ops address may come from ZTNA_OPS", async () => {
    const out: string[] = [];
    expect(await run(["--json"], { ZTNA_OPS: ops.connector }, { out: (t) => out.push(t), err: (t) => out.push(t) }))
      .toBe(0);
    expect(JSON.parse(out.join("\n")).component).toBe("connector");
  });

  test("nothing listening, or no /status there: exit 1 with one line saying so", async () => {
    const closed = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response("not found", { status: 404 }),
    });
    teardown.add(closed, (s) => s.stop(true));
    const notFound = await statusText(["--ops", `127.0.0.1:${closed.port}`]);
    expect(notFound.code).toBe(1);
    expect(notFound.err).toBe(
      `ztna status: http://127.0.0.1:${closed.port}/status: 404, no /status there (not a ztna ops listener, or an older ztna)`,
    );
    const port = closed.port;
    await closed.stop(true);
    const refused = await statusText(["--ops", `127.0.0.1:${port}`, "--timeout", "1s"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(new RegExp(`^ztna status: cannot reach http://127\\.0\\.0\\.1:${port}/status: `));
    expect((await statusText(["--ops", "off"])).code).toBe(2);
  });

  test("--watch refreshes until interrupted", async () => {
    const proc = Bun.spawn([
      process.execPath,
      join(import.meta.dir, "..", "cli.ts"),
      "status",
      "--ops",
      ops.server,
      "--watch",
      "--interval",
      "200ms",
    ], {
      stdout: "pipe",
      stderr: "pipe",
    });
    teardown.add(proc, (p) => p.kill("SIGKILL"));
    let text = "";
    void (async () => {
      for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) text += new TextDecoder().decode(chunk);
    })();
    await waitFor(() => (text.match(/^--- /gm) ?? []).length >= 3, 10_000, "three frames");
    expect((text.match(/^--- http:\/\/127\.0\.0\.1:\d+\/status at \S+Z$/gm) ?? []).length).toBeGreaterThanOrEqual(3);
    expect((text.match(/^ztna server /gm) ?? []).length).toBeGreaterThanOrEqual(2);
    proc.kill("SIGINT");
    expect(await Promise.race([proc.exited, new Promise<number>((r) => setTimeout(() => r(-1), 5_000))])).toBe(0);
  });
});
