/**
 * `ztna doctor`'s checks, in the order a connection is made: files, name,
 * UDP and the QUIC handshake, authorisation, the service, a round trip
 * through it, and the path (MTU, clock). Each check is one result with its
 * status, its time, and on failure the cause and what to do. A check that
 * cannot run because an earlier one failed is skipped and says so.
 */
import { X509Certificate } from "node:crypto";
import { alpnFor } from "../../core/frame/mod.ts";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { HostPort } from "../../core/config.ts";
import { formatAddress } from "../../core/net/address.ts";
import { clientTlsFiles } from "../../core/client/tls.ts";
import {
  CloseCode,
  DATAGRAM_HEADER_LEN,
  MAX_DATAGRAM_LEN,
  MAX_TUNNEL_PAYLOAD,
  type ProbeReply,
  type Role,
  StreamResetCode,
  streamResetName,
} from "../../core/frame/mod.ts";
import { clientQuicConfig } from "../../core/quic/config.ts";
import type { Config } from "../../core/quic/native.ts";
import { explainRefusal, hex } from "../../core/tls-alerts.ts";
import {
  type CertSummary,
  DAY_MS,
  describeFinding,
  inspectTlsFiles,
  summarise,
  type TlsFileSpec,
  type TlsInspection,
  validityProblem,
} from "../../core/tls-files.ts";
import type { DoctorOptions } from "./options.ts";
import { dial, type DialFailure, type DoctorSession, nackOf, probeReplyOf } from "./session.ts";

export type Status = "pass" | "warn" | "fail" | "skip";
export type CheckId = "files" | "dns" | "handshake" | "authorisation" | "service" | "probe" | "path";

export interface Check {
  id: CheckId;
  /** The server this check is about (all but `files`). */
  server?: string;
  status: Status;
  /** How long the check took, null when skipped. */
  ms: number | null;
  /** One line: what was found. */
  summary: string;
  /** On failure or warning: why, and what to do. */
  cause?: string;
  fix?: string;
  /** Facts for machines (--json). */
  data?: Record<string, unknown>;
}

export interface Report {
  ok: boolean;
  role: Role;
  checks: Check[];
}

/** Clock differences beyond this are worth a warning (certificates are backdated 5 minutes at issue). */
const CLOCK_SKEW_WARN_MS = 30_000;

/** Runs every check; `onCheck` sees each result as soon as it is known. */
export async function runDoctor(options: DoctorOptions, onCheck: (c: Check) => void = () => {}): Promise<Report> {
  const checks: Check[] = [];
  const emit = (c: Check) => {
    checks.push(c);
    onCheck(c);
  };
  const files = checkFiles(options);
  emit(files.check);
  const role = options.role ?? (files.leaf?.role === "connector" ? "connector" : "agent");
  for (const server of options.server) {
    for (const c of await checkServer(options, server, role, files)) emit(c);
  }
  return { ok: !checks.some((c) => c.status === "fail"), role, checks };
}

// ---------------------------------------------------------------------------
// 1. files

interface FilesResult {
  check: Check;
  /** The QUIC configuration, when the files allow a handshake at all. */
  config: Config | null;
  leaf?: CertSummary;
}

