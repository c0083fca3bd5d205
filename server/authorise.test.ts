import { beforeAll, describe, expect, test } from "bun:test";
import { createCa, issueCertificate, type PemPair, x509 } from "../core/certs.ts";
import { createAuthoriser } from "./authorise.ts";

const authorise = createAuthoriser();
const der = (pem: string) => new Uint8Array(new x509.X509Certificate(pem).rawData);

/** A certificate carrying exactly these SAN URIs (the authoriser never checks signatures: TLS did). */
async function withUris(uris: string[]): Promise<Uint8Array> {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=test",
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    extensions: [new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: "url" as const, value })))],
  });
  return new Uint8Array(cert.rawData);
}

let ca: PemPair;
beforeAll(async () => {
  ca = await createCa({ commonName: "authorise test CA", days: 1 });
});

describe("createAuthoriser", () => {
  test("a connector may register exactly the services its certificate names", async () => {
    const cert = der(
      (await issueCertificate({ ca, role: "connector", services: ["billing", "ledger"], days: 1 })).certPem,
    );
    expect(authorise(cert, "connector", "billing")).toBe(true);
    expect(authorise(cert, "connector", "ledger")).toBe(true);
    expect(authorise(cert, "connector", "payroll")).toBe(false);
    expect(authorise(cert, "connector", "billing2")).toBe(false);
    expect(authorise(cert, "connector", "bill")).toBe(false);
  });

  test("an agent may open the services its certificate names", async () => {
    const cert = der((await issueCertificate({ ca, role: "agent", services: ["wiki"], days: 1 })).certPem);
    expect(authorise(cert, "agent", "wiki")).toBe(true);
    expect(authorise(cert, "agent", "payroll")).toBe(false);
  });

  test("an agent with * may open any service", async () => {
    const cert = der((await issueCertificate({ ca, role: "agent", services: ["*"], days: 1 })).certPem);
    expect(authorise(cert, "agent", "payroll")).toBe(true);
    expect(authorise(cert, "agent", "anything-else")).toBe(true);
    // The wildcard is an agent grant only.
    expect(authorise(cert, "connector", "payroll")).toBe(false);
  });

  test("a connector certificate never has a wildcard, even if one is written into it", async () => {
    const cert = await withUris(["ztna://connector/*"]);
    expect(authorise(cert, "connector", "payroll")).toBe(false);
  });

  test("a certificate of the wrong role is refused", async () => {
    const agent = der((await issueCertificate({ ca, role: "agent", services: ["billing"], days: 1 })).certPem);
    const connector = der((await issueCertificate({ ca, role: "connector", services: ["billing"], days: 1 })).certPem);
    const server = der(
      (await issueCertificate({ ca, role: "server", dnsNames: ["localhost"], days: 1 })).certPem,
    );
    expect(authorise(agent, "connector", "billing")).toBe(false);
    expect(authorise(connector, "agent", "billing")).toBe(false);
    expect(authorise(server, "agent", "billing")).toBe(false);
    expect(authorise(server, "connector", "billing")).toBe(false);
  });

  test("only the first role named counts", async () => {
    const cert = await withUris(["ztna://agent/wiki", "ztna://connector/billing"]);
    expect(authorise(cert, "agent", "wiki")).toBe(true);
    expect(authorise(cert, "connector", "billing")).toBe(false);
  });

  test("no certificate, an empty one, garbage, or one without ztna URIs is refused", async () => {
    expect(authorise(null, "agent", "wiki")).toBe(false);
    expect(authorise(null, "connector", "wiki")).toBe(false);
    expect(authorise(new Uint8Array(0), "agent", "wiki")).toBe(false);
    expect(authorise(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]), "agent", "wiki")).toBe(false);
    expect(authorise(await withUris(["https://example.com/agent/wiki"]), "agent", "wiki")).toBe(false);
    expect(authorise(await withUris(["ztna://agent"]), "agent", "wiki")).toBe(false);
    expect(authorise(der(ca.certPem), "agent", "wiki")).toBe(false);
  });
});
