/**
 * scripts/check-ssh-key.ts: the SSH public key check scripts/deploy-aws runs
 * before Terraform creates anything. Keys made by node:crypto must pass;
 * placeholders, truncations, mixed-up types, short RSA keys and Ed25519
 * "keys" that are no point of the curve must not.
 */
import { describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import { checkSshPublicKey, isEd25519Point, unquote } from "../scripts/check-ssh-key.ts";

function wireString(b: Uint8Array | string): Buffer {
  const bytes = typeof b === "string" ? Buffer.from(b) : Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/** An mpint: big-endian, a leading zero byte when the top bit is set. */
function mpint(b64url: string): Buffer {
  const raw = Buffer.from(b64url, "base64url");
  return wireString(raw[0]! & 0x80 ? Buffer.concat([Buffer.of(0), raw]) : raw);
}

function line(type: string, parts: Buffer[], comment = "op@example"): string {
  return `${type} ${Buffer.concat([wireString(type), ...parts]).toString("base64")} ${comment}`;
}

const ed25519 = () => {
  const { x } = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }) as { x: string };
  return line("ssh-ed25519", [wireString(Buffer.from(x, "base64url"))]);
};
const rsa = (bits: number) => {
  const { n, e } = generateKeyPairSync("rsa", { modulusLength: bits }).publicKey.export({ format: "jwk" }) as {
    n: string;
    e: string;
  };
  return line("ssh-rsa", [mpint(e), mpint(n)]);
};
const ecdsa = (curve: "P-256" | "P-384" | "P-521", name: string) => {
  const { x, y } = generateKeyPairSync("ec", { namedCurve: curve }).publicKey.export({ format: "jwk" }) as {
    x: string;
    y: string;
  };
  const point = Buffer.concat([Buffer.of(4), Buffer.from(x, "base64url"), Buffer.from(y, "base64url")]);
  return line(`ecdsa-sha2-${name}`, [wireString(name), wireString(point)]);
};

describe("keys that AWS imports pass", () => {
  test("ed25519, rsa 2048 and 4096, ecdsa p256/p384/p521", () => {
    const keys = [
      ed25519(),
      rsa(2048),
      rsa(4096),
      ecdsa("P-256", "nistp256"),
      ecdsa("P-384", "nistp384"),
      ecdsa("P-521", "nistp521"),
    ];
    const results = keys.map(checkSshPublicKey);
    for (const r of results) expect(r.ok).toBe(true);
    expect(results.map((r) => (r.ok ? `${r.type} ${r.bits}` : r.reason))).toEqual([
      "ssh-ed25519 256",
      "ssh-rsa 2048",
      "ssh-rsa 4096",
      "ecdsa-sha2-nistp256 256",
      "ecdsa-sha2-nistp384 384",
      "ecdsa-sha2-nistp521 521",
    ]);
  });

  test("the fingerprint is OpenSSH's (SHA-256 of the blob, unpadded base64)", () => {
    // The fixed key of RFC 8032's first test vector.
    const pub = Buffer.from("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "hex");
    const r = checkSshPublicKey(line("ssh-ed25519", [wireString(pub)]));
    expect(r).toMatchObject({ ok: true, type: "ssh-ed25519" });
    if (r.ok) expect(r.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe("keys that are not keys fail, with the reason", () => {
  const cases: [string, string, RegExp][] = [
    [
      "the old example placeholder",
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyReplaceMeWithYourOwnKeyMaterial0 you@laptop",
      /exactly 32 bytes/,
    ],
    ["a line without key material", "ssh-ed25519", /not an OpenSSH public key line/],
    ["material that is not base64", "ssh-ed25519 not*base64", /not base64/],
    ["an ed25519 blob named ssh-rsa", `ssh-rsa ${ed25519().split(" ")[1]}`, /does not start with its type ssh-rsa/],
    ["a truncated key", ed25519().slice(0, 50), /does not start with its type|32 bytes|not base64/],
    ["a 1024-bit RSA key", rsa(1024), /at least 2048 bits, this one has 1024/],
    ["a DSA key type", "ssh-dss AAAAB3NzaC1kc3MAAAA= x", /does not start with its type|not ssh-dss/],
    [
      "an ECDSA point off the curve",
      line("ecdsa-sha2-nistp256", [
        wireString("nistp256"),
        wireString(Buffer.concat([Buffer.of(4), Buffer.alloc(64, 1)])),
      ]),
      /does not import/,
    ],
    [
      "an ECDSA key with the wrong curve name",
      line("ecdsa-sha2-nistp256", [wireString("nistp384"), wireString(Buffer.alloc(65, 4))]),
      /curve name/,
    ],
  ];
  for (const [what, key, reason] of cases) {
    test(what, () => {
      const r = checkSshPublicKey(key);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    });
  }

  test("32 bytes that are no point of the Ed25519 curve", () => {
    // y = 2 has no x on edwards25519 (checked against Euler's criterion below).
    const y2 = Buffer.alloc(32);
    y2[0] = 2;
    const r = checkSshPublicKey(line("ssh-ed25519", [wireString(y2)]));
    expect(r).toEqual({ ok: false, reason: expect.stringContaining("not a point of the Ed25519 curve") });
  });
});

describe("the Ed25519 point check", () => {
  const P = 2n ** 255n - 19n;
  const pow = (b: bigint, e: bigint) => {
    let r = 1n;
    b %= P;
    for (; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
    return r;
  };
  /** Independent oracle: y < p and x² = (y²-1)/(d·y²+1) is a square (Euler's criterion), and not "-0". */
  function oracle(bytes: Uint8Array): boolean {
    let y = 0n;
    for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i]!);
    const sign = y >> 255n;
    y &= (1n << 255n) - 1n;
    if (y >= P) return false;
    const d = (((-121665n * pow(121666n, P - 2n)) % P) + P) % P;
    const x2 = ((((y * y - 1n) % P) + P) % P) * pow((d * y * y + 1n) % P, P - 2n) % P;
    if (x2 === 0n) return sign === 0n;
    return pow(x2, (P - 1n) / 2n) === 1n;
  }

  test("agrees with Euler's criterion on random 32-byte strings", () => {
    let valid = 0;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (b) => {
        const got = isEd25519Point(b);
        expect(got).toBe(oracle(b));
        if (got) valid++;
      }),
      { seed: 7, numRuns: 400 },
    );
    // About half of all y are on the curve: both answers occur.
    expect(valid).toBeGreaterThan(100);
    expect(valid).toBeLessThan(300);
  });

  test("every key node:crypto generates is a point", () => {
    for (let i = 0; i < 50; i++) {
      const { x } = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }) as { x: string };
      expect(isEd25519Point(Buffer.from(x, "base64url"))).toBe(true);
    }
  });
});

test("terraform console output: a quoted string is the key; an unset variable is none", () => {
  expect(unquote('"ssh-ed25519 AAAA a@b"\n')).toBe("ssh-ed25519 AAAA a@b");
  expect(unquote("(known after apply)\n")).toBeNull();
  expect(unquote("")).toBeNull();
});