function checkFiles(options: DoctorOptions): FilesResult {
  const t0 = performance.now();
  const took = () => elapsed(t0);
  let spec: TlsFileSpec;
  try {
    spec = clientTlsFiles(options);
  } catch (error) {
    return {
      config: null,
      check: {
        id: "files",
        status: "fail",
        ms: took(),
        summary: "no CA to verify the server with",
        cause: (error as Error).message,
        fix: "pass --ca FILE: the CA certificate that issued the server's certificate",
      },
    };
  }
  const tls = inspectTlsFiles(spec);
  const leaf = tls.chain[0];
  const fails = tls.findings.filter((f) => f.severity === "fail");
  const warns = tls.findings.filter((f) => f.severity === "warn");
  const notes: string[] = [];
  const facts = describeFiles(tls, spec);

  // Role and services: what the server will read from the certificate.
  let identityProblem: { status: Status; cause: string; fix: string } | null = null;
  if (leaf) {
    if (leaf.role === "server") {
      identityProblem = {
        status: "fail",
        cause: "--cert is a server certificate (ztna://server): a connector or agent needs its own",
        fix: "issue one with ztna certs issue --role agent|connector --service NAME",
      };
    } else if (leaf.role === undefined) {
      identityProblem = {
        status: "warn",
        cause: "--cert names no ztna:// role: a server with --ca refuses every REGISTER and OPEN from it",
        fix: "issue it with ztna certs issue --role agent|connector --service NAME",
      };
    } else if (options.service && !names(leaf, options.role ?? leaf.role, options.service)) {
      identityProblem = {
        status: "warn",
        cause: `--cert does not name ztna://${options.role ?? leaf.role}/${options.service} (it names ${
          identityList(leaf)
        }): a server with --ca refuses it`,
        fix: `issue a certificate with --role ${options.role ?? leaf.role} --service ${options.service}`,
      };
    }
  }
  if (options.insecure) notes.push("--insecure: the server's certificate is not verified");

  const usable = (spec.ca === undefined || tls.caPem !== undefined) &&
    (spec.cert === undefined ||
      (tls.certPem !== undefined && tls.keyPem !== undefined && !fails.some((f) => f.kind === "key")));
  const config = usable
    ? clientQuicConfig({
      alpn: alpnFor(),
      caPem: tls.caPem ?? null,
      insecure: options.insecure,
      certPem: tls.certPem,
      keyPem: tls.keyPem,
      // Generous: a check may wait its whole --timeout in silence (keepalives run meanwhile).
      idleTimeoutMs: 30_000,
      maxUdpPayload: options.maxUdpPayload,
    })
    : null;

  const data = { cert: facts.cert, ca: facts.ca, role: leaf?.role ?? null, services: leaf?.services ?? [] };
  if (fails.length > 0) {
    return {
      config,
      leaf,
      check: {
        id: "files",
        status: "fail",
        ms: took(),
        summary: describeFinding(fails[0]!),
        cause: fails.slice(1).concat(warns).map(describeFinding).join("; ") || undefined,
        fix: fails[0]!.fix,
        data,
      },
    };
  }
  const status: Status = identityProblem?.status ?? (warns.length > 0 || notes.length > 0 ? "warn" : "pass");
  return {
    config,
    leaf,
    check: {
      id: "files",
      status,
      ms: took(),
      summary: facts.line,
      cause: [identityProblem?.cause, ...warns.map(describeFinding), ...notes].filter(Boolean).join("; ") || undefined,
      fix: identityProblem?.fix ?? warns[0]?.fix,
      data,
    },
  };
}

function names(cert: CertSummary, role: string, service: string): boolean {
  return cert.role === role && (cert.services.includes(service) || (role === "agent" && cert.services.includes("*")));
}

function identityList(cert: CertSummary): string {
  return cert.services.length === 0
    ? `ztna://${cert.role}`
    : cert.services.map((s) => `ztna://${cert.role}/${s}`).join(", ");
}

function describeFiles(tls: TlsInspection, spec: TlsFileSpec) {
  const leaf = tls.chain[0];
  const parts: string[] = [];
  const cert = leaf
    ? { subject: leaf.subject, role: leaf.role ?? null, services: leaf.services, notAfter: leaf.notAfter.toISOString() }
    : null;
  if (leaf) {
    const who = leaf.role
      ? `${leaf.role}${leaf.services.length ? `: ${leaf.services.join(", ")}` : ""}`
      : "no ztna role";
    parts.push(
      `cert ${leaf.subject} (${who}) valid until ${day(leaf.notAfter)} (${daysLeft(leaf.notAfter)}), key matches`,
    );
  } else if (spec.cert === undefined) {
    parts.push("no client certificate (fine for a server without --ca)");
  }
  const ca = tls.cas.map((c) => ({ subject: c.subject, notAfter: c.notAfter.toISOString() }));
  if (tls.cas.length > 0) parts.push(`CA ${tls.cas.map((c) => `${c.subject} until ${day(c.notAfter)}`).join(", ")}`);
  return { line: parts.join("; "), cert, ca };
}

