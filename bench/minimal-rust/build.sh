#!/usr/bin/env bash
# Builds the minimal Rust Worker exactly as scripts/build builds Gatehouse: the same tools,
# std rebuild and wasm-opt passes (scripts/bundle-env; GATEHOUSE_PLAIN_STD=1 here too).
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
. "$ROOT/scripts/bundle-env"
"$ROOT/.tools/bin/worker-build" --release
second_wasm_opt build/index_bg.wasm
