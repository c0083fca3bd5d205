// Certificates for ztna: a small private CA, leaf certificates whose SAN URIs
// carry the peer's role and services (ztna://connector/<service>), and a dev
// bootstrap that writes a CA + server certificate into the state directory.
//
// Everything is ECDSA P-256 / SHA-256 generated with WebCrypto through
// @peculiar/x509; no openssl at run time.
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type * as X509 from "@peculiar/x509";
import { isValidServiceName } from "./config.ts";

// @peculiar/x509 v2 registers its algorithms through tsyringe, which refuses to
// load unless a Reflect metadata API exists. No polyfill package is installed,
// so install the tiny subset tsyringe uses (only if absent), then load x509
// dynamically: static imports would be evaluated before this code runs.
installReflectMetadata();
const x509: typeof X509 = await import("@peculiar/x509");
x509.cryptoProvider.set(crypto);
/** The loaded @peculiar/x509 module; import it from here so the shim is in place. */
export { x509 };

function installReflectMetadata(): void {
  type Meta = Map<unknown, unknown>;
  const R = Reflect as unknown as Record<string, unknown>;
  if (typeof R.getMetadata === "function") return;
  const store = new WeakMap<object, Meta>();
  const own = (target: object, create: boolean): Meta | undefined => {
    let m = store.get(target);
    if (!m && create) store.set(target, m = new Map());
    return m;
  };
  const getOwn = (key: unknown, target: object): unknown => own(target, false)?.get(key);
  const get = (key: unknown, target: object): unknown => {
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t)) {
      const m = own(t, false);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  const define = (key: unknown, value: unknown, target: object): void => {
    own(target, true)!.set(key, value);
  };
  R.getOwnMetadata = getOwn;
  R.getMetadata = get;
  R.hasOwnMetadata = (key: unknown, target: object) => own(target, false)?.has(key) ?? false;
  R.hasMetadata = (key: unknown, target: object) => get(key, target) !== undefined;
  R.defineMetadata = define;
  R.metadata = (key: unknown, value: unknown) => (target: object) => define(key, value, target);
}

const KEY_ALG: EcKeyGenParams & EcKeyImportParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN_ALG: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const DAY_MS = 86_400_000;
// Backdate notBefore a little so peers with slightly slow clocks accept fresh certificates.
const CLOCK_SKEW_MS = 5 * 60_000;

// Identity reading lives in identity.ts (no issuing library needed to serve).
export { type Identity, type IdentityRole, readIdentity } from "./identity.ts";
import { type IdentityRole, keyMatches } from "./identity.ts";
import { fileExists } from "./runtime/fs.ts";

export interface PemPair {
  certPem: string;
  keyPem: string;
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"]);
}

// PKCS#8 ("BEGIN PRIVATE KEY") is accepted by BoringSSL via the QUIC binding
// (checked in certs.test.ts), so no SEC1 conversion is needed.
async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

async function importSigningKey(keyPem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(keyPem);
  return crypto.subtle.importKey("pkcs8", der, KEY_ALG, false, ["sign"]);
}

/** Random positive 128-bit serial (hex), as RFC 5280 recommends unpredictable serials. */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x01; // positive and no leading zero byte
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function validity(days: number, notBefore?: Date): { notBefore: Date; notAfter: Date } {
  const start = notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  return { notBefore: start, notAfter: new Date(start.getTime() + days * DAY_MS) };
}

/** Escape characters with meaning in an RFC 4514 DN string. */
function cn(value: string): string {
  return `CN=${value.replace(/[\\,+"<>;=#]/g, (c) => `\\${c}`)}`;
}

/** A self-signed CA certificate allowed to sign leaf certificates only. */
export async function createCa(opts: { commonName: string; days: number; notBefore?: Date }): Promise<PemPair> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: cn(opts.commonName),
    keys,
    signingAlgorithm: SIGN_ALG,
    ...validity(opts.days, opts.notBefore),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(keys.privateKey) };
}

export interface IssueOptions {
  ca: PemPair;
  role: IdentityRole;
  /** connector: the services it may publish; agent: the services it may reach (`*` = all). */
  services?: string[];
  /** server: DNS names for the SAN. */
  dnsNames?: string[];
  /** server: IP addresses for the SAN. */
  ipAddresses?: string[];
  commonName?: string;
  days: number;
  /** Defaults to now (minus a little clock skew); may be in the past for tests. */
  notBefore?: Date;
}

/** The SAN URI naming a peer's role and one service it is allowed. */
export function identityUri(role: IdentityRole, service?: string): string {
  return service === undefined ? `ztna://${role}` : `ztna://${role}/${service}`;
}

function sanNames(opts: IssueOptions): X509.JsonGeneralNames {
  if (opts.role === "server") {
    const dns = opts.dnsNames ?? [];
    const ips = opts.ipAddresses ?? [];
    // IPs are also listed as DNS strings: the TLS stack may match the
    // configured server name as a hostname even when it is an address.
    const dnsAll = [...new Set([...dns, ...ips])];
    return [
      ...dnsAll.map((value) => ({ type: "dns" as const, value })),
      ...ips.map((value) => ({ type: "ip" as const, value })),
      { type: "url" as const, value: identityUri("server") },
    ];
  }
  const services = opts.services ?? [];
  if (services.length === 0) throw new Error(`a ${opts.role} certificate needs at least one service`);
  for (const s of services) {
    if (!(isValidServiceName(s) || (opts.role === "agent" && s === "*"))) {
      throw new Error(`invalid service name ${JSON.stringify(s)} for a ${opts.role} certificate`);
    }
  }
  return services.map((s) => ({ type: "url" as const, value: identityUri(opts.role, s) }));
}

