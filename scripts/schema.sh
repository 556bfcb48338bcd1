#!/usr/bin/env bash
# Generates the contract's JSON schemas. `schema.sh` rewrites schema/; `schema.sh --check`
# fails when schema/ differs from what the current messages generate.
set -euo pipefail
top=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The generator comes from the test build (`make dev-bin`), so nothing is compiled here.
bin="$(cargo metadata --format-version 1 --no-deps --manifest-path "$top/Cargo.toml" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/schema"
[[ -x $bin ]] || { echo "schema: $bin is missing; run 'make dev-bin' first" >&2; exit 1; }
# The generator writes ./schema under its working directory.
(cd "$tmp" && "$bin" >/dev/null)
if [[ ${1:-} == --check ]]; then
  if ! diff -r "$tmp/schema" "$top/schema"; then
    echo "schema/ is stale: run 'make schema' and commit the result" >&2
    exit 1
  fi
  echo "schema/ is up to date"
else
  rm -rf "$top/schema"
  cp -r "$tmp/schema" "$top/schema"
  echo "schema/ regenerated"
fi
