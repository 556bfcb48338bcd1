#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for `make test`: Debian's rustc-web (its wasm32
# standard library sources make the wasm build possible without rustup targets), binaryen
# (wasm-opt) and chromium (the dashboard's browser test). Idempotent: does nothing when
# everything is there.
set -euo pipefail
need=()
[[ -x /usr/bin/rustc && -d /usr/lib/rustlib/src/rust/library ]] || need+=(rustc-web cargo-web rust-web-src)
command -v wasm-opt >/dev/null || need+=(binaryen)
command -v curl >/dev/null || need+=(curl)
command -v chromium >/dev/null || need+=(chromium)
if ((${#need[@]} == 0)); then
  echo "install-deps: nothing to install"
  exit 0
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
