/**
 * `ztna doctor`: one command that says why a connector or agent does not
 * come up, check by check, with the cause and the fix. Lines as each check
 * finishes, or one JSON document with --json. Exit 0 when nothing failed
 * (warnings included), 1 when a check failed, 2 for bad usage.
 */
import { ConfigError, HelpRequested } from "../../core/config.ts";
import { type Check, type Report, runDoctor } from "./checks.ts";
import { parseDoctorOptions } from "./options.ts";

export interface DoctorIo {
  out(line: string): void;
  err(line: string): void;
  /** Colour the status words (a terminal that wants colour). */
  colour?: boolean;
}

const TITLES: Record<Check["id"], string> = {
  files: "files",
  dns: "name",
  handshake: "udp+handshake",
  authorisation: "authorisation",
  service: "service",
  probe: "round trip",
  path: "path",
};

const COLOURS: Record<Check["status"], string> = { pass: "32", warn: "33", fail: "31", skip: "2" };

/** One check as text lines: status, title, time, summary; then cause and fix, indented. */
export function renderCheck(c: Check, colour = false): string[] {
  const word = c.status.toUpperCase().padEnd(4);
  const status = colour ? `\u001b[${COLOURS[c.status]}m${word}\u001b[0m` : word;
  const ms = c.ms === null ? "" : c.ms >= 1000 ? `${(c.ms / 1000).toFixed(1)} s` : `${c.ms.toFixed(1)} ms`;
  const head = `${status}  ${TITLES[c.id].padEnd(14)}${ms.padStart(9)}  ${c.summary}`;
  const pad = " ".repeat(4 + 2 + 14 + 9 + 2);
  const lines = [head];
  if (c.cause && c.status !== "pass") lines.push(`${pad}cause: ${c.cause}`);
  if (c.fix && c.status !== "pass") lines.push(`${pad}fix:   ${c.fix}`);
  return lines;
}

export function renderSummary(report: Report): string {
  const failed = report.checks.filter((c) => c.status === "fail").length;
  const warned = report.checks.filter((c) => c.status === "warn").length;
  if (failed === 0 && warned === 0) return "All checks passed.";
  const parts = [`${failed} failed`, `${warned} warning${warned === 1 ? "" : "s"}`];
  return `${parts.join(", ")}${failed > 0 ? ": see the fix lines above" : ""}.`;
}

/** `ztna doctor` as a function: the exit status, with output through `io` (for tests). */
export async function run(argv: string[], env: Record<string, string | undefined>, io: DoctorIo): Promise<number> {
  let options;
  try {
    options = parseDoctorOptions(argv, env);
  } catch (error) {
    if (error instanceof HelpRequested) {
      io.out(error.usage);
      return 0;
    }
    if (error instanceof ConfigError) {
      io.err(`ztna doctor: ${error.message}`);
      return 2;
    }
    throw error;
  }
  let lastServer: string | undefined;
  const report = await runDoctor(options, (c) => {
    if (options.json) return;
    if (c.server !== lastServer && options.server.length > 1) io.out(`── ${c.server}`);
    lastServer = c.server ?? lastServer;
    for (const line of renderCheck(c, io.colour)) io.out(line);
  });
  if (options.json) io.out(JSON.stringify(report, null, 2));
  else {
    io.out("");
    io.out(renderSummary(report));
  }
  return report.ok ? 0 : 1;
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const colour = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  const code = await run(argv, process.env, { out: (l) => console.log(l), err: (l) => console.error(l), colour });
  process.exit(code);
}
