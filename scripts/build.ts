/**
 * `npm run build`: compiles cli.ts into one self-contained executable,
 * `dist/ztna` (linux-x64), with the version and commit embedded, and writes
 * `dist/ztna.sha256` in sha256sum format.
 *
 *   bun scripts/build.ts [--outfile PATH]
 *
 * The QUIC binding is embedded because core/quic/native.ts requires it with a
 * string literal; the binary needs no node_modules at run time.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { VERSION } from "../core/version.ts";

const ROOT = join(import.meta.dir, "..");
export const DEFAULT_OUTFILE = join(ROOT, "dist", "ztna");
const TARGET = "bun-linux-x64";

export interface BuildResult {
  outfile: string;
  bytes: number;
  ms: number;
  commit: string;
  sha256: string;
}

/** Short commit of the working tree, or "unknown" outside a git checkout. */
export function gitCommit(): string {
  try {
    const r = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
    const sha = r.stdout.toString().trim();
    return r.exitCode === 0 && /^[0-9a-f]+$/.test(sha) ? sha : "unknown";
  } catch {
    return "unknown"; // no git installed
  }
}

export async function build(options: { outfile?: string; commit?: string } = {}): Promise<BuildResult> {
  const outfile = resolve(options.outfile ?? DEFAULT_OUTFILE);
  const commit = options.commit ?? gitCommit();
  mkdirSync(dirname(outfile), { recursive: true });
  const started = performance.now();
  const result = await Bun.build({
    entrypoints: [join(ROOT, "cli.ts")],
    define: { ZTNA_COMMIT: JSON.stringify(commit) },
    compile: {
      target: TARGET,
      outfile,
      // An operator's binary must not change behaviour with whatever .env or
      // bunfig.toml happens to sit in its working directory.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
  });
  if (!result.success) {
    throw new Error(`bun build failed:\n${result.logs.map((l) => String(l)).join("\n")}`);
  }
  const ms = performance.now() - started;
  const sha256 = createHash("sha256").update(readFileSync(outfile)).digest("hex");
  // Relative name, so `cd dist && sha256sum -c ztna.sha256` works.
  writeFileSync(`${outfile}.sha256`, `${sha256}  ${basename(outfile)}\n`);
  return { outfile, bytes: statSync(outfile).size, ms, commit, sha256 };
}

/** Runs `<binary> version` outside the tree: a binary that cannot start fails the build. */
export function smokeTest(outfile: string, commit: string): void {
  const r = Bun.spawnSync([outfile, "version"], { cwd: tmpdir(), stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString().trim();
  const want = `ztna ${VERSION} (${commit})`;
  if (r.exitCode !== 0 || out !== want) {
    throw new Error(
      `smoke test failed: "${outfile} version" exited ${r.exitCode}, printed ${JSON.stringify(out)}, want ${
        JSON.stringify(want)
      }\n${r.stderr}`,
    );
  }
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { outfile: { type: "string" } }, strict: true });
  if (`${process.platform}-${process.arch}` !== "linux-x64") {
    console.error(
      `warning: building for linux-x64 on ${process.platform}-${process.arch}; Bun downloads that runtime, and the smoke test is skipped`,
    );
  }
  const built = await build({ outfile: values.outfile });
  if (`${process.platform}-${process.arch}` === "linux-x64") smokeTest(built.outfile, built.commit);
  const mb = (built.bytes / 1024 / 1024).toFixed(1);
  console.log(
    `built ${built.outfile} (${mb} MiB, ${built.bytes} bytes) in ${
      (built.ms / 1000).toFixed(1)
    } s, commit ${built.commit}`,
  );
  console.log(`sha256 ${built.sha256}  (${built.outfile}.sha256)`);
}

if (import.meta.main) {
  try {
    await main(process.argv.slice(2));
  } catch (error) {
    console.error(`build: ${(error as Error).message}`);
    process.exit(1);
  }
}
