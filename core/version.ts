/** The toolkit's version, and the commit it was built from (embedded by `npm run build`). */
import pkg from "../package.json" with { type: "json" };

declare const ZTNA_COMMIT: string | undefined;

export const VERSION: string = pkg.version;
export const COMMIT: string = typeof ZTNA_COMMIT === "string" ? ZTNA_COMMIT : "source";

export function versionLine(): string {
  return `ztna ${VERSION} (${COMMIT})`;
}
