/**
 * Mutual TLS over real QUIC on loopback: who gets through the handshake (the
 * CA decides), what they may register or open (their ztna:// URIs decide), and
 * certificate reloads that leave live connections alone.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { alpnFor } from "../core/frame/mod.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, issueCertificate, type PemPair, x509 } from "../core/certs.ts";
import type { Role } from "../core/frame/mod.ts";
import type { Address } from "../core/net/address.ts";
import { clientQuicConfig } from "../core/quic/config.ts";
import { type CloseInfo, createEndpoint } from "../core/quic/endpoint.ts";
import type { Config } from "../core/quic/native.ts";
import { createAuthoriser } from "../server/authorise.ts";
import { runServer } from "../server/main.ts";
import { parseServerOptions } from "../server/options.ts";
import { spawnProgram } from "../scripts/programs.ts";
import {
  bytes,
  captureLogger,
  cleanup,
  logged,
  startEcho,
  startTestAgent,
  startTestConnector,
  startTestServer,
  type TestServer,
  udpClient,
  waitFor,
} from "./harness.ts";

const teardown = cleanup();
afterEach(() => teardown.run());

const te = new TextEncoder();
const DAY_MS = 86_400_000;
/** TLS alerts travel as QUIC transport error 0x100 + alert (RFC 9001 §4.8). */
const CRYPTO_ERROR = 0x100;
const ALERT = { certificateExpired: 45, unknownCa: 48, certificateRequired: 116 } as const;

let ca: PemPair;
let otherCa: PemPair;
let serverPair: PemPair;
const dir = mkdtempSync(join(tmpdir(), "ztna-mtls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  ca = await createCa({ commonName: "mtls test CA", days: 2 });
  otherCa = await createCa({ commonName: "another tenant's CA", days: 2 });
  serverPair = await issueCertificate({
    ca,
    role: "server",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    days: 2,
  });
});

function issue(role: Role, services: string[], from: PemPair = ca): Promise<PemPair> {
  return issueCertificate({ ca: from, role, services, days: 2 });
}

/** Client TLS that trusts the server's CA and presents `identity` (none when omitted). */
function clientTls(identity?: PemPair): Config {
  return clientQuicConfig({
    alpn: alpnFor(),
    caPem: te.encode(ca.certPem),
    insecure: false,
    certPem: identity && te.encode(identity.certPem),
    keyPem: identity && te.encode(identity.keyPem),
    idleTimeoutMs: 5_000,
  });
}

async function mtlsServer(): Promise<TestServer> {
  const s = await startTestServer({
    certPem: te.encode(serverPair.certPem),
    keyPem: te.encode(serverPair.keyPem),
    clientCaPem: te.encode(ca.certPem),
    authorise: createAuthoriser(),
  });
  return teardown.add(s, (x) => x.server.close());
}

// Links back off for a second after a refusal so a test sees few retries.
const slowRetry = { backoff: { baseMs: 1_000, capMs: 1_000, maxAttempts: 0 } };

async function connector(s: { server: { address: Address } }, service: string, forward: Address, identity?: PemPair) {
  const c = await startTestConnector([s.server.address], service, forward, {
    quicConfig: clientTls(identity),
    ...slowRetry,
  });
  return teardown.add(c, (x) => x.connector.close());
}

async function agent(s: { server: { address: Address } }, services: string[], identity?: PemPair) {
  const a = await startTestAgent([s.server.address], services, {
    quicConfig: clientTls(identity),
    ...slowRetry,
    reopenMs: 1_000,
  });
  return teardown.add(a, (x) => x.agent.close());
}

async function echoThrough(listen: Address, seed: number): Promise<void> {
  const client = teardown.add(await udpClient(), (x) => x.close());
  const payload = bytes(100, seed);
  client.send(payload, listen);
  const reply = await client.next(2_000);
  expect(Buffer.from(reply).equals(Buffer.from(payload))).toBe(true);
}

