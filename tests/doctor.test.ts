/**
 * `ztna doctor` against real servers on loopback: every failure the issue
 * lists (server down, UDP dropped on the way, wrong CA, expired certificate,
 * not authorised, no connector, service not answering) must be named with
 * its cause and fix, and a healthy setup must pass every check.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { alpnFor } from "../core/frame/mod.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, issueCertificate, type PemPair } from "../core/certs.ts";
import type { Address } from "../core/net/address.ts";
import { clientQuicConfig, serverQuicConfig } from "../core/quic/config.ts";
import { createEndpoint } from "../core/quic/endpoint.ts";
import { openUdp } from "../core/runtime/udp.ts";
import { startImpairment } from "../scripts/impair/control.ts";
import { createAuthoriser } from "../server/authorise.ts";
import type { Check, Report } from "../commands/doctor/checks.ts";
import { run } from "../commands/doctor/main.ts";
import {
  cleanup,
  startEcho,
  startTcpService,
  startTestConnector,
  startTestServer,
  type TestServer,
  waitFor,
} from "./harness.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

const DAY_MS = 86_400_000;
const te = new TextEncoder();
const dir = mkdtempSync(join(tmpdir(), "ztna-doctor-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let ca: PemPair;
let otherCa: PemPair;
let serverPair: PemPair;
const files: Record<string, string> = {};

function save(name: string, pair: PemPair): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  writeFileSync(cert, pair.certPem);
  writeFileSync(key, pair.keyPem);
  return { cert, key };
}

const ids: Record<string, { cert: string; key: string }> = {};

beforeAll(async () => {
  ca = await createCa({ commonName: "doctor CA", days: 30 });
  otherCa = await createCa({ commonName: "someone else's CA", days: 30 });
  serverPair = await issueCertificate({
    ca,
    role: "server",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    days: 30,
  });
  files.ca = join(dir, "ca.pem");
  writeFileSync(files.ca, ca.certPem);
  files.otherCa = join(dir, "other-ca.pem");
  writeFileSync(files.otherCa, otherCa.certPem);
  ids.agent = save(
    "agent-echo",
    await issueCertificate({ ca, role: "agent", services: ["echo", "web"], days: 30, commonName: "alice" }),
  );
  ids.wiki = save("agent-wiki", await issueCertificate({ ca, role: "agent", services: ["wiki"], days: 30 }));
  ids.all = save("agent-all", await issueCertificate({ ca, role: "agent", services: ["*"], days: 30 }));
  ids.connector = save(
    "connector-echo",
    await issueCertificate({ ca, role: "connector", services: ["echo"], days: 30 }),
  );
  ids.foreign = save(
    "agent-foreign",
    await issueCertificate({ ca: otherCa, role: "agent", services: ["echo"], days: 30 }),
  );
  ids.expired = save(
    "agent-expired",
    await issueCertificate({
      ca,
      role: "agent",
      services: ["echo"],
      days: 1,
      notBefore: new Date(Date.now() - 3 * DAY_MS),
    }),
  );
});

async function mtlsServer(): Promise<TestServer> {
  const s = await startTestServer({
    certPem: te.encode(serverPair.certPem),
    keyPem: te.encode(serverPair.keyPem),
    clientCaPem: te.encode(ca.certPem),
    authorise: createAuthoriser(),
  });
  return teardown.add(s, (x) => x.server.close());
}

/** A connector for `service` forwarding to `forward`, with a certificate naming it. */
async function connectorFor(s: TestServer, service: string, forward: Address) {
  const pair = await issueCertificate({ ca, role: "connector", services: [service], days: 2 });
  const c = await startTestConnector([s.server.address], service, forward, {
    quicConfig: clientQuicConfig({
      alpn: alpnFor(),
      caPem: te.encode(ca.certPem),
      insecure: false,
      certPem: te.encode(pair.certPem),
      keyPem: te.encode(pair.keyPem),
      idleTimeoutMs: 5_000,
    }),
  });
  teardown.add(c, (x) => x.connector.close());
  await waitFor(() => c.connector.ready().ready, 3_000, "connector registered");
  return c;
}

async function doctor(
  server: string,
  identity: { cert: string; key: string } | null,
  extra: string[] = [],
): Promise<{ code: number; report: Report; text: string }> {
  const args = ["--server", server, "--server-name", "localhost", "--ca", files.ca!, "--timeout", "1s", ...extra];
  if (identity) args.push("--cert", identity.cert, "--key", identity.key);
  const json: string[] = [];
  const code = await run([...args, "--json"], {}, { out: (l) => json.push(l), err: (l) => json.push(l) });
  const report = JSON.parse(json.join("\n")) as Report;
  return { code, report, text: json.join("\n") };
}

