/** The client side's QUIC/TLS configuration from the common options. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Config } from "../quic/native.ts";
import { clientQuicConfig } from "../quic/config.ts";

export interface ClientTlsChoice {
  ca?: string;
  insecure: boolean;
  cert?: string;
  key?: string;
  stateDir: string;
  idleTimeout: number;
  maxUdpPayload?: number;
}

/**
 * Verifies the server with `--ca`, else with `<stateDir>/ca.pem` (the server's
 * development CA when both run from one directory); skipping verification
 * needs an explicit `--insecure`, which is logged as a warning.
 */
export function clientTls(options: ClientTlsChoice, log: Logger): Config {
  let caPem: Uint8Array | null = null;
  if (options.insecure) {
    log.warn("insecure", { detail: "server certificate NOT verified (--insecure); do not use in production" });
  } else {
    const path = options.ca ?? join(options.stateDir, "ca.pem");
    if (!existsSync(path)) {
      throw new ConfigError("ca", `--ca (ZTNA_CA): no CA file to verify the server (${path} not found); pass --ca FILE or --insecure`);
    }
    caPem = readFileSync(path);
    log.info("verifying_server", { ca: path });
  }
  return clientQuicConfig({
    caPem,
    insecure: options.insecure,
    certPem: options.cert ? readFileSync(options.cert) : undefined,
    keyPem: options.key ? readFileSync(options.key) : undefined,
    idleTimeoutMs: options.idleTimeout,
    maxUdpPayload: options.maxUdpPayload,
  });
}
