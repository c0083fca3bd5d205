/**
 * `ssh -L`, what a user would tunnel TCP with instead of ztna: a throw-away
 * sshd on loopback with throw-away keys (its own config, no system files
 * touched beyond sshd's privilege-separation directory), and one ssh client
 * forwarding local ports to the bench's TCP services. Skipped, with the reason,
 * where sshd or ssh is missing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freeTcpPort, waitForTcp } from "./ports.ts";
import { guarded, track } from "./processes.ts";
import type { Address } from "./tunnel.ts";

/** Local forwarded addresses by the name of their target, or why there are none. */
export type SshForwards = { forwards: Record<string, Address>; skipped?: undefined } | { skipped: string };

function which(name: string, extra: string[] = []): string | null {
  for (const dir of [...(process.env.PATH ?? "").split(":"), ...extra]) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

function spawnTracked(name: string, command: string[]) {
  const proc = Bun.spawn(guarded(command), { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  let stderr = "";
  void (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) stderr += new TextDecoder().decode(chunk);
  })();
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 2_000);
    await proc.exited;
    clearTimeout(timer);
  };
  track({ name, stop });
  return { proc, stop, stderr: () => stderr.trim() };
}

/** The login name of this process (os.userInfo() reports "unknown" under Bun here). */
function currentUser(): string {
  const id = Bun.spawnSync(["id", "-un"]);
  return id.exitCode === 0 ? id.stdout.toString().trim() : (process.env.USER ?? "root");
}

async function keygen(path: string): Promise<void> {
  const p = Bun.spawn(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ztna-bench", "-f", path], {
    stdout: "ignore",
    stderr: "pipe",
  });
  if ((await p.exited) !== 0) throw new Error(`ssh-keygen failed: ${await new Response(p.stderr).text()}`);
}

/** Starts sshd and one ssh forwarding a local port to each named target. */
export async function startSshForwards(dir: string, named: Record<string, Address>): Promise<SshForwards> {
  const names = Object.keys(named);
  const targets = names.map((n) => named[n]!);
  const sshd = which("sshd", ["/usr/sbin", "/usr/local/sbin"]);
  const ssh = which("ssh");
  if (!sshd || !ssh || !which("ssh-keygen")) {
    return { skipped: "sshd/ssh not installed (Debian: apt-get install openssh-server openssh-client)" };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostKey = join(dir, "host_key");
  const clientKey = join(dir, "client_key");
  await Promise.all([keygen(hostKey), keygen(clientKey)]);
  const authorized = join(dir, "authorized_keys");
  writeFileSync(authorized, readFileSync(`${clientKey}.pub`), { mode: 0o600 });
  // sshd refuses to start without its privilege-separation directory.
  if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

  const sshdPort = await freeTcpPort();
  const daemon = spawnTracked("sshd", [
    sshd,
    "-D",
    "-e",
    "-f",
    "/dev/null",
    "-p",
    String(sshdPort),
    "-h",
    hostKey,
    "-o",
    "ListenAddress=127.0.0.1",
    "-o",
    `AuthorizedKeysFile=${authorized}`,
    "-o",
    "StrictModes=no",
    "-o",
    "PidFile=none",
    "-o",
    "PasswordAuthentication=no",
    "-o",
    "KbdInteractiveAuthentication=no",
    "-o",
    "PermitRootLogin=prohibit-password",
  ]);
  if (!(await waitForTcp("127.0.0.1", sshdPort, 10_000, () => daemon.proc.exitCode !== null))) {
    return { skipped: `sshd did not start: ${daemon.stderr() || `exit ${daemon.proc.exitCode}`}` };
  }

  // ssh -L cannot take port 0: pick free ports, and try again if one was taken meanwhile.
  let lastError = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const ports = await Promise.all(targets.map(() => freeTcpPort()));
    const client = spawnTracked("ssh -L", [
      ssh,
      "-F",
      "/dev/null",
      "-N",
      "-i",
      clientKey,
      "-p",
      String(sshdPort),
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "ExitOnForwardFailure=yes",
      "-o",
      "LogLevel=ERROR",
      ...targets.flatMap((t, i) => ["-L", `127.0.0.1:${ports[i]}:${t.host}:${t.port}`]),
      `${currentUser()}@127.0.0.1`,
    ]);
    let up = true;
    for (const port of ports) up &&= await waitForTcp("127.0.0.1", port, 10_000, () => client.proc.exitCode !== null);
    if (up && client.proc.exitCode === null) {
      return { forwards: Object.fromEntries(names.map((n, i) => [n, { host: "127.0.0.1", port: ports[i]! }])) };
    }
    lastError = client.stderr() || `ssh exit ${client.proc.exitCode}`;
    await client.stop();
  }
  return { skipped: `ssh -L did not come up: ${lastError}` };
}
