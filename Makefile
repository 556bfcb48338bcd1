# Build, test and run targets. `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Tests, clippy and the tooling runs of `make test` share one build: the workspace's crates
# compile through clippy-driver (what `cargo clippy` runs, here producing the test build), so
# clippy's warnings fail the build and nothing is compiled twice. The planted bugs are
# compiled into that (debug) build so the simulator can switch them on; the operator's binary
# never has them (`make tree-check`).
FEATURES := --features relayer-sim/planted-bugs
CLIPPY_DRIVER := $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
LINTED := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
TEST_BUILD := $(LINTED) cargo test --workspace --all-targets $(FEATURES)
# `relayer-dev` from that build (cargo builds it for the devtools' integration tests).
DEV := target/debug/relayer-dev

WASM_TARGET_DIR ?= target-wasm
WASM_OUT := artifacts/nym_rewards.wasm
AUDITOR_WEB_OUT := artifacts/auditor
AUDITOR_WEB_MAX_BYTES := 500000
WASM_MAX_BYTES := 819200
RUST_LLD := $(shell rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install what a fresh Debian machine lacks (rustc-web for the wasm build, binaryen, chromium)
	@scripts/install-deps.sh

.PHONY: fmt-check
fmt-check: ## cargo fmt --check
	cargo fmt --all -- --check

.PHONY: clippy
clippy: ## cargo clippy -D warnings on every target
	cargo clippy --workspace --all-targets $(FEATURES) -- -D warnings

.PHONY: deny
deny: ## License check of every dependency (cargo-deny, offline; deny.toml)
	@source scripts/versions.sh && { test -x "$$DENY_ROOT/bin/cargo-deny" || scripts/install-deps.sh; } \
		&& "$$DENY_ROOT/bin/cargo-deny" check licenses

.PHONY: tree-check
tree-check: ## The operator binary links no tooling or planted bugs; the auditor no runtime
	@scripts/check-tree.sh

.PHONY: wasm
wasm: ## Build artifacts/nym_rewards.wasm (Debian rustc-web + build-std) and check its size
	@scripts/build-wasm.sh "$(WASM_TARGET_DIR)" "$(WASM_OUT)" "$(WASM_MAX_BYTES)" "$(RUST_LLD)"

.PHONY: auditor-web
auditor-web: ## Build the browser auditor into artifacts/auditor/ (wasm-bindgen; wasm within 500 KB) and the standalone verify.html
	@scripts/build-auditor-web.sh "$(WASM_TARGET_DIR)" "$(AUDITOR_WEB_OUT)" "$(AUDITOR_WEB_MAX_BYTES)" "$(RUST_LLD)"

.PHONY: schema
schema: dev-bin ## Regenerate schema/ from the contract's messages
	@scripts/schema.sh

.PHONY: schema-check
schema-check: dev-bin ## Fail when schema/ is stale
	@scripts/schema.sh --check

.PHONY: unit
unit: ## Every cargo test, built through clippy (-D warnings); the simulation budget and planted bugs included (needs the wasm)
	$(TEST_BUILD) --no-fail-fast

.PHONY: dev-bin
dev-bin: ## Build relayer-dev as the test build has it (a no-op after `make unit`)
	$(TEST_BUILD) --no-run -q

.PHONY: devnet-smoke
devnet-smoke: dev-bin ## relayer-dev devnet for 3 epochs; fails unless every epoch passes the auditor check
	$(DEV) devnet --nodes 4 --epochs 3 --epoch-secs 2 --summary target/devnet-summary.json
	@python3 -c 'import json,sys; e=json.load(open("target/devnet-summary.json"))["epochs"]; ok=len(e)==3 and all(x["auditor_verified"] for x in e); print("devnet summary:", len(e), "epochs, auditor_verified" , all(x["auditor_verified"] for x in e)); sys.exit(0 if ok else 1)'

.PHONY: wasmd
wasmd: ## Build wasmd v0.61.14 from the Go module proxy (cached by version)
	@scripts/build-wasmd.sh >/dev/null

.PHONY: localnet-start
localnet-start: wasmd ## Start a local single-node wasmd (CLUSTER=dir funds a cluster's accounts)
	@scripts/localnet.sh start $(CLUSTER)

.PHONY: localnet-stop
localnet-stop: ## Stop the local wasmd
	@scripts/localnet.sh stop

.PHONY: e2e-wasmd
e2e-wasmd: dev-bin auditor-web ## Real wasmd, every key made by its node, https: a Nyx-like chain (prefix n, fees in unym), then the full run (epochs, audits, outage, rotation, migration, gas)
	@RELAYER_DEV=$(DEV) E2E_CHAIN=nyx scripts/e2e-wasmd.sh
	@RELAYER_DEV=$(DEV) scripts/e2e-wasmd.sh

.PHONY: bench-gas
bench-gas: wasm ## Contract gas for n in {4,16,64} and M in {100,1000,5000} -> bench/results/contract_gas.json
	cargo bench -q -p nym-rewards-vm --bench contract_gas --profile dev # gas is deterministic: no release build needed

.PHONY: bench-wasmd
bench-wasmd: dev-bin ## Real wasmd gas: SubmitEpoch for n in {4,16,64} x M in {100,1000,5000}, duplicates, queries at M = 20,000 -> bench/results/wasmd_gas.json + .svg
	@RELAYER_DEV=$(DEV) scripts/bench-wasmd.sh

.PHONY: bench
bench: bench-gas bench-network bench-micro ## Every benchmark: contract gas, network (n = 4, 16, 64, 128), micro

.PHONY: bench-network
bench-network: ## relayer-dev bench (release build): n in {4,16,64,128} x both policies, M = 1000 -> bench/results/ JSON + SVG
	cargo run --release -q -p relayer-devtools -- bench --sizes 4,16,64,128 --policies staggered,race --mixnodes 1000 --epochs 5 --out bench/results

.PHONY: bench-compare
bench-compare: ## Protocol v1 (tag protocol-v1, built from it) beside v2 in one run, and v2 with chain blocks 1 s and 5 s apart -> bench/results/{network.json,v1/,blocks/,compare.md}
	scripts/bench-compare.sh

.PHONY: bench-network-wan
bench-network-wan: ## relayer-dev bench (release) with emulated WAN delays (5 regions, 5-150 ms one way) -> bench/results/wan/
	cargo run --release -q -p relayer-devtools -- bench --wan --sizes 4,16,64 --policies staggered --mixnodes 1000 --epochs 5 --out bench/results/wan

.PHONY: bench-flood
bench-flood: ## relayer-dev bench (release) with 16 clients flooding one node's API, beside a run without -> target/bench-flood/
	cargo run --release -q -p relayer-devtools -- bench --sizes 4,16 --policies staggered --mixnodes 1000 --epochs 5 --out target/bench-flood/quiet
	cargo run --release -q -p relayer-devtools -- bench --sizes 4,16 --policies staggered --mixnodes 1000 --epochs 5 --api-flood 16 --out target/bench-flood/flood

.PHONY: bench-micro
bench-micro: ## criterion: SQLite ingestion, averaging, median, digest, verification -> bench/results/micro.json
	cargo bench -p relayer-devtools --bench micro
	scripts/collect-criterion.py target/criterion bench/results/micro.json

.PHONY: bench-smoke
bench-smoke: dev-bin ## CI smoke run of the network benchmark (n = 4, one epoch, an API flood) so the harness keeps working
	$(DEV) bench --sizes 4 --policies staggered --mixnodes 100 --epochs 1 --api-flood 4 --out target/bench-smoke
	test -s target/bench-smoke/network.json && test -s target/bench-smoke/latency.svg
	@python3 -c 'import json,sys; f=json.load(open("target/bench-smoke/network.json"))["cases"][0].get("api_flood") or {}; print("api flood:", f); sys.exit(0 if f.get("served",0)+f.get("limited",0) > 0 else 1)'

SOAK_SECS ?= 600

.PHONY: sim
sim: ## The CI simulation budget: seeded faulty runs, n in {4,7,10}, zero violations, planted bugs found (SIM_BUDGET_SECS)
	cargo test -p relayer-sim --features planted-bugs --test simulation -- --nocapture

.PHONY: sim-wan
sim-wan: ## Simulated WAN (5 regions, 5-150 ms, FIFO 100 Mbit/s links), n in {16,64,128,256}, M = 1000 -> bench/results/sim_wan.json
	cargo run --release -q -p relayer-devtools -- sim --wan --seed 1 --seeds 8 --nodes 16,64,128,256 --epochs 3 \
		--mixnodes 1000 --faults none --quiet --report bench/results/sim_wan.json

.PHONY: sim-soak
sim-soak: ## Long simulation soak (SOAK_SECS, default 600) -> bench/results/sim_soak.json
	cargo run --release -q -p relayer-devtools -- sim --seed 1000000 --seeds 100000000 --nodes 4,7,10,16 --epochs 10 \
		--faults none,network,crash,byzantine,equivocation,all,outage --policy staggered,race \
		--budget-secs $(SOAK_SECS) --quiet --report bench/results/sim_soak.json

.PHONY: demo
demo: ## A 4-node network with 100 mixnodes on the embedded chain, until Ctrl-C
	cargo run -q -p relayer-devtools -- devnet --nodes 4 --mixnodes 100 --epoch-secs 5

.PHONY: test
test: ## Everything CI checks (each phase timed)
	@scripts/timed.sh deps fmt-check tree-check deny wasm auditor-web unit schema-check devnet-smoke bench-smoke
	@echo "make test: all checks passed"
