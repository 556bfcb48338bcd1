#!/usr/bin/env bash
# Runs the given make targets in order, stopping at the first failure, and prints how long
# each took (and the total): what `make test` and CI show for their phases.
set -euo pipefail
start=$(date +%s)
report=()
for target in "$@"; do
  t0=$(date +%s)
  echo "==> make $target"
  make --no-print-directory "$target"
  took=$(($(date +%s) - t0))
  report+=("$(printf '%-14s %5ss' "$target" "$took")")
  echo "==> $target took ${took}s (total $(($(date +%s) - start))s)"
done
echo "phase times:"
printf '  %s\n' "${report[@]}"
echo "  total          $(($(date +%s) - start))s"