// ---------------------------------------------------------------------------
// 2-7, per server

async function checkServer(options: DoctorOptions, server: HostPort, role: Role, files: FilesResult): Promise<Check[]> {
  const label = formatAddress(server);
  const out: Check[] = [];
  const add = (c: Omit<Check, "server">) => out.push({ ...c, server: label });
  const skipRest = (from: CheckId, why: string) => {
    const order: CheckId[] = ["dns", "handshake", "authorisation", "service", "probe", "path"];
    for (const id of order.slice(order.indexOf(from))) add({ id, status: "skip", ms: null, summary: why });
  };

  // 2. name resolution
  const dns = await checkDns(server);
  add(dns.check);
  if (dns.address === null) {
    skipRest("handshake", "the server's name does not resolve");
    return out;
  }
  if (files.config === null) {
    skipRest("handshake", "fix the files first");
    return out;
  }

  // 3. UDP and the QUIC handshake
  const target = { host: dns.address, port: server.port };
  const dialed = await dial({
    server: target,
    serverName: options.serverName ?? server.host,
    config: files.config,
    role,
    timeoutMs: options.timeout,
    maxUdpPayload: options.maxUdpPayload,
  });
  if (!dialed.ok) {
    const f = dialed.failure;
    if (f.kind === "closed" && f.established && !explainRefusal(f.info)) {
      // TLS finished, then the server ended it: the handshake is fine, HELLO was not.
      add({ id: "handshake", status: "pass", ms: f.ms, summary: "QUIC handshake completed" });
      add(helloRefused(f.info, f.ms));
      skipRest("service", "HELLO was refused");
      return out;
    }
    add(handshakeFailure(f, label, server.port, options));
    skipRest("authorisation", "no connection");
    return out;
  }
  const session = dialed.session;
  try {
    add(handshakePassed(session));

    // 4. authorisation: HELLO, then PROBE for the service (or none, for the clock)
    const t4 = performance.now();
    const probe = await session.probe(options.service ?? "", options.timeout);
    const reply = probeReplyOf(probe);
    const clock = reply && probe.ok
      ? { server: reply.serverTimeMs, sentAt: probe.sentAt, receivedAt: probe.receivedAt }
      : null;
    const auth = authorisationCheck(
      session,
      role,
      options,
      reply,
      elapsed(t4),
      files.leaf,
      probe.ok ? null : probe.error,
    );
    add(auth);

    // 5. the service
    if (!options.service) add({ id: "service", status: "skip", ms: null, summary: "no --service given" });
    else if (reply === null) {
      add({ id: "service", status: "skip", ms: null, summary: "the server did not answer PROBE" });
    } else if (reply.allowed === false) {
      add({ id: "service", status: "skip", ms: null, summary: `not authorised for ${options.service}` });
    } else add(serviceCheck(options.service, reply, label));

    // 6. a round trip through the service
    add(await probeCheck(session, options, role, reply));

    // 7. path MTU and clock
    add(await pathCheck(session, clock));
  } finally {
    await session.close();
  }
  return out;
}

async function checkDns(server: HostPort): Promise<{ check: Omit<Check, "server">; address: string | null }> {
  const t0 = performance.now();
  if (isIP(server.host)) {
    return {
      address: server.host,
      check: {
        id: "dns",
        status: "pass",
        ms: elapsed(t0),
        summary: `${server.host} is an address, nothing to resolve`,
      },
    };
  }
  try {
    const all = await lookup(server.host, { all: true });
    const v4 = all.filter((a) => a.family === 4);
    const chosen = (v4[0] ?? all[0])!.address;
    return {
      address: chosen,
      check: {
        id: "dns",
        status: "pass",
        ms: elapsed(t0),
        summary: `${server.host} → ${all.map((a) => a.address).join(", ")}${
          all.length > 1 ? ` (using ${chosen})` : ""
        }`,
        data: { addresses: all.map((a) => a.address), using: chosen },
      },
    };
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message;
    return {
      address: null,
      check: {
        id: "dns",
        status: "fail",
        ms: elapsed(t0),
        summary: `${server.host} does not resolve (${code})`,
        cause: "no address for this name from this host's resolver",
        fix: "check the spelling in --server, and DNS on this host (/etc/resolv.conf, /etc/hosts)",
      },
    };
  }
}

