#!/usr/bin/env bash
# Gas on a real local wasmd: builds the wasm and wasmd (cached), starts a chain of its own,
# and runs `relayer-dev bench-wasmd` (SubmitEpoch for n x M and the rejected duplicate, the
# largest query answers at the mixnode cap, over v2 epochs and over v1 epochs migrated from the
# v1 contract built from its commit, bracketed by restarting the chain with different query
# gas limits). Writes wasmd_gas.json and wasmd_gas.svg to OUT (default bench/results).
# Extra arguments go to `relayer-dev bench-wasmd`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck source=scripts/versions.sh
source scripts/versions.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-wasmd.XXXXXX")
export LOCALNET_HOME=$work/chain
cleanup() {
  local status=$?
  scripts/localnet.sh stop >/dev/null 2>&1 || true
  if [[ $status -ne 0 ]]; then
    echo "bench-wasmd: FAILED; chain log in $LOCALNET_HOME/wasmd.log" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

wasmd=$(scripts/build-wasmd.sh | tail -1)
export WASMD=$wasmd
make -s wasm
v1_wasm=$(scripts/build-wasm-at.sh "$V1_CONTRACT_COMMIT" | tail -1)
relayer_dev=${RELAYER_DEV:-}
if [[ -z $relayer_dev ]]; then
  cargo build -q -p relayer-devtools
  relayer_dev=$top/target/debug/relayer-dev
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rpc_port=$(port)
rpc=http://127.0.0.1:$rpc_port
"$relayer_dev" init-cluster --nodes 1 --out "$work/cluster" --rpc "$rpc" --chain-id testing \
  --p2p-base-port "$(port)" --http-base-port "$(port)" >/dev/null
RPC_PORT=$rpc_port scripts/localnet.sh start "$work/cluster"
"$relayer_dev" bench-wasmd --node "$rpc" --cluster "$work/cluster" \
  --wasmd-version "$(sed -n 's/.*github.com\/CosmWasm\/wasmd \(v[0-9.]*\).*/\1/p' wasmd/go.mod | head -1)" \
  --restart-command "$top/scripts/localnet.sh restart" --v1-wasm "$v1_wasm" \
  --out "${OUT:-bench/results}" "$@"
