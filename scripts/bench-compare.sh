#!/usr/bin/env bash
# `make bench-compare`: protocol v1 beside v2 in one run on this machine. Builds the release
# `relayer-dev` of the git ref V1_REF (default: the tag protocol-v1) from a clean export of
# that tree, runs its network benchmark, then this tree's, with the same sizes, policies and
# settings, and then this tree's staggered cases on a chain with blocks 1 s and 5 s apart.
#
#   V1_REF      git ref of v1 (default protocol-v1)
#   SIZES       network sizes of v2 with instant blocks (default 4,16,64,128)
#   V1_SIZES    network sizes of v1 (default 4,16,64: v1 opens two connections per pair, and
#               n = 128 in one process needs more files than the usual hard limit of 20,000)
#   BLOCK_SIZES network sizes with 1 s and 5 s blocks (default 4,16,64)
#   EPOCHS      measured epochs per case (default 5)
#   OUT         where the results go (default bench/results): OUT/network.json (v2),
#               OUT/v1/network.json, OUT/blocks/network.json, each with its plots, and
#               OUT/compare.md (the tables of the README)
set -euo pipefail
cd "$(dirname "$0")/.."
V1_REF=${V1_REF:-protocol-v1}
SIZES=${SIZES:-4,16,64,128}
V1_SIZES=${V1_SIZES:-4,16,64}
BLOCK_SIZES=${BLOCK_SIZES:-4,16,64}
EPOCHS=${EPOCHS:-5}
OUT=${OUT:-bench/results}
V1_DIR=target/v1
start=$(date +%s)
step() { echo "bench-compare: $* ($(($(date +%s) - start)) s)"; }

if ! v1_commit=$(git rev-parse --verify --quiet "$V1_REF^{commit}"); then
  echo "bench-compare: no git ref '$V1_REF' here (fetch the tags: git fetch --tags, or set V1_REF)" >&2
  exit 2
fi
step "building v1 ($V1_REF = $v1_commit) in $V1_DIR"
if [ "$(cat "$V1_DIR/commit" 2>/dev/null)" != "$v1_commit" ]; then
  rm -rf "$V1_DIR/src"
  mkdir -p "$V1_DIR/src"
  git archive "$v1_commit" | tar -x -C "$V1_DIR/src"
  echo "$v1_commit" > "$V1_DIR/commit"
fi
(cd "$V1_DIR/src" && CARGO_TARGET_DIR="$PWD/../target" cargo build --release -q --locked -p relayer-devtools)
step "building v2"
cargo build --release -q --locked -p relayer-devtools

common=(--mixnodes 1000 --epochs "$EPOCHS")
step "v1: instant blocks, both policies, n = $V1_SIZES"
"$V1_DIR/target/release/relayer-dev" bench "${common[@]}" --sizes "$V1_SIZES" --policies staggered,race --out "$OUT/v1"
step "v2: instant blocks, both policies, n = $SIZES"
target/release/relayer-dev bench "${common[@]}" --sizes "$SIZES" --policies staggered,race --out "$OUT"
step "v2: blocks 1 s and 5 s apart, staggered, n = $BLOCK_SIZES"
target/release/relayer-dev bench "${common[@]}" --sizes "$BLOCK_SIZES" --policies staggered --block-ms 1000,5000 --out "$OUT/blocks"
scripts/bench-tables.py "$OUT" > "$OUT/compare.md"
step "done: $OUT/compare.md"
cat "$OUT/compare.md"
