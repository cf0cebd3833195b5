#!/usr/bin/env bash
# Load test of POST /api/v1/access-checks with wrk (Debian package `wrk`)
# against a release build on a fresh SQLite database with the demo company.
# Figures go to docs/benchmarks.md by hand. Usage: bash benches/access_checks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
export LEPTOS_OUTPUT_NAME=gatehouse LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg
cargo build --release --no-default-features --features ssr --bin gatehouse
bin=target/release/gatehouse
dir=$(mktemp -d)
export GATEHOUSE_DATA_DIR="$dir" GATEHOUSE_DATABASE_URL="sqlite://$dir/g.db" GATEHOUSE_LISTEN=127.0.0.1:3999 RUST_LOG=warn
"$bin" seed-demo >/dev/null
token=$("$bin" service-token customer-api access:check)
"$bin" serve >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -fs http://127.0.0.1:3999/healthz >/dev/null && break; sleep 0.2; done

run() { # name, lua body
  cat >"$dir/req.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '$2'
LUA
  echo "== $1"
  wrk -t2 -c"${CONNECTIONS:-4}" -d"${DURATION:-20s}" --latency -s "$dir/req.lua" http://127.0.0.1:3999/api/v1/access-checks \
    | grep -E "Requests/sec|Latency  |  50%|  90%|  99%|Non-2xx"
}
run "allowed, no customer named (answered, not recorded)" \
  '{"employee":"jonas.becker@sunridge-solar.example","permission":"orders:write","resource":{"type":"order","id":"O-1"}}'
run "allowed, customer named (recorded in the audit chain before answering)" \
  '{"employee":"jonas.becker@sunridge-solar.example","permission":"customers:read","resource":{"type":"customer","id":"C-1042"},"customer_id":"C-1042","purpose":"SUP-77"}'
run "denied (recorded)" \
  '{"employee":"jonas.becker@sunridge-solar.example","permission":"customers:read_pii","resource":{"type":"customer","id":"C-1042"},"customer_id":"C-1042"}'
"$bin" audit verify --database "sqlite://$dir/g.db"
