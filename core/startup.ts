/**
 * Failing loudly at start: every problem a program can hit before it serves
 * (a file, a port, a name) becomes one line that names the flag, the file or
 * port, and what is wrong, instead of a stack trace.
 */
import { isIP } from "node:net";
import { type Address, formatAddress } from "./net/address.ts";
import type { Logger } from "./log.ts";
import { resolveAddress } from "./runtime/dns.ts";

/** A startup problem whose message is already the one line to show. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/**
 * Resolves the host of a listen or dial address named by `flag`, so a typo
 * fails here with its name rather than later as a misleading bind error.
 */
export async function resolveFlag(flag: string, address: Address): Promise<Address> {
  if (isIP(address.host)) return address;
  try {
    // As the programs dial: IPv4 first (runtime/dns.ts).
    return await resolveAddress(address);
  } catch (error) {
    const code = (error as { code?: string }).code ?? "";
    const why = code === "ENOTFOUND" || code === "ENODATA"
      ? "does not resolve"
      : `could not be resolved (${code || (error as Error).message})`;
    throw new StartupError(
      `${flag} ${
        formatAddress(address)
      }: the name ${address.host} ${why}; check the spelling and this host's DNS (/etc/resolv.conf, /etc/hosts)`,
    );
  }
}

/**
 * Turns a failed bind into one line naming the flag (with its value: `where`
 * defaults to `FLAG HOST:PORT`), protocol and port. Errors that are not
 * socket errors are returned unchanged.
 */
export function bindError(
  error: unknown,
  flag: string,
  proto: "UDP" | "TCP",
  address: Address,
  where = `${flag} ${formatAddress(address)}`,
): Error {
  const code = (error as { code?: string })?.code ?? "";
  switch (code) {
    case "EADDRINUSE":
      return new StartupError(
        `${where}: ${proto} port ${address.port} is already in use on ${address.host}; stop what holds it (ss -${
          proto === "UDP" ? "u" : "t"
        }lpn 'sport = :${address.port}') or choose another port`,
      );
    case "EACCES":
    case "EPERM":
      return new StartupError(
        `${where}: permission denied to listen on ${proto} port ${address.port}; ports below 1024 need root or CAP_NET_BIND_SERVICE`,
      );
    case "EADDRNOTAVAIL":
      return new StartupError(
        `${where}: ${address.host} is not an address of this host; use one of its addresses, or 0.0.0.0 for all`,
      );
    case "ENOENT":
    case "ENOTFOUND":
      return new StartupError(`${where}: the name ${address.host} does not resolve`);
    default:
      return code !== ""
        ? new StartupError(`${where}: cannot listen on ${proto}: ${oneLine(error)}`)
        : (error as Error);
  }
}

/** The single line to show for any startup error. */
export function startupMessage(error: unknown): string {
  return oneLine(error);
}

function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0]!.trim() || (error instanceof Error ? error.name : "unknown error");
}

/**
 * Runs a program's start-up: on any failure logs one `startup_failed` line
 * (no stack trace) and exits with status 1.
 */
export async function startOrExit<T>(log: Logger, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const hint = (error as { hint?: unknown })?.hint;
    log.error("startup_failed", { error: startupMessage(error), hint: typeof hint === "string" ? hint : undefined });
    // Let the line reach the pipe before the process goes.
    await new Promise((r) => setTimeout(r, 10));
    process.exit(1);
  }
}