/** Issue a leaf certificate for a server, connector or agent, signed by `ca`. */
export async function issueCertificate(opts: IssueOptions): Promise<PemPair> {
  const caCert = new x509.X509Certificate(opts.ca.certPem);
  const caKey = await importSigningKey(opts.ca.keyPem);
  const keys = await generateKeys();
  const isServer = opts.role === "server";
  const names = sanNames(opts);
  const defaultCn = isServer ? (opts.dnsNames?.[0] ?? opts.ipAddresses?.[0] ?? "ztna-server") : `ztna-${opts.role}`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: cn(opts.commonName ?? defaultCn),
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGN_ALG,
    ...validity(opts.days, opts.notBefore),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        isServer ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(keys.privateKey) };
}

/**
 * Whether a PKCS#8 private key PEM belongs to the certificate. BoringSSL (via
 * the QUIC binding) accepts a mismatched pair silently and only fails during
 * handshakes, so programs should check this at startup. Compares the public
 * parts of the JWK forms; undefined when the key cannot be read (not PKCS#8,
 * or an algorithm other than EC/RSA).
 */
export async function keyMatchesCertificate(certPem: string, keyPem: string): Promise<boolean | undefined> {
  return keyMatches(certPem, keyPem);
}

// ---------------------------------------------------------------------------
// Development certificates in the state directory

export interface DevCertificates {
  caCertPath: string;
  certPath: string;
  keyPath: string;
  /** True when anything was (re)written. */
  created: boolean;
}

const DEV_DAYS = 825; // the longest validity some TLS clients accept for leaves
// The CA outlives its leaves so reissuing a server certificate never breaks
// clients that already trust <stateDir>/ca.pem.
const DEV_CA_DAYS = 3650;
const IP_RE = /^(\d{1,3}(\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$/;

/** Write via a temp file + rename so a crash or a concurrent reader never sees half a PEM. */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode); // mode in writeFile is filtered by umask
  await rename(tmp, path);
}

/** The server certificate is reusable if it matches its key and the CA, is valid for another day, and covers all wanted names. */
async function serverCertUsable(
  certPath: string,
  keyPath: string,
  caPem: string,
  dns: string[],
  ips: string[],
): Promise<boolean> {
  try {
    const certPem = await readFile(certPath, "utf8");
    if ((await keyMatchesCertificate(certPem, await readFile(keyPath, "utf8"))) !== true) return false;
    const cert = new x509.X509Certificate(certPem);
    const ca = new x509.X509Certificate(caPem);
    if (cert.notAfter.getTime() < Date.now() + DAY_MS) return false;
    if (!(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true }))) return false;
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const have = new Set((san?.names.items ?? []).map((n) => `${n.type}:${n.value}`));
    return dns.every((d) => have.has(`dns:${d}`)) && ips.every((ip) => have.has(`ip:${ip}`));
  } catch {
    return false;
  }
}

/**
 * Make sure `<stateDir>` holds a dev CA (ca.pem, ca-key.pem) and a server
 * certificate signed by it (server.pem, server-key.pem). Existing files are
 * reused; the server certificate is reissued from the existing CA when it is
 * missing, expiring, not matching its key or the CA, or lacks a requested name.
 * An expiring CA is replaced. Key files are mode 0600, a new directory 0700.
 * Throws if ca.pem/ca-key.pem exist but are unusable (never clobbers them).
 */
export async function ensureDevCertificates(stateDir: string, hostnames: string[] = []): Promise<DevCertificates> {
  const caCertPath = join(stateDir, "ca.pem");
  const caKeyPath = join(stateDir, "ca-key.pem");
  const certPath = join(stateDir, "server.pem");
  const keyPath = join(stateDir, "server-key.pem");
  await mkdir(stateDir, { recursive: true, mode: 0o700 });

  let created = false;
  let ca: PemPair | undefined;
  if ((await fileExists(caCertPath)) && (await fileExists(caKeyPath))) {
    ca = { certPem: await readFile(caCertPath, "utf8"), keyPem: await readFile(caKeyPath, "utf8") };
    let caCert: X509.X509Certificate;
    try {
      caCert = new x509.X509Certificate(ca.certPem);
    } catch {
      throw new Error(`${caCertPath} is not a PEM certificate; remove it to generate a new dev CA`);
    }
    if ((await keyMatchesCertificate(ca.certPem, ca.keyPem)) !== true) {
      throw new Error(`${caKeyPath} is not the private key of ${caCertPath}; remove both to generate a new dev CA`);
    }
    if (caCert.notAfter.getTime() < Date.now() + DAY_MS) ca = undefined; // expiring: start over
  }
  if (!ca) {
    ca = await createCa({ commonName: `ztna dev CA (${hostname()})`, days: DEV_CA_DAYS });
    await writeAtomic(caKeyPath, ca.keyPem, 0o600);
    await writeAtomic(caCertPath, ca.certPem, 0o644);
    created = true;
  }

  const names = [...new Set(["localhost", "127.0.0.1", "::1", hostname(), ...hostnames].filter((n) => n !== ""))];
  const ips = names.filter((n) => IP_RE.test(n));
  const dns = names.filter((n) => !IP_RE.test(n));
  const usable = !created && (await serverCertUsable(certPath, keyPath, ca.certPem, dns, ips));
  if (!usable) {
    const leaf = await issueCertificate({
      ca,
      role: "server",
      dnsNames: dns,
      ipAddresses: ips,
      commonName: "localhost",
      days: DEV_DAYS,
    });
    await writeAtomic(keyPath, leaf.keyPem, 0o600);
    await writeAtomic(certPath, leaf.certPem, 0o644);
    created = true;
  }
  return { caCertPath, certPath, keyPath, created };
}
