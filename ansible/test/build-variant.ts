/**
 * A second build for the rolling-upgrade test in scripts/ansible-test.sh: the
 * same program compiled with another embedded commit, so its checksum and
 * `ztna version` differ from dist/ztna. Writes OUTFILE and OUTFILE.sha256.
 *
 *   bun ansible/test/build-variant.ts OUTFILE COMMIT
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

const [outfile, commit] = process.argv.slice(2);
if (!outfile || !commit) {
  console.error("usage: build-variant.ts OUTFILE COMMIT");
  process.exit(2);
}
const result = await Bun.build({
  entrypoints: [join(import.meta.dir, "..", "..", "cli.ts")],
  define: { ZTNA_COMMIT: JSON.stringify(commit) },
  compile: { outfile },
});
if (!result.success) {
  console.error(result.logs.map(String).join("\n"));
  process.exit(1);
}
const sha256 = createHash("sha256").update(readFileSync(outfile)).digest("hex");
writeFileSync(`${outfile}.sha256`, `${sha256}  ${basename(outfile)}\n`);
