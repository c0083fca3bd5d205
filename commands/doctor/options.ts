// Options of `ztna doctor`: the client's own trust options (so the same flags,
// ZTNA_* variables or --config file a connector or agent runs with can be
// given as they are), plus what to check.
import {
  boolean,
  defineSpec,
  duration,
  forbidBoth,
  load,
  oneOf,
  opt,
  requireBothOrNeither,
  serviceName,
  string,
} from "../../core/config.ts";
import type { HostPort, ReadFile } from "../../core/config.ts";
import { type Role, ROLES } from "../../core/frame/mod.ts";
import { MINUTE, serverOptions, serverPacketOption, trustOptions } from "../../core/client/options.ts";

export interface DoctorOptions {
  server: HostPort[];
  ca?: string;
  insecure: boolean;
  cert?: string;
  key?: string;
  serverName?: string;
  /** HELLO as this role; default: the certificate's, else agent. */
  role?: Role;
  service?: string;
  probe?: "udp" | "tcp";
  probeData: string;
  /** Milliseconds per network step. */
  timeout: number;
  maxUdpPayload: number;
  stateDir: string;
  json: boolean;
  config?: string;
}

export function doctorSpec() {
  return defineSpec({
    program: "ztna doctor",
    summary:
      "Diagnoses why a connector or agent cannot reach a server or a service: files, name, UDP and QUIC handshake, " +
      "authorisation, the service, a round trip through it, path MTU and clock. Exit 0 when nothing failed, 1 otherwise. " +
      "--config may name the connector's or agent's own config file (keys the doctor does not use are ignored).",
    foreignConfig: true,
    options: {
      ...serverOptions(),
      ...trustOptions(),
      role: opt(oneOf(ROLES), { help: "Say HELLO as this role (default: the certificate's role, else agent)" }),
      service: opt(serviceName(), {
        help: "Check this service: may this identity open/register it, and does it have connectors",
      }),
      probe: opt(oneOf(["udp", "tcp"] as const), {
        help: "With --service: a round trip through it, a UDP datagram or a TCP connect (needs an agent identity)",
      }),
      probeData: opt(string("TEXT"), {
        help: "Payload of the UDP probe (a service may answer only what it understands)",
        default: "ztna doctor probe",
      }),
      timeout: opt(duration({ min: 100, max: MINUTE }), { help: "Deadline of each network step", default: "5s" }),
      ...serverPacketOption("Largest UDP payload of a QUIC packet the path check tries"),
      stateDir: opt(string("DIR"), { help: "Where to look for ca.pem when --ca is not given", default: ".ztna" }),
      json: opt(boolean(), { help: "Print one JSON document instead of lines" }),
    },
    finish: (v): DoctorOptions => {
      forbidBoth(v, "ca", "insecure");
      requireBothOrNeither(v, "cert", "key");
      return v;
    },
  });
}

export function parseDoctorOptions(
  argv: string[],
  env: Record<string, string | undefined>,
  readFile?: ReadFile,
): DoctorOptions {
  return load(doctorSpec(), argv, env, readFile);
}
