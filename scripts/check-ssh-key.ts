/**
 * Checks an OpenSSH public key line the way AWS will when it imports it, so
 * `scripts/deploy-aws` can refuse a bad `ssh_public_key` before Terraform
 * creates anything: the wire blob must hold the named algorithm and a key of
 * it, an Ed25519 key must be a point of the curve, ECDSA points must be on
 * theirs, and RSA moduli must have at least 2048 bits.
 *
 *   bun scripts/check-ssh-key.ts 'ssh-ed25519 AAAA... you@laptop'
 *   terraform console <<< 'var.ssh_public_key' | bun scripts/check-ssh-key.ts -
 *
 * Prints the key's type and SHA256 fingerprint; exits 1 with the reason when
 * the key is not usable.
 */
import { createHash, createPublicKey } from "node:crypto";

export type KeyCheck = { ok: true; type: string; bits: number; fingerprint: string } | { ok: false; reason: string };

const ECDSA_CURVES: Record<string, { crv: string; size: number; bits: number }> = {
  "ecdsa-sha2-nistp256": { crv: "P-256", size: 32, bits: 256 },
  "ecdsa-sha2-nistp384": { crv: "P-384", size: 48, bits: 384 },
  "ecdsa-sha2-nistp521": { crv: "P-521", size: 66, bits: 521 },
};

/** Reads the SSH wire format: u32-length-prefixed strings. */
function wireReader(blob: Uint8Array) {
  let pos = 0;
  return {
    string(): Uint8Array | null {
      if (pos + 4 > blob.length) return null;
      const len = new DataView(blob.buffer, blob.byteOffset + pos, 4).getUint32(0);
      if (pos + 4 + len > blob.length) return null;
      const out = blob.subarray(pos + 4, pos + 4 + len);
      pos += 4 + len;
      return out;
    },
    done: () => pos === blob.length,
  };
}

const P = 2n ** 255n - 19n;

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = ((base % mod) + mod) % mod;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
  }
  return result;
}

const mod = (a: bigint) => ((a % P) + P) % P;

/** RFC 8032 §5.1.3: whether 32 bytes decode to a point of edwards25519. */
export function isEd25519Point(key: Uint8Array): boolean {
  if (key.length !== 32) return false;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(key[i]!);
  const sign = y >> 255n;
  y &= (1n << 255n) - 1n;
  if (y >= P) return false;
  const d = mod(-121665n * modPow(121666n, P - 2n, P));
  const u = mod(y * y - 1n);
  const v = mod(d * y * y + 1n);
  let x = mod(u * modPow(v, 3n, P) * modPow(u * modPow(v, 7n, P), (P - 5n) / 8n, P));
  const vx2 = mod(v * x * x);
  if (vx2 !== u) {
    if (vx2 !== mod(-u)) return false;
    x = mod(x * modPow(2n, (P - 1n) / 4n, P));
  }
  return !(x === 0n && sign === 1n);
}

const b64url = (b: Uint8Array) => Buffer.from(b).toString("base64url");

/** Strips leading zero bytes of an mpint. */
function unsigned(mpint: Uint8Array): Uint8Array {
  let i = 0;
  while (i < mpint.length - 1 && mpint[i] === 0) i++;
  return mpint.subarray(i);
}

export function checkSshPublicKey(line: string): KeyCheck {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 2) return { ok: false, reason: "not an OpenSSH public key line (TYPE BASE64 [COMMENT])" };
  const [type, material] = fields as [string, string];
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(material)) return { ok: false, reason: "the key material is not base64" };
  const blob = new Uint8Array(Buffer.from(material, "base64"));
  const r = wireReader(blob);
  const inner = r.string();
  if (inner === null || new TextDecoder().decode(inner) !== type) {
    return {
      ok: false,
      reason: `the key material does not start with its type ${type} (truncated, or pasted from another key?)`,
    };
  }
  const fingerprint = `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
  const fail = (reason: string): KeyCheck => ({ ok: false, reason });
  try {
    if (type === "ssh-ed25519") {
      const key = r.string();
      if (key === null || key.length !== 32 || !r.done()) return fail("an ssh-ed25519 key holds exactly 32 bytes");
      if (!isEd25519Point(key)) {
        return fail("the 32 bytes are not a point of the Ed25519 curve: this is not a real key (a placeholder?)");
      }
      createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(key) }, format: "jwk" });
      return { ok: true, type, bits: 256, fingerprint };
    }
    if (type === "ssh-rsa") {
      const e = r.string();
      const n = r.string();
      if (e === null || n === null || !r.done()) return fail("an ssh-rsa key holds an exponent and a modulus");
      const modulus = unsigned(n);
      const bits = modulus.length * 8 - Math.clz32(modulus[0]!) + 24;
      if (bits < 2048) return fail(`RSA keys need at least 2048 bits, this one has ${bits}`);
      const exponent = unsigned(e);
      if (exponent.length === 0 || (exponent[exponent.length - 1]! & 1) === 0) {
        return fail("the RSA exponent is not odd");
      }
      createPublicKey({ key: { kty: "RSA", n: b64url(modulus), e: b64url(exponent) }, format: "jwk" });
      return { ok: true, type, bits, fingerprint };
    }
    const curve = ECDSA_CURVES[type];
    if (curve) {
      const name = r.string();
      const q = r.string();
      if (name === null || q === null || !r.done()) return fail(`an ${type} key holds a curve name and a point`);
      if (new TextDecoder().decode(name) !== type.slice("ecdsa-sha2-".length)) {
        return fail("the curve name does not match the type");
      }
      if (q.length !== 1 + 2 * curve.size || q[0] !== 4) {
        return fail("the ECDSA point is not an uncompressed point of the curve's size");
      }
      // The import refuses a point that is not on the curve.
      createPublicKey({
        key: {
          kty: "EC",
          crv: curve.crv,
          x: b64url(q.subarray(1, 1 + curve.size)),
          y: b64url(q.subarray(1 + curve.size)),
        },
        format: "jwk",
      });
      return { ok: true, type, bits: curve.bits, fingerprint };
    }
    return fail(`AWS accepts ssh-ed25519, ssh-rsa and ecdsa-sha2-nistp256/384/521 keys, not ${type}`);
  } catch (error) {
    return fail(`the key does not import: ${(error as Error).message}`);
  }
}

/** Terraform console prints strings quoted, and "(known after apply)" for an unset variable. */
export function unquote(text: string): string | null {
  const t = text.trim();
  if (t.startsWith('"')) {
    try {
      return JSON.parse(t) as string;
    } catch {
      return null;
    }
  }
  return t === "" || t.startsWith("(") ? null : t;
}

if (import.meta.main) {
  const arg = process.argv[2];
  const raw = arg === "-" ? await new Response(Bun.stdin.stream()).text() : (arg ?? "");
  const line = unquote(raw);
  if (line === null) {
    console.error("ssh_public_key is not set: put it in your .tfvars (or TF_VAR_ssh_public_key)");
    process.exit(1);
  }
  const result = checkSshPublicKey(line);
  if (!result.ok) {
    console.error(`ssh_public_key: ${result.reason}`);
    process.exit(1);
  }
  console.log(`ssh_public_key: ${result.type} (${result.bits} bits), ${result.fingerprint}`);
}