function handshakeFailure(f: DialFailure, label: string, port: number, options: DoctorOptions): Omit<Check, "server"> {
  const within = `within ${seconds(options.timeout)}`;
  switch (f.kind) {
    case "unreachable":
      return {
        id: "handshake",
        status: "fail",
        ms: f.ms,
        summary: `UDP ${label} is closed: ICMP port unreachable`,
        cause: `nothing listens on UDP port ${port} there (${f.error})`,
        fix: `start the server, or correct the port in --server (the server's --listen; default 4433)`,
      };
    case "no_answer":
      return {
        id: "handshake",
        status: "fail",
        ms: f.ms,
        summary: `no answer from ${label} over UDP ${within}`,
        cause: "the server is down, or UDP to it is dropped on the way (firewall, security group, NAT)",
        fix:
          `check that the server runs (ztna status on its host), and allow UDP port ${port} inbound to it in every firewall on the way`,
      };
    case "stalled":
      return {
        id: "handshake",
        status: "fail",
        ms: f.ms,
        summary: `the server answered (${f.packetsIn} packets) but the handshake did not finish ${within}`,
        cause: "packets are lost on the way, or large packets are dropped (path MTU)",
        fix: "look for loss on the path; try --max-udp-payload 1200 here and on the programs",
      };
    case "closed": {
      const refusal = explainRefusal(f.info);
      if (refusal) {
        const who = refusal.by === "server" ? "the server refused this client" : "this client refused the server";
        return {
          id: "handshake",
          status: "fail",
          ms: f.ms,
          summary: `${who}: TLS alert ${refusal.alert} (${hex(refusal.code)})`,
          cause: refusal.cause,
          fix: refusal.fix,
          data: { alert: refusal.alert, code: refusal.code, by: refusal.by },
        };
      }
      return {
        id: "handshake",
        status: "fail",
        ms: f.ms,
        summary: f.info.timedOut
          ? `the handshake timed out`
          : `the connection was closed during the handshake${f.info.reason ? `: ${f.info.reason}` : ""}`,
        cause: closeText(f.info),
        fix: "check the server's log for this client's address",
      };
    }
  }
}

function handshakePassed(session: DoctorSession): Omit<Check, "server"> {
  const parts = [`QUIC handshake in ${fmtMs(session.handshakeMs)}`];
  let status: Status = "pass";
  let cause: string | undefined;
  let fix: string | undefined;
  let data: Record<string, unknown> = { handshakeMs: session.handshakeMs };
  if (session.serverCertificate) {
    try {
      const cert = summarise(new X509Certificate(session.serverCertificate));
      parts.push(`server certificate ${cert.subject} valid until ${day(cert.notAfter)} (${daysLeft(cert.notAfter)})`);
      data = { ...data, serverCertificate: { subject: cert.subject, notAfter: cert.notAfter.toISOString() } };
      const problem = validityProblem(cert, "the server's certificate", Date.now());
      if (problem) {
        status = "warn";
        cause = problem.problem;
        fix = "rotate the server's certificate and send the server SIGHUP (docs/certificates.md)";
      }
    } catch {
      // --insecure against a certificate node cannot read: nothing to report.
    }
  }
  return { id: "handshake", status, ms: session.handshakeMs, summary: parts.join("; "), cause, fix, data };
}

