/**
 * A second build for the rolls in scripts/ansible-test.sh: the same program
 * built exactly as `npm run build` does (scripts/build.ts), with another
 * embedded commit, so its checksum and `ztna version` differ from dist/ztna.
 * Writes OUTFILE and OUTFILE.sha256.
 *
 *   bun ansible/test/build-variant.ts OUTFILE COMMIT
 */
import { build, smokeTest } from "../../scripts/build.ts";

const [outfile, commit] = process.argv.slice(2);
if (!outfile || !commit) {
  console.error("usage: build-variant.ts OUTFILE COMMIT");
  process.exit(2);
}
const built = await build({ outfile, commit });
smokeTest(built.outfile, commit);