const at = (s: TestServer) => `127.0.0.1:${s.server.address.port}`;
const check = (r: Report, id: Check["id"]) => r.checks.find((c) => c.id === id)!;
const statuses = (r: Report) => Object.fromEntries(r.checks.map((c) => [c.id, c.status]));

describe("ztna doctor: a healthy setup", () => {
  test("every check passes for an agent, with a UDP round trip through the service", async () => {
    const s = await mtlsServer();
    const echo = teardown.add(await startEcho(), (x) => x.close());
    await connectorFor(s, "echo", echo.address);
    const { code, report } = await doctor(at(s), ids.agent!, ["--service", "echo", "--probe", "udp"]);
    expect(statuses(report)).toEqual({
      files: "pass",
      dns: "pass",
      handshake: "pass",
      authorisation: "pass",
      service: "pass",
      probe: "pass",
      path: "pass",
    });
    expect(code).toBe(0);
    expect(report.role).toBe("agent");
    expect(check(report, "files").summary).toContain("cert CN=alice (agent: echo, web)");
    expect(check(report, "handshake").summary).toMatch(
      /^QUIC handshake in [\d.]+ ms; server certificate CN=localhost valid until/,
    );
    expect(check(report, "authorisation").summary).toContain("may open echo");
    expect(check(report, "service").summary).toBe("1 connector registered for echo");
    expect(check(report, "probe").summary).toMatch(/^UDP reply of 17 bytes from echo in [\d.]+ ms$/);
    expect(check(report, "path").summary).toMatch(
      /^DATAGRAMs up to \d+ bytes cross the path \(every tunnel payload, up to 1300 bytes, fits\); clock within \d+ ms of the server's$/,
    );
    expect((check(report, "path").data as { largestDatagram: number }).largestDatagram).toBeGreaterThanOrEqual(1306);
  });

  test("a TCP round trip, and a connector identity that may register its service", async () => {
    const s = await mtlsServer();
    const web = teardown.add(await startTcpService(), (x) => x.close());
    await connectorFor(s, "web", web.address);
    const tcp = await doctor(at(s), ids.agent!, ["--service", "web", "--probe", "tcp"]);
    expect(check(tcp.report, "probe")).toMatchObject({ status: "pass" });
    expect(check(tcp.report, "probe").summary).toMatch(/^TCP connect to web: the service accepted and closed in/);
    expect(tcp.code).toBe(0);
    const asConnector = await doctor(at(s), ids.connector!, ["--service", "echo"]);
    expect(asConnector.report.role).toBe("connector");
    expect(check(asConnector.report, "authorisation").summary).toContain("HELLO accepted as connector");
    expect(check(asConnector.report, "authorisation").summary).toContain("may register echo");
    // Nobody serves echo on this server yet: the connector is told so before it starts.
    expect(check(asConnector.report, "service").status).toBe("fail");
  });
});

