/**
 * Test PKI for scripts/ansible-test.sh.
 *
 *   bun ansible/test/make-certs.ts DIR SERVICE IP...
 *     a CA, a server certificate for localhost, 127.0.0.1 and every IP given
 *     (the addresses clients dial), a connector certificate for SERVICE and
 *     an agent certificate for every service: DIR/{ca,server,connector,agent}.pem
 *     and DIR/*-key.pem
 *   bun ansible/test/make-certs.ts DIR --server NAME IP...
 *     another server certificate from DIR's CA: DIR/NAME.pem, DIR/NAME-key.pem
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCa, issueCertificate, type PemPair } from "../../core/certs.ts";

const [dir, service, ...rest] = process.argv.slice(2);
const rotate = service === "--server";
const name = rotate ? rest.shift() : undefined;
if (!dir || !service || (rotate && !name)) {
  console.error("usage: make-certs.ts DIR SERVICE IP... | make-certs.ts DIR --server NAME IP...");
  process.exit(2);
}
mkdirSync(dir, { recursive: true, mode: 0o700 });

function write(file: string, pair: PemPair): void {
  writeFileSync(join(dir!, `${file}.pem`), pair.certPem, { mode: 0o644 });
  writeFileSync(join(dir!, `${file}-key.pem`), pair.keyPem, { mode: 0o600 });
}

const days = 2;
const serverCert = (ca: PemPair) =>
  issueCertificate({ ca, role: "server", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", ...rest], days });

if (rotate) {
  const ca = {
    certPem: readFileSync(join(dir, "ca.pem"), "utf8"),
    keyPem: readFileSync(join(dir, "ca-key.pem"), "utf8"),
  };
  write(name!, await serverCert(ca));
} else {
  const ca = await createCa({ commonName: "ztna ansible-test CA", days });
  write("ca", ca);
  write("server", await serverCert(ca));
  write("connector", await issueCertificate({ ca, role: "connector", services: [service], days }));
  write("agent", await issueCertificate({ ca, role: "agent", services: ["*"], days }));
}
