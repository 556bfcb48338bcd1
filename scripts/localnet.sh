#!/usr/bin/env bash
# A single-node local wasmd chain in a data dir of its own.
#   localnet.sh start [CLUSTER_DIR]   init (test keyring, fast blocks, free ports), fund the admin
#                                     and members of CLUSTER_DIR/cluster.json, start, wait for blocks
#   localnet.sh stop                  stop it cleanly
#   localnet.sh restart               stop and start it again on its data (same ports); applies
#                                     QUERY_GAS_LIMIT (wasmd's smart-query gas limit, default
#                                     3000000) to app.toml first
#   localnet.sh status                running or not, and the latest height
# Settings: LOCALNET_HOME (default target/localnet), CHAIN_ID (default testing), WASMD (binary),
# FEE_DENOM (default stake: the denom accounts are funded in and fees are paid in) and
# MIN_GAS_PRICE (default 0 of it; a Nyx-like chain: FEE_DENOM=unym MIN_GAS_PRICE=0.025unym).
# After start, $LOCALNET_HOME/env holds RPC=... and CHAIN_ID=... for other scripts.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
home=${LOCALNET_HOME:-$top/target/localnet}
chain_id=${CHAIN_ID:-testing}
fee_denom=${FEE_DENOM:-stake}
min_gas_price=${MIN_GAS_PRICE:-0$fee_denom}
pidfile=$home/wasmd.pid
log=$home/wasmd.log