describe("ztna doctor: each failure names its cause and fix", () => {
  test("server down: ICMP port unreachable", async () => {
    const socket = await openUdp({ host: "127.0.0.1", port: 0, onPacket() {}, onError() {} });
    const port = socket.address.port;
    socket.close();
    const { code, report } = await doctor(`127.0.0.1:${port}`, ids.agent!, ["--service", "echo"]);
    expect(code).toBe(1);
    const h = check(report, "handshake");
    expect(h).toMatchObject({ status: "fail", summary: `UDP 127.0.0.1:${port} is closed: ICMP port unreachable` });
    expect(h.fix).toContain("start the server");
    expect(statuses(report)).toMatchObject({
      files: "pass",
      dns: "pass",
      authorisation: "skip",
      service: "skip",
      probe: "skip",
      path: "skip",
    });
  });

  test("UDP dropped on the way (impairment proxy at 100 % loss): no answer", async () => {
    const s = await mtlsServer();
    const proxy = teardown.add(
      await startImpairment({ target: s.server.address, initial: { loss: 1 } }),
      (p) => p.stop(),
    );
    const { code, report } = await doctor(`127.0.0.1:${proxy.address.port}`, ids.agent!);
    expect(code).toBe(1);
    const h = check(report, "handshake");
    expect(h).toMatchObject({
      status: "fail",
      summary: `no answer from 127.0.0.1:${proxy.address.port} over UDP within 1 s`,
    });
    expect(h.cause).toContain("UDP to it is dropped on the way");
    expect(h.fix).toContain(`allow UDP port ${proxy.address.port} inbound`);
    expect((await proxy.stats()).up.dropped).toBeGreaterThan(0);
  });

  test("wrong CA, either way: the TLS alert is named with who refused whom", async () => {
    const s = await mtlsServer();
    // This client trusts another CA than the server's.
    const theirs = await doctor(at(s), ids.agent!, ["--ca", files.otherCa!]);
    const h1 = check(theirs.report, "handshake");
    expect(h1).toMatchObject({
      status: "fail",
      summary: "this client refused the server: TLS alert unknown_ca (0x130)",
    });
    expect(h1.fix).toContain("pass --ca with the CA that issued the server certificate");
    // The server does not trust the CA of this client's certificate.
    const ours = await doctor(at(s), ids.foreign!);
    const h2 = check(ours.report, "handshake");
    expect(h2).toMatchObject({
      status: "fail",
      summary: "the server refused this client: TLS alert unknown_ca (0x130)",
    });
    expect(h2.cause).toContain("does not trust the CA that issued the client certificate");
    // The server's certificate does not carry the name dialled.
    const name = await doctor(at(s), ids.agent!, ["--server-name", "wrong.example"]);
    const h3 = check(name.report, "handshake");
    expect(h3).toMatchObject({
      status: "fail",
      summary: "this client refused the server: TLS alert bad_certificate (0x12a)",
    });
    expect(h3.fix).toContain("--server-name");
    // No certificate at all.
    const none = await doctor(at(s), null);
    expect(check(none.report, "handshake").summary).toBe(
      "the server refused this client: TLS alert certificate_required (0x174)",
    );
    expect(theirs.code + ours.code + none.code).toBe(3);
  });

  test("wrong ALPN: a QUIC server that does not speak ztna", async () => {
    // A bare QUIC endpoint whose only protocol is another one.
    const other = await createEndpoint({
      bind: { host: "127.0.0.1", port: 0 },
      server: true,
      retry: false,
      config: (() => {
        const config = serverQuicConfig({
          alpn: ["h3"],
          certPem: te.encode(serverPair.certPem),
          keyPem: te.encode(serverPair.keyPem),
          idleTimeoutMs: 5_000,
        });
        config.setApplicationProtos(["h3"]);
        return config;
      })(),
      handlers: {},
    });
    teardown.add(other, (e) => e.close());
    const { code, report } = await doctor(`127.0.0.1:${other.address.port}`, ids.agent!);
    expect(code).toBe(1);
    const h = check(report, "handshake");
    expect(h).toMatchObject({
      status: "fail",
      summary: "the server refused this client: TLS alert no_application_protocol (0x178)",
    });
    expect(h.fix).toContain("is a ztna server");
  });

  test("expired certificate: the files check and the server both say so", async () => {
    const s = await mtlsServer();
    const { code, report } = await doctor(at(s), ids.expired!);
    expect(code).toBe(1);
    const f = check(report, "files");
    expect(f.status).toBe("fail");
    expect(f.summary).toMatch(/^--cert .*agent-expired\.pem: the certificate expired on \S+ \(2 days ago\)$/);
    expect(f.fix).toContain("ztna certs issue");
    expect(check(report, "handshake").summary).toBe(
      "the server refused this client: TLS alert certificate_expired (0x12d)",
    );
  });

  test("not authorised for the service", async () => {
    const s = await mtlsServer();
    const echo = teardown.add(await startEcho(), (x) => x.close());
    await connectorFor(s, "echo", echo.address);
    const { code, report } = await doctor(at(s), ids.wiki!, ["--service", "echo", "--probe", "udp"]);
    expect(code).toBe(1);
    const a = check(report, "authorisation");
    expect(a.status).toBe("fail");
    expect(a.summary).toMatch(
      /^HELLO accepted as agent \(seen from 127\.0\.0\.1:\d+\), but it may not open echo: not_authorised$/,
    );
    expect(a.cause).toContain("the certificate names ztna://agent/wiki");
    expect(a.fix).toContain("ztna certs issue --role agent --service echo");
    // The files check already warned that the certificate does not name it.
    expect(check(report, "files").status).toBe("warn");
    expect(statuses(report)).toMatchObject({ handshake: "pass", service: "skip", probe: "skip" });
    expect(s.server.flowCount()).toBe(0);
  });

  test("no connector for the service", async () => {
    const s = await mtlsServer();
    const { code, report } = await doctor(at(s), ids.all!, ["--service", "billing", "--probe", "udp"]);
    expect(code).toBe(1);
    const svc = check(report, "service");
    expect(svc).toMatchObject({ status: "fail", summary: `no connector has registered billing on ${at(s)}` });
    expect(svc.fix).toContain(`ztna connector --service billing --server ${at(s)}`);
    expect(check(report, "probe").status).toBe("skip");
  });

  test("service not answering: the round trip fails, everything before it passes", async () => {
    const s = await mtlsServer();
    // A UDP socket that takes datagrams and never answers.
    const silent = teardown.add(
      await openUdp({ host: "127.0.0.1", port: 0, onPacket() {}, onError() {} }),
      (x) => x.close(),
    );
    await connectorFor(s, "echo", silent.address);
    const { code, report } = await doctor(at(s), ids.agent!, ["--service", "echo", "--probe", "udp"]);
    expect(code).toBe(1);
    const p = check(report, "probe");
    expect(p).toMatchObject({ status: "fail", summary: "no UDP reply from echo within 1 s" });
    expect(p.fix).toContain("--forward");
    expect(statuses(report)).toMatchObject({ handshake: "pass", authorisation: "pass", service: "pass", path: "pass" });
  });

  test("a TCP service that refuses: the connector's connect failure is named", async () => {
    const s = await mtlsServer();
    const closedPort = await (async () => {
      const svc = await startTcpService();
      const port = svc.address.port;
      await svc.close();
      return port;
    })();
    await connectorFor(s, "web", { host: "127.0.0.1", port: closedPort });
    const { report } = await doctor(at(s), ids.agent!, ["--service", "web", "--probe", "tcp"]);
    const p = check(report, "probe");
    expect(p).toMatchObject({ status: "fail", summary: "TCP connect to web failed at the connector" });
    expect(p.fix).toContain("listens on TCP at the connector's --forward address");
  });

  test("a name that does not resolve", async () => {
    const { code, report } = await doctor("relay.invalid:4433", ids.agent!);
    expect(code).toBe(1);
    expect(check(report, "dns")).toMatchObject({ status: "fail" });
    expect(check(report, "dns").summary).toStartWith("relay.invalid does not resolve");
    expect(check(report, "handshake").status).toBe("skip");
  });
});