function helloRefused(
  info: { reason: string; peer: { isApp: boolean; errorCode: number } | null; timedOut: boolean },
  ms: number,
): Omit<Check, "server"> {
  return {
    id: "authorisation",
    status: "fail",
    ms,
    summary: `the server closed the connection after HELLO: ${info.reason || closeText(info)}`,
    cause: closeText(info),
    fix: "compare versions (ztna version here and on the server); the server's log says why (protocol_error)",
  };
}

function authorisationCheck(
  session: DoctorSession,
  role: Role,
  options: DoctorOptions,
  reply: ProbeReply | null,
  ms: number,
  leaf: CertSummary | undefined,
  probeError: string | null,
): Omit<Check, "server"> {
  const hello = `HELLO accepted as ${role} (seen from ${formatAddress(session.observed)})`;
  const data: Record<string, unknown> = {
    role,
    observed: formatAddress(session.observed),
    server: reply?.software ?? null,
  };
  if (reply === null) {
    const closed = session.closed();
    return {
      id: "authorisation",
      status: options.service ? "warn" : "pass",
      ms: session.welcomeMs,
      summary: options.service
        ? `${hello}; the server did not answer PROBE, so ${options.service} was not checked`
        : hello,
      cause: options.service
        ? (closed ? `the server closed the connection: ${closeText(closed)}` : probeError ?? undefined)
        : undefined,
      fix: options.service ? "the server is older than this doctor: upgrade it, or check its log" : undefined,
      data,
    };
  }
  if (!options.service) {
    return {
      id: "authorisation",
      status: "pass",
      ms: session.welcomeMs,
      summary: `${hello}; server ${reply.software}`,
      data,
    };
  }
  const verb = role === "agent" ? "open" : "register";
  if (reply.allowed) {
    return {
      id: "authorisation",
      status: "pass",
      ms: session.welcomeMs + ms,
      summary: `${hello}; may ${verb} ${options.service}`,
      data: { ...data, allowed: true },
    };
  }
  const has = leaf ? `the certificate names ${identityList(leaf)}` : "no client certificate was sent";
  return {
    id: "authorisation",
    status: "fail",
    ms: session.welcomeMs + ms,
    summary: `${hello}, but it may not ${verb} ${options.service}: not_authorised`,
    cause: `the server authorises from the certificate's ztna:// URIs, and ${has}`,
    fix:
      `issue a certificate naming it: ztna certs issue --role ${role} --service ${options.service} --ca-dir CA --out DIR`,
    data: { ...data, allowed: false },
  };
}

function serviceCheck(service: string, reply: ProbeReply, label: string): Omit<Check, "server"> {
  const data = { connectors: reply.connectors, draining: reply.draining };
  if (reply.connectors > 0) {
    const draining = reply.draining > 0 ? ` (${reply.draining} more draining)` : "";
    return {
      id: "service",
      status: "pass",
      ms: 0,
      summary: `${reply.connectors} connector${reply.connectors === 1 ? "" : "s"} registered for ${service}${draining}`,
      data,
    };
  }
  return {
    id: "service",
    status: "fail",
    ms: 0,
    summary: reply.draining > 0
      ? `${service} has only draining connectors on ${label}`
      : `no connector has registered ${service} on ${label}`,
    cause: reply.draining > 0
      ? "its connectors are shutting down and take no new flows"
      : "agents can open it, but nothing serves it here",
    fix:
      `run a connector for it with this server in its --server (ztna connector --service ${service} --server ${label} ...); if one runs, its log says why (registration_refused, server_lost)`,
    data,
  };
}

