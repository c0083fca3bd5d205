/**
 * `ztna certs`: a small private PKI for a ztna deployment.
 *
 *   ztna certs init  --out DIR [--days N] [--name CN] [--force]
 *   ztna certs issue --role connector|agent|server ... --ca-dir DIR --out DIR
 *   ztna certs show  FILE
 *
 * The certificates carry each peer's role and services as SAN URIs
 * (ztna://connector/<service>, ztna://agent/<service>); docs/certificates.md
 * describes the scheme. All crypto is in core/certs.ts.
 */
import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  createCa,
  type IdentityRole,
  issueCertificate,
  keyMatchesCertificate,
  type PemPair,
  readIdentity,
  x509,
} from "../core/certs.ts";
import { isValidServiceName } from "../core/config.ts";
import { fileExists } from "../core/runtime/fs.ts";
import { EXPIRY_WARNING_DAYS } from "../core/tls-files.ts";

const USAGE = `usage: ztna certs <command> [flags]

commands:
  init   create a CA: DIR/ca.pem and DIR/ca-key.pem
         --out DIR [--days N (3650)] [--name CN ("ztna CA")] [--force]
  issue  issue a certificate signed by that CA: OUT/<name>.pem and OUT/<name>-key.pem
         --role connector|agent|server --ca-dir DIR --out OUT
         --service NAME   connector/agent: a service it may publish/open; repeatable; '*' = all (agent only)
         --dns NAME, --ip ADDR   server: names clients dial; repeatable
         [--days N (365)] [--name BASENAME (<role>-<service>, or server)]
         [--not-before ISO-DATE (backdate, e.g. to test expiry)] [--force]
  show   print role, services, subject, validity and SANs of a certificate
         FILE

Private keys are written with mode 0600; existing files are never
overwritten without --force.`;

const DAY_MS = 86_400_000;
const ROLES = ["connector", "agent", "server"] as const;
// RFC 1123 host names; trailing dot allowed.
const DNS_RE =
  /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const OID_NAMES: Record<string, string> = { "1.3.6.1.5.5.7.3.1": "serverAuth", "1.3.6.1.5.5.7.3.2": "clientAuth" };

/** Bad usage: exit status 2. Any other Error: exit status 1. */
class UsageError extends Error {}

export interface CertsIo {
  out(line: string): void;
  err(line: string): void;
}

const consoleIo: CertsIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** `ztna certs` as a function: the exit status, with output through `io` (for tests). */
export async function run(argv: string[], io: CertsIo = consoleIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined) throw new UsageError("missing command (init, issue or show)");
    if (
      command === "--help" || command === "-h" || command === "help" || rest.includes("--help") || rest.includes("-h")
    ) {
      io.out(USAGE);
      return 0;
    }
    switch (command) {
      case "init":
        await init(rest, io);
        return 0;
      case "issue":
        await issue(rest, io);
        return 0;
      case "show":
        await show(rest, io);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}" (init, issue or show)`);
    }
  } catch (error) {
    const usage = error instanceof UsageError;
    io.err(`ztna certs: ${(error as Error).message}${usage ? " (see ztna certs --help)" : ""}`);
    return usage ? 2 : 1;
  }
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const code = await run(argv);
  if (code !== 0) process.exit(code);
}

// ---------------------------------------------------------------------------
// Argument parsing

type Spec = Record<string, { type: "string" | "boolean"; multiple?: boolean }>;

function parse<S extends Spec>(argv: string[], options: S, positionals = false) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: positionals });
  } catch (error) {
    // node:util messages are fine but can run over several lines; keep the first.
    throw new UsageError((error as Error).message.split("\n")[0]!);
  }
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === "") throw new UsageError(`${flag} is required`);
  return value;
}

function days(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n > 36_500) {
    throw new UsageError(`--days: expected a whole number of days from 1 to 36500, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function date(raw: string | undefined): Date | undefined {
  if (raw === undefined) return undefined;
  const d = new Date(raw);
  if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(d.getTime())) {
    throw new UsageError(
      `--not-before: expected an ISO date like 2024-01-31 or 2024-01-31T12:00:00Z, got ${JSON.stringify(raw)}`,
    );
  }
  return d;
}

// ---------------------------------------------------------------------------
// Files

async function refuseOverwrite(paths: string[], force: boolean): Promise<void> {
  if (force) return;
  for (const p of paths) {
    if (await fileExists(p)) throw new Error(`${p} already exists; pass --force to replace it`);
  }
}

/** Temp file + rename: a reader never sees half a PEM; chmod because umask filters `mode`. */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

async function writePair(dir: string, certPath: string, keyPath: string, pair: PemPair): Promise<void> {
  // A new directory holds private keys: owner only.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomic(keyPath, pair.keyPem, 0o600);
  await writeAtomic(certPath, pair.certPem, 0o644);
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${what} ${path}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`);
  }
}

