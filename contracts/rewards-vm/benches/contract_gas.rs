//! Contract gas: the real `.wasm` in cosmwasm-vm, SubmitEpoch for n in {4, 16, 64} signers
//! (threshold floor(2n/3)+1 signatures) and M in {100, 1000, 5000} mixnodes, plus the rejected
//! duplicate. Reports VM gas, storage reads and writes, and the wasmd gas they imply. Gas is
//! deterministic, so one run is the measurement. Writes `bench/results/contract_gas.json`.
//!
//! Run: `make bench-gas` (or `cargo bench --bench contract_gas` after `make wasm`).

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use nym_rewards::digest::DigestContext;
use nym_rewards::msg::{ExecuteMsg, MixnodeReward};
use nym_rewards_vm::{CallCost, VmContract, instantiate_msg, sign_epoch, wasm_bytes};
use serde::Serialize;

const GENESIS: u64 = 1_700_000_000;
/// Bytes a signed transaction adds around the message (auth info, signature, fee).
const TX_ENVELOPE_BYTES: u64 = 350;

#[derive(Serialize)]
struct Row {
    signers_n: usize,
    signatures: usize,
    mixnodes: u32,
    tx_bytes: u64,
    submit: CallCost,
    submit_wasmd_gas: u64,
    duplicate: CallCost,
    duplicate_wasmd_gas: u64,
}

fn measure(wasm: &[u8], n: usize, mixnodes: u32) -> Result<Row, String> {
    let mut contract = VmContract::new(wasm).map_err(|err| err.to_string())?;
    let api = contract.api;
    let keys: Vec<SigningKey> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let addresses: Vec<String> = (0..n)
        .map(|i| api.addr_make(&format!("member-{i}")))
        .collect();
    let msg = instantiate_msg(&keys, &addresses, GENESIS, 60, 5_000);
    contract.instantiate(&msg, &addresses[0], GENESIS).0?;
    let now = GENESIS + 60;
    let env = contract.env_at(now);
    let rewards: Vec<MixnodeReward> = (1..=mixnodes)
        .map(|mix_id| MixnodeReward {
            mix_id,
            uptime_bp: (mix_id * 7_919 % 10_001) as u16,
        })
        .collect();
    let threshold = 2 * n / 3 + 1;
    let signers: Vec<usize> = (0..threshold).collect();
    let context = DigestContext {
        chain_id: &env.block.chain_id,
        contract_addr: env.contract.address.as_str(),
        signer_set_version: 1,
        epoch: 0,
    };
    let signatures = sign_epoch(&keys, &signers, &context, &rewards);
    let submit = ExecuteMsg::submit_epoch(0, 1, &rewards, &signatures);
    let tx_bytes = serde_json::to_vec(&submit)
        .map_err(|err| err.to_string())?
        .len() as u64
        + TX_ENVELOPE_BYTES;
    let (result, submit_cost) = contract.execute(&submit, &addresses[0], now);
    result?;
    let (result, duplicate_cost) = contract.execute(&submit, &addresses[1], now);
    if result.is_ok() {
        return Err("the duplicate was accepted".into());
    }
    Ok(Row {
        signers_n: n,
        signatures: threshold,
        mixnodes,
        tx_bytes,
        submit_wasmd_gas: submit_cost.wasmd_gas(tx_bytes),
        submit: submit_cost,
        duplicate_wasmd_gas: duplicate_cost.wasmd_gas(tx_bytes),
        duplicate: duplicate_cost,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test` one small case runs as a smoke test
    // and nothing is written.
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let wasm = match wasm_bytes() {
        Ok(wasm) => wasm,
        Err(err) => {
            eprintln!("contract_gas: {err}");
            std::process::exit(1);
        }
    };
    let mut rows = Vec::new();
    println!(
        "{:>4} {:>4} {:>6} {:>9} {:>14} {:>12} {:>14} {:>12}",
        "n", "sigs", "M", "tx bytes", "submit VM gas", "submit wasmd", "dup VM gas", "dup wasmd"
    );
    let (sizes, mixnode_counts): (&[usize], &[u32]) = if measuring {
        (&[4, 16, 64], &[100, 1_000, 5_000])
    } else {
        (&[4], &[100])
    };
    for &n in sizes {
        for &mixnodes in mixnode_counts {
            match measure(&wasm, n, mixnodes) {
                Ok(row) => {
                    println!(
                        "{:>4} {:>4} {:>6} {:>9} {:>14} {:>12} {:>14} {:>12}",
                        row.signers_n,
                        row.signatures,
                        row.mixnodes,
                        row.tx_bytes,
                        row.submit.vm_gas,
                        row.submit_wasmd_gas,
                        row.duplicate.vm_gas,
                        row.duplicate_wasmd_gas
                    );
                    rows.push(row);
                }
                Err(err) => {
                    eprintln!("contract_gas: n = {n}, M = {mixnodes}: {err}");
                    std::process::exit(1);
                }
            }
        }
    }
    if !measuring {
        println!(
            "smoke run: {} case(s) measured, nothing written",
            rows.len()
        );
        return;
    }
    let out =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/results/contract_gas.json");
    let report = serde_json::json!({
        "model": "wasmd gas = VM gas / 140000 + 60000 instance load + 2000 + 30/byte per write + 1000 + 3/byte per read + 10 per tx byte (tx bytes = message JSON + 350 envelope)",
        "rows": rows,
    });
    match serde_json::to_string_pretty(&report) {
        Ok(text) => {
            if let Err(err) = std::fs::write(&out, text + "\n") {
                eprintln!("contract_gas: writing {}: {err}", out.display());
                std::process::exit(1);
            }
            println!("written to {}", out.display());
        }
        Err(err) => {
            eprintln!("contract_gas: {err}");
            std::process::exit(1);
        }
    }
}
