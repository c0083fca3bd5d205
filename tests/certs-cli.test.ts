/** `ztna certs`: init, issue, show, and every way to get them wrong. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keyMatchesCertificate, readIdentity, x509 } from "../core/certs.ts";
import { run } from "../commands/certs.ts";

const DAY_MS = 86_400_000;
let dir = "";

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ztna-certs-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function certs(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

const p = (name: string) => join(dir, name);
const cert = (name: string) => new x509.X509Certificate(readFileSync(p(name), "utf8"));
const mode = (name: string) => statSync(p(name)).mode & 0o777;

async function initCa(): Promise<void> {
  expect((await certs("init", "--out", p("ca"))).code).toBe(0);
}

async function issue(...args: string[]) {
  return certs("issue", ...args, "--ca-dir", p("ca"), "--out", p("out"));
}

describe("certs init", () => {
  test("creates a CA certificate and an owner-only key", async () => {
    const r = await certs("init", "--out", p("ca"), "--name", "Example CA", "--days", "30");
    expect(r).toMatchObject({ code: 0, err: [] });
    expect(mode("ca/ca-key.pem")).toBe(0o600);
    const ca = cert("ca/ca.pem");
    expect(ca.subject).toBe("CN=Example CA");
    expect(ca.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(true);
    expect(Math.round((ca.notAfter.getTime() - ca.notBefore.getTime()) / DAY_MS)).toBe(30);
    expect(await keyMatchesCertificate(readFileSync(p("ca/ca.pem"), "utf8"), readFileSync(p("ca/ca-key.pem"), "utf8")))
      .toBe(true);
  });

  test("refuses to overwrite an existing CA unless --force", async () => {
    await initCa();
    const before = readFileSync(p("ca/ca-key.pem"), "utf8");
    const r = await certs("init", "--out", p("ca"));
    expect(r.code).toBe(1);
    expect(r.err).toEqual([expect.stringContaining("already exists; pass --force")]);
    expect(readFileSync(p("ca/ca-key.pem"), "utf8")).toBe(before);
    expect((await certs("init", "--out", p("ca"), "--force")).code).toBe(0);
    expect(readFileSync(p("ca/ca-key.pem"), "utf8")).not.toBe(before);
  });
});

describe("certs issue", () => {
  beforeEach(initCa);

  async function verifyLeaf(name: string) {
    const leaf = cert(`out/${name}.pem`);
    expect(await leaf.verify({ publicKey: cert("ca/ca.pem").publicKey, signatureOnly: true })).toBe(true);
    expect(
      await keyMatchesCertificate(
        readFileSync(p(`out/${name}.pem`), "utf8"),
        readFileSync(p(`out/${name}-key.pem`), "utf8"),
      ),
    ).toBe(true);
    expect(mode(`out/${name}-key.pem`)).toBe(0o600);
    return { leaf, identity: readIdentity(new Uint8Array(leaf.rawData)) };
  }

  test("connector: one SAN URI per service, default name from the first", async () => {
    const r = await issue("--role", "connector", "--service", "db", "--service", "web");
    expect(r).toMatchObject({ code: 0, err: [] });
    const { identity, leaf } = await verifyLeaf("connector-db");
    expect(identity).toEqual({ role: "connector", services: ["db", "web"] });
    expect(leaf.subject).toBe("CN=connector-db");
  });

  test("agent: the '*' wildcard and named services", async () => {
    expect((await issue("--role", "agent", "--service", "*")).code).toBe(0);
    expect((await verifyLeaf("agent-all")).identity).toEqual({ role: "agent", services: ["*"] });
    expect((await issue("--role", "agent", "--service", "db", "--name", "laptop")).code).toBe(0);
    expect((await verifyLeaf("laptop")).identity).toEqual({ role: "agent", services: ["db"] });
  });

  test("server: DNS and IP SANs", async () => {
    expect((await issue("--role", "server", "--dns", "relay.example", "--ip", "10.0.0.1", "--ip", "::1")).code).toBe(0);
    const { identity, leaf } = await verifyLeaf("server");
    expect(identity).toEqual({ role: "server", services: [] });
    const names = leaf.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) =>
      `${n.type}:${n.value}`
    );
    expect(names).toEqual(expect.arrayContaining(["dns:relay.example", "ip:10.0.0.1", "ip:::1", "url:ztna://server"]));
  });

  test("--days and a backdated --not-before give an expired certificate", async () => {
    expect(
      (await issue("--role", "agent", "--service", "db", "--not-before", "2020-01-01", "--days", "2", "--name", "old"))
        .code,
    ).toBe(0);
    const leaf = cert("out/old.pem");
    expect(leaf.notBefore.toISOString()).toBe("2020-01-01T00:00:00.000Z");
    expect(leaf.notAfter.toISOString()).toBe("2020-01-03T00:00:00.000Z");
    const shown = await certs("show", p("out/old.pem"));
    expect(shown.out.find((l) => l.startsWith("not after"))).toContain("EXPIRED");
  });

  test("refuses to overwrite an issued certificate unless --force", async () => {
    expect((await issue("--role", "agent", "--service", "db")).code).toBe(0);
    const again = await issue("--role", "agent", "--service", "db");
    expect(again.code).toBe(1);
    expect(again.err[0]).toContain("agent-db.pem already exists");
    expect((await issue("--role", "agent", "--service", "db", "--force")).code).toBe(0);
  });

  test.each([
    [["--role", "bogus", "--service", "db"], "--role: expected connector, agent or server"],
    [["--service", "db"], "--role is required"],
    [["--role", "connector"], "needs at least one --service"],
    [["--role", "connector", "--service", "*"], "'*' is for agents only"],
    [["--role", "agent", "--service", "_bad"], "invalid service name"],
    [["--role", "agent", "--service", "db", "--dns", "x.example"], "only server certificates carry host names"],
    [["--role", "server"], "needs at least one --dns NAME or --ip ADDR"],
    [["--role", "server", "--dns", "x", "--service", "db"], "a server certificate names no services"],
    [["--role", "server", "--ip", "300.1.1.1"], "--ip: not an IP address"],
    [["--role", "server", "--dns", "bad_name!"], "--dns: not a host name"],
    [["--role", "agent", "--service", "db", "--days", "0"], "--days: expected a whole number"],
    [["--role", "agent", "--service", "db", "--days", "1.5"], "--days: expected a whole number"],
    [["--role", "agent", "--service", "db", "--not-before", "yesterday"], "--not-before: expected an ISO date"],
    [["--role", "agent", "--service", "db", "--name", "../x"], "--name: expected a plain file name"],
    [["--role", "agent", "--service", "db", "--bogus"], "Unknown option '--bogus'"],
  ])("bad usage %j exits 2 with one line", async (args, message) => {
    const r = await issue(...args);
    expect(r.code).toBe(2);
    expect(r.out).toEqual([]);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toContain(message);
    expect(r.err[0]).not.toContain("\n");
  });

  test("missing --out and --ca-dir are usage errors", async () => {
    expect((await certs("issue", "--role", "agent", "--service", "db", "--ca-dir", p("ca"))).err[0]).toContain(
      "--out is required",
    );
    expect((await certs("issue", "--role", "agent", "--service", "db", "--out", p("out"))).code).toBe(2);
  });

  test("a missing or mismatched CA is a one-line error, exit 1", async () => {
    const missing = await certs(
      "issue",
      "--role",
      "agent",
      "--service",
      "db",
      "--ca-dir",
      p("nope"),
      "--out",
      p("out"),
    );
    expect(missing.code).toBe(1);
    expect(missing.err[0]).toContain("create one with: ztna certs init");
    await certs("init", "--out", p("other"));
    writeFileSync(p("ca/ca-key.pem"), readFileSync(p("other/ca-key.pem")));
    const mismatched = await issue("--role", "agent", "--service", "db");
    expect(mismatched.code).toBe(1);
    expect(mismatched.err[0]).toContain("is not the private key of");
  });
});

describe("certs show", () => {
  test("prints role, services, subject, validity and SANs, from PEM or DER", async () => {
    await initCa();
    await issue("--role", "agent", "--service", "db", "--service", "*");
    const pem = await certs("show", p("out/agent-db.pem"));
    expect(pem.code).toBe(0);
    const text = pem.out.join("\n");
    expect(text).toMatch(/^role +agent$/m);
    expect(text).toMatch(/^services +db, \*$/m);
    expect(text).toMatch(/^subject +CN=agent-db$/m);
    expect(text).toMatch(/^not after +\S+ \(valid, 36\d days left\)$/m);
    expect(text).toContain("URI:ztna://agent/db, URI:ztna://agent/*");
    writeFileSync(p("agent.der"), new Uint8Array(cert("out/agent-db.pem").rawData));
    const der = await certs("show", p("agent.der"));
    expect(der.out.slice(1)).toEqual(pem.out.slice(1));
  });

  test("a certificate expiring within 14 days says so", async () => {
    await initCa();
    await issue("--role", "agent", "--service", "db", "--days", "5", "--name", "short");
    const text = (await certs("show", p("out/short.pem"))).out.join("\n");
    expect(text).toMatch(/^not after +\S+ \(valid, 4 days left: RENEW SOON\)$/m);
  });

  test("refuses keys, missing files and extra arguments", async () => {
    await initCa();
    expect((await certs("show", p("ca/ca-key.pem"))).err[0]).toContain("is not a certificate");
    expect((await certs("show", p("missing.pem"))).err[0]).toContain("no such file");
    expect((await certs("show")).code).toBe(2);
    expect((await certs("show", "a", "b")).code).toBe(2);
  });
});

describe("certs command", () => {
  test("--help prints usage; no or unknown command exits 2", async () => {
    const help = await certs("--help");
    expect(help.code).toBe(0);
    expect(help.out[0]).toContain("usage: ztna certs");
    expect((await certs("issue", "--help")).code).toBe(0);
    expect((await certs()).code).toBe(2);
    expect((await certs("frobnicate")).code).toBe(2);
  });

  test("`ztna certs` through cli.ts sets the exit status", async () => {
    const cli = join(import.meta.dir, "..", "cli.ts");
    const bad = Bun.spawnSync([process.execPath, cli, "certs", "issue", "--role", "bogus"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString().trim().split("\n")).toHaveLength(1);
    const ok = Bun.spawnSync([process.execPath, cli, "certs", "init", "--out", p("ca")], {
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(ok.exitCode).toBe(0);
    expect(statSync(p("ca/ca.pem")).isFile()).toBe(true);
  });
});
