/**
 * Why a QUIC handshake was refused, in words: a refused TLS handshake closes
 * the connection with transport error 0x100 + the TLS alert (RFC 9001 §4.8).
 * Who sent the alert matters: the server refusing our certificate asks for a
 * different fix than us refusing the server's.
 */
import type { CloseInfo } from "./quic/endpoint.ts";

/** TLS alerts (RFC 8446 §6) that a ztna handshake can end with. */
export const TLS_ALERTS: Record<number, string> = {
  0: "close_notify",
  10: "unexpected_message",
  40: "handshake_failure",
  42: "bad_certificate",
  43: "unsupported_certificate",
  44: "certificate_revoked",
  45: "certificate_expired",
  46: "certificate_unknown",
  47: "illegal_parameter",
  48: "unknown_ca",
  49: "access_denied",
  50: "decode_error",
  51: "decrypt_error",
  70: "protocol_version",
  71: "insufficient_security",
  80: "internal_error",
  109: "missing_extension",
  110: "unsupported_extension",
  112: "unrecognized_name",
  116: "certificate_required",
  120: "no_application_protocol",
};

export const CRYPTO_ERROR_BASE = 0x100;

/** The TLS alert name of a QUIC transport error code, or undefined when it is no crypto error. */
export function alertName(errorCode: number): string | undefined {
  if (errorCode < CRYPTO_ERROR_BASE || errorCode > 0x1ff) return undefined;
  return TLS_ALERTS[errorCode - CRYPTO_ERROR_BASE] ?? `alert_${errorCode - CRYPTO_ERROR_BASE}`;
}

export interface Refusal {
  /** `server` refused us, or `client` (we) refused the server's certificate. */
  by: "server" | "client";
  alert: string;
  /** The QUIC error code, e.g. 0x130. */
  code: number;
  /** What it means, one line. */
  cause: string;
  /** What to do. */
  fix: string;
}

const SERVER_SAYS: Record<string, [string, string]> = {
  certificate_required: [
    "the server requires a client certificate (it runs with --ca) and none was sent",
    "pass --cert and --key issued by the server's CA (ztna certs issue --role agent|connector ...)",
  ],
  unknown_ca: [
    "the server does not trust the CA that issued the client certificate",
    "use a certificate issued by the CA in the server's --ca file, or add this CA to that file and send the server SIGHUP",
  ],
  certificate_expired: [
    "the server says the client certificate is expired or not yet valid",
    "issue a new certificate (ztna certs issue ... --force); if it is new, check the clocks of this host and the server",
  ],
  bad_certificate: [
    "the server rejected the client certificate (bad signature, key usage or chain)",
    "issue it with ztna certs issue --role agent|connector from the server's CA, and pass its matching key",
  ],
  unsupported_certificate: [
    "the server cannot use this kind of certificate",
    "issue an ECDSA P-256 certificate with ztna certs issue",
  ],
  no_application_protocol: [
    "the server does not speak this client's protocol (ALPN)",
    "check that HOST:PORT is a ztna server and that both run compatible versions (ztna version)",
  ],
  handshake_failure: [
    "the server could not agree on TLS parameters with this client",
    "check that HOST:PORT is a ztna server and that both run compatible versions",
  ],
  access_denied: ["the server refused this client", "check the server's --ca and this certificate"],
};

const CLIENT_SAYS: Record<string, [string, string]> = {
  unknown_ca: [
    "the server's certificate is not signed by the CA this client trusts (--ca)",
    "pass --ca with the CA that issued the server certificate (for a development server: its <state-dir>/ca.pem)",
  ],
  certificate_expired: [
    "the server's certificate is expired or not yet valid",
    "renew the server certificate and send the server SIGHUP; if it is new, check the clocks",
  ],
  bad_certificate: [
    "the server's certificate does not match the name this client dials, or is malformed",
    "dial a name the certificate carries (ztna certs show on the server's certificate lists its SANs), or set --server-name",
  ],
  certificate_unknown: [
    "the server's certificate could not be verified",
    "pass --ca with the CA that issued the server certificate, and check --server-name",
  ],
  unsupported_certificate: [
    "the server's certificate cannot be used for a server",
    "issue it with ztna certs issue --role server",
  ],
  no_application_protocol: [
    "the server offered no protocol this client speaks (ALPN)",
    "check that HOST:PORT is a ztna server and that both run compatible versions",
  ],
};

/**
 * The handshake refusal in a close, if the close was one: from the peer's
 * error (the server refused us) or our own (we refused the server).
 */
export function explainRefusal(info: Pick<CloseInfo, "local" | "peer">): Refusal | undefined {
  for (
    const [by, err, table] of [
      ["server", info.peer, SERVER_SAYS],
      ["client", info.local, CLIENT_SAYS],
    ] as const
  ) {
    if (!err || err.isApp) continue;
    const alert = alertName(err.errorCode);
    if (alert === undefined) continue;
    const [cause, fix] = table[alert] ?? [
      by === "server"
        ? `the server ended the handshake with TLS alert ${alert}`
        : `this client refused the server with TLS alert ${alert}`,
      "compare both sides' certificates and CA files (ztna certs show FILE)",
    ];
    return { by, alert, code: err.errorCode, cause, fix };
  }
  return undefined;
}

/** `0x130` */
export function hex(code: number): string {
  return `0x${code.toString(16)}`;
}