// ---------------------------------------------------------------------------
// init

async function init(argv: string[], io: CertsIo): Promise<void> {
  const { values } = parse(argv, {
    out: { type: "string" },
    days: { type: "string" },
    name: { type: "string" },
    force: { type: "boolean" },
  });
  const out = required(values.out, "--out");
  const validDays = days(values.days, 3650);
  const commonName = values.name ?? "ztna CA";
  const certPath = join(out, "ca.pem");
  const keyPath = join(out, "ca-key.pem");
  await refuseOverwrite([certPath, keyPath], values.force ?? false);
  const ca = await createCa({ commonName, days: validDays });
  await writePair(out, certPath, keyPath, ca);
  const cert = new x509.X509Certificate(ca.certPem);
  io.out(`wrote ${certPath} (CA "${commonName}", valid until ${cert.notAfter.toISOString()})`);
  io.out(`wrote ${keyPath} (mode 0600: keep it off the relay and the clients)`);
}

// ---------------------------------------------------------------------------
// issue

interface IssueRequest {
  role: IdentityRole;
  services: string[];
  dnsNames: string[];
  ipAddresses: string[];
}

/** Checks the role/SAN combination up front so every mistake is one clear line. */
function checkRequest(values: { role?: string; service?: string[]; dns?: string[]; ip?: string[] }): IssueRequest {
  const role = required(values.role, "--role");
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new UsageError(`--role: expected connector, agent or server, got ${JSON.stringify(role)}`);
  }
  const services = [...new Set(values.service ?? [])];
  const dnsNames = [...new Set(values.dns ?? [])];
  const ipAddresses = [...new Set(values.ip ?? [])];
  if (role === "server") {
    if (services.length > 0) throw new UsageError("--service: a server certificate names no services (use --dns/--ip)");
    if (dnsNames.length + ipAddresses.length === 0) {
      throw new UsageError("a server certificate needs at least one --dns NAME or --ip ADDR (the names clients dial)");
    }
    for (const d of dnsNames) if (!DNS_RE.test(d)) throw new UsageError(`--dns: not a host name: ${JSON.stringify(d)}`);
    for (const ip of ipAddresses) {
      if (isIP(ip) === 0) throw new UsageError(`--ip: not an IP address: ${JSON.stringify(ip)}`);
    }
  } else {
    if (dnsNames.length + ipAddresses.length > 0) {
      throw new UsageError(`--dns/--ip: only server certificates carry host names; a ${role} is named by --service`);
    }
    if (services.length === 0) throw new UsageError(`a ${role} certificate needs at least one --service NAME`);
    for (const s of services) {
      if (s === "*") {
        if (role === "connector") {
          throw new UsageError("--service: '*' is for agents only; a connector names each service it publishes");
        }
        continue;
      }
      if (!isValidServiceName(s)) {
        throw new UsageError(
          `--service: invalid service name ${
            JSON.stringify(s)
          } (1-63 chars of A-Z a-z 0-9 . _ -, not starting with . _ -)`,
        );
      }
    }
  }
  return { role: role as IdentityRole, services, dnsNames, ipAddresses };
}

function defaultBasename(req: IssueRequest): string {
  if (req.role === "server") return "server";
  const first = req.services[0]!;
  return `${req.role}-${first === "*" ? "all" : first}`;
}

async function loadCa(caDir: string): Promise<PemPair> {
  const certPath = join(caDir, "ca.pem");
  const keyPath = join(caDir, "ca-key.pem");
  if (!(await fileExists(certPath)) || !(await fileExists(keyPath))) {
    throw new Error(`no CA in ${caDir} (need ca.pem and ca-key.pem); create one with: ztna certs init --out ${caDir}`);
  }
  const ca = { certPem: await readText(certPath, "CA certificate"), keyPem: await readText(keyPath, "CA key") };
  let cert: InstanceType<typeof x509.X509Certificate>;
  try {
    cert = new x509.X509Certificate(ca.certPem);
  } catch {
    throw new Error(`${certPath} is not a PEM certificate`);
  }
  if (!cert.getExtension(x509.BasicConstraintsExtension)?.ca) throw new Error(`${certPath} is not a CA certificate`);
  if ((await keyMatchesCertificate(ca.certPem, ca.keyPem)) !== true) {
    throw new Error(`${keyPath} is not the private key of ${certPath}`);
  }
  if (cert.notAfter.getTime() <= Date.now()) {
    throw new Error(`the CA ${certPath} expired on ${cert.notAfter.toISOString()}`);
  }
  return ca;
}