/** A self-signed client certificate shaped like a real one (clientAuth, ztna URI): only its issuer is wrong. */
async function selfSigned(uri: string): Promise<PemPair> {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=self-signed",
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + DAY_MS),
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: uri }]),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { certPem: cert.toString("pem"), keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}

interface HandshakeOutcome {
  info: CloseInfo;
  /** The client finished its side of the TLS 1.3 handshake (it does before the server checks its certificate). */
  clientEstablished: boolean;
  ms: number;
}

/** Dials with a bare QUIC endpoint and waits (bounded) for the server to close the connection. */
async function dialUntilClosed(server: Address, config: Config, timeoutMs = 2_000): Promise<HandshakeOutcome> {
  const started = Date.now();
  let outcome: HandshakeOutcome | null = null;
  const endpoint = await createEndpoint({
    bind: { host: "127.0.0.1", port: 0 },
    server: false,
    config,
    handlers: {
      onClosed(conn, info) {
        outcome = { info, clientEstablished: conn.established, ms: Date.now() - started };
      },
    },
  });
  teardown.add(endpoint, (e) => e.close());
  endpoint.connect(server, "localhost");
  await waitFor(() => outcome !== null, timeoutMs, "the server to close the connection");
  return outcome!;
}

async function handshakesCompleted(s: TestServer): Promise<number> {
  const metric = await s.metrics.handshakeDuration.get();
  return metric.values.find((v) => v.metricName?.endsWith("_count"))?.value ?? 0;
}

function connectionsTotal(s: TestServer): number {
  return s.metrics.connectionsTotal.child({ role: "agent" }).value +
    s.metrics.connectionsTotal.child({ role: "connector" }).value;
}

