//! The real `artifacts/nym_rewards.wasm` (built by `make wasm`) in cosmwasm-vm: the static checks
//! of `cosmwasm-check` with the capabilities wasmd v0.61 offers, then instantiate, a valid
//! SubmitEpoch, a rejected duplicate and queries, printing the VM gas of each.

use cosmwasm_vm::WasmLimits;
use cosmwasm_vm::internals::{Logger, check_wasm};
use ed25519_dalek::SigningKey;
use nym_rewards::digest::DigestContext;
use nym_rewards::msg::{EpochRewardsResponse, ExecuteMsg, MixnodeReward, QueryMsg};
use nym_rewards_vm::{VmContract, instantiate_msg, sign_epoch, wasm_bytes, wasmd_capabilities};

const GENESIS: u64 = 1_700_000_000;
const EPOCH_SECS: u64 = 60;

fn wasm() -> Vec<u8> {
    wasm_bytes().unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn wasm_passes_the_static_checks_with_wasmd_capabilities() {
    let wasm = wasm();
    check_wasm(
        &wasm,
        &wasmd_capabilities(),
        &WasmLimits::default(),
        Logger::Off,
    )
    .expect("cosmwasm-check's static checks pass");
    println!("nym_rewards.wasm: {} bytes", wasm.len());
}

#[test]
fn wasm_without_the_iterator_capability_is_refused() {
    // Proves the check looks at capabilities at all: the contract requires `iterator`.
    let wasm = wasm();
    let mut without = wasmd_capabilities();
    without.remove("iterator");
    assert!(check_wasm(&wasm, &without, &WasmLimits::default(), Logger::Off).is_err());
}

#[test]
fn wasm_runs_instantiate_submit_duplicate_and_query() {
    let mut contract = VmContract::new(&wasm()).unwrap();
    let api = contract.api;
    let keys: Vec<SigningKey> = (1..=4u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let addresses: Vec<String> = (0..4)
        .map(|i| api.addr_make(&format!("member-{i}")))
        .collect();
    let admin = api.addr_make("admin");

    let msg = instantiate_msg(&keys, &addresses, GENESIS, EPOCH_SECS, 1_000);
    let (result, cost) = contract.instantiate(&msg, &admin, GENESIS);
    result.expect("instantiate");
    println!("VM gas instantiate: {}", cost.vm_gas);

    let now = GENESIS + EPOCH_SECS;
    let env = contract.env_at(now);
    let rewards: Vec<MixnodeReward> = (1..=100)
        .map(|mix_id| MixnodeReward {
            mix_id,
            uptime_bp: (mix_id * 97 % 10_001) as u16,
        })
        .collect();
    let context = DigestContext {
        chain_id: &env.block.chain_id,
        contract_addr: env.contract.address.as_str(),
        signer_set_version: 1,
        epoch: 0,
    };
    let signatures = sign_epoch(&keys, &[0, 1, 3], &context, &rewards);
    let submit = ExecuteMsg::submit_epoch(0, 1, &rewards, &signatures);
    let (result, submit_cost) = contract.execute(&submit, &addresses[1], now);
    result.expect("valid submission accepted");
    println!(
        "VM gas SubmitEpoch (4 members, 3 signatures, 100 mixnodes): {}",
        submit_cost.vm_gas
    );
    assert_eq!(
        submit_cost.writes, 3,
        "summary, rewards (one chunk) and signatures: one write each"
    );
    assert_eq!(
        submit_cost.reads, 5,
        "duplicate check, config, version in force, sender's index, threshold and keys"
    );
    let (set, _) = contract.query(&QueryMsg::SignerSet { version: Some(1) }, now);
    let set_json = set.expect("signer set").len() as u64;
    assert!(
        submit_cost.read_bytes < set_json,
        "a submission reads less than the whole signer set: {} vs {set_json} bytes",
        submit_cost.read_bytes
    );

    // The same message for a not-yet-ended epoch is rejected before any signature work: the
    // reference for what parsing and an early rejection cost.
    let mut early = submit.clone();
    if let ExecuteMsg::SubmitEpoch { epoch, .. } = &mut early {
        *epoch = 5;
    }
    let (result, early_cost) = contract.execute(&early, &addresses[2], now);
    assert!(
        result
            .expect_err("epoch 5 has not ended")
            .contains("ends at")
    );

    let (result, duplicate_cost) = contract.execute(&submit, &addresses[2], now);
    let err = result.expect_err("duplicate rejected");
    assert!(err.contains("already submitted by"), "{err}");
    assert!(err.contains(&addresses[1]), "{err}");
    println!(
        "VM gas rejected duplicate: {} (early rejection reference: {})",
        duplicate_cost.vm_gas, early_cost.vm_gas
    );
    // What the chain charges (the VM part is a few hundred SDK gas of either): the duplicate
    // may read the summary it names, nothing else.
    let tx_bytes = serde_json::to_vec(&submit).unwrap().len() as u64;
    assert!(
        duplicate_cost.wasmd_gas(tx_bytes) * 100 <= early_cost.wasmd_gas(tx_bytes) * 101,
        "the duplicate rejection must cost no more than an early rejection: {duplicate_cost:?} vs {early_cost:?}"
    );
    assert!(
        duplicate_cost.vm_gas < submit_cost.vm_gas / 2,
        "{duplicate_cost:?} vs {submit_cost:?}"
    );
    assert_eq!(duplicate_cost.writes, 0);
    assert_eq!(duplicate_cost.reads, 1, "only the epoch summary is read");

    let (answer, query_cost) = contract.query(&QueryMsg::EpochRewards { epoch: 0 }, now);
    println!("VM gas EpochRewards query: {}", query_cost.vm_gas);
    let stored: Option<EpochRewardsResponse> =
        serde_json::from_slice(&answer.expect("query")).unwrap();
    let stored = stored.expect("epoch 0 stored");
    assert_eq!(stored.rewards, rewards);
    assert_eq!(stored.submitter.as_str(), addresses[1]);
    assert_eq!(stored.signatures.len(), 3);
}
