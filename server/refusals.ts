/**
 * Handshakes that did not complete, seen from the server: which TLS alert
 * ended them and who sent it, as a metric label and a log line an operator
 * can act on (a refused client otherwise only shows as a dropped packet).
 */
import { alertName } from "../core/tls-alerts.ts";
import type { CloseInfo } from "../core/quic/endpoint.ts";
import { HANDSHAKE_FAILURE_REASONS, type HandshakeFailureReason } from "./metrics.ts";

export interface HandshakeFailure {
  reason: HandshakeFailureReason;
  /** The TLS alert by name, when one ended it. */
  alert: string | null;
  /** `server`: we refused the client; `client`: it refused us (or our certificate). */
  by: "server" | "client" | null;
}

const NAMED = new Set<string>(HANDSHAKE_FAILURE_REASONS);

export function classifyHandshakeFailure(info: Pick<CloseInfo, "local" | "peer" | "timedOut">): HandshakeFailure {
  for (const [by, err] of [["server", info.local], ["client", info.peer]] as const) {
    if (!err || err.isApp) continue;
    const alert = alertName(err.errorCode);
    if (alert === undefined) continue;
    return { reason: NAMED.has(alert) ? (alert as HandshakeFailureReason) : "other", alert, by };
  }
  return { reason: info.timedOut ? "timeout" : "other", alert: null, by: null };
}

/** What to check, for the log line. */
export function refusalHint(f: HandshakeFailure): string {
  switch (f.by === "client" ? `client:${f.reason}` : f.reason) {
    case "certificate_required":
      return "the client sent no certificate: give it --cert/--key issued by this server's --ca";
    case "unknown_ca":
      return "the client's certificate is not signed by this server's --ca";
    case "certificate_expired":
      return "the client's certificate is expired or not yet valid (or a clock is wrong)";
    case "bad_certificate":
      return "the client's certificate was rejected (signature, key usage or chain)";
    case "no_application_protocol":
      return "the client speaks no ztna protocol version this server does (not a ztna client, or too old/new)";
    case "client:unknown_ca":
      return "the client does not trust this server's certificate: its --ca is not the CA that issued --cert";
    case "client:bad_certificate":
      return "the client rejected this server's certificate: it dials a name the certificate does not carry";
    case "client:certificate_expired":
      return "the client says this server's certificate is expired: renew it and send SIGHUP";
    case "timeout":
      return "the client went quiet before the handshake completed";
    default:
      return "compare both sides' certificates and CA files (ztna certs show FILE)";
  }
}
