/**
 * ztna public API: start the three programs from code, and the typed framing
 * layer for tools that speak the protocol.
 *
 * ```ts
 * import { runServer, parseServerOptions } from "ztna/mod.ts";
 * const program = await runServer(parseServerOptions(["--listen", "127.0.0.1:0"], {}));
 * ```
 */

// Programs: parse options like the CLI does, then run.
export { runServer, type ServerProgram } from "./server/main.ts";
export { type ConnectorProgram, runConnector } from "./connector/main.ts";
export { type AgentProgram, runAgent } from "./agent/main.ts";
export { parseServerOptions, type ServerOptions } from "./server/options.ts";
export { type ConnectorOptions, parseConnectorOptions } from "./connector/options.ts";
export { type AgentOptions, parseAgentOptions } from "./agent/options.ts";

// Lower-level building blocks, for embedding.
export { type Server, type ServerSettings, startServer } from "./server/server.ts";
// The server's `GET /status` document (docs/operations.md), for tools that read it.
export type { ConnectorStatus, ServerStatus, ServiceStatus } from "./server/status.ts";
// ...as served, with datagram and byte rates; and the connectors' and agents' own documents.
export type { ServerStatusWithRates, ServiceStatusWithRates, TrafficRates } from "./server/traffic.ts";
export type { AgentStatusDocument, ConnectorStatusDocument } from "./core/client/status.ts";
export { type Connector, type ConnectorSettings, startConnector } from "./connector/connector.ts";
export { type Agent, type AgentSettings, startAgent } from "./agent/agent.ts";

// The wire protocol.
export * from "./core/frame/mod.ts";

// Operations: the checks every program makes of its TLS files at start, and
// `ztna doctor`'s checks as a function (each result with status, cause and fix).
export { inspectTlsFiles, loadTlsFiles, type TlsFinding, type TlsInspection } from "./core/tls-files.ts";
export { type Check as DoctorCheck, type Report as DoctorReport, runDoctor } from "./commands/doctor/checks.ts";
export type { DoctorOptions } from "./commands/doctor/options.ts";

// Certificates and configuration errors.
export { createCa, ensureDevCertificates, issueCertificate, readIdentity } from "./core/certs.ts";
export { ConfigError } from "./core/config.ts";
export { COMMIT, VERSION, versionLine } from "./core/version.ts";