describe("mTLS authorisation", () => {
  test("an authorised connector registers and an authorised agent gets echoes through", async () => {
    const s = await mtlsServer();
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const c = await connector(s, "billing", echo.address, await issue("connector", ["billing"]));
    await waitFor(() => c.connector.ready().ready, 3_000, "connector registered");
    const a = await agent(s, ["billing"], await issue("agent", ["billing"]));
    await waitFor(() => a.agent.ready().ready, 3_000, "agent ready");
    await echoThrough(a.listen("billing"), 1);
    expect(s.metrics.registrations.child({ result: "ack", reason: "ok" }).value).toBe(1);
    expect(s.metrics.opens.child({ result: "ack", reason: "ok" }).value).toBe(1);
    // /status names the connector by its certificate's identity.
    const status = s.server.status();
    expect(status.services).toHaveLength(1);
    expect(status.services[0]).toMatchObject({ name: "billing", agents: 1, flows: 1 });
    expect(status.services[0]!.connectors.map((x) => x.identity)).toEqual(["ztna://connector/billing"]);
  });

  test("a connector registering another tenant's service is refused not_authorised and counted", async () => {
    const s = await mtlsServer();
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const c = await connector(s, "payroll", echo.address, await issue("connector", ["billing"]));
    const refused = s.metrics.registrations.child({ result: "nack", reason: "not_authorised" });
    await waitFor(() => refused.value >= 1, 3_000, "not_authorised registration NACK");
    expect(logged(s.log, "register_refused")[0]).toMatchObject({ code: "not_authorised" });
    // The connector hears the NACK a moment after the server counted it.
    await waitFor(
      () => c.metrics.registrations.child({ result: "nack", reason: "not_authorised" }).value >= 1,
      2_000,
      "connector counts the NACK",
    );
    expect(s.metrics.registrations.child({ result: "ack", reason: "ok" }).value).toBe(0);
    expect(c.connector.ready().ready).toBe(false);
  });

  test("an agent opening a service its certificate does not name is refused and counted", async () => {
    const s = await mtlsServer();
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const c = await connector(s, "payroll", echo.address, await issue("connector", ["payroll"]));
    await waitFor(() => c.connector.ready().ready, 3_000, "connector registered");
    const a = await agent(s, ["payroll"], await issue("agent", ["wiki"]));
    const refused = s.metrics.opens.child({ result: "nack", reason: "not_authorised" });
    await waitFor(() => refused.value >= 1, 3_000, "not_authorised open NACK");
    expect(logged(s.log, "open_refused")[0]).toMatchObject({ code: "not_authorised" });
    await waitFor(
      () => a.metrics.opens.child({ result: "nack", reason: "not_authorised" }).value >= 1,
      2_000,
      "agent counts the NACK",
    );
    expect(s.metrics.opens.child({ result: "ack", reason: "ok" }).value).toBe(0);
    expect(a.agent.ready().ready).toBe(false);
    expect(s.server.flowCount()).toBe(0);
  });

  test("an agent refused again and again is logged once on both sides, not once a second", async () => {
    const s = await mtlsServer();
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const c = await connector(s, "payroll", echo.address, await issue("connector", ["payroll"]));
    await waitFor(() => c.connector.ready().ready, 3_000, "connector registered");
    const a = await agent(s, ["payroll"], await issue("agent", ["wiki"]));
    // The agent asks again every second: wait for the third refusal.
    const refused = a.metrics.opens.child({ result: "nack", reason: "not_authorised" });
    await waitFor(() => refused.value >= 3, 5_000, "three not_authorised NACKs");
    expect(logged(a.log, "open_refused")).toHaveLength(1);
    expect(logged(s.log, "open_refused")).toHaveLength(1);
    expect(logged(s.log, "open_refused")[0]).toMatchObject({ service: "payroll", code: "not_authorised" });
    // The minute's count arrives as one line (here: at shutdown, which reports what is pending).
    await a.agent.close();
    const summary = logged(a.log, "open_refused")[1]!;
    expect(summary.repeated).toBeGreaterThanOrEqual(2);
    expect(summary.window_s).toBe(60);
  });

  test("an agent certificate naming * may open any service", async () => {
    const s = await mtlsServer();
    const payroll = teardown.add(await startEcho(), (x) => x.close());
    const wiki = teardown.add(await startEcho(), (x) => x.close());
    await connector(s, "payroll", payroll.address, await issue("connector", ["payroll"]));
    await connector(s, "wiki", wiki.address, await issue("connector", ["wiki"]));
    const a = await agent(s, ["payroll", "wiki"], await issue("agent", ["*"]));
    await waitFor(() => a.agent.ready().ready, 3_000, "agent ready with both services");
    await echoThrough(a.listen("payroll"), 2);
    await echoThrough(a.listen("wiki"), 3);
  });
});

