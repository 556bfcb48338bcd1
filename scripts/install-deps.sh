#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for `make test`: Debian's rustc-web (its wasm32
# standard library sources make the wasm build possible without rustup targets), binaryen
# (wasm-opt), chromium (the browser tests), cargo-deny (the license check), wasm-bindgen's CLI
# (the browser auditor) and the clippy and rustfmt components; apt-get runs as root, or
# through sudo.
# Idempotent: does nothing when everything is there. `make test` runs it first.
set -euo pipefail
# cargo-deny for the license check, built once per version into the cache (as wasmd is).
# shellcheck source=scripts/versions.sh
source "$(dirname "$0")/versions.sh"
if [[ ! -x $DENY_ROOT/bin/cargo-deny ]]; then
  echo "install-deps: building cargo-deny $DENY_VERSION into $DENY_ROOT (once per version)"
  cargo install --locked --quiet "cargo-deny@$DENY_VERSION" --root "$DENY_ROOT"
fi
# wasm-bindgen's CLI for the browser auditor, the version of the crate in Cargo.lock. Not
# --locked: the CLI's own lock file names crate versions the registry here lacks.
if [[ ! -x $WASM_BINDGEN_ROOT/bin/wasm-bindgen ]]; then
  echo "install-deps: building wasm-bindgen-cli $WASM_BINDGEN_VERSION into $WASM_BINDGEN_ROOT (once per version)"
  cargo install --quiet "wasm-bindgen-cli@$WASM_BINDGEN_VERSION" --root "$WASM_BINDGEN_ROOT"
fi
# clippy and rustfmt, which the test build and the format check run.
if command -v rustup >/dev/null && { ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; }; then
  echo "install-deps: adding the clippy and rustfmt components"
  rustup component add clippy rustfmt
fi
need=()
[[ -x /usr/bin/rustc && -d /usr/lib/rustlib/src/rust/library ]] || need+=(rustc-web cargo-web rust-web-src)
command -v wasm-opt >/dev/null || need+=(binaryen)
command -v curl >/dev/null || need+=(curl)
command -v chromium >/dev/null || need+=(chromium)
if ((${#need[@]} == 0)); then
  echo "install-deps: nothing to install"
  exit 0
fi
sudo=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: ${need[*]} missing; run as root (apt-get) or install them" >&2
    exit 1
  fi
  sudo=(sudo)
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