async function probeCheck(
  session: DoctorSession,
  options: DoctorOptions,
  role: string,
  reply: ProbeReply | null,
): Promise<Omit<Check, "server">> {
  const skip = (summary: string) => ({ id: "probe" as const, status: "skip" as const, ms: null, summary });
  if (!options.probe) {
    return skip(
      options.service ? "no --probe (add --probe udp|tcp for a round trip through the service)" : "no --service given",
    );
  }
  if (!options.service) return skip("--probe needs --service");
  if (role !== "agent") return skip("a round trip needs an agent identity (this one is a connector)");
  if (reply && (reply.allowed === false || reply.connectors === 0)) {
    return skip(reply.allowed === false ? "not authorised" : "no connector to reach");
  }
  const t0 = performance.now();
  const opened = await session.open(options.service, options.timeout);
  const nack = nackOf(opened);
  if (!opened.ok || nack) {
    return {
      id: "probe",
      status: "fail",
      ms: elapsed(t0),
      summary: nack
        ? `OPEN ${options.service} refused: ${nack.code} (${nack.reason})`
        : `OPEN ${options.service} got no answer: ${opened.ok ? "" : opened.error}`,
      fix: nack?.code === "unknown_service" ? `start a connector for ${options.service}` : "check the server's log",
    };
  }
  const channel = opened.msg.type === "ack" ? opened.msg.channel : 0;
  // The server says at once when the service has no live connector.
  await new Promise((r) => setTimeout(r, 20));
  if (session.serviceStatus.get(options.service) === false) {
    return {
      id: "probe",
      status: "fail",
      ms: elapsed(t0),
      summary: `${options.service} is down: no live connector`,
      fix: "start a connector for it",
    };
  }
  if (options.probe === "udp") {
    const payload = new TextEncoder().encode(options.probeData);
    const rt = await session.udpRoundTrip(channel, payload, options.timeout);
    if (rt) {
      return {
        id: "probe",
        status: "pass",
        ms: elapsed(t0),
        summary: `UDP reply of ${rt.bytes} bytes from ${options.service} in ${fmtMs(rt.ms)}`,
        data: { rttMs: rt.ms, bytes: rt.bytes },
      };
    }
    return {
      id: "probe",
      status: "fail",
      ms: elapsed(t0),
      summary: `no UDP reply from ${options.service} within ${seconds(options.timeout)}`,
      cause: "the datagram went through the relay to a connector, but nothing came back from the service",
      fix:
        `check that the service runs and answers UDP at the connector's --forward address; a service that ignores unknown requests looks silent too (--probe-data sets what is sent)`,
    };
  }
  const tcp = await session.tcpProbe(channel, options.timeout);
  if (tcp.kind === "answered") {
    const what = tcp.bytes > 0 ? `answered ${tcp.bytes} bytes` : "accepted and closed";
    return {
      id: "probe",
      status: "pass",
      ms: elapsed(t0),
      summary: `TCP connect to ${options.service}: the service ${what} in ${fmtMs(tcp.ms)}`,
      data: { ms: tcp.ms, bytes: tcp.bytes },
    };
  }
  if (tcp.kind === "reset") {
    const connect = tcp.code === StreamResetCode.CONNECT_FAILED;
    return {
      id: "probe",
      status: "fail",
      ms: elapsed(t0),
      summary: connect
        ? `TCP connect to ${options.service} failed at the connector`
        : `TCP stream reset: ${streamResetName(tcp.code)}`,
      cause: connect
        ? "the connector could not connect to its --forward address (refused or unreachable)"
        : `the stream was reset with ${streamResetName(tcp.code)}`,
      fix: connect
        ? "check that the service listens on TCP at the connector's --forward address"
        : "check the server's and the connector's logs",
      data: { code: streamResetName(tcp.code) },
    };
  }
  return {
    id: "probe",
    status: "warn",
    ms: elapsed(t0),
    summary: `TCP: neither an answer nor a refusal from ${options.service} within ${seconds(options.timeout)}`,
    cause: "the connect may still be pending, or the service keeps a half-closed connection open without a word",
    fix: "check the service at the connector's --forward address",
  };
}

