/**
 * `ztna status` as text: the `/status` document of a server, connector or
 * agent rendered as a header and aligned tables, as an operator reads it at
 * a glance. Pure functions of the document (and the clock, for "ago").
 */
import type { AgentStatusDocument, ConnectorStatusDocument } from "../../core/client/status.ts";
import type { ServerStatusWithRates } from "../../server/traffic.ts";

export type AnyStatus = ServerStatusWithRates | ConnectorStatusDocument | AgentStatusDocument;

export function render(doc: unknown, now = Date.now()): string[] {
  const d = doc as { component?: string; starting?: boolean };
  if (d.starting) return [`ztna ${d.component ?? "program"}: starting`];
  switch (d.component) {
    case "server":
      return renderServer(doc as ServerStatusWithRates, now);
    case "connector":
      return renderConnector(doc as ConnectorStatusDocument, now);
    case "agent":
      return renderAgent(doc as AgentStatusDocument);
    default:
      return [`unknown status document (component ${JSON.stringify(d.component)}):`, JSON.stringify(doc, null, 2)];
  }
}

function renderServer(s: ServerStatusWithRates, now: number): string[] {
  const r = s.rates;
  const lines = [
    `ztna server ${s.version}   up ${duration(s.uptimeSeconds)}   ${s.draining ? "DRAINING" : "serving"}`,
    `services ${s.services.length} · connectors ${s.connectors} · agents ${s.agents} · flows ${s.flows}` +
    (r
      ? ` · ${count(r.datagramsPerSecond.toConnector + r.datagramsPerSecond.toAgent)} dgram/s · ${
        bytes(r.bytesPerSecond.toConnector + r.bytesPerSecond.toAgent)
      }/s (${r.windowSeconds} s average)`
      : ""),
    "",
  ];
  if (s.services.length === 0) {
    return [...lines, "no services: no connector has registered and no agent has opened one"];
  }
  const rows: string[][] = [[
    "SERVICE",
    "CONNECTORS",
    "AGENTS",
    "FLOWS",
    "DGRAM/S →conn/→agent",
    "BYTES/S →conn/→agent",
  ]];
  const details: Map<number, string[]> = new Map();
  for (const svc of s.services) {
    const live = svc.connectors.filter((c) => !c.draining).length;
    const conn = live === 0
      ? (svc.connectors.length > 0 ? `0 (${svc.connectors.length} draining)` : "0  NO CONNECTOR")
      : String(live) + (live < svc.connectors.length ? ` (+${svc.connectors.length - live} draining)` : "");
    const rr = svc.rates;
    rows.push([
      svc.name,
      conn,
      String(svc.agents),
      String(svc.flows),
      rr ? `${count(rr.datagramsPerSecond.toConnector)} / ${count(rr.datagramsPerSecond.toAgent)}` : "-",
      rr ? `${bytes(rr.bytesPerSecond.toConnector)} / ${bytes(rr.bytesPerSecond.toAgent)}` : "-",
    ]);
    details.set(
      rows.length - 1,
      svc.connectors.map((c) =>
        [
          `  └ ${c.address}`,
          c.identity ?? "(no certificate)",
          c.version ?? "version unknown",
          `since ${clock(c.since)} (${duration((now - Date.parse(c.since)) / 1000)})`,
          c.draining ? "DRAINING" : "",
        ]
          .filter((x) => x !== "")
          .join("  ")
      ),
    );
  }
  const table = align(rows);
  table.forEach((line, i) => {
    lines.push(line);
    for (const d of details.get(i) ?? []) lines.push(d);
  });
  return lines;
}

function renderConnector(c: ConnectorStatusDocument, now: number): string[] {
  const r = c.rates;
  const registered = c.servers.filter((s) => s.registered).length;
  const lines = [
    `ztna connector ${c.version}   up ${duration(c.uptimeSeconds)}   ${
      c.draining ? "DRAINING" : registered > 0 ? "serving" : "NOT REGISTERED"
    }`,
    `service ${c.service} → ${c.forward} · registered with ${registered} of ${c.servers.length} servers · flows ${c.flows} · tcp ${c.tcpConnections}`,
    `to the service ${count(r.datagramsPerSecond.toService)} dgram/s ${bytes(r.bytesPerSecond.toService)}/s · from it ${
      count(r.datagramsPerSecond.fromService)
    } dgram/s ${bytes(r.bytesPerSecond.fromService)}/s (${r.windowSeconds} s average)`,
    "",
  ];
  const rows = [["SERVER", "LINK", "REGISTERED", "CHANNEL", "RTT", "SINCE", "FLOWS", "SEEN AS"]];
  for (const s of c.servers) {
    rows.push([
      s.address,
      s.state,
      s.registered ? "yes" : "NO",
      s.channel === null ? "-" : String(s.channel),
      s.rttMs === null ? "-" : `${s.rttMs} ms`,
      s.since ? `${clock(s.since)} (${duration((now - Date.parse(s.since)) / 1000)})` : "-",
      String(s.flows),
      s.observed ?? "-",
    ]);
  }
  return [...lines, ...align(rows)];
}

function renderAgent(a: AgentStatusDocument): string[] {
  const r = a.rates;
  const down = a.services.filter((s) => !s.up).length;
  const lines = [
    `ztna agent ${a.version}   up ${duration(a.uptimeSeconds)}   ${
      a.draining
        ? "DRAINING"
        : a.activeServer === null
        ? "NOT CONNECTED"
        : down > 0
        ? `${down} SERVICE${down === 1 ? "" : "S"} DOWN`
        : "serving"
    }`,
    `server ${a.activeServer ?? "none"} · flows ${a.flows} · tcp ${a.tcpConnections} · to the server ${
      count(r.datagramsPerSecond.toServer)
    } dgram/s ${bytes(r.bytesPerSecond.toServer)}/s · from it ${count(r.datagramsPerSecond.fromServer)} dgram/s ${
      bytes(r.bytesPerSecond.fromServer)
    }/s (${r.windowSeconds} s average)`,
    "",
  ];
  const servers = [["SERVER", "LINK", "ACTIVE", "RTT", "SEEN AS"]];
  for (const s of a.servers) {
    servers.push([
      s.address,
      s.state,
      s.active ? "yes" : "",
      s.rttMs === null ? "-" : `${s.rttMs} ms`,
      s.observed ?? "-",
    ]);
  }
  const services = [["SERVICE", "PROTO", "LISTEN", "UP", "REFUSED"]];
  for (const s of a.services) services.push([s.name, s.protocol, s.listen, s.up ? "up" : "DOWN", s.refused ?? ""]);
  return [...lines, ...align(servers), "", ...align(services)];
}

/** Columns padded to their widest cell, two spaces apart. */
export function align(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd()
  );
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function count(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n * 10) / 10);
}

export function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${Math.round(n)} B`;
}

/** An ISO time as the UTC wall clock, `2026-11-30 18:00:00Z`. */
function clock(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d{3}Z$/, "Z");
}
