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
export { runConnector, type ConnectorProgram } from "./connector/main.ts";
export { runAgent, type AgentProgram } from "./agent/main.ts";
export { parseServerOptions, type ServerOptions } from "./server/options.ts";
export { parseConnectorOptions, type ConnectorOptions } from "./connector/options.ts";
export { parseAgentOptions, type AgentOptions } from "./agent/options.ts";

// Lower-level building blocks, for embedding.
export { startServer, type Server, type ServerSettings } from "./server/server.ts";
// The server's `GET /status` document (docs/operations.md), for tools that read it.
export type { ServerStatus, ServiceStatus, ConnectorStatus } from "./server/status.ts";
// ...as served, with datagram and byte rates; and the connectors' and agents' own documents.
export type { ServerStatusWithRates, ServiceStatusWithRates, TrafficRates } from "./server/traffic.ts";
export type { AgentStatusDocument, ConnectorStatusDocument } from "./core/client/status.ts";
export { startConnector, type Connector, type ConnectorSettings } from "./connector/connector.ts";
export { startAgent, type Agent, type AgentSettings } from "./agent/agent.ts";

// The wire protocol.
export * from "./core/frame/mod.ts";
export { CloseCode } from "./core/frame/close.ts";

// Operations: the checks every program makes of its TLS files at start, and
// `ztna doctor`'s checks as a function (each result with status, cause and fix).
export { inspectTlsFiles, loadTlsFiles, type TlsFinding, type TlsInspection } from "./core/tls-files.ts";
export { runDoctor, type Check as DoctorCheck, type Report as DoctorReport } from "./commands/doctor/checks.ts";
export type { DoctorOptions } from "./commands/doctor/options.ts";

// Certificates and configuration errors.
export { createCa, issueCertificate, readIdentity, ensureDevCertificates } from "./core/certs.ts";
export { ConfigError } from "./core/config.ts";
export { VERSION, COMMIT, versionLine } from "./core/version.ts";
