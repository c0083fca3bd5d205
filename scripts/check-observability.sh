#!/usr/bin/env bash
# Validates observability/ with Prometheus' own tools: rule syntax, the
# example scrape config (which loads alerts.yml), the alert unit tests, and
# the PromQL of every dashboard query. That every query names metrics and
# labels the programs really export is checked by tests/observability.test.ts.
#
# Needs promtool (Debian/Ubuntu: apt-get install -y prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "check-observability: promtool not found; install it (Debian/Ubuntu: apt-get update && apt-get install -y prometheus)" >&2
  exit 1
fi

dir=observability/prometheus
status=0
run() {
  echo "== $*"
  if ! "$@"; then
    echo "check-observability: FAILED: $*" >&2
    status=1
  fi
}

run promtool check rules "$dir/alerts.yml"
# rule_files in prometheus.yml and alerts.test.yml are resolved relative to
# those files, so these work from any working directory.
run promtool check config "$dir/prometheus.yml"
run promtool test rules "$dir/alerts.test.yml"

# Dashboard queries, parsed by Prometheus itself (as recording rules).
bun=node_modules/.bin/bun
[ -x "$bun" ] || bun=bun
rules=$(mktemp "${TMPDIR:-/tmp}/ztna-dashboard-rules.XXXXXX")
trap 'rm -f "$rules"' EXIT
if "$bun" observability/check/dashboard-rules.ts >"$rules"; then
  run promtool check rules "$rules"
else
  echo "check-observability: FAILED: could not export the dashboard queries" >&2
  status=1
fi

if [ "$status" -eq 0 ]; then
  echo "check-observability: OK"
fi
exit "$status"