async function pathCheck(
  session: DoctorSession,
  clock: { server: number; sentAt: number; receivedAt: number } | null,
): Promise<Omit<Check, "server">> {
  const t0 = performance.now();
  const max = session.maxDatagram();
  const sizes = [
    ...new Set([1200, 1232, 1252, 1280, MAX_DATAGRAM_LEN, 1350, 1400, 1452, 1472, 1500, 4000, 8000, 9000, max]),
  ]
    .filter((s) => s >= DATAGRAM_HEADER_LEN && s <= max)
    .sort((a, b) => a - b);
  const waitMs = Math.max(300, 4 * session.rttMs());
  const back = await session.pathProbe(sizes, waitMs);
  const largest = Math.max(0, ...back);
  const parts: string[] = [];
  let status: Status = "pass";
  const causes: string[] = [];
  const fixes: string[] = [];
  if (back.size === 0) {
    status = "warn";
    parts.push("no path probe came back");
    causes.push(
      "the server did not echo channel-0 DATAGRAMs (older than this doctor), or DATAGRAMs are dropped on the way",
    );
    fixes.push("upgrade the server; if it is current, look for loss on the path");
  } else if (largest < Math.min(MAX_DATAGRAM_LEN, max)) {
    status = "warn";
    parts.push(`DATAGRAMs up to ${largest} bytes cross the path (of ${max} tried)`);
    causes.push(
      `tunnelled UDP payloads over ${
        largest - DATAGRAM_HEADER_LEN
      } bytes will be lost: the path MTU is smaller than the QUIC packets`,
    );
    fixes.push("lower --max-udp-payload on every program to what the path carries, or raise the MTU on the way");
  } else {
    parts.push(
      `DATAGRAMs up to ${largest} bytes cross the path (every tunnel payload, up to ${MAX_TUNNEL_PAYLOAD} bytes, fits)`,
    );
  }
  if (max < MAX_DATAGRAM_LEN) {
    status = status === "pass" ? "warn" : status;
    causes.push(
      `this connection allows DATAGRAMs of at most ${max} bytes, so payloads over ${
        max - DATAGRAM_HEADER_LEN
      } bytes cannot be tunnelled`,
    );
    fixes.push("raise --max-udp-payload (here and on the server) to at least 1350");
  }
  let skewMs: number | null = null;
  if (clock) {
    const midpoint = (clock.sentAt + clock.receivedAt) / 2;
    skewMs = Math.round(clock.server - midpoint);
    const margin = Math.ceil((clock.receivedAt - clock.sentAt) / 2);
    if (Math.abs(skewMs) > CLOCK_SKEW_WARN_MS) {
      status = "warn";
      parts.push(`this clock is ${seconds(Math.abs(skewMs))} ${skewMs > 0 ? "behind" : "ahead of"} the server's`);
      causes.push("certificates look expired or not yet valid to one side when clocks differ by minutes");
      fixes.push("run NTP (chrony, systemd-timesyncd) on both hosts");
    } else {
      parts.push(`clock within ${Math.max(Math.abs(skewMs), margin)} ms of the server's`);
    }
  } else {
    parts.push("clock skew unknown (no PROBE answer)");
  }
  return {
    id: "path",
    status,
    ms: elapsed(t0),
    summary: parts.join("; "),
    cause: causes.join("; ") || undefined,
    fix: fixes.join("; ") || undefined,
    data: { largestDatagram: largest, maxDatagram: max, clockSkewMs: skewMs },
  };
}

// ---------------------------------------------------------------------------

function closeText(
  info: { reason: string; peer: { isApp: boolean; errorCode: number } | null; timedOut: boolean },
): string {
  if (info.timedOut) return "idle timeout: the server stopped answering";
  const p = info.peer;
  if (!p) return info.reason || "closed";
  const name = p.isApp ? Object.entries(CloseCode).find(([, v]) => v === p.errorCode)?.[0] : undefined;
  return `${p.isApp ? "application" : "transport"} error ${hex(p.errorCode)}${name ? ` (${name})` : ""}${
    info.reason ? `: ${info.reason}` : ""
  }`;
}

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 10) / 10;
}

function fmtMs(ms: number): string {
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function daysLeft(d: Date): string {
  const days = Math.floor((d.getTime() - Date.now()) / DAY_MS);
  return days < 0 ? "expired" : `${days} day${days === 1 ? "" : "s"} left`;
}
