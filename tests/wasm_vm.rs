//! The real `artifacts/nym_rewards.wasm` (built by `make wasm`) in cosmwasm-vm: the static checks
//! of `cosmwasm-check` with the capabilities wasmd v0.61 offers, then instantiate, a valid
//! SubmitEpoch, a rejected duplicate and queries, printing the VM gas of each.

use std::collections::HashSet;
use std::path::PathBuf;

use cosmwasm_std::{Addr, ContractResult, Env, HexBinary, MessageInfo, Response, Timestamp};
use cosmwasm_vm::internals::{Logger, check_wasm};
use cosmwasm_vm::testing::{
    MockApi, MockQuerier, MockStorage, execute, instantiate, mock_env, query,
};
use cosmwasm_vm::{Backend, Instance, InstanceOptions, Size, WasmLimits, capabilities_from_csv};
use ed25519_dalek::{Signer, SigningKey};
use nym_rewards::digest::{DigestContext, data_hash, epoch_digest};
use nym_rewards::msg::{
    EpochClock, EpochRewardsResponse, ExecuteMsg, InstantiateMsg, MemberInput, MixnodeReward,
    QueryMsg, SignerSignature,
};

/// What wasmd v0.61 (wasmvm 3.0) offers contracts. Our contract must need nothing beyond it.
const WASMD_CAPABILITIES: &str = "iterator,staking,stargate,cosmwasm_1_1,cosmwasm_1_2,cosmwasm_1_3,cosmwasm_1_4,cosmwasm_2_0,cosmwasm_2_1,cosmwasm_2_2";
const GAS_LIMIT: u64 = 500_000_000_000_000;
const GENESIS: u64 = 1_700_000_000;
const EPOCH_SECS: u64 = 60;

fn wasm_bytes() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts/nym_rewards.wasm");
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "{} is missing ({err}): run `make wasm` first",
            path.display()
        )
    })
}

fn capabilities() -> HashSet<String> {
    capabilities_from_csv(WASMD_CAPABILITIES)
}

type VmInstance = Instance<MockApi, MockStorage, MockQuerier>;

fn new_instance(wasm: &[u8]) -> (VmInstance, MockApi) {
    let api = MockApi::default().with_prefix("wasm");
    let backend = Backend {
        api,
        storage: MockStorage::default(),
        querier: MockQuerier::new(&[]),
    };
    let options = InstanceOptions {
        gas_limit: GAS_LIMIT,
    };
    let instance = Instance::from_code(wasm, backend, options, Some(Size::mebi(32)))
        .expect("the VM compiles and instantiates the module");
    (instance, api)
}

/// VM gas spent since the last call.
fn gas_used(instance: &mut VmInstance, last: &mut u64) -> u64 {
    let report = instance.create_gas_report();
    let total = report.limit - report.remaining;
    let used = total - *last;
    *last = total;
    used
}

fn env_at(api: &MockApi, secs: u64) -> Env {
    let mut env = mock_env();
    env.block.time = Timestamp::from_seconds(secs);
    env.contract.address = Addr::unchecked(api.addr_make("rewards-contract"));
    env
}

fn info(sender: &str) -> MessageInfo {
    MessageInfo {
        sender: Addr::unchecked(sender),
        funds: vec![],
    }
}

#[test]
fn wasm_passes_the_static_checks_with_wasmd_capabilities() {
    let wasm = wasm_bytes();
    check_wasm(&wasm, &capabilities(), &WasmLimits::default(), Logger::Off)
        .expect("cosmwasm-check's static checks pass");
    println!("nym_rewards.wasm: {} bytes", wasm.len());
}

#[test]
fn wasm_without_the_iterator_capability_is_refused() {
    // Proves the check looks at capabilities at all: the contract requires `iterator`.
    let wasm = wasm_bytes();
    let mut without = capabilities();
    without.remove("iterator");
    assert!(check_wasm(&wasm, &without, &WasmLimits::default(), Logger::Off).is_err());
}