describe("ztna doctor: the command", () => {
  test("text lines with PASS/FAIL, the fix under a failure, exit status 1; --help and bad usage", async () => {
    const socket = await openUdp({ host: "127.0.0.1", port: 0, onPacket() {}, onError() {} });
    const port = socket.address.port;
    socket.close();
    const lines: string[] = [];
    const code = await run(["--server", `127.0.0.1:${port}`, "--ca", files.ca!, "--timeout", "1s"], {}, {
      out: (l) => lines.push(l),
      err: (l) => lines.push(l),
    });
    expect(code).toBe(1);
    expect(lines[0]).toMatch(/^PASS {2}files {10}/);
    expect(lines.find((l) => l.startsWith("FAIL  udp+handshake"))).toBeDefined();
    expect(lines.some((l) => /^ {31}fix: {3}start the server/.test(l))).toBe(true);
    expect(lines.at(-1)).toBe("1 failed, 0 warnings: see the fix lines above.");
    const help: string[] = [];
    expect(await run(["--help"], {}, { out: (l) => help.push(l), err: (l) => help.push(l) })).toBe(0);
    expect(help.join("\n")).toContain("--probe udp|tcp");
    const bad: string[] = [];
    expect(await run(["--server", "x"], {}, { out: (l) => bad.push(l), err: (l) => bad.push(l) })).toBe(2);
    expect(bad[0]).toStartWith("ztna doctor: invalid config: --server (ZTNA_SERVER)");
  });

  test("reads a connector's own config file, ignoring the keys it does not use", async () => {
    const s = await mtlsServer();
    const config = join(dir, "connector.json");
    writeFileSync(
      config,
      JSON.stringify({
        server: [at(s)],
        serverName: "localhost",
        ca: files.ca,
        cert: ids.connector!.cert,
        key: ids.connector!.key,
        service: "echo",
        forward: "127.0.0.1:9",
        flowIdle: "30s",
      }),
    );
    const out: string[] = [];
    await run(["--config", config, "--json", "--timeout", "1s"], {}, {
      out: (l) => out.push(l),
      err: (l) => out.push(l),
    });
    const report = JSON.parse(out.join("\n")) as Report;
    expect(report.role).toBe("connector");
    expect(check(report, "authorisation").summary).toContain("may register echo");
  });

  test("the ztna binary entry point exits 0 when all passes", async () => {
    const s = await mtlsServer();
    const proc = Bun.spawn([
      process.execPath,
      join(import.meta.dir, "..", "cli.ts"),
      "doctor",
      "--server",
      at(s),
      "--server-name",
      "localhost",
      "--ca",
      files.ca!,
      "--cert",
      ids.agent!.cert,
      "--key",
      ids.agent!.key,
      "--timeout",
      "2s",
    ], {
      stdout: "pipe",
      stderr: "pipe",
    });
    teardown.add(proc, (p) => p.kill());
    const code = await Promise.race([proc.exited, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))]);
    const text = await new Response(proc.stdout).text();
    expect(code).toBe(0);
    expect(text).toContain("All checks passed.");
  });
});
