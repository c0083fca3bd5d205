/**
 * Test PKI for scripts/ansible-test.sh: a CA, a server certificate for
 * localhost/127.0.0.1, a connector certificate for one service and an agent
 * certificate for every service, written as the PEM files the inventory names.
 *
 *   bun ansible/test/make-certs.ts DIR SERVICE
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCa, issueCertificate, type PemPair } from "../../core/certs.ts";

const [dir, service] = process.argv.slice(2);
if (!dir || !service) {
  console.error("usage: make-certs.ts DIR SERVICE");
  process.exit(2);
}
mkdirSync(dir, { recursive: true, mode: 0o700 });

function write(name: string, pair: PemPair): void {
  writeFileSync(join(dir!, `${name}.pem`), pair.certPem, { mode: 0o644 });
  writeFileSync(join(dir!, `${name}-key.pem`), pair.keyPem, { mode: 0o600 });
}

const days = 2;
const ca = await createCa({ commonName: "ztna ansible-test CA", days });
write("ca", ca);
write("server", await issueCertificate({ ca, role: "server", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], days }));
write("connector", await issueCertificate({ ca, role: "connector", services: [service], days }));
write("agent", await issueCertificate({ ca, role: "agent", services: ["*"], days }));
