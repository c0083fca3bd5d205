/**
 * `ztna`: one entry point for every program, and what `npm run build` compiles
 * into a self-contained binary: `ztna server|connector|agent|certs|version`.
 */
import { reexecWithTunedAllocator } from "./core/runtime/allocator.ts";
import { versionLine } from "./core/version.ts";

const USAGE = `usage: ztna <command> [flags]

commands:
  server      run the Intermediate Server (relay)
  connector   run an App Connector beside a private service
  agent       run an Agent: local listeners mapped to remote services
  certs       create a CA and issue server, connector and agent certificates
  status      what a running server, connector or agent is doing (--watch, --json)
  doctor      diagnose why a connector or agent cannot reach a server or service
  version     print the version and commit (also: --version after any command)

'ztna <command> --help' lists a command's flags.`;

/** `--version` anywhere before a `--` wins over the command, so every program answers it alike. */
function wantsVersion(argv: string[]): boolean {
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end)).includes("--version");
}

export async function runCli(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (wantsVersion(argv)) {
    console.log(versionLine());
    return;
  }
  switch (command) {
    case "server":
      return (await import("./server/main.ts")).main(rest);
    case "connector":
      return (await import("./connector/main.ts")).main(rest);
    case "agent":
      return (await import("./agent/main.ts")).main(rest);
    case "certs":
      return (await import("./commands/certs.ts")).main(rest);
    case "status":
      return (await import("./commands/status/main.ts")).main(rest);
    case "doctor":
      return (await import("./commands/doctor/main.ts")).main(rest);
    case "version":
    case "-v":
      console.log(versionLine());
      return;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return;
    default:
      console.error(`ztna: unknown command "${command}"\n\n${USAGE}`);
      process.exit(2);
  }
}

/** The long-running programs, which carry traffic and so run with the tuned allocator. */
const RELAY_COMMANDS = new Set(["server", "connector", "agent"]);

if (import.meta.main) {
  const argv = process.argv.slice(2);
  if (RELAY_COMMANDS.has(argv[0] ?? "") && !wantsVersion(argv)) reexecWithTunedAllocator();
  await runCli(argv);
}
