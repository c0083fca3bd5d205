/**
 * What a client program (connector, agent) does before it starts its links:
 * load and check its TLS files, export their expiry, and make sure every
 * server name resolves, so a mistake stops it at once with one line.
 */
import type { HostPort } from "../config.ts";
import type { Role } from "../frame/mod.ts";
import type { Logger } from "../log.ts";
import { type CertificateLabels, certificatesInUse, publishCertificates } from "../metrics/certificates.ts";
import type { GaugeFamily } from "../metrics/cells.ts";
import { resolveFlag } from "../startup.ts";
import { type ClientTls, clientTls, type ClientTlsChoice } from "./tls.ts";

export async function prepareClient(
  role: Role,
  options: ClientTlsChoice & { server: HostPort[] },
  certificateExpiry: GaugeFamily<CertificateLabels>,
  log: Logger,
): Promise<ClientTls> {
  const tls = clientTls(options, log);
  publishCertificates(certificateExpiry, certificatesInUse(role, tls.files));
  // Resolved again at every dial (addresses may move); this only catches names that never resolve.
  for (const server of options.server) await resolveFlag("--server", server);
  return tls;
}

/**
 * SIGHUP on a connector or agent: reads and checks the TLS files again. On
 * success logs `tls_reloaded`, exports the new expiry and returns the new
 * configuration for the next connections; on any problem logs
 * `tls_reload_failed` and returns null (the running files stay in force).
 */
export function reloadClientTls(
  role: Role,
  options: ClientTlsChoice,
  certificateExpiry: GaugeFamily<CertificateLabels>,
  log: Logger,
): ClientTls | null {
  try {
    const tls = clientTls(options, log);
    publishCertificates(certificateExpiry, certificatesInUse(role, tls.files));
    log.info("tls_reloaded", {
      cert: options.cert ?? null,
      ca: tls.caPath,
      detail: "used by connections made from now on",
    });
    return tls;
  } catch (error) {
    log.error("tls_reload_failed", { error: (error as Error).message, detail: "keeping the previous certificates" });
    return null;
  }
}
