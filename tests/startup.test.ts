/**
 * Failing loudly at start (issue 8): each program checks its files, names and
 * ports before it serves, and any problem ends it with status 1 and ONE log
 * line naming the flag, the file or port and what is wrong — no stack trace.
 * The real programs are spawned, as an operator would start them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, issueCertificate, type PemPair } from "../core/certs.ts";
import { openUdp } from "../core/runtime/udp.ts";
import { type LogEntry, type ProgramName, spawnProgram } from "../scripts/programs.ts";
import { cleanup } from "./harness.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

const DAY_MS = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), "ztna-startup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let ca: PemPair;
const paths: Record<string, string> = {};

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

beforeAll(async () => {
  ca = await createCa({ commonName: "startup CA", days: 30 });
  const server = await issueCertificate({
    ca,
    role: "server",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    days: 30,
  });
  const other = await issueCertificate({ ca, role: "server", dnsNames: ["localhost"], days: 30 });
  const expired = await issueCertificate({
    ca,
    role: "server",
    dnsNames: ["localhost"],
    days: 1,
    notBefore: new Date(Date.now() - 3 * DAY_MS),
  });
  const soon = await issueCertificate({
    ca,
    role: "server",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    days: 3,
  });
  const connector = await issueCertificate({ ca, role: "connector", services: ["db"], days: 30 });
  Object.assign(paths, {
    ca: write("ca.pem", ca.certPem),
    cert: write("server.pem", server.certPem),
    key: write("server-key.pem", server.keyPem),
    otherKey: write("other-key.pem", other.keyPem),
    garbage: write("garbage.pem", "this is not a key\n"),
    expired: write("expired.pem", expired.certPem),
    expiredKey: write("expired-key.pem", expired.keyPem),
    soon: write("soon.pem", soon.certPem),
    soonKey: write("soon-key.pem", soon.keyPem),
    connector: write("connector.pem", connector.certPem),
    connectorKey: write("connector-key.pem", connector.keyPem),
    missing: join(dir, "does-not-exist.pem"),
    directory: join(dir, "a-directory"),
  });
  mkdirSync(paths.directory!);
});

/** Runs a program that must fail at start; returns its exit code and every stderr line. */
async function failing(name: ProgramName, args: string[]): Promise<{ code: number; logs: LogEntry[] }> {
  const program = spawnProgram(name, [...args, "--state-dir", join(dir, "state")]);
  teardown.add(program, (p) => p.stop("SIGKILL", 1_000));
  const code = await Promise.race([program.exited, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
  await new Promise((r) => setTimeout(r, 50)); // the last line may trail the exit
  return { code, logs: program.logs };
}

/** Exit status 1 and exactly one line: a startup_failed error whose text is `expected` (no stack trace anywhere). */
function expectOneLine(result: { code: number; logs: LogEntry[] }, expected: RegExp): string {
  expect(result.code).toBe(1);
  expect(result.logs.map((l) => l.event)).toEqual(["startup_failed"]);
  expect(result.logs.some((l) => JSON.stringify(l).includes("    at "))).toBe(false);
  const line = result.logs[0]!;
  expect(line.level).toBe("error");
  const text = String(line.error);
  expect(text).toMatch(expected);
  expect(text).not.toContain("\n");
  return text;
}

const serverArgs = (over: Record<string, string> = {}) => {
  const v = { listen: "127.0.0.1:0", ops: "off", cert: paths.cert!, key: paths.key!, ...over };
  return Object.entries(v).flatMap(([k, x]) => [`--${k}`, x]);
};

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

async function takenUdpPort(): Promise<{ port: number; close(): void }> {
  const socket = await openUdp({ host: "127.0.0.1", port: 0, onPacket() {}, onError() {} });
  teardown.add(socket, (s) => s.close());
  return { port: socket.address.port, close: () => socket.close() };
}

async function takenTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  teardown.add(server, (s) => new Promise((r) => s.close(r)));
  return (server.address() as AddressInfo).port;
}

describe("server: files", () => {
  test("a missing certificate", async () => {
    expectOneLine(
      await failing("server", serverArgs({ cert: paths.missing! })),
      new RegExp(`^--cert ${esc(paths.missing!)}: no such file`),
    );
  });

  test("a key that is a directory (unreadable as a file)", async () => {
    expectOneLine(
      await failing("server", serverArgs({ key: paths.directory! })),
      new RegExp(`^--key ${esc(paths.directory!)}: is a directory`),
    );
  });

  test("--key garbage.pem: refused before listening (it used to log listening and answer /readyz 200)", async () => {
    expectOneLine(
      await failing("server", serverArgs({ key: paths.garbage! })),
      new RegExp(`^--key ${esc(paths.garbage!)}: not a PEM private key`),
    );
  });

  test("a key that belongs to another certificate", async () => {
    expectOneLine(
      await failing("server", serverArgs({ key: paths.otherKey! })),
      new RegExp(`^--key ${esc(paths.otherKey!)}: not the private key of --cert ${esc(paths.cert!)}$`),
    );
  });

  test("an expired certificate", async () => {
    expectOneLine(
      await failing("server", serverArgs({ cert: paths.expired!, key: paths.expiredKey! })),
      new RegExp(`^--cert ${esc(paths.expired!)}: the certificate expired on \\S+ \\(2 days ago\\)$`),
    );
  });

  test("a client CA file that holds no certificate", async () => {
    expectOneLine(
      await failing("server", serverArgs({ ca: paths.garbage! })),
      new RegExp(`^--ca ${esc(paths.garbage!)}: no PEM certificate`),
    );
  });

  test("a certificate expiring within 14 days starts, with a warning naming it", async () => {
    const program = spawnProgram("server", [
      ...serverArgs({ cert: paths.soon!, key: paths.soonKey! }),
      "--state-dir",
      join(dir, "state"),
    ]);
    teardown.add(program, (p) => p.stop("SIGKILL", 1_000));
    await program.waitForLog("listening", 10_000);
    const warning = program.logs.find((l) => l.event === "certificate_warning")!;
    expect(warning.level).toBe("warn");
    expect(String(warning.error)).toMatch(
      new RegExp(`^--cert ${esc(paths.soon!)}: the certificate expires on \\S+ \\(in 2 days\\)$`),
    );
  });
});

describe("server: ports and names", () => {
  test("--listen on a UDP port in use names the port", async () => {
    const taken = await takenUdpPort();
    expectOneLine(
      await failing("server", serverArgs({ listen: `127.0.0.1:${taken.port}` })),
      new RegExp(
        `^--listen 127\\.0\\.0\\.1:${taken.port}: UDP port ${taken.port} is already in use on 127\\.0\\.0\\.1`,
      ),
    );
  });

  test("--ops on a TCP port in use names the port", async () => {
    const port = await takenTcpPort();
    expectOneLine(
      await failing("server", serverArgs({ ops: `127.0.0.1:${port}` })),
      new RegExp(`^--ops 127\\.0\\.0\\.1:${port}: TCP port ${port} is already in use`),
    );
  });

  test("--listen on a name that does not resolve", async () => {
    expectOneLine(
      await failing("server", serverArgs({ listen: "no-such-host.invalid:4433" })),
      /^--listen no-such-host\.invalid:4433: the name no-such-host\.invalid does not resolve/,
    );
  });
});

describe("connector and agent", () => {
  const client = (over: Record<string, string> = {}) => {
    const v = { server: "127.0.0.1:4433", ca: paths.ca!, ops: "off", ...over };
    return Object.entries(v).flatMap(([k, x]) => [`--${k}`, x]);
  };

  test("connector: a --ca that does not exist", async () => {
    expectOneLine(
      await failing("connector", [...client({ ca: paths.missing! }), "--service", "db", "--forward", "127.0.0.1:9"]),
      new RegExp(`^--ca ${esc(paths.missing!)}: no such file`),
    );
  });

  test("connector: no --ca and no <state-dir>/ca.pem", async () => {
    const args = client();
    args.splice(args.indexOf("--ca"), 2);
    expectOneLine(
      await failing("connector", [...args, "--service", "db", "--forward", "127.0.0.1:9"]),
      /^--ca: no CA file to verify the server/,
    );
  });

  test("connector: --cert and --key that do not belong together", async () => {
    expectOneLine(
      await failing("connector", [
        ...client({ cert: paths.connector!, key: paths.otherKey! }),
        "--service",
        "db",
        "--forward",
        "127.0.0.1:9",
      ]),
      new RegExp(`^--key ${esc(paths.otherKey!)}: not the private key of --cert ${esc(paths.connector!)}$`),
    );
  });

  test("connector: a --forward name that does not resolve", async () => {
    expectOneLine(
      await failing("connector", [...client(), "--service", "db", "--forward", "db.invalid:5432"]),
      /^--forward db\.invalid:5432: the name db\.invalid does not resolve/,
    );
  });

  test("agent: a --server name that does not resolve", async () => {
    expectOneLine(
      await failing("agent", [...client({ server: "relay.invalid:4433" }), "--map", "db=udp://127.0.0.1:0"]),
      /^--server relay\.invalid:4433: the name relay\.invalid does not resolve/,
    );
  });

  test("agent: a --map UDP port in use names the mapping and the port", async () => {
    const taken = await takenUdpPort();
    expectOneLine(
      await failing("agent", [...client(), "--map", `db=udp://127.0.0.1:${taken.port}`]),
      new RegExp(`^--map db=udp://127\\.0\\.0\\.1:${taken.port}: UDP port ${taken.port} is already in use`),
    );
  });

  test("agent: a --map TCP port in use names the mapping and the port", async () => {
    const port = await takenTcpPort();
    expectOneLine(
      await failing("agent", [...client(), "--map", `web=tcp://127.0.0.1:${port}`]),
      new RegExp(`^--map web=tcp://127\\.0\\.0\\.1:${port}: TCP port ${port} is already in use`),
    );
  });

  test("agent: the second of two --map listeners in use: still one line, nothing said listening", async () => {
    const taken = await takenUdpPort();
    expectOneLine(
      await failing("agent", [
        ...client(),
        "--map",
        "db=udp://127.0.0.1:0",
        "--map",
        `dns=udp://127.0.0.1:${taken.port}`,
      ]),
      new RegExp(`^--map dns=udp://127\\.0\\.0\\.1:${taken.port}: UDP port ${taken.port} is already in use`),
    );
  });

  test("agent: --ops on a port in use", async () => {
    const port = await takenTcpPort();
    expectOneLine(
      await failing("agent", [...client({ ops: `127.0.0.1:${port}` }), "--map", "db=udp://127.0.0.1:0"]),
      new RegExp(`^--ops 127\\.0\\.0\\.1:${port}: TCP port ${port} is already in use`),
    );
  });
});
