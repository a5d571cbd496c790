#!/usr/bin/env bash
# Builds the minimal Rust Worker exactly as scripts/build builds Gatehouse.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$PWD/../.."
export WASM_BINDGEN_BIN="$ROOT/.tools/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
# The same standard library build as scripts/build (panics that abort, no locations), in a
# target folder under the repo's target/ (its dependency files name the standard library's
# sources, which the test command's scan of bench/ must not read).
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
export CARGO_UNSTABLE_BUILD_STD_FEATURES=optimize_for_size
export RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none"
export CARGO_TARGET_DIR="$ROOT/target/minimal-rust"
"$ROOT/.tools/bin/worker-build" --release
"$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.wasm -Oz --strip-debug --strip-producers \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
  --enable-multivalue --enable-reference-types --enable-exception-handling
