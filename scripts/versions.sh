# Versions the scripts share (sourced).
# The last commit whose contract is v1 (0.1.0, tagged contract-v0.1.0): the source of the
# v1 -> v2 migration check and of the v1 epochs in the query gas benchmark.
V1_CONTRACT_COMMIT=85289d8fd121b00f39566031025729a2ae0ac0ac
# cargo-deny, built into the cache once per version (scripts/install-deps.sh, make deny).
DENY_VERSION=0.20.2
DENY_ROOT=${DENY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nym-rewards/cargo-deny-$DENY_VERSION}
# wasm-bindgen's CLI, which must equal the wasm-bindgen crate in Cargo.lock; built into the
# cache once per version (scripts/install-deps.sh, make auditor-web).
WASM_BINDGEN_VERSION=0.2.130
WASM_BINDGEN_ROOT=${WASM_BINDGEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nym-rewards/wasm-bindgen-$WASM_BINDGEN_VERSION}
