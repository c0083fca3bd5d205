/**
 * The child side of the bench's process protocol: results go to stdout as one
 * JSON object per line, commands arrive on stdin one per line. When stdin
 * closes (the orchestrator finished or died) the child exits, so no bench
 * process can outlive a run.
 */

export function report(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** Calls `onCommand` for each stdin line; exits the process at end of input. */
export function onCommands(onCommand: (line: string) => void): void {
  void (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of Bun.stdin.stream()) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl).trim();
        rest = rest.slice(nl + 1);
        if (line) onCommand(line);
      }
    }
    process.exit(0);
  })();
}

/** `--name value` from argv, else the fallback. */
export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

export function numberFlag(name: string, fallback: number): number {
  const value = Number(flag(name, String(fallback)));
  if (!Number.isFinite(value)) throw new Error(`--${name} must be a number`);
  return value;
}

export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(text);
  if (!m) throw new Error(`not HOST:PORT: ${text}`);
  return { host: m[1]!, port: Number(m[2]) };
}
