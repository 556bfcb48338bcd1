#!/usr/bin/env bash
# Builds the contract's wasm as it was at a git commit (its own sources, Cargo.lock and build
# script), into a cache keyed by that commit, so the migration check can deploy an older
# version. Prints the wasm's path on the last line. Usage: build-wasm-at.sh COMMIT
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$top" rev-parse --verify "${1:?usage: build-wasm-at.sh COMMIT}^{commit}" 2>/dev/null) || {
  echo "build-wasm-at: commit $1 is not in this clone (a shallow clone lacks it; fetch the history)" >&2
  exit 1
}
cache=${WASM_CACHE:-$HOME/.cache/nym-rewards}/contracts
out=$cache/nym_rewards-$commit.wasm
if [[ -s $out ]]; then
  echo "build-wasm-at: using cached $out" >&2
  echo "$out"
  exit 0
fi
src=$(mktemp -d "${TMPDIR:-/tmp}/wasm-at.XXXXXX")
mkdir -p "$cache"
partial=$(mktemp "$cache/.nym_rewards-$commit.XXXXXX")
trap 'rm -rf "$src" "$partial"' EXIT
git -C "$top" archive "$commit" | tar -x -C "$src"
echo "build-wasm-at: building the contract of ${commit:0:12}" >&2
lld=$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld
(cd "$src" && scripts/build-wasm.sh "$src/target-wasm" "$partial" 819200 "$lld" >&2)
mv "$partial" "$out"
echo "$out"
