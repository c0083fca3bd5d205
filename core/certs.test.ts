import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import {
  createCa,
  ensureDevCertificates,
  identityUri,
  issueCertificate,
  keyMatchesCertificate,
  readIdentity,
  x509,
} from "./certs.ts";
import type { PemPair } from "./certs.ts";

const tmp = mkdtempSync(join(tmpdir(), "ztna-certs-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ca = await createCa({ commonName: "ztna test CA", days: 30 });
const server = await issueCertificate({
  ca,
  role: "server",
  dnsNames: ["relay.test", "localhost"],
  ipAddresses: ["127.0.0.1", "::1"],
  days: 30,
});

function der(pem: string): Uint8Array {
  return new Uint8Array(x509.PemConverter.decodeFirst(pem));
}

function sans(pem: string): string[] {
  const ext = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  return (ext?.names.items ?? []).map((n) => `${n.type}:${n.value}`);
}

function ekus(pem: string): string[] {
  const ext = new x509.X509Certificate(pem).getExtension(x509.ExtendedKeyUsageExtension);
  return (ext?.usages ?? []).map(String);
}

async function chainVerifies(leafPem: string, caPem: string): Promise<boolean> {
  const leaf = new x509.X509Certificate(leafPem);
  const root = new x509.X509Certificate(caPem);
  const chain = await new x509.X509ChainBuilder({ certificates: [root] }).build(leaf);
  return chain.length === 2 && (await leaf.verify({ publicKey: root.publicKey })) && (await root.verify());
}

// openssl is optional: used only to cross-check with an independent implementation.
const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;

function opensslVerify(leaf: PemPair, caPem: string, extra: string[]): { ok: boolean; out: string } {
  const dir = mkdtempSync(join(tmp, "v-"));
  writeFileSync(join(dir, "ca.pem"), caPem);
  writeFileSync(join(dir, "leaf.pem"), leaf.certPem);
  const r = spawnSync("openssl", ["verify", "-CAfile", join(dir, "ca.pem"), ...extra, join(dir, "leaf.pem")], {
    encoding: "utf8",
  });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

describe("createCa", () => {
  test("self-signed CA with keyCertSign|cRLSign, ECDSA P-256 / SHA-256", async () => {
    const cert = new x509.X509Certificate(ca.certPem);
    expect(cert.subject).toBe("CN=ztna test CA");
    expect(await cert.isSelfSigned()).toBe(true);
    expect(await cert.verify()).toBe(true);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    expect(bc?.ca).toBe(true);
    expect(bc?.critical).toBe(true);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(cert.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
    expect(cert.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });
    expect(ca.keyPem.startsWith("-----BEGIN PRIVATE KEY-----")).toBe(true);
    const days = (cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000;
    expect(days).toBe(30);
  });

  test("fresh serials and keys every time", async () => {
    const other = await createCa({ commonName: "ztna test CA", days: 30 });
    expect(new x509.X509Certificate(other.certPem).serialNumber).not.toBe(
      new x509.X509Certificate(ca.certPem).serialNumber,
    );
    expect(other.keyPem).not.toBe(ca.keyPem);
  });
});

describe("issueCertificate", () => {
  test("server leaf: chain verifies, not a CA, serverAuth, SANs incl. IPs as DNS strings", async () => {
    expect(await chainVerifies(server.certPem, ca.certPem)).toBe(true);
    const cert = new x509.X509Certificate(server.certPem);
    expect(cert.issuer).toBe("CN=ztna test CA");
    expect(cert.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(ekus(server.certPem)).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    expect(sans(server.certPem)).toEqual(
      expect.arrayContaining(["dns:relay.test", "dns:localhost", "dns:127.0.0.1", "dns:::1", "ip:127.0.0.1", "ip:::1"]),
    );
    expect(readIdentity(der(server.certPem))).toEqual({ role: "server", services: [] });
  });

  test("a certificate from another CA does not verify", async () => {
    const otherCa = await createCa({ commonName: "other", days: 1 });
    const leaf = new x509.X509Certificate(server.certPem);
    const root = new x509.X509Certificate(otherCa.certPem);
    expect(await leaf.verify({ publicKey: root.publicKey })).toBe(false);
  });

  test("connector leaf: clientAuth and ztna://connector/<service> URIs", async () => {
    const leaf = await issueCertificate({ ca, role: "connector", services: ["web", "dns"], days: 1 });
    expect(await chainVerifies(leaf.certPem, ca.certPem)).toBe(true);
    expect(ekus(leaf.certPem)).toEqual([x509.ExtendedKeyUsage.clientAuth]);
    expect(sans(leaf.certPem)).toEqual(["url:ztna://connector/web", "url:ztna://connector/dns"]);
    expect(readIdentity(der(leaf.certPem))).toEqual({ role: "connector", services: ["web", "dns"] });
    expect(identityUri("connector", "web")).toBe("ztna://connector/web");
  });

  test("agent leaf may hold the * wildcard", async () => {
    const leaf = await issueCertificate({ ca, role: "agent", services: ["*"], commonName: "laptop", days: 1 });
    expect(new x509.X509Certificate(leaf.certPem).subject).toBe("CN=laptop");
    expect(readIdentity(der(leaf.certPem))).toEqual({ role: "agent", services: ["*"] });
  });

  test("bad services are refused", async () => {
    await expect(issueCertificate({ ca, role: "connector", services: ["*"], days: 1 })).rejects.toThrow(
      "invalid service name",
    );
    await expect(issueCertificate({ ca, role: "agent", services: ["a/b"], days: 1 })).rejects.toThrow(
      "invalid service name",
    );
    await expect(issueCertificate({ ca, role: "connector", days: 1 })).rejects.toThrow("at least one service");
  });

  test("notBefore in the past yields an expired certificate", async () => {
    const notBefore = new Date(Date.now() - 10 * 86_400_000);
    const leaf = await issueCertificate({ ca, role: "agent", services: ["x"], days: 1, notBefore });
    const cert = new x509.X509Certificate(leaf.certPem);
    expect(cert.notBefore.getTime()).toBe(Math.floor(notBefore.getTime() / 1000) * 1000);
    expect(cert.notAfter.getTime()).toBeLessThan(Date.now());
    const root = new x509.X509Certificate(ca.certPem);
    expect(await cert.verify({ publicKey: root.publicKey })).toBe(false);
    expect(await cert.verify({ publicKey: root.publicKey, signatureOnly: true })).toBe(true);
    if (hasOpenssl) {
      const r = opensslVerify(leaf, ca.certPem, []);
      expect(r.ok).toBe(false);
      expect(r.out).toContain("expired");
    }
  });

  test.skipIf(!hasOpenssl)("openssl agrees: purpose, hostname and IP checks", async () => {
    expect(opensslVerify(ca, ca.certPem, []).ok).toBe(true);
    expect(opensslVerify(server, ca.certPem, ["-purpose", "sslserver", "-verify_hostname", "relay.test"]).ok).toBe(
      true,
    );
    expect(opensslVerify(server, ca.certPem, ["-purpose", "sslserver", "-verify_ip", "::1"]).ok).toBe(true);
    expect(opensslVerify(server, ca.certPem, ["-verify_hostname", "evil.test"]).ok).toBe(false);
    expect(opensslVerify(server, ca.certPem, ["-purpose", "sslclient"]).ok).toBe(false);
    const client = await issueCertificate({ ca, role: "connector", services: ["web"], days: 1 });
    expect(opensslVerify(client, ca.certPem, ["-purpose", "sslclient"]).ok).toBe(true);
    expect(opensslVerify(client, ca.certPem, ["-purpose", "sslserver"]).ok).toBe(false);
    // The private key parses and matches the certificate.
    const dir = mkdtempSync(join(tmp, "k-"));
    writeFileSync(join(dir, "key.pem"), server.keyPem);
    writeFileSync(join(dir, "cert.pem"), server.certPem);
    const pub = (args: string[]) => spawnSync("openssl", args, { encoding: "utf8" }).stdout;
    const fromKey = pub(["pkey", "-in", join(dir, "key.pem"), "-pubout"]);
    expect(fromKey).toContain("BEGIN PUBLIC KEY");
    expect(pub(["x509", "-in", join(dir, "cert.pem"), "-noout", "-pubkey"])).toBe(fromKey);
  });
});

describe("keyMatchesCertificate", () => {
  test("true for the pair, false for another key, undefined when the key cannot be read", async () => {
    expect(await keyMatchesCertificate(server.certPem, server.keyPem)).toBe(true);
    expect(await keyMatchesCertificate(ca.certPem, ca.keyPem)).toBe(true);
    expect(await keyMatchesCertificate(server.certPem, ca.keyPem)).toBe(false);
    expect(await keyMatchesCertificate(server.certPem, "not a key")).toBeUndefined();
  });

  test.skipIf(!hasOpenssl)("handles keys made by openssl (PKCS#8 EC and RSA)", async () => {
    const dir = mkdtempSync(join(tmp, "o-"));
    for (const alg of [["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-newkey", "rsa:2048"]]) {
      const r = spawnSync("openssl", [
        "req",
        "-x509",
        ...alg,
        "-nodes",
        "-subj",
        "/CN=x",
        "-days",
        "1",
        "-keyout",
        join(dir, "k.pem"),
        "-out",
        join(dir, "c.pem"),
      ]);
      expect(r.status).toBe(0);
      const certPem = readFileSync(join(dir, "c.pem"), "utf8");
      expect(await keyMatchesCertificate(certPem, readFileSync(join(dir, "k.pem"), "utf8"))).toBe(true);
      expect(await keyMatchesCertificate(certPem, server.keyPem)).toBe(false);
    }
  });
});

describe("readIdentity", () => {
  test("never throws on bad input", () => {
    const none = { role: undefined, services: [] };
    expect(readIdentity(new Uint8Array())).toEqual(none);
    expect(readIdentity(new Uint8Array([0x30, 0x03, 0x02, 0x01]))).toEqual(none);
    expect(readIdentity(crypto.getRandomValues(new Uint8Array(300)))).toEqual(none);
    expect(readIdentity(new TextEncoder().encode(server.certPem))).toEqual(readIdentity(der(server.certPem))); // PEM text tolerated
  });

  test("a CA certificate without ztna URIs has no role", () => {
    expect(readIdentity(der(ca.certPem))).toEqual({ role: undefined, services: [] });
  });
});

describe("ensureDevCertificates", () => {
  test("creates once, then reuses", async () => {
    const dir = join(tmp, "state", "nested");
    const first = await ensureDevCertificates(dir);
    expect(first).toEqual({
      caCertPath: join(dir, "ca.pem"),
      certPath: join(dir, "server.pem"),
      keyPath: join(dir, "server-key.pem"),
      created: true,
    });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "ca-key.pem")).mode & 0o777).toBe(0o600);
    expect(statSync(first.keyPath).mode & 0o777).toBe(0o600);

    const caPem = readFileSync(first.caCertPath, "utf8");
    const certPem = readFileSync(first.certPath, "utf8");
    expect(await chainVerifies(certPem, caPem)).toBe(true);
    const names = sans(certPem);
    expect(names).toEqual(expect.arrayContaining(["dns:localhost", "ip:127.0.0.1", "ip:::1", `dns:${hostname()}`]));
    const cert = new x509.X509Certificate(certPem);
    expect((cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000).toBe(825);

    const second = await ensureDevCertificates(dir);
    expect(second.created).toBe(false);
    expect(readFileSync(first.certPath, "utf8")).toBe(certPem);
    expect(readFileSync(first.caCertPath, "utf8")).toBe(caPem);
  });

  test("reissues the server certificate from the same CA when it is missing or lacks a name", async () => {
    const dir = join(tmp, "state2");
    const first = await ensureDevCertificates(dir);
    const caPem = readFileSync(first.caCertPath, "utf8");

    const withName = await ensureDevCertificates(dir, ["relay.example", "192.0.2.7"]);
    expect(withName.created).toBe(true);
    const certPem = readFileSync(withName.certPath, "utf8");
    expect(sans(certPem)).toEqual(expect.arrayContaining(["dns:relay.example", "ip:192.0.2.7", "dns:192.0.2.7"]));
    expect(readFileSync(first.caCertPath, "utf8")).toBe(caPem);
    expect(await chainVerifies(certPem, caPem)).toBe(true);
    expect((await ensureDevCertificates(dir, ["relay.example"])).created).toBe(false);

    unlinkSync(withName.certPath);
    const again = await ensureDevCertificates(dir);
    expect(again.created).toBe(true);
    expect(await chainVerifies(readFileSync(again.certPath, "utf8"), caPem)).toBe(true);
  });
});

describe("ensureDevCertificates repairs and refuses", () => {
  test("a server key that no longer matches triggers a reissue", async () => {
    const dir = join(tmp, "state3");
    const first = await ensureDevCertificates(dir);
    const other = await createCa({ commonName: "x", days: 1 });
    writeFileSync(first.keyPath, other.keyPem);
    const again = await ensureDevCertificates(dir);
    expect(again.created).toBe(true);
    expect(await keyMatchesCertificate(readFileSync(again.certPath, "utf8"), readFileSync(again.keyPath, "utf8"))).toBe(
      true,
    );
  });

  test("a server certificate from another CA triggers a reissue", async () => {
    const dir = join(tmp, "state4");
    const first = await ensureDevCertificates(dir);
    writeFileSync(first.certPath, server.certPem);
    writeFileSync(first.keyPath, server.keyPem);
    expect((await ensureDevCertificates(dir)).created).toBe(true);
    expect(await chainVerifies(readFileSync(first.certPath, "utf8"), readFileSync(first.caCertPath, "utf8"))).toBe(
      true,
    );
  });

  test("an unusable CA is an error, not silently replaced", async () => {
    const dir = join(tmp, "state5");
    const first = await ensureDevCertificates(dir);
    writeFileSync(join(dir, "ca-key.pem"), server.keyPem);
    await expect(ensureDevCertificates(dir)).rejects.toThrow("is not the private key of");
    writeFileSync(first.caCertPath, "garbage");
    await expect(ensureDevCertificates(dir)).rejects.toThrow("is not a PEM certificate");
  });
});

describe("BoringSSL (native QUIC binding) loads the PEMs", () => {
  const require = createRequire(import.meta.url);
  const onLinuxX64 = process.platform === "linux" && process.arch === "x64";
  const enc = (s: string) => new TextEncoder().encode(s);

  test.skipIf(!onLinuxX64)("server and client configs from issued and dev certificates", async () => {
    const quiche = require("@matrixai/quic-linux-x64/node.napi.node");
    const { Config } = quiche;
    // Server side: key + certificate chain.
    expect(() => Config.withBoringSslCtx(false, false, null, [enc(server.keyPem)], [enc(server.certPem)], null)).not
      .toThrow();
    // Client side: trust the CA.
    expect(() => Config.withBoringSslCtx(true, false, enc(ca.certPem), null, null, null)).not.toThrow();
    // Client with an mTLS identity.
    const client = await issueCertificate({ ca, role: "agent", services: ["*"], days: 1 });
    expect(() =>
      Config.withBoringSslCtx(true, false, enc(ca.certPem), [enc(client.keyPem)], [enc(client.certPem)], null)
    ).not.toThrow();
    // Dev certificates from disk.
    const dev = await ensureDevCertificates(join(tmp, "state-boring"));
    const read = (p: string) => enc(readFileSync(p, "utf8"));
    expect(() =>
      Config.withBoringSslCtx(false, false, read(dev.caCertPath), [read(dev.keyPath)], [read(dev.certPath)], null)
    ).not.toThrow();
    // Sanity: the binding really parses keys (garbage is rejected).
    const garbage = enc("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    expect(() => Config.withBoringSslCtx(false, false, null, [garbage], [enc(server.certPem)], null)).toThrow();
    // Surprise: a key that does not match the certificate is NOT rejected here,
    // which is why keyMatchesCertificate exists.
    expect(() => Config.withBoringSslCtx(false, false, null, [enc(client.keyPem)], [enc(server.certPem)], null)).not
      .toThrow();
  });
});
