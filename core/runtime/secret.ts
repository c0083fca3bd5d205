/**
 * A random secret kept in the state directory, so a restarted server derives
 * the same keys (retry tokens, stateless reset tokens) as the process before it.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function loadOrCreateSecret(stateDir: string, name: string, length = 32): Uint8Array {
  const path = join(stateDir, name);
  try {
    const existing = new Uint8Array(readFileSync(path));
    if (existing.length === length) return existing;
  } catch {
    // absent: create below
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const secret = crypto.getRandomValues(new Uint8Array(length));
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, secret, { mode: 0o600 });
  renameSync(tmp, path);
  return secret;
}