wasmd_bin() {
  local bin=${WASMD:-}
  if [[ -z $bin ]]; then
    local version
    version=$(sed -n 's/.*github.com\/CosmWasm\/wasmd \(v[0-9.]*\).*/\1/p' "$top/wasmd/go.mod" | head -1)
    bin=${WASMD_CACHE:-$HOME/.cache/nym-rewards}/wasmd-$version/wasmd
  fi
  if [[ ! -x $bin ]]; then
    echo "localnet: wasmd not found at $bin; run 'make wasmd' first" >&2
    exit 1
  fi
  export LD_LIBRARY_PATH="$(dirname "$bin")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "$bin"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

running() {
  [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

height() {
  # shellcheck disable=SC1091
  source "$home/env"
  curl -sf "$RPC/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["sync_info"]["latest_block_height"])'
}

start() {
  local cluster=${1:-}
  if running; then
    echo "localnet: already running (pid $(cat "$pidfile")); 'localnet.sh stop' first" >&2
    exit 1
  fi
  local wasmd
  wasmd=$(wasmd_bin)
  rm -rf "$home"
  mkdir -p "$home"
  local rpc_port p2p_port grpc_port
  rpc_port=${RPC_PORT:-$(free_port)}
  p2p_port=$(free_port)
  grpc_port=$(free_port)
  if ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', $rpc_port))" 2>/dev/null; then
    echo "localnet: RPC port $rpc_port is taken" >&2
    exit 1
  fi
  local h=$home/node
  echo "localnet: initialising chain $chain_id in $home"
  "$wasmd" init node0 --chain-id "$chain_id" --home "$h" >/dev/null 2>&1
  "$wasmd" keys add validator --keyring-backend test --home "$h" >/dev/null 2>&1
  "$wasmd" genesis add-genesis-account validator 1000000000000stake --keyring-backend test --home "$h"
  if [[ -n $cluster ]]; then
    local addresses
    addresses=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(" ".join([m["admin"]] + [x["address"] for x in m["members"] + m.get("joining", [])]))' "$cluster/cluster.json")
    for address in $addresses; do
      "$wasmd" genesis add-genesis-account "$address" "100000000000$fee_denom" --home "$h"
    done
    echo "localnet: funded $(wc -w <<<"$addresses") cluster accounts with 100000000000$fee_denom"
  fi
  "$wasmd" genesis gentx validator 250000000stake --chain-id "$chain_id" --keyring-backend test --home "$h" >/dev/null 2>&1
  "$wasmd" genesis collect-gentxs --home "$h" >/dev/null 2>&1
  # Fast blocks, local ports only, free gas; RPC bodies up to 4 MB (a v1-format submission of
  # 20,000 mixnodes, ~650 KB, is sent hex-encoded to simulation; the default is 1 MB); the RPC
  # answers pages of any origin (CORS), so the browser auditor can read the contract.
  sed -i -e 's/^timeout_commit = .*/timeout_commit = "300ms"/' -e 's/^timeout_propose = .*/timeout_propose = "300ms"/' \
    -e "s#^laddr = \"tcp://127.0.0.1:26657\"#laddr = \"tcp://127.0.0.1:$rpc_port\"#" \
    -e "s#^laddr = \"tcp://0.0.0.0:26656\"#laddr = \"tcp://127.0.0.1:$p2p_port\"#" \
    -e 's/^max_body_bytes = .*/max_body_bytes = 4000000/' \
    -e 's/^cors_allowed_origins = .*/cors_allowed_origins = ["*"]/' "$h/config/config.toml"
  sed -i -e "s/^minimum-gas-prices = .*/minimum-gas-prices = \"$min_gas_price\"/" \
    -e "s#^address = \"localhost:9090\"#address = \"127.0.0.1:$grpc_port\"#" \
    -e "s#^address = \"0.0.0.0:9090\"#address = \"127.0.0.1:$grpc_port\"#" "$h/config/app.toml"
  printf 'RPC=http://127.0.0.1:%s\nCHAIN_ID=%s\nRPC_PORT=%s\nP2P_PORT=%s\nGRPC_PORT=%s\n' \
    "$rpc_port" "$chain_id" "$rpc_port" "$p2p_port" "$grpc_port" >"$home/env"
  launch "$wasmd"
}

# Starts wasmd on the data and ports recorded in $home, and waits for blocks.
launch() {
  local wasmd=$1 h=$home/node
  # shellcheck disable=SC1091
  source "$home/env"
  if ! grep -q '^query_gas_limit = ' "$h/config/app.toml"; then
    echo "localnet: no query_gas_limit in $h/config/app.toml; cannot set the query gas limit" >&2
    exit 1
  fi
  sed -i -e "s/^query_gas_limit = .*/query_gas_limit = ${QUERY_GAS_LIMIT:-3000000}/" "$h/config/app.toml"
  local start_height=""
  nohup "$wasmd" start --home "$h" --rpc.laddr "tcp://127.0.0.1:$RPC_PORT" --p2p.laddr "tcp://127.0.0.1:$P2P_PORT" \
    --grpc.address "127.0.0.1:$GRPC_PORT" --api.enable=false >>"$log" 2>&1 &
  echo $! >"$pidfile"
  echo "localnet: started wasmd (pid $!), RPC $RPC, log $log"
  for _ in $(seq 1 120); do
    if ! running; then
      echo "localnet: wasmd exited; last log lines:" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    local current
    current=$(height 2>/dev/null || echo "")
    # Blocks from this process: two past the first height it answers with.
    if [[ -n $current && -z $start_height ]]; then
      start_height=$current
    fi
    if [[ -n $current && $current -ge 2 && $current -ge $((start_height + 2)) ]]; then
      echo "localnet: producing blocks (height $current)"
      return 0
    fi
    sleep 0.5
  done
  echo "localnet: no blocks after 60 s; see $log" >&2
  exit 1
}

restart() {
  [[ -f $home/env ]] || { echo "localnet: nothing to restart in $home; 'localnet.sh start' first" >&2; exit 1; }
  local wasmd
  wasmd=$(wasmd_bin)
  # shellcheck disable=SC1091
  source "$home/env"
  if [[ -z ${RPC_PORT:-} || -z ${P2P_PORT:-} || -z ${GRPC_PORT:-} ]]; then
    echo "localnet: $home/env lacks the ports (written by an older localnet.sh); start afresh" >&2
    exit 1
  fi
  stop >/dev/null
  launch "$wasmd"
}

stop() {
  if ! running; then
    echo "localnet: not running"
    rm -f "$pidfile"
    return 0
  fi
  local pid
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "localnet: stopped"
}

status() {
  if running; then
    echo "localnet: running (pid $(cat "$pidfile")), height $(height 2>/dev/null || echo '?')"
  else
    echo "localnet: not running"
    return 1
  fi
}

case ${1:-} in
  start) start "${2:-}" ;;
  stop) stop ;;
  restart) restart ;;
  status) status ;;
  *) echo "usage: localnet.sh start [CLUSTER_DIR] | stop | restart | status" >&2; exit 2 ;;
esac
