#!/usr/bin/env bash
# Deno compatibility check: type-checks the library and the three programs
# under Deno, then runs tests/deno/*.deno.ts (framing, config, an in-process
# relay over the native QUIC binding, ops HTTP via Deno.serve).
# Deno comes from the `deno` npm devDependency, so `npm ci` is all it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

DENO="${DENO:-node_modules/.bin/deno}"
if [[ ! -x "$DENO" ]] && ! command -v "$DENO" >/dev/null; then
  echo "deno-check: $DENO not found: run npm ci (deno is a devDependency)" >&2
  exit 1
fi
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
echo "== $("$DENO" --version | head -n 1)"

# Library code only: the *.test.ts files import bun:test, which Deno cannot
# load (deno check would skip the import silently and prove nothing).
shopt -s globstar nullglob
files=()
for f in mod.ts cli.ts commands/**/*.ts core/**/*.ts server/*.ts connector/*.ts agent/*.ts; do
  [[ "$f" == *.test.ts ]] || files+=("$f")
done

echo "== deno check (${#files[@]} files + tests/deno)"
"$DENO" check "${files[@]}" tests/deno/*.deno.ts

# Narrow permissions: loopback (and the wildcard bind of client sockets)
# only, FFI for the quiche addon, hostname for the dev CA's name.
echo "== deno test tests/deno"
"$DENO" test --allow-read --allow-write --allow-env --allow-ffi --allow-sys=hostname \
  --allow-net=127.0.0.1,0.0.0.0,localhost tests/deno/*.deno.ts
