#!/usr/bin/env bash
# Builds wasmd (version pinned by wasmd/go.mod) from the Go module proxy into a cache keyed by
# that version, so tests do not rebuild it. Prints the binary's path on the last line.
# BECH32_PREFIX (default `wasm`) sets the address prefix, which wasmd takes at link time: a
# Nyx-like chain uses `n` (a second binary, cached apart; only the link step differs).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/.*github.com\/CosmWasm\/wasmd \(v[0-9.]*\).*/\1/p' "$top/wasmd/go.mod" | head -1)
[[ -n $version ]] || { echo "build-wasmd: cannot read the wasmd version from wasmd/go.mod" >&2; exit 1; }
prefix=${BECH32_PREFIX:-wasm}
[[ $prefix =~ ^[a-z][a-z0-9]*$ ]] || { echo "build-wasmd: BECH32_PREFIX must be lowercase letters and digits" >&2; exit 1; }
cache=${WASMD_CACHE:-$HOME/.cache/nym-rewards}/wasmd-$version
if [[ $prefix != wasm ]]; then cache=$cache-prefix-$prefix; fi
bin=$cache/wasmd
if [[ -x $bin ]] && LD_LIBRARY_PATH=$cache "$bin" version >/dev/null 2>&1; then
  echo "build-wasmd: using cached $bin" >&2
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "build-wasmd: Go is not installed" >&2; exit 1; }
echo "build-wasmd: building wasmd $version (address prefix $prefix) from the Go module proxy (several minutes on 2 cores)..." >&2
mkdir -p "$cache"
cd "$top/wasmd"
GOFLAGS=-mod=mod CGO_ENABLED=1 go build -tags netgo \
  -ldflags "-X github.com/CosmWasm/wasmd/app.Bech32Prefix=$prefix" \
  -o "$bin.tmp" github.com/CosmWasm/wasmd/cmd/wasmd
# libwasmvm ships inside the wasmvm module; keep a copy beside the binary in case the module
# cache moves (the scripts set LD_LIBRARY_PATH to this folder).
wasmvm_dir=$(GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/CosmWasm/wasmvm/v3)
cp "$wasmvm_dir/internal/api/libwasmvm.x86_64.so" "$cache/"
mv "$bin.tmp" "$bin"
echo "build-wasmd: built $bin ($(LD_LIBRARY_PATH=$cache "$bin" version))" >&2
echo "$bin"
