import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, issueCertificate } from "./certs.ts";
import { DAY_MS, describeFinding, inspectTlsFiles, issuedByOneOf, loadTlsFiles, TlsFileError } from "./tls-files.ts";

const dir = mkdtempSync(join(tmpdir(), "ztna-tlsfiles-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ca = await createCa({ commonName: "files CA", days: 365 });
const otherCa = await createCa({ commonName: "other CA", days: 365 });
const leaf = await issueCertificate({ ca, role: "agent", services: ["db", "wiki"], days: 30, commonName: "alice" });
const other = await issueCertificate({ ca, role: "connector", services: ["db"], days: 30 });
const expired = await issueCertificate({
  ca,
  role: "agent",
  services: ["db"],
  days: 1,
  notBefore: new Date(Date.now() - 3 * DAY_MS),
});
const soon = await issueCertificate({ ca, role: "agent", services: ["db"], days: 5 });
const future = await issueCertificate({
  ca,
  role: "agent",
  services: ["db"],
  days: 5,
  notBefore: new Date(Date.now() + 2 * DAY_MS),
});
const oldCa = await createCa({ commonName: "old CA", days: 1, notBefore: new Date(Date.now() - 3 * DAY_MS) });

function file(name: string, text: string): { path: string; flag: string } {
  const path = join(dir, name);
  writeFileSync(path, text);
  return { path, flag: `--${name.split(".")[0]}` };
}

describe("inspectTlsFiles", () => {
  test("good files: no findings, the chain and CA summarised with role and services", () => {
    const r = inspectTlsFiles({
      cert: file("cert.pem", leaf.certPem),
      key: file("key.pem", leaf.keyPem),
      ca: file("ca.pem", ca.certPem),
    });
    expect(r.findings).toEqual([]);
    expect(r.chain).toHaveLength(1);
    expect(r.chain[0]).toMatchObject({
      subject: "CN=alice",
      issuer: "CN=files CA",
      role: "agent",
      services: ["db", "wiki"],
      isCa: false,
    });
    expect(r.cas[0]).toMatchObject({ subject: "CN=files CA", isCa: true });
    expect(issuedByOneOf(r.chain[0]!, r.cas)?.subject).toBe("CN=files CA");
    expect(r.certPem && r.keyPem && r.caPem).toBeTruthy();
  });

  test("a missing file, a directory and an unreadable file name the file and the cause", () => {
    const missing = { path: join(dir, "nope.pem"), flag: "--cert" };
    const sub = join(dir, "sub");
    mkdirSync(sub, { recursive: true });
    const r = inspectTlsFiles({ cert: missing, ca: { path: sub, flag: "--ca" } });
    expect(r.findings.map(describeFinding)).toEqual([
      `--cert ${missing.path}: no such file`,
      `--ca ${sub}: is a directory, not a file`,
    ]);
    if (process.getuid?.() !== 0) {
      const locked = file("locked.pem", leaf.certPem);
      chmodSync(locked.path, 0o000);
      expect(inspectTlsFiles({ cert: locked }).findings[0]!.problem).toBe("permission denied");
    }
  });

  test("garbage, an empty file and swapped cert/key are caught before any handshake", () => {
    const garbage = file("key.pem", "garbage\n");
    expect(inspectTlsFiles({ key: garbage }).findings[0]!.problem).toMatch(/^not a PEM private key/);
    expect(inspectTlsFiles({ cert: file("cert.pem", "") }).findings[0]!.problem).toBe("the file is empty");
    const swapped = inspectTlsFiles({ cert: file("cert.pem", leaf.keyPem), key: file("key.pem", leaf.certPem) });
    expect(swapped.findings.map((f) => f.problem)).toEqual([
      "no PEM certificate (-----BEGIN CERTIFICATE-----) (it holds a private key: swapped --cert and --key?)",
      "not a PEM private key (-----BEGIN PRIVATE KEY-----) (it holds a certificate: swapped --cert and --key?)",
    ]);
    const damaged = leaf.certPem.replace(/^(-----BEGIN CERTIFICATE-----\n)(.{20})/, "$1AAAAAAAAAAAAAAAAAAAA");
    expect(inspectTlsFiles({ cert: file("cert.pem", damaged) }).findings[0]!.problem).toMatch(
      /^certificate 1 does not parse/,
    );
  });

  test("a key of another certificate is refused, naming both files", () => {
    const cert = file("cert.pem", leaf.certPem);
    const key = file("key.pem", other.keyPem);
    const r = inspectTlsFiles({ cert, key });
    expect(r.findings).toHaveLength(1);
    expect(describeFinding(r.findings[0]!)).toBe(`--key ${key.path}: not the private key of --cert ${cert.path}`);
    expect(() => loadTlsFiles({ cert, key })).toThrow(TlsFileError);
  });

  test("expired and not-yet-valid certificates fail; one expiring within 14 days warns", () => {
    const e = inspectTlsFiles({ cert: file("cert.pem", expired.certPem) }).findings;
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ severity: "fail" });
    expect(e[0]!.problem).toMatch(/^the certificate expired on \d{4}-\d\d-\d\dT[\d:]+Z \(2 days ago\)$/);
    expect(e[0]!.fix).toContain("ztna certs issue");
    const f = inspectTlsFiles({ cert: file("cert.pem", future.certPem) }).findings;
    expect(f[0]).toMatchObject({ severity: "fail" });
    expect(f[0]!.problem).toMatch(/is not valid before .* from now\)$/);
    expect(f[0]!.fix).toContain("clock");
    const s = loadTlsFiles({ cert: file("cert.pem", soon.certPem) }).findings;
    expect(s).toHaveLength(1);
    expect(s[0]).toMatchObject({ severity: "warn" });
    expect(s[0]!.problem).toMatch(/expires on .* \(in 4 days\)$/);
    // The warning window is a parameter.
    expect(inspectTlsFiles({ cert: file("cert.pem", soon.certPem) }, { warnWithinDays: 3 }).findings).toEqual([]);
  });

  test("an expired CA fails alone but only warns beside a valid one (rotation bundle)", () => {
    const alone = inspectTlsFiles({ ca: file("ca.pem", oldCa.certPem) }).findings;
    expect(alone.map((x) => x.severity)).toEqual(["fail"]);
    expect(alone[0]!.problem).toMatch(/^the CA certificate expired/);
    const bundle = inspectTlsFiles({ ca: file("ca.pem", `${otherCa.certPem}\n${oldCa.certPem}`) });
    expect(bundle.cas).toHaveLength(2);
    expect(bundle.findings.map((x) => [x.severity, x.fix])).toEqual([["warn", "remove it from the bundle"]]);
  });

  test("loadTlsFiles throws the first failure as one line", () => {
    const cert = file("cert.pem", leaf.certPem);
    try {
      loadTlsFiles({ cert, key: file("key.pem", "garbage") });
      throw new Error("no throw");
    } catch (error) {
      expect(error).toBeInstanceOf(TlsFileError);
      expect((error as Error).message).not.toContain("\n");
      expect((error as Error).message).toStartWith(`--key ${join(dir, "key.pem")}: not a PEM private key`);
    }
  });
});
