/**
 * Reading and checking a program's TLS files: its certificate (chain), its
 * private key and a CA bundle. One module for every program's startup, for
 * SIGHUP reloads and for `ztna doctor`, so they all judge a file alike.
 *
 * The QUIC binding silently accepts a file without certificates, a key of
 * another certificate or an expired certificate, and then fails in every
 * handshake; these checks catch that before a program listens. node:crypto
 * only (Bun and Deno both have it): the issuing library is never loaded here.
 */
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { type IdentityRole, readIdentity } from "./identity.ts";

export const DAY_MS = 86_400_000;
/** Certificates expiring within this many days get a warning. */
export const EXPIRY_WARNING_DAYS = 14;

export type TlsFileKind = "cert" | "key" | "ca";

/** Where a file came from: its path and the flag that named it (for messages). */
export interface TlsFileRef {
  path: string;
  /** e.g. `--cert`; a default location may say `--ca (default <state-dir>/ca.pem)`. */
  flag: string;
}

export interface TlsFileSpec {
  cert?: TlsFileRef;
  key?: TlsFileRef;
  ca?: TlsFileRef;
}

export interface CertSummary {
  /** Subject DN on one line, e.g. `CN=localhost`. */
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  /** From the `ztna://` SAN URIs. */
  role: IdentityRole | undefined;
  services: string[];
  /** SHA-256 of the DER, hex. */
  sha256: string;
  /** The parsed certificate (for signature checks). */
  x509: X509Certificate;
}

export type Severity = "fail" | "warn";

/** One problem with one file, with what to do about it. */
export interface TlsFinding {
  severity: Severity;
  kind: TlsFileKind;
  file: TlsFileRef;
  /** What is wrong, one line, without the file name. */
  problem: string;
  /** What to do about it. */
  fix: string;
}

export interface TlsInspection {
  certPem?: Uint8Array;
  keyPem?: Uint8Array;
  caPem?: Uint8Array;
  /** The certificates of the cert file, leaf first. */
  chain: CertSummary[];
  /** The certificates of the CA bundle. */
  cas: CertSummary[];
  findings: TlsFinding[];
}

/** A startup-fatal problem with a TLS file; the message is one line naming the flag and the file. */
export class TlsFileError extends Error {
  /** What to do about it. */
  readonly hint: string;
  constructor(readonly finding: TlsFinding) {
    super(describeFinding(finding));
    this.name = "TlsFileError";
    this.hint = finding.fix;
  }
}

/** `--key /etc/ztna/key.pem: not a PEM private key (...)`: flag, file and problem on one line. */
export function describeFinding(f: TlsFinding): string {
  return `${f.file.flag} ${f.file.path}: ${f.problem}`;
}

export interface InspectOptions {
  /** Milliseconds since the epoch; defaults to now. */
  now?: number;
  warnWithinDays?: number;
  readFile?: (path: string) => Uint8Array;
}

const defaultRead = (path: string) => new Uint8Array(readFileSync(path));
const decoder = new TextDecoder();
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Reads and checks every named file and reports everything found, worst
 * first within each file. Never throws.
 */
export function inspectTlsFiles(spec: TlsFileSpec, options: InspectOptions = {}): TlsInspection {
  const now = options.now ?? Date.now();
  const warnDays = options.warnWithinDays ?? EXPIRY_WARNING_DAYS;
  const read = options.readFile ?? defaultRead;
  const out: TlsInspection = { chain: [], cas: [], findings: [] };
  const fail = (kind: TlsFileKind, file: TlsFileRef, problem: string, fix: string) =>
    out.findings.push({ severity: "fail", kind, file, problem, fix });
  const warn = (kind: TlsFileKind, file: TlsFileRef, problem: string, fix: string) =>
    out.findings.push({ severity: "warn", kind, file, problem, fix });

  if (spec.cert) {
    const bytes = readOne("cert", spec.cert, read, fail);
    if (bytes) {
      const certs = parseCertificates("cert", spec.cert, bytes, fail);
      if (certs) {
        out.certPem = bytes;
        out.chain = certs;
        certs.forEach((c, i) =>
          checkValidity(
            "cert",
            spec.cert!,
            c,
            i === 0 ? "the certificate" : `chain certificate ${i + 1} (${c.subject})`,
            now,
            warnDays,
            fail,
            warn,
          )
        );
      }
    }
  }
  if (spec.key) {
    const bytes = readOne("key", spec.key, read, fail);
    if (bytes) {
      const key = parseKey(spec.key, bytes, fail);
      if (key) {
        out.keyPem = bytes;
        const leaf = out.chain[0];
        if (leaf && spec.cert && !leaf.x509.checkPrivateKey(key)) {
          fail(
            "key",
            spec.key,
            `not the private key of ${spec.cert.flag} ${spec.cert.path}`,
            "pass the key written together with that certificate (ztna certs issue writes NAME.pem and NAME-key.pem)",
          );
        }
      }
    }
  }
  if (spec.ca) {
    const bytes = readOne("ca", spec.ca, read, fail);
    if (bytes) {
      const certs = parseCertificates("ca", spec.ca, bytes, fail);
      if (certs) {
        out.caPem = bytes;
        out.cas = certs;
        checkCaBundle(spec.ca, certs, now, warnDays, fail, warn);
      }
    }
  }
  return out;
}

