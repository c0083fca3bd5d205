// Certificate expiry, exported by every program for its own certificate and
// the CA certificates it trusts, so one alert covers the whole fleet.
import type { Registry } from "prom-client";
import { type GaugeFamily, gaugeFamily } from "./cells.ts";

export const CERTIFICATE_EXPIRY = "ztna_certificate_expiry_timestamp_seconds";

/** `role` is the program's role for its own certificate, `ca` for a trusted CA certificate. */
export type CertificateLabels = { role: string; subject: string };

export function certificateMetrics(registry: Registry) {
  return {
    certificateExpiry: gaugeFamily<CertificateLabels>(
      registry,
      CERTIFICATE_EXPIRY,
      "When a certificate in use expires (notAfter, Unix seconds): role is the program for its own certificate, ca for a trusted CA",
      ["role", "subject"],
    ),
  };
}

export interface CertificateInUse {
  role: string;
  subject: string;
  notAfter: Date;
}

const published = new WeakMap<GaugeFamily<CertificateLabels>, CertificateLabels[]>();

/** Replaces the exported certificates (at start and on every reload). */
export function publishCertificates(family: GaugeFamily<CertificateLabels>, certs: readonly CertificateInUse[]): void {
  for (const labels of published.get(family) ?? []) family.remove(labels);
  const now: CertificateLabels[] = [];
  for (const c of certs) {
    const labels = { role: c.role, subject: c.subject };
    family.child(labels).set(Math.floor(c.notAfter.getTime() / 1000));
    now.push(labels);
  }
  published.set(family, now);
}

/** The certificates a program uses: its own (the leaf of its chain) and every CA it trusts. */
export function certificatesInUse(
  role: string,
  files: { chain: readonly { subject: string; notAfter: Date }[]; cas: readonly { subject: string; notAfter: Date }[] },
): CertificateInUse[] {
  const own = files.chain[0];
  return [
    ...(own ? [{ role, subject: own.subject, notAfter: own.notAfter }] : []),
    ...files.cas.map((c) => ({ role: "ca", subject: c.subject, notAfter: c.notAfter })),
  ];
}