describe("mTLS handshake", () => {
  // Each case: what BoringSSL on the server answers, as the TLS alert the client reads.
  const cases: [string, () => Promise<PemPair | undefined>, number][] = [
    ["no certificate", async () => undefined, ALERT.certificateRequired],
    ["a self-signed certificate", () => selfSigned("ztna://connector/billing"), ALERT.unknownCa],
    ["a certificate from a different CA", () => issue("connector", ["billing"], otherCa), ALERT.unknownCa],
    [
      "an expired certificate",
      () =>
        issueCertificate({
          ca,
          role: "connector",
          services: ["billing"],
          days: 1,
          notBefore: new Date(Date.now() - 3 * DAY_MS),
        }),
      ALERT.certificateExpired,
    ],
    [
      "a certificate that is not valid yet",
      () =>
        issueCertificate({
          ca,
          role: "connector",
          services: ["billing"],
          days: 1,
          notBefore: new Date(Date.now() + DAY_MS),
        }),
      ALERT.certificateExpired,
    ],
  ];

  for (const [name, identity, alert] of cases) {
    test(`a client with ${name} is closed during the handshake`, async () => {
      const s = await mtlsServer();
      const outcome = await dialUntilClosed(s.server.address, clientTls(await identity()));
      expect(outcome.info.peer).toMatchObject({ isApp: false, errorCode: CRYPTO_ERROR + alert });
      expect(outcome.info.timedOut).toBe(false);
      // The server never completed the handshake, so nothing of ztna ran for this client.
      expect(await handshakesCompleted(s)).toBe(0);
      expect(connectionsTotal(s)).toBe(0);
      expect(logged(s.log, "peer_hello")).toEqual([]);
    });
  }

  test("a --ca bundle of two CAs (rotation) admits clients of either", async () => {
    const s = await mtlsServer();
    s.server.reloadTls({
      certPem: te.encode(serverPair.certPem),
      keyPem: te.encode(serverPair.keyPem),
      clientCaPem: te.encode(`${ca.certPem}\n${otherCa.certPem}\n`),
    });
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const c = await connector(s, "billing", echo.address, await issue("connector", ["billing"], otherCa));
    await waitFor(() => c.connector.ready().ready, 3_000, "connector from the second CA registered");
    const a = await agent(s, ["billing"], await issue("agent", ["billing"]));
    await waitFor(() => a.agent.ready().ready, 3_000, "agent from the first CA ready");
    await echoThrough(a.listen("billing"), 8);
  });

  test("connector and agent programs without an accepted certificate never become ready", async () => {
    const s = await mtlsServer();
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const c = await connector(s, "billing", echo.address);
    const a = await agent(s, ["billing"], await issue("agent", ["billing"], otherCa));
    // Both dial at once and are refused within milliseconds; give them a generous window anyway.
    await waitFor(
      () => logged(c.log, "link_closed").length > 0 && logged(a.log, "link_closed").length > 0,
      2_000,
      "refused dials",
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(c.connector.ready().ready).toBe(false);
    expect(a.agent.ready().ready).toBe(false);
    expect(await handshakesCompleted(s)).toBe(0);
    expect(connectionsTotal(s)).toBe(0);
    // The refusals are seen: counted by alert on the server, logged once per client and reason,
    // and named with what to check on each client.
    await waitFor(
      () => s.metrics.handshakeFailures.child({ reason: "certificate_required" }).value >= 1,
      2_000,
      "counted",
    );
    await waitFor(() => s.metrics.handshakeFailures.child({ reason: "unknown_ca" }).value >= 1, 2_000, "counted");
    const serverLines = logged(s.log, "handshake_failed");
    expect(serverLines.map((l) => l.reason).sort()).toEqual(["certificate_required", "unknown_ca"]);
    expect(
      serverLines.every((l) =>
        l.level === "warn" && String(l.peer).startsWith("127.0.0.1:") && l.refused_by === "server"
      ),
    ).toBe(true);
    expect(logged(c.log, "handshake_refused")[0]).toMatchObject({
      alert: "certificate_required",
      refused_by: "server",
      code: "0x174",
    });
    expect(logged(a.log, "handshake_refused")[0]).toMatchObject({
      alert: "unknown_ca",
      refused_by: "server",
      code: "0x130",
    });
    expect(String(logged(a.log, "handshake_refused")[0]!.fix)).toContain("--ca");
  });

  test("a server certificate reload with a new client CA: new CA's clients get in, old CA's are refused, live connections keep working", async () => {
    const s = await mtlsServer();
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const c = await connector(s, "billing", echo.address, await issue("connector", ["billing"]));
    const before = await agent(s, ["billing"], await issue("agent", ["billing"]));
    await waitFor(() => before.agent.ready().ready, 3_000, "agent ready");
    await echoThrough(before.listen("billing"), 4);

    const rotated = await createCa({ commonName: "rotated client CA", days: 2 });
    s.server.reloadTls({
      certPem: te.encode(serverPair.certPem),
      keyPem: te.encode(serverPair.keyPem),
      clientCaPem: te.encode(rotated.certPem),
    });

    const after = await agent(s, ["billing"], await issue("agent", ["billing"], rotated));
    await waitFor(() => after.agent.ready().ready, 3_000, "agent with a certificate from the new CA ready");
    await echoThrough(after.listen("billing"), 5);
    // Established before the reload: both still relay.
    expect(c.connector.ready().ready).toBe(true);
    await echoThrough(before.listen("billing"), 6);
    const refused = await dialUntilClosed(s.server.address, clientTls(await issue("agent", ["billing"])));
    expect(refused.info.peer).toMatchObject({ isApp: false, errorCode: CRYPTO_ERROR + ALERT.unknownCa });
    expect(logged(s.log, "tls_reloaded")).toHaveLength(1);
  });
});

describe("server program wiring", () => {
  function writePem(name: string, pem: string): string {
    const path = join(dir, name);
    writeFileSync(path, pem);
    return path;
  }

  test("runServer with --ca authorises by certificate and reloads the CA file, keeping the old one on a bad file", async () => {
    const caPath = writePem("wiring-ca.pem", ca.certPem);
    const keyPath = writePem("wiring-server-key.pem", serverPair.keyPem);
    const log = captureLogger("server");
    const program = await runServer(
      {
        // Defaults for everything not named here, as the CLI would give them.
        ...parseServerOptions([], {}),
        listen: { host: "127.0.0.1", port: 0 },
        ops: null,
        stateDir: join(dir, "state"),
        cert: writePem("wiring-server.pem", serverPair.certPem),
        key: keyPath,
        ca: caPath,
        grace: 500,
        idleTimeout: 30_000,
        keepalive: 1_000,
        flowIdle: 60_000,
        logFormat: "json",
        logLevel: "info",
      },
      log,
    );
    teardown.add(program, (p) => p.server.close());
    expect(logged(log, "mtls_enabled")[0]).toMatchObject({ ca: caPath });
    expect(logged(log, "open_mode")).toEqual([]);
    const s = program;

    // Authorisation is wired: a connector may only register what its certificate names.
    const echo = teardown.add(await startEcho(), (x) => x.close());
    const wrong = await connector(s, "payroll", echo.address, await issue("connector", ["billing"]));
    await waitFor(
      () => wrong.metrics.registrations.child({ result: "nack", reason: "not_authorised" }).value >= 1,
      3_000,
      "NACK",
    );

    // A key of another certificate, or a CA file without a certificate, is refused; the running files stay in force.
    writeFileSync(keyPath, otherCa.keyPem);
    expect(await program.reloadTls()).toBe(false);
    writeFileSync(keyPath, serverPair.keyPem);
    writeFileSync(caPath, "not a certificate\n");
    expect(await program.reloadTls()).toBe(false);
    expect(logged(log, "tls_reload_failed").map((e) => e.error)).toEqual([
      `--key ${keyPath}: not the private key of --cert ${join(dir, "wiring-server.pem")}`,
      `--ca ${caPath}: no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    ]);
    const good = await connector(s, "billing", echo.address, await issue("connector", ["billing"]));
    await waitFor(() => good.connector.ready().ready, 3_000, "connector with the old CA's certificate");

    // The rotated CA file applies to new connections; the registered connector stays.
    const rotated = await createCa({ commonName: "rotated", days: 2 });
    writeFileSync(caPath, rotated.certPem);
    expect(await program.reloadTls()).toBe(true);
    expect(logged(log, "tls_reloaded")).toHaveLength(1);
    const old = await dialUntilClosed(program.server.address, clientTls(await issue("agent", ["billing"])));
    expect(old.info.peer).toMatchObject({ errorCode: CRYPTO_ERROR + ALERT.unknownCa });
    const a = await agent(s, ["billing"], await issue("agent", ["billing"], rotated));
    await waitFor(() => a.agent.ready().ready, 3_000, "agent with the rotated CA's certificate");
    await echoThrough(a.listen("billing"), 7);
    expect(good.connector.ready().ready).toBe(true);
  });

  test("the server process reloads its certificates on SIGHUP", async () => {
    const caPath = writePem("sighup-ca.pem", ca.certPem);
    const program = spawnProgram("server", [
      "--listen",
      "127.0.0.1:0",
      "--ops",
      "off",
      "--state-dir",
      join(dir, "sighup"),
      "--ca",
      caPath,
    ]);
    teardown.add(program, (p) => p.stop("SIGKILL", 2_000));
    await program.waitForLog("listening", 5_000);
    expect((await program.waitForLog("mtls_enabled", 1_000)).ca).toBe(caPath);
    process.kill(program.pid, "SIGHUP");
    await program.waitForLog("tls_reloaded", 3_000);
    writeFileSync(caPath, "");
    process.kill(program.pid, "SIGHUP");
    await program.waitForLog("tls_reload_failed", 3_000);
    expect(program.logs.filter((e) => e.event === "tls_reloaded")).toHaveLength(1);
  });

  test("an agent process re-reads its certificate on SIGHUP and uses it for its next connection", async () => {
    const s1 = await mtlsServer();
    const port = s1.server.address.port;
    const echo = teardown.add(await startEcho(), (x) => x.close());
    await connector(s1, "billing", echo.address, await issue("connector", ["billing"]));
    const caPath = writePem("reload-ca.pem", ca.certPem);
    const before = await issueCertificate({
      ca,
      role: "agent",
      services: ["wiki"],
      days: 2,
      commonName: "agent-before",
    });
    const certPath = writePem("reload-agent.pem", before.certPem);
    const keyPath = writePem("reload-agent-key.pem", before.keyPem);
    const agentProgram = spawnProgram("agent", [
      "--server",
      `127.0.0.1:${port}`,
      "--server-name",
      "localhost",
      "--ca",
      caPath,
      "--cert",
      certPath,
      "--key",
      keyPath,
      "--map",
      "billing=udp://127.0.0.1:0",
      "--ops",
      "127.0.0.1:0",
      "--state-dir",
      join(dir, "reload-state"),
      "--reconnect-base",
      "50ms",
      "--reconnect-cap",
      "500ms",
    ]);
    teardown.add(agentProgram, (p) => p.stop("SIGKILL", 2_000));
    const metricsUrl = `${String((await agentProgram.waitForLog("ops_listening")).url)}metrics`;
    expect((await agentProgram.waitForLog("open_refused", 5_000)).code).toBe("not_authorised");
    expect(await (await fetch(metricsUrl)).text()).toContain(
      'ztna_certificate_expiry_timestamp_seconds{role="agent",subject="CN=agent-before"}',
    );

    // A broken key: refused, the running files stay.
    writeFileSync(keyPath, "not a key\n");
    process.kill(agentProgram.pid, "SIGHUP");
    expect(String((await agentProgram.waitForLog("tls_reload_failed", 3_000)).error)).toStartWith(
      `--key ${keyPath}: not a PEM private key`,
    );

    // The rotated certificate names the service: taken for the next connection, exported at once.
    const after = await issueCertificate({
      ca,
      role: "agent",
      services: ["billing"],
      days: 2,
      commonName: "agent-after",
    });
    writeFileSync(certPath, after.certPem);
    writeFileSync(keyPath, after.keyPem);
    process.kill(agentProgram.pid, "SIGHUP");
    await agentProgram.waitForLog("tls_reloaded", 3_000);
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toContain('subject="CN=agent-after"');
    expect(metrics).not.toContain('subject="CN=agent-before"');

    // The next connection: the server restarts on the same port, and the agent comes back with the new certificate.
    await s1.server.close();
    const s2 = teardown.add(
      await startTestServer({
        listen: { host: "127.0.0.1", port },
        certPem: te.encode(serverPair.certPem),
        keyPem: te.encode(serverPair.keyPem),
        clientCaPem: te.encode(ca.certPem),
        authorise: createAuthoriser(),
      }),
      (x) => x.server.close(),
    );
    await connector(s2, "billing", echo.address, await issue("connector", ["billing"]));
    const opened = await agentProgram.waitForLog("service_opened", 10_000);
    expect(opened.service).toBe("billing");
    const listen = await agentProgram.waitForLog("listening", 1_000, (e) => e.service === "billing");
    await echoThrough({ host: "127.0.0.1", port: Number(String(listen.addr).split(":").pop()) }, 9);
  });
});