/** inspectTlsFiles for startup: throws TlsFileError on the first failure; returns the warnings with the material. */
export function loadTlsFiles(spec: TlsFileSpec, options: InspectOptions = {}): TlsInspection {
  const inspection = inspectTlsFiles(spec, options);
  const fatal = inspection.findings.find((f) => f.severity === "fail");
  if (fatal) throw new TlsFileError(fatal);
  return inspection;
}

type Report = (kind: TlsFileKind, file: TlsFileRef, problem: string, fix: string) => void;

function readOne(
  kind: TlsFileKind,
  file: TlsFileRef,
  read: (p: string) => Uint8Array,
  fail: Report,
): Uint8Array | null {
  let bytes: Uint8Array;
  try {
    bytes = read(file.path);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ENOENT") {
      fail(
        kind,
        file,
        "no such file",
        `check the path${file.path.startsWith("/") ? "" : " (relative to the working directory)"}`,
      );
    } else if (code === "EACCES" || code === "EPERM") {
      fail(kind, file, "permission denied", "make it readable by the user running ztna");
    } else if (code === "EISDIR") {
      fail(kind, file, "is a directory, not a file", "name the PEM file itself");
    } else {
      fail(kind, file, `cannot read: ${oneLine((error as Error).message)}`, "check the file");
    }
    return null;
  }
  if (bytes.length === 0) {
    fail(kind, file, "the file is empty", kind === "key" ? "pass the PEM private key" : "pass a PEM certificate file");
    return null;
  }
  return bytes;
}

function parseCertificates(kind: TlsFileKind, file: TlsFileRef, bytes: Uint8Array, fail: Report): CertSummary[] | null {
  const text = decoder.decode(bytes);
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    const hint = text.includes("PRIVATE KEY-----") ? " (it holds a private key: swapped --cert and --key?)" : "";
    fail(
      kind,
      file,
      `no PEM certificate (-----BEGIN CERTIFICATE-----)${hint}`,
      "pass a PEM certificate file; `ztna certs show FILE` tells what a file holds",
    );
    return null;
  }
  const out: CertSummary[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      out.push(summarise(new X509Certificate(block)));
    } catch (error) {
      fail(
        kind,
        file,
        `certificate ${i + 1} does not parse (${oneLine((error as Error).message)})`,
        "the PEM is damaged: copy the file again",
      );
      return null;
    }
  }
  return out;
}

function parseKey(file: TlsFileRef, bytes: Uint8Array, fail: Report): ReturnType<typeof createPrivateKey> | null {
  const text = decoder.decode(bytes);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    const hint = text.includes("-----BEGIN CERTIFICATE-----")
      ? " (it holds a certificate: swapped --cert and --key?)"
      : "";
    fail(
      "key",
      file,
      `not a PEM private key (-----BEGIN PRIVATE KEY-----)${hint}`,
      "pass the key file written with the certificate",
    );
    return null;
  }
  if (text.includes("ENCRYPTED")) {
    fail(
      "key",
      file,
      "the private key is encrypted",
      "ztna needs an unencrypted key (mode 0600), e.g. openssl pkey -in KEY -out KEY.plain",
    );
    return null;
  }
  try {
    return createPrivateKey(text);
  } catch (error) {
    fail(
      "key",
      file,
      `the private key does not parse (${oneLine((error as Error).message)})`,
      "the PEM is damaged: copy the key again",
    );
    return null;
  }
}

