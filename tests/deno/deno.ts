/**
 * `Deno.test`, reached through globalThis so these files also type-check
 * under the repository's tsc (bun-types, no Deno namespace). The files here
 * are named *.deno.ts, a pattern `bun test` does not collect: only
 * `deno test tests/deno/*.deno.ts` (scripts/deno-check.sh) runs them.
 */
interface DenoLike {
  test(name: string, fn: () => void | Promise<void>): void;
}

export function denoTest(name: string, fn: () => void | Promise<void>): void {
  const deno = (globalThis as { Deno?: DenoLike }).Deno;
  if (deno === undefined) throw new Error("tests/deno/*.deno.ts run under Deno: deno test -A tests/deno/*.deno.ts");
  deno.test(name, fn);
}
