/**
 * What a client program (connector, agent) does before it starts its links:
 * load and check its TLS files, export their expiry, and make sure every
 * server name resolves, so a mistake stops it at once with one line.
 */
import type { HostPort } from "../config.ts";
import type { Logger } from "../log.ts";
import { certificatesInUse, publishCertificates, type CertificateLabels } from "../metrics/certificates.ts";
import type { GaugeFamily } from "../metrics/cells.ts";
import { resolveFlag } from "../startup.ts";
import { clientTls, type ClientTls, type ClientTlsChoice } from "./tls.ts";

export async function prepareClient(
  role: "connector" | "agent",
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
