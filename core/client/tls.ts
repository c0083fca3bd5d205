/** The client side's QUIC/TLS configuration from the common options. */
import { existsSync } from "node:fs";
import { alpnFor } from "../frame/mod.ts";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import type { Config } from "../quic/native.ts";
import { clientQuicConfig } from "../quic/config.ts";
import { StartupError } from "../startup.ts";
import { describeFinding, loadTlsFiles, type TlsFileSpec, type TlsInspection } from "../tls-files.ts";

export interface ClientTlsChoice {
  ca?: string;
  insecure: boolean;
  cert?: string;
  key?: string;
  stateDir: string;
  idleTimeout: number;
  /** The starting size; with auto the link sets each connection's size after probing the path. */
  maxUdpPayload?: number | "auto";
}

export interface ClientTls {
  quicConfig: Config;
  /** What was loaded and checked: the client's certificate chain and the CA bundle. */
  files: TlsInspection;
  /** The CA file that verifies the server; null with --insecure. */
  caPath: string | null;
}

/** Which files a client uses: `--ca`, else `<stateDir>/ca.pem` (the server's dev CA when both run from one directory). */
export function clientTlsFiles(
  options: Pick<ClientTlsChoice, "ca" | "insecure" | "cert" | "key" | "stateDir">,
): TlsFileSpec {
  const spec: TlsFileSpec = {};
  if (options.cert && options.key) {
    spec.cert = { path: options.cert, flag: "--cert" };
    spec.key = { path: options.key, flag: "--key" };
  }
  if (!options.insecure) {
    if (options.ca !== undefined) {
      spec.ca = { path: options.ca, flag: "--ca" };
    } else {
      const path = join(options.stateDir, "ca.pem");
      if (!existsSync(path)) {
        throw new StartupError(
          `--ca: no CA file to verify the server (${path}, the default, does not exist); pass --ca FILE, or --insecure for development`,
        );
      }
      spec.ca = { path, flag: "--ca (default <state-dir>/ca.pem)" };
    }
  }
  return spec;
}

/**
 * Loads and checks the client's TLS files (failing with one line naming the
 * file), warns about certificates close to expiry, and builds the QUIC
 * configuration. Skipping verification needs an explicit `--insecure`, which
 * `announceTrust` logs as a warning.
 */
export function clientTls(options: ClientTlsChoice, log: Logger): ClientTls {
  const spec = clientTlsFiles(options);
  const files = loadTlsFiles(spec);
  for (const finding of files.findings) {
    log.warn("certificate_warning", { error: describeFinding(finding), hint: finding.fix });
  }
  const quicConfig = clientQuicConfig({
    // The link offers the versions it speaks (see link.ts); every one by default.
    alpn: alpnFor(),
    caPem: files.caPem ?? null,
    insecure: options.insecure,
    certPem: files.certPem,
    keyPem: files.keyPem,
    idleTimeoutMs: options.idleTimeout,
    maxUdpPayload: typeof options.maxUdpPayload === "number" ? options.maxUdpPayload : undefined,
  });
  return { quicConfig, files, caPath: spec.ca?.path ?? null };
}

/** Says how the server is verified: once the program has started (a failed start logs only its error). */
export function announceTrust(tls: ClientTls, log: Logger): void {
  if (tls.caPath === null) {
    log.warn("insecure", { detail: "server certificate NOT verified (--insecure); do not use in production" });
  } else {
    log.info("verifying_server", { ca: tls.caPath });
  }
}
