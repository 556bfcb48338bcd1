#!/usr/bin/env bash
# The architecture, checked on the dependency graph:
# - the operator binary `relayer` (default features) links no developer tooling: no
#   cw-multi-test, relayer-sim, relayer-devtools or plotters, no wasmer (its singlepass
#   compiler is BUSL-1.1, non-production use only: see deny.toml), and no planted bugs;
# - the auditor library needs no async runtime or networking (tokio, libp2p, reqwest);
# - a release build (no debug assertions) refuses the planted-bugs feature.
set -euo pipefail
fail=0
tooling=$(cargo tree -q -p relayer -e normal,build --prefix none | awk '{print $1}' \
  | grep -xE 'cw-multi-test|relayer-sim|relayer-devtools|plotters|wasmer|wasmer-compiler-singlepass|cosmwasm-vm' | sort -u || true)
if [[ -n $tooling ]]; then
  echo "check-tree: the operator binary links tooling: $tooling" >&2
  fail=1
fi
if cargo tree -q -p relayer -e features --prefix none | grep -q 'planted-bugs'; then
  echo "check-tree: the operator binary enables the planted-bugs feature" >&2
  fail=1
fi
runtime=$(cargo tree -q -p relayer-auditor -e normal --prefix none | awk '{print $1}' \
  | grep -xE 'tokio|libp2p|reqwest|rusqlite' | sort -u || true)
if [[ -n $runtime ]]; then
  echo "check-tree: the auditor library depends on $runtime" >&2
  fail=1
fi
# The release guard, compiled alone: refused without debug assertions, accepted with them.
guard=relayer/protocol/src/release_guard.rs
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
compile_guard() {
  rustc --edition 2024 --crate-type lib --cfg 'feature="planted-bugs"' -C "debug-assertions=$1"     --out-dir "$out" "$guard" 2>&1
}
refused=$(compile_guard off || true)
if ! grep -q 'a release build refuses it' <<<"$refused"; then
  echo "check-tree: a build without debug assertions accepted the planted-bugs feature" >&2
  fail=1
fi
if ! compile_guard on >/dev/null; then
  echo "check-tree: the release guard refuses debug builds too" >&2
  fail=1
fi
if ((fail)); then
  exit 1
fi
echo "check-tree: relayer links no tooling and no planted bugs; relayer-auditor has no runtime; release refuses planted bugs"