function checkValidity(
  kind: TlsFileKind,
  file: TlsFileRef,
  cert: CertSummary,
  what: string,
  now: number,
  warnDays: number,
  fail: Report,
  warn: Report,
): void {
  const problem = validityProblem(cert, what, now, warnDays);
  if (problem) (problem.severity === "fail" ? fail : warn)(kind, file, problem.problem, problem.fix);
}

/** Expired, not yet valid, or expiring within `warnDays`: what and what to do; null when fine. */
export function validityProblem(
  cert: Pick<CertSummary, "notBefore" | "notAfter" | "isCa">,
  what: string,
  now: number,
  warnDays = EXPIRY_WARNING_DAYS,
): { severity: Severity; problem: string; fix: string } | null {
  const renew = cert.isCa
    ? "create a new CA and re-issue what it signed (docs/certificates.md, rotating the CA)"
    : "issue a new one (ztna certs issue ... --force) and reload or restart (docs/certificates.md)";
  if (cert.notAfter.getTime() <= now) {
    return {
      severity: "fail",
      problem: `${what} expired on ${day(cert.notAfter)} (${ago(now - cert.notAfter.getTime())} ago)`,
      fix: renew,
    };
  }
  if (cert.notBefore.getTime() > now) {
    return {
      severity: "fail",
      problem: `${what} is not valid before ${cert.notBefore.toISOString()} (${
        ago(cert.notBefore.getTime() - now)
      } from now)`,
      fix: `check this host's clock (it says ${new Date(now).toISOString()}) or re-issue without --not-before`,
    };
  }
  const left = cert.notAfter.getTime() - now;
  if (left < warnDays * DAY_MS) {
    return {
      severity: "warn",
      problem: `${what} expires on ${day(cert.notAfter)} (in ${ago(left)})`,
      fix: `rotate it before then: ${renew}`,
    };
  }
  return null;
}

function checkCaBundle(
  file: TlsFileRef,
  cas: CertSummary[],
  now: number,
  warnDays: number,
  fail: Report,
  warn: Report,
): void {
  const label = (c: CertSummary) => (cas.length === 1 ? "the CA certificate" : `CA ${c.subject}`);
  const problems = cas.map((c) => validityProblem(c, label(c), now, warnDays));
  const usable = problems.filter((p) => p === null || p.severity === "warn").length;
  for (const p of problems) {
    if (p === null) continue;
    // In a bundle (CA rotation) a dead CA beside a live one only needs tidying up.
    if (p.severity === "fail" && usable > 0) warn("ca", file, p.problem, "remove it from the bundle");
    else (p.severity === "fail" ? fail : warn)("ca", file, p.problem, p.fix);
  }
}

export function summarise(cert: X509Certificate): CertSummary {
  const identity = readIdentity(new Uint8Array(cert.raw));
  return {
    subject: dn(cert.subject),
    issuer: dn(cert.issuer),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    isCa: cert.ca,
    role: identity.role,
    services: identity.services,
    sha256: createHash("sha256").update(cert.raw).digest("hex"),
    x509: cert,
  };
}

/** Whether `leaf` was signed by one of `cas` (signature and issuer name). */
export function issuedByOneOf(leaf: CertSummary, cas: CertSummary[]): CertSummary | undefined {
  return cas.find((ca) => {
    try {
      return leaf.x509.checkIssued(ca.x509) && leaf.x509.verify(ca.x509.publicKey);
    } catch {
      return false;
    }
  });
}

/** node renders a multi-part DN one part per line; labels and logs want one line. */
function dn(text: string): string {
  return text.split("\n").filter((s) => s !== "").join(", ");
}

function day(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function ago(ms: number): string {
  const days = Math.floor(ms / DAY_MS);
  if (days >= 2) return `${days} days`;
  const hours = Math.floor(ms / 3_600_000);
  if (hours >= 2) return `${hours} hours`;
  return `${Math.max(1, Math.round(ms / 60_000))} minutes`;
}

function oneLine(text: string): string {
  return text.split("\n")[0]!.trim();
}
