#!/usr/bin/env bash
# Issue 18's production figures, with the release server (wrk from Debian):
#  1. cold start to ready and resident memory idle, on a fresh SQLite
#     database with the demo company;
#  2. access checks (recorded: a customer is named) and event ingestion
#     (batches of 100) against one replica alone, then against three
#     replicas on one MariaDB database (one wrk per replica, at once).
# Needs MariaDB at 127.0.0.1:3306 (root, no password). Figures go to
# docs/benchmarks.md by hand. Usage: bash benches/replicas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
command -v mariadb >/dev/null || { echo "the mariadb client is missing" >&2; exit 1; }
export LEPTOS_OUTPUT_NAME=gatehouse LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg
cargo build --release --no-default-features --features ssr --bin gatehouse
bin=${CARGO_TARGET_DIR:-target}/release/gatehouse
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  mariadb -h127.0.0.1 -uroot -e 'DROP DATABASE IF EXISTS gh_bench_replicas' || true
  [ -n "${KEEP:-}" ] && echo "kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT
rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
ms() { date +%s%3N; }
wait_ready() { # port
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "the server for port $1 did not start" >&2; exit 1; }
  for _ in $(seq 600); do curl -fs "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.01; done
  echo "no ready answer on port $1" >&2; exit 1
}

for port in 3990 3991 3992 3993; do
  ! curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { echo "port $port is taken by another server" >&2; exit 1; }
done

echo "== 1. cold start on SQLite (release build)"
export GATEHOUSE_DATA_DIR="$dir/sqlite" GATEHOUSE_DATABASE_URL="sqlite://$dir/sqlite/g.db" RUST_LOG=warn
"$bin" seed-demo >/dev/null
for run in 1 2 3; do
  start=$(ms)
  GATEHOUSE_LISTEN=127.0.0.1:3990 "$bin" serve >"$dir/cold.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_ready 3990
  echo "run $run: ready after $(( $(ms) - start )) ms"
  sleep 5
  echo "run $run: resident memory idle 5 s after start: $(rss_mb "$pid") MB"
  kill -TERM "$pid"; wait "$pid" || true
done

echo "== 2. one and three replicas on MariaDB"
mariadb -h127.0.0.1 -uroot -e 'DROP DATABASE IF EXISTS gh_bench_replicas;
  CREATE DATABASE gh_bench_replicas CHARACTER SET utf8mb4 COLLATE utf8mb4_bin'
export GATEHOUSE_DATABASE_URL="mysql://root@127.0.0.1:3306/gh_bench_replicas"
export GATEHOUSE_MASTER_KEY
GATEHOUSE_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export GATEHOUSE_DATA_DIR="$dir/mysql"
people=$("$bin" seed-demo)
employee=$(awk '$2 == "support" { print $1; exit }' <<<"$people")
token=$("$bin" service-token bench access:check,events:write)
for i in 1 2 3; do
  GATEHOUSE_LISTEN="127.0.0.1:399$i" "$bin" serve >"$dir/replica$i.log" 2>&1 &
  pids+=("$!")
  wait_ready "399$i"
done

cat >"$dir/check.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '{"employee":"$employee","permission":"customers:read","resource":{"type":"customer","id":"C-1042"},"customer_id":"C-1042","purpose":"SUP-77"}'
LUA
events=$(for i in $(seq 100); do
  printf '{"employee":"%s","action":"customer.view","customer_id":"C-%d","fields":["address"],"record_types":["customer"],"purpose":"SUP-77","source_system":"support-desk","occurred_at":"2026-06-01T10:00:00Z"}' "$employee" "$i"
  if [ "$i" -lt 100 ]; then printf ','; fi
done)
cat >"$dir/events.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '{"events":[$events]}'
LUA

load() { # label, script, path, ports...
  local label=$1 script=$2 path=$3; shift 3
  local outs=()
  for port in "$@"; do
    wrk -t1 -c"${CONNECTIONS:-4}" -d"${DURATION:-20s}" --latency -s "$script" "http://127.0.0.1:$port$path" >"$dir/wrk.$port" &
    outs+=("$!")
  done
  wait "${outs[@]}"
  echo "-- $label"
  for port in "$@"; do
    echo "replica on $port: $(grep -E 'Requests/sec' "$dir/wrk.$port" | awk '{print $2}') requests/s; \
p50 $(awk '$1 == "50%" {print $2}' "$dir/wrk.$port"), p99 $(awk '$1 == "99%" {print $2}' "$dir/wrk.$port"); \
$(grep -E 'Non-2xx' "$dir/wrk.$port" || echo 'all 2xx')"
  done
}
load "recorded access checks, one replica" "$dir/check.lua" /api/v1/access-checks 3991
load "recorded access checks, three replicas at once" "$dir/check.lua" /api/v1/access-checks 3991 3992 3993
load "event batches of 100, one replica" "$dir/events.lua" /api/v1/audit-events 3991
load "event batches of 100, three replicas at once" "$dir/events.lua" /api/v1/audit-events 3991 3992 3993
for p in "${pids[@]:3}"; do echo "replica (pid $p) resident memory after the load: $(rss_mb "$p") MB"; done
"$bin" audit verify
