/**
 * Authorisation from client certificates: the `ztna://<role>/<service>` SAN
 * URIs (core/identity.ts) say which services a peer may publish or reach.
 *
 * The TLS handshake has already checked that the certificate chains to the
 * configured CA and is in date; this only decides what the holder may do.
 */
import type { Role } from "../core/frame/mod.ts";
import { readIdentity } from "../core/identity.ts";

/** Whether the holder of `certDer` may act as `role` for `service`; false without a certificate. */
export type Authorise = (certDer: Uint8Array | null, role: Role, service: string) => boolean;

/** Agents may carry `ztna://agent/*` to reach every service; connectors never get a wildcard. */
const AGENT_WILDCARD = "*";

export function createAuthoriser(): Authorise {
  return (certDer, role, service) => {
    if (certDer === null || certDer.length === 0) return false;
    const identity = readIdentity(certDer);
    // A certificate speaks for one role only: an agent certificate cannot register, nor a connector one open.
    if (identity.role !== role) return false;
    if (role === "agent" && identity.services.includes(AGENT_WILDCARD)) return true;
    return identity.services.includes(service);
  };
}