#[test]
fn wasm_runs_instantiate_submit_duplicate_and_query() {
    let wasm = wasm_bytes();
    let (mut instance, api) = new_instance(&wasm);
    let mut spent = 0;
    let keys: Vec<SigningKey> = (1..=4u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let addresses: Vec<String> = (0..4)
        .map(|i| api.addr_make(&format!("member-{i}")))
        .collect();
    let admin = api.addr_make("admin");

    let msg = InstantiateMsg {
        admin: None,
        clock: EpochClock {
            genesis_time: GENESIS,
            epoch_length_secs: EPOCH_SECS,
        },
        members: keys
            .iter()
            .zip(&addresses)
            .enumerate()
            .map(|(i, (key, address))| MemberInput {
                ed25519_pubkey: HexBinary::from(key.verifying_key().to_bytes()),
                address: address.clone(),
                api_url: format!("http://127.0.0.1:{}", 8000 + i),
                p2p_multiaddr: format!("/ip4/127.0.0.1/tcp/{}", 9000 + i),
            })
            .collect(),
        threshold: None,
        max_mixnodes_per_epoch: 1_000,
    };
    let res: ContractResult<Response> =
        instantiate(&mut instance, env_at(&api, GENESIS), info(&admin), msg);
    res.into_result().expect("instantiate");
    println!(
        "VM gas instantiate: {}",
        gas_used(&mut instance, &mut spent)
    );

    let env = env_at(&api, GENESIS + EPOCH_SECS);
    let rewards: Vec<MixnodeReward> = (1..=100)
        .map(|mix_id| MixnodeReward {
            mix_id,
            uptime_bp: (mix_id * 97 % 10_001) as u16,
        })
        .collect();
    let digest = epoch_digest(
        &DigestContext {
            chain_id: &env.block.chain_id,
            contract_addr: env.contract.address.as_str(),
            signer_set_version: 1,
            epoch: 0,
        },
        &data_hash(&rewards),
    )
    .unwrap();
    let signatures: Vec<SignerSignature> = [0usize, 1, 3]
        .iter()
        .map(|&i| SignerSignature {
            index: i as u16,
            signature: HexBinary::from(keys[i].sign(&digest).to_bytes()),
        })
        .collect();
    let submit = ExecuteMsg::SubmitEpoch {
        epoch: 0,
        signer_set_version: 1,
        rewards: rewards.clone(),
        signatures,
    };
    let res: ContractResult<Response> = execute(
        &mut instance,
        env.clone(),
        info(&addresses[1]),
        submit.clone(),
    );
    res.into_result().expect("valid submission accepted");
    let submit_gas = gas_used(&mut instance, &mut spent);
    println!("VM gas SubmitEpoch (4 members, 3 signatures, 100 mixnodes): {submit_gas}");

    // The same message for a not-yet-ended epoch is rejected before any signature work: the
    // reference for what parsing and an early rejection cost.
    let mut early = submit.clone();
    if let ExecuteMsg::SubmitEpoch { epoch, .. } = &mut early {
        *epoch = 5;
    }
    let res: ContractResult<Response> =
        execute(&mut instance, env.clone(), info(&addresses[2]), early);
    let err = res.into_result().expect_err("epoch 5 has not ended");
    assert!(err.contains("ends at"), "{err}");
    let early_gas = gas_used(&mut instance, &mut spent);

    let res: ContractResult<Response> =
        execute(&mut instance, env.clone(), info(&addresses[2]), submit);
    let err = res.into_result().expect_err("duplicate rejected");
    assert!(err.contains("already submitted by"), "{err}");
    assert!(err.contains(&addresses[1]), "{err}");
    let duplicate_gas = gas_used(&mut instance, &mut spent);
    println!("VM gas rejected duplicate: {duplicate_gas} (early rejection reference: {early_gas})");
    assert!(
        duplicate_gas * 10 <= early_gas * 11,
        "the duplicate rejection must cost no more than an early rejection: {duplicate_gas} vs {early_gas}"
    );
    assert!(
        duplicate_gas < submit_gas / 2,
        "{duplicate_gas} vs {submit_gas}"
    );

    let answer = query(&mut instance, env, QueryMsg::EpochRewards { epoch: 0 })
        .into_result()
        .expect("query");
    println!(
        "VM gas EpochRewards query: {}",
        gas_used(&mut instance, &mut spent)
    );
    let stored: Option<EpochRewardsResponse> = serde_json::from_slice(&answer).unwrap();
    let stored = stored.expect("epoch 0 stored");
    assert_eq!(stored.rewards, rewards);
    assert_eq!(stored.submitter.as_str(), addresses[1]);
    assert_eq!(stored.signatures.len(), 3);
}
