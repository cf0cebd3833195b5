#!/usr/bin/env bash
# A flood of sign-in attempts against a release build (issue 17): 200
# connections (wrk, Debian package `wrk`) post wrong passwords for made-up
# emails, each from its own address (X-Forwarded-For from a trusted proxy),
# so no throttle stops them and every one asks for Argon2 work; meanwhile a
# signed-in auditor loads a page over 2 connections. Prints the server's
# peak resident memory, the page latencies (p50/p95/p99) and how the
# attempts were answered. Figures go to docs/benchmarks.md by hand.
#
#   bash benches/signin_flood.sh        (DURATION=30s CONNECTIONS=200 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
[ -d node_modules/otplib ] || { echo "npm packages missing: run bash .ci/dev test once (or npm install)" >&2; exit 1; }
export LEPTOS_OUTPUT_NAME=gatehouse LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg
cargo build --release --no-default-features --features ssr --bin gatehouse
bin=target/release/gatehouse
dir=$(mktemp -d)
port=3998
base=http://127.0.0.1:$port
export GATEHOUSE_DATA_DIR="$dir" GATEHOUSE_DATABASE_URL="sqlite://$dir/g.db" GATEHOUSE_LISTEN=127.0.0.1:$port \
  GATEHOUSE_PUBLIC_URL=$base GATEHOUSE_TRUSTED_PROXIES=127.0.0.1 RUST_LOG=error
people=$("$bin" seed-demo)
"$bin" serve >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.2; done
read -r email _ password < <(echo "$people" | awk '$2 == "auditor" { print; exit }')
cookie=$(node .ci/fuzz-session.mjs "$base" "$email" "$password")
echo "idle: $(ps -o rss= -p $pid | awk '{printf "%.0f MB", $1 / 1024}') resident"

cat >"$dir/flood.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local ip = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  wrk.headers["X-Forwarded-For"] = ip
  local body = string.format("email=nobody%d.%d%%40example.com&password=not+the+right+password", n, math.random(1, 1e9))
  return wrk.format(nil, "/api/sign_in", nil, body)
end
-- Counters per thread (each thread has its own Lua state); done() sums them.
local threads = {}
setup = function(thread) table.insert(threads, thread) end
s401, s429, s503, other = 0, 0, 0, 0
response = function(status)
  if status == 401 then s401 = s401 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then s503 = s503 + 1
  else other = other + 1 end
end
done = function(summary, latency, requests)
  local t = { 0, 0, 0, 0 }
  for _, th in ipairs(threads) do
    t[1] = t[1] + th:get("s401"); t[2] = t[2] + th:get("s429")
    t[3] = t[3] + th:get("s503"); t[4] = t[4] + th:get("other")
  end
  io.write(string.format("attempts answered: %d checked (401), %d throttled (429), %d busy (503), %d other; p50 %.0f ms, p99 %.0f ms\n",
    t[1], t[2], t[3], t[4], latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
cat >"$dir/page.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("page p50 %.0f ms, p95 %.0f ms, p99 %.0f ms, max %.0f ms; %d pages, %d errors\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, summary.errors.status + summary.errors.timeout))
end
LUA

peak=0
( while kill -0 $pid 2>/dev/null; do ps -o rss= -p $pid; sleep 0.5; done ) >"$dir/rss" &
sampler=$!
duration=${DURATION:-30s}
wrk -t1 -c"${CONNECTIONS:-200}" -d"$duration" --timeout 20s -s "$dir/flood.lua" "$base" >"$dir/flood.out" &
flood=$!
sleep 2
wrk -t1 -c2 -d"$duration" --timeout 20s -s "$dir/page.lua" -H "Cookie: $cookie" "$base/access" >"$dir/page.out"
wait $flood
kill $sampler 2>/dev/null || true
peak=$(sort -n "$dir/rss" | tail -1)
grep -E "Requests/sec|attempts answered" "$dir/flood.out"
grep -E "page p50" "$dir/page.out"
echo "peak resident memory during the flood: $((peak / 1024)) MB"
