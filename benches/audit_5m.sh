#!/usr/bin/env bash
# Issue 4's benchmarks on 5 million audit events (SQLite): builds the
# release server, then runs benches/audit_5m.mjs (Node.js, otplib and wrk
# from Debian). Takes about half an hour and several GB under $TMPDIR.
# Usage: bash benches/audit_5m.sh   (EVENTS=200000 for a quick run)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
[ -d node_modules/otplib ] || { echo "npm packages missing: run bash .ci/dev test (or npm install) first" >&2; exit 1; }
export LEPTOS_OUTPUT_NAME=gatehouse LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg
cargo build --release --no-default-features --features ssr --bin gatehouse
GATEHOUSE_BIN="${CARGO_TARGET_DIR:-target}/release/gatehouse" exec node benches/audit_5m.mjs
