/**
 * Reading certificates on the serving path: who a peer is (its `ztna://` SAN
 * URIs), whether a key belongs to a certificate, how many certificates a PEM
 * file holds. Uses node:crypto's X509Certificate (Bun and Deno both have it),
 * so a running server does not load the certificate-issuing library.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Role } from "./frame/mod.ts";

export type IdentityRole = "server" | Role;

export interface Identity {
  role: IdentityRole | undefined;
  services: string[];
}

const IDENTITY_URI_RE = /^ztna:\/\/(server|connector|agent)(?:\/(.*))?$/;

/**
 * Role and services named by the `ztna://` SAN URIs of a DER certificate.
 * Never throws: unparsable input yields no role and no services. If URIs name
 * several roles, the first role wins and only its services count.
 */
export function readIdentity(certDer: Uint8Array): Identity {
  let role: IdentityRole | undefined;
  const services: string[] = [];
  let names: string[];
  try {
    names = splitAltNames(new X509Certificate(certDer).subjectAltName ?? "");
  } catch {
    return { role: undefined, services: [] };
  }
  for (const name of names) {
    if (!name.startsWith("URI:")) continue;
    const m = IDENTITY_URI_RE.exec(name.slice(4));
    if (!m) continue;
    const r = m[1] as IdentityRole;
    role ??= r;
    if (r === role && m[2] !== undefined && m[2] !== "" && !services.includes(m[2])) services.push(m[2]);
  }
  return { role, services };
}

/**
 * Splits node's "DNS:a, URI:b" rendering. Values holding a comma or a quote
 * are rendered as JSON strings; those are kept whole and unquoted.
 */
function splitAltNames(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(":", i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      // A JSON string: find its closing quote, honouring escapes.
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1));
      } catch {
        value = "";
      }
      end = j + 1;
    } else {
      end = text.indexOf(", ", colon);
      if (end < 0) end = text.length;
      value = text.slice(colon + 1, end);
    }
    out.push(`${type}:${value}`);
    i = text.startsWith(", ", end) ? end + 2 : end;
  }
  return out;
}

/** Whether a private key PEM belongs to the certificate; undefined when the key cannot be read. */
export function keyMatches(certPem: string, keyPem: string): boolean | undefined {
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return undefined;
  }
  try {
    return new X509Certificate(certPem).checkPrivateKey(key);
  } catch {
    return false;
  }
}