async function issue(argv: string[], io: CertsIo): Promise<void> {
  const { values } = parse(argv, {
    role: { type: "string" },
    service: { type: "string", multiple: true },
    dns: { type: "string", multiple: true },
    ip: { type: "string", multiple: true },
    "ca-dir": { type: "string" },
    out: { type: "string" },
    days: { type: "string" },
    name: { type: "string" },
    "not-before": { type: "string" },
    force: { type: "boolean" },
  });
  const req = checkRequest(values);
  const caDir = required(values["ca-dir"], "--ca-dir");
  const out = required(values.out, "--out");
  const validDays = days(values.days, 365);
  const notBefore = date(values["not-before"]);
  const base = values.name ?? defaultBasename(req);
  if (base === "" || base.includes("/") || base.includes("\\") || base.startsWith(".")) {
    throw new UsageError(`--name: expected a plain file name, got ${JSON.stringify(base)}`);
  }
  const certPath = join(out, `${base}.pem`);
  const keyPath = join(out, `${base}-key.pem`);
  await refuseOverwrite([certPath, keyPath], values.force ?? false);
  const ca = await loadCa(caDir);
  const leaf = await issueCertificate({
    ca,
    role: req.role,
    services: req.services,
    dnsNames: req.dnsNames,
    ipAddresses: req.ipAddresses,
    // Servers take their first host name as CN (core default); clients their file name, which shows in logs.
    commonName: req.role === "server" ? undefined : base,
    days: validDays,
    notBefore,
  });
  await writePair(out, certPath, keyPath, leaf);
  io.out(`wrote ${certPath}`);
  io.out(`wrote ${keyPath} (mode 0600)`);
  for (const line of describe(leaf.certPem)) io.out(`  ${line}`);
  const caNotAfter = new x509.X509Certificate(ca.certPem).notAfter;
  if (new x509.X509Certificate(leaf.certPem).notAfter > caNotAfter) {
    io.err(`ztna certs: warning: this certificate outlives its CA, which expires ${caNotAfter.toISOString()}`);
  }
}

// ---------------------------------------------------------------------------
// show

function parseCertificate(text: string, raw: Uint8Array<ArrayBuffer>): InstanceType<typeof x509.X509Certificate> {
  // PEM (the first certificate of a bundle) or DER.
  return new x509.X509Certificate(
    text.includes("-----BEGIN CERTIFICATE-----") ? x509.PemConverter.decodeFirst(text) : raw,
  );
}

/** Human-readable facts about a certificate, one per line: `label  value`. */
export function describe(certPem: string): string[] {
  const cert = new x509.X509Certificate(certPem);
  const der = new Uint8Array(cert.rawData);
  const identity = readIdentity(der);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const sans = (san?.names.items ?? []).map((n) => `${n.type === "url" ? "URI" : n.type.toUpperCase()}:${n.value}`);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const usages = (eku?.usages ?? []).map((u) => OID_NAMES[String(u)] ?? String(u));
  const now = Date.now();
  const status = cert.notBefore.getTime() > now
    ? "NOT YET VALID"
    : cert.notAfter.getTime() <= now
    ? "EXPIRED"
    : cert.notAfter.getTime() - now < EXPIRY_WARNING_DAYS * DAY_MS
    ? `valid, ${Math.floor((cert.notAfter.getTime() - now) / DAY_MS)} days left: RENEW SOON`
    : `valid, ${Math.floor((cert.notAfter.getTime() - now) / DAY_MS)} days left`;
  const rows: Array<[string, string]> = [
    [
      "role",
      identity.role ?? (cert.getExtension(x509.BasicConstraintsExtension)?.ca ? "(CA)" : "(none: no ztna:// URI)"),
    ],
    ["services", identity.services.length > 0 ? identity.services.join(", ") : "-"],
    ["subject", cert.subject],
    ["issuer", cert.issuer],
    ["not before", cert.notBefore.toISOString()],
    ["not after", `${cert.notAfter.toISOString()} (${status})`],
    ["SANs", sans.length > 0 ? sans.join(", ") : "-"],
    ["usage", usages.length > 0 ? usages.join(", ") : "-"],
    ["serial", cert.serialNumber],
    ["sha256", createHash("sha256").update(der).digest("hex")],
  ];
  return rows.map(([k, v]) => `${k.padEnd(11)}${v}`);
}

async function show(argv: string[], io: CertsIo): Promise<void> {
  const { positionals } = parse(argv, {}, true);
  if (positionals.length !== 1) throw new UsageError("show takes exactly one FILE");
  const file = positionals[0]!;
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = new Uint8Array(await readFile(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${file}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`);
  }
  let pem: string;
  try {
    pem = parseCertificate(new TextDecoder().decode(raw), raw).toString("pem");
  } catch {
    throw new Error(`${file} is not a certificate (PEM or DER)`);
  }
  io.out(`${"file".padEnd(11)}${file}`);
  for (const line of describe(pem)) io.out(line);
}

if (import.meta.main) await main();
