#!/usr/bin/env bash
# Runs `cargo build` for wasm32-unknown-unknown with Debian's rustc-web (which ships the wasm32
# std sources) and build-std, since rustup targets cannot be downloaded here; the contract's
# and the browser auditor's builds share it. Usage:
#   wasm-cargo.sh TARGET_DIR RUST_LLD EXTRA_RUSTFLAGS CARGO_BUILD_ARGS...
set -euo pipefail
target_dir=$1 lld=$2 extra_rustflags=$3
shift 3

if [[ ! -x /usr/bin/rustc || ! -d /usr/lib/rustlib/src/rust/library ]]; then
  echo "wasm-cargo: Debian's rustc-web is missing; run 'make deps' (apt-get install rustc-web cargo-web rust-web-src)" >&2
  exit 1
fi
if [[ ! -x $lld ]]; then
  echo "wasm-cargo: rust-lld not found at $lld (rustup's toolchain provides it)" >&2
  exit 1
fi
# Debian's toolchain builds the wasm: no rustup wrapper (such as make test's clippy-driver).
unset RUSTC_WORKSPACE_WRAPPER RUSTC_WRAPPER CLIPPY_ARGS
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="-C target-cpu=mvp $extra_rustflags" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$lld" \
  exec /usr/bin/cargo build --profile wasm --locked --target wasm32-unknown-unknown \
  -Zbuild-std=std,panic_abort --target-dir "$target_dir" "$@"
