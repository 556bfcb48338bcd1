//! Every execute and query path of the real contract code in cw-multi-test, and one test per
//! rejection. Signatures are real ed25519 signatures.

mod common;

use common::*;
use cosmwasm_std::{Addr, HexBinary, StdResult, coins};
use cw_multi_test::Executor;
use nym_rewards::ContractError;
use nym_rewards::digest::data_hash;
use nym_rewards::msg::{
    ConfigResponse, EpochSummary, EpochsResponse, ExecuteMsg, LatestEpochResponse, MigrateMsg,
    MixnodeReward, MixnodeRewardsResponse, PackedEpochRewardsResponse, PendingDelay, QueryMsg,
    SignerSetResponse, SignerSignature,
};
use nym_rewards::packing::{PackingError, pack_rewards};
use nym_rewards::records::{encode_rewards, encode_signatures};
use nym_rewards::rules::{
    MAX_MIXNODES_CAP, MAX_ROTATION_DELAY_EPOCHS, MAX_ROTATION_HORIZON_EPOCHS,
    MIXNODE_SCAN_READ_BUDGET,
};
use nym_rewards::state::{
    EPOCH_REWARD_CHUNKS, EPOCH_REWARDS_V1, EPOCH_SIGNATURES, EPOCH_SUMMARIES, SIGNER_SETS,
};

// ---------------------------------------------------------------- instantiate and config

#[test]
fn instantiate_stores_config_and_signer_set_with_default_threshold() {
    let suite = Suite::new();
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.admin, suite.admin);
    assert_eq!(config.clock.genesis_time, GENESIS);
    assert_eq!(config.clock.epoch_length_secs, EPOCH_SECS);
    assert_eq!(config.max_mixnodes_per_epoch, MAX_MIXNODES);
    assert_eq!(config.latest_signer_set_version, 1);

    let set: SignerSetResponse = suite.query(&QueryMsg::SignerSet { version: None });
    assert_eq!(set.version, 1);
    assert_eq!(set.effective_from_epoch, 0);
    assert_eq!(set.threshold, 3, "floor(2*4/3)+1");
    assert_eq!(set.members.len(), 4);
    assert_eq!(set.members[2].address, suite.member(1, 2).address);
    assert_eq!(
        set.members[2].ed25519_pubkey.as_slice(),
        suite.member(1, 2).key.verifying_key().as_bytes()
    );
    assert_eq!(set.members[1].api_url, "http://127.0.0.1:8001");
    let same: SignerSetResponse = suite.query(&QueryMsg::SignerSet { version: Some(1) });
    assert_eq!(same, set);
    let cw2 = cw2::query_contract_info(&suite.app.wrap(), &suite.contract).unwrap();
    assert_eq!(cw2.contract, nym_rewards::CONTRACT_NAME);
}

#[test]
fn instantiate_accepts_an_explicit_admin_and_threshold() {
    let mut app = new_app();
    let set = members(&app, 7, 1);
    let code_id = app.store_code(contract());
    let admin = app.api().addr_make("someone-else");
    let mut msg = instantiate_msg(&set, Some(7));
    msg.admin = Some(admin.to_string());
    let creator = app.api().addr_make("creator");
    let addr = app
        .instantiate_contract(code_id, creator, &msg, &[], "r", None)
        .unwrap();
    let config: ConfigResponse = app
        .wrap()
        .query_wasm_smart(&addr, &QueryMsg::Config {})
        .unwrap();
    assert_eq!(config.admin, admin);
    let signers: SignerSetResponse = app
        .wrap()
        .query_wasm_smart(&addr, &QueryMsg::SignerSet { version: None })
        .unwrap();
    assert_eq!(signers.threshold, 7);
}

fn instantiate_with(
    mutate: impl FnOnce(&mut nym_rewards::msg::InstantiateMsg),
) -> cosmwasm_std::StdResult<Addr> {
    let mut app = new_app();
    let set = members(&app, 4, 1);
    let code_id = app.store_code(contract());
    let mut msg = instantiate_msg(&set, None);
    mutate(&mut msg);
    let creator = app.api().addr_make("creator");
    app.instantiate_contract(code_id, creator, &msg, &[], "r", None)
}

#[test]
fn instantiate_rejects_thresholds_breaking_the_rule() {
    for threshold in [0, 1, 5] {
        assert_rejected(
            instantiate_with(|msg| msg.threshold = Some(threshold)),
            ContractError::InvalidThreshold {
                threshold,
                members: 4,
            },
        );
    }
}

#[test]
fn instantiate_rejects_bad_signer_sets_one_variant_per_cause() {
    type Mutation = Box<dyn FnOnce(&mut nym_rewards::msg::InstantiateMsg)>;
    let cases: Vec<(ContractError, Mutation)> = vec![
        (
            ContractError::SignerSetSize { got: 0, max: 256 },
            Box::new(|m| m.members.clear()),
        ),
        (
            ContractError::DuplicateMemberKey { index: 1 },
            Box::new(|m| m.members[1].ed25519_pubkey = m.members[0].ed25519_pubkey.clone()),
        ),
        (
            ContractError::MemberKeyLength { index: 0, len: 31 },
            Box::new(|m| m.members[0].ed25519_pubkey = HexBinary::from(vec![1u8; 31])),
        ),
        (
            // y = 2: (y^2 - 1) / (d y^2 + 1) has no square root mod p.
            ContractError::MemberKeyNotOnCurve { index: 1 },
            Box::new(|m| m.members[1].ed25519_pubkey = HexBinary::from(small_y(2))),
        ),
        (
            // y = 3 + p, a second encoding of a valid point.
            ContractError::MemberKeyNotCanonical { index: 2 },
            Box::new(|m| m.members[2].ed25519_pubkey = HexBinary::from(y_plus_p(3))),
        ),
        (
            // y = 1: the identity, order 1.
            ContractError::MemberKeySmallOrder { index: 3 },
            Box::new(|m| m.members[3].ed25519_pubkey = HexBinary::from(small_y(1))),
        ),
        (
            ContractError::InvalidMemberAddress {
                index: 0,
                address: "not-bech32".into(),
            },
            Box::new(|m| m.members[0].address = "not-bech32".into()),
        ),
        (
            ContractError::InvalidApiUrl {
                index: 0,
                max_len: 256,
            },
            Box::new(|m| m.members[0].api_url = "ftp://x".into()),
        ),
        (
            ContractError::InvalidMultiaddr {
                index: 2,
                max_len: 256,
            },
            Box::new(|m| m.members[2].p2p_multiaddr = "127.0.0.1:9000".into()),
        ),
        (
            ContractError::ZeroEpochLength,
            Box::new(|m| m.clock.epoch_length_secs = 0),
        ),
        (
            ContractError::InvalidMaxMixnodes {
                got: 0,
                cap: 20_000,
            },
            Box::new(|m| m.max_mixnodes_per_epoch = 0),
        ),
    ];
    for (expected, mutate) in cases {
        assert_rejected(instantiate_with(mutate), expected);
    }
}

/// The key bytes of a point with a small y coordinate (sign bit clear).
fn small_y(y: u8) -> Vec<u8> {
    let mut bytes = vec![0u8; 32];
    bytes[0] = y;
    bytes
}

/// `y + p` (p = 2^255 - 19), which reduces to `y`, for y < 19.
fn y_plus_p(y: u8) -> Vec<u8> {
    let mut bytes = vec![0xffu8; 32];
    bytes[0] = 0xed + y;
    bytes[31] = 0x7f;
    bytes
}

#[test]
fn a_repeated_address_names_the_member_and_the_address() {
    let mut repeated = String::new();
    let result = instantiate_with(|m| {
        m.members[3].address = m.members[0].address.clone();
        repeated = m.members[0].address.clone();
    });
    assert_rejected(
        result,
        ContractError::DuplicateMemberAddress {
            index: 3,
            address: repeated,
        },
    );
}

#[test]
fn instantiate_accepts_256_members_and_rejects_257() {
    let mut app = new_app();
    let code_id = app.store_code(contract());
    let creator = app.api().addr_make("creator");
    let mut inputs = Vec::new();
    for i in 0..257u32 {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.to_be_bytes());
        let key = ed25519_dalek::SigningKey::from_bytes(&key);
        inputs.push(nym_rewards::msg::MemberInput {
            ed25519_pubkey: HexBinary::from(key.verifying_key().to_bytes()),
            address: app.api().addr_make(&format!("m{i}")).to_string(),
            api_url: "http://127.0.0.1:1".into(),
            p2p_multiaddr: "/ip4/127.0.0.1/tcp/1".into(),
        });
    }
    let mut msg = instantiate_msg(&[], None);
    msg.members = inputs[..256].to_vec();
    app.instantiate_contract(code_id, creator.clone(), &msg, &[], "r", None)
        .expect("256 members are allowed");
    msg.members = inputs;
    assert_rejected(
        app.instantiate_contract(code_id, creator, &msg, &[], "r", None),
        ContractError::SignerSetSize { got: 257, max: 256 },
    );
}

#[test]
fn a_signer_set_too_large_to_store_is_refused_with_its_size() {
    // 256 members with endpoints at their length limit: about 175 KB as stored, above the
    // VM's 128 KiB per value (wasmd refuses the write with a VM error otherwise).
    let mut app = new_app();
    let code_id = app.store_code(contract());
    let creator = app.api().addr_make("creator");
    let long = |prefix: &str| format!("{prefix}{}", "x".repeat(256 - prefix.len()));
    let inputs: Vec<nym_rewards::msg::MemberInput> = (0..256u32)
        .map(|i| {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            let key = ed25519_dalek::SigningKey::from_bytes(&key);
            nym_rewards::msg::MemberInput {
                ed25519_pubkey: HexBinary::from(key.verifying_key().to_bytes()),
                address: app.api().addr_make(&format!("m{i}")).to_string(),
                api_url: long("http://127.0.0.1:1/"),
                p2p_multiaddr: long("/ip4/127.0.0.1/tcp/1/"),
            }
        })
        .collect();
    let mut msg = instantiate_msg(&[], None);
    msg.members = inputs.clone();
    let err = app
        .instantiate_contract(code_id, creator.clone(), &msg, &[], "r", None)
        .expect_err("too large to store");
    let text = err.to_string();
    assert!(text.contains("bytes stored, at most 131072"), "{text}");
    // Half the endpoint length fits.
    for input in &mut msg.members {
        input.api_url.truncate(128);
        input.p2p_multiaddr.truncate(128);
    }
    app.instantiate_contract(code_id, creator, &msg, &[], "r", None)
        .expect("a set within the size limit is stored");
}

// ---------------------------------------------------------------- submit: success and queries

#[test]
fn valid_submission_is_stored_with_signatures_and_attributes() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(10);
    let signatures = suite.sign(1, 0, &rewards, &[0, 2, 3]);
    let submitter = suite.member(1, 1).address.clone();
    let response = suite
        .submit(&submitter, 0, 1, rewards.clone(), signatures.clone())
        .unwrap();

    let wasm = response
        .events
        .iter()
        .find(|event| event.ty == "wasm")
        .expect("wasm event");
    let attr = |key: &str| {
        wasm.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.clone())
            .unwrap_or_default()
    };
    assert_eq!(attr("action"), "submit_epoch");
    assert_eq!(attr("epoch"), "0");
    assert_eq!(attr("submitter"), submitter.to_string());
    assert_eq!(attr("data_hash"), hex::encode(data_hash(&rewards)));
    assert_eq!(attr("signers"), "3");

    let stored = suite.epoch(0).expect("epoch 0 stored");
    assert_eq!(stored.rewards, rewards);
    assert_eq!(stored.signatures, signatures);
    assert_eq!(stored.submitter, submitter);
    assert_eq!(stored.signer_set_version, 1);
    assert_eq!(stored.data_hash.as_slice(), data_hash(&rewards));
    assert_eq!(stored.height, suite.app.block_info().height);
    assert_eq!(stored.time, suite.app.block_info().time);
    assert!(suite.epoch(1).is_none());
}

#[test]
fn latest_epoch_and_epochs_paginate() {
    let mut suite = Suite::new();
    let latest: LatestEpochResponse = suite.query(&QueryMsg::LatestEpoch {});
    assert_eq!(latest.current_epoch, Some(0));
    assert_eq!(latest.latest_submitted, None);

    suite.end_epoch(11);
    for epoch in [0, 2, 3, 5, 8, 11] {
        suite.submit_valid(epoch, (epoch % 4) as usize).unwrap();
    }
    let latest: LatestEpochResponse = suite.query(&QueryMsg::LatestEpoch {});
    assert_eq!(latest.current_epoch, Some(12));
    assert_eq!(latest.latest_submitted, Some(11));

    let page: EpochsResponse = suite.query(&QueryMsg::Epochs {
        start_after: None,
        limit: Some(4),
    });
    let epochs: Vec<u64> = page.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, vec![0, 2, 3, 5]);
    assert_eq!(page.epochs[0].mixnodes, 10);
    assert_eq!(page.epochs[0].signers, 3);
    let page: EpochsResponse = suite.query(&QueryMsg::Epochs {
        start_after: Some(5),
        limit: Some(4),
    });
    let epochs: Vec<u64> = page.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, vec![8, 11]);
    let page: EpochsResponse = suite.query(&QueryMsg::Epochs {
        start_after: None,
        limit: Some(1_000),
    });
    assert_eq!(page.epochs.len(), 6, "limit is capped, not rejected");
}

#[test]
fn mixnode_rewards_scan_epochs_with_binary_search_and_paginate() {
    let mut suite = Suite::new();
    suite.end_epoch(5);
    for epoch in 0..5u64 {
        // Mixnode 7 appears only in even epochs, with uptime 1000 + epoch.
        let mut rewards = vec![MixnodeReward {
            mix_id: 1,
            uptime_bp: 10_000,
        }];
        if epoch % 2 == 0 {
            rewards.push(MixnodeReward {
                mix_id: 7,
                uptime_bp: 1_000 + epoch as u16,
            });
        }
        rewards.push(MixnodeReward {
            mix_id: 9,
            uptime_bp: 0,
        });
        let signatures = suite.sign(1, epoch, &rewards, &[0, 1, 2]);
        let sender = suite.member(1, 0).address.clone();
        suite
            .submit(&sender, epoch, 1, rewards, signatures)
            .unwrap();
    }
    let page: MixnodeRewardsResponse = suite.query(&QueryMsg::MixnodeRewards {
        mix_id: 7,
        start_after: None,
        limit: Some(3),
    });
    let got: Vec<(u64, u16)> = page
        .rewards
        .iter()
        .map(|r| (r.epoch, r.uptime_bp))
        .collect();
    assert_eq!(got, vec![(0, 1_000), (2, 1_002)]);
    assert_eq!(page.next_start_after, Some(2));
    let page: MixnodeRewardsResponse = suite.query(&QueryMsg::MixnodeRewards {
        mix_id: 7,
        start_after: Some(2),
        limit: Some(3),
    });
    let got: Vec<(u64, u16)> = page
        .rewards
        .iter()
        .map(|r| (r.epoch, r.uptime_bp))
        .collect();
    assert_eq!(got, vec![(4, 1_004)]);
    assert_eq!(page.next_start_after, None);
    let absent: MixnodeRewardsResponse = suite.query(&QueryMsg::MixnodeRewards {
        mix_id: 8,
        start_after: None,
        limit: None,
    });
    assert!(absent.rewards.is_empty());
}

// ---------------------------------------------------------------- submit: rejections

#[test]
fn duplicate_epoch_is_rejected_naming_the_first_submitter() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    suite.submit_valid(0, 1).unwrap();
    let first = suite.member(1, 1).address.to_string();
    assert_rejected(
        suite.submit_valid(0, 2),
        ContractError::EpochAlreadySubmitted {
            epoch: 0,
            submitter: first.clone(),
        },
    );
    assert_eq!(suite.epoch(0).unwrap().submitter.as_str(), first);
}

#[test]
fn duplicate_epoch_is_rejected_before_any_signature_work() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    suite.submit_valid(0, 0).unwrap();
    // Garbage signatures, a wrong version and too few signers: had the contract looked at any of
    // them it would name that problem; it names the duplicate instead.
    let garbage = vec![SignerSignature {
        index: 0,
        signature: HexBinary::from(vec![0u8; 64]),
    }];
    let sender = suite.member(1, 3).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 99, rewards(3), garbage),
        ContractError::EpochAlreadySubmitted {
            epoch: 0,
            submitter: suite.member(1, 0).address.to_string(),
        },
    );
    // A cut-off stream and a partial signature record: nothing of either is parsed first.
    assert_rejected(
        suite.submit_packed(&sender, 0, 1, vec![0xc0], vec![0; 65]),
        ContractError::EpochAlreadySubmitted {
            epoch: 0,
            submitter: suite.member(1, 0).address.to_string(),
        },
    );
}

#[test]
fn non_member_cannot_submit() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let signatures = suite.sign(1, 0, &rewards, &[0, 1, 2]);
    let outsider = suite.app.api().addr_make("outsider");
    assert_rejected(
        suite.submit(&outsider, 0, 1, rewards, signatures),
        ContractError::NotASigner {
            sender: outsider.to_string(),
            version: 1,
        },
    );
    assert!(suite.epoch(0).is_none());
}

#[test]
fn epoch_that_has_not_ended_is_rejected() {
    let mut suite = Suite::new();
    suite.set_time(GENESIS + EPOCH_SECS - 1);
    assert_rejected(
        suite.submit_valid(0, 0),
        ContractError::EpochNotEnded {
            epoch: 0,
            ends_at: GENESIS + EPOCH_SECS,
            now: GENESIS + EPOCH_SECS - 1,
        },
    );
    suite.set_time(GENESIS + EPOCH_SECS);
    suite
        .submit_valid(0, 0)
        .expect("accepted exactly at the epoch end");
}

#[test]
fn absurd_epoch_numbers_are_an_error() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, u64::MAX, 1, rewards(1), vec![]),
        ContractError::EpochOutOfRange { epoch: u64::MAX },
    );
}

#[test]
fn wrong_signer_set_version_is_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let signatures = suite.sign(1, 0, &rewards, &[0, 1, 2]);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 2, rewards, signatures),
        ContractError::WrongSignerSetVersion {
            epoch: 0,
            expected: 1,
            got: 2,
        },
    );
}

#[test]
fn fewer_signatures_than_the_threshold_are_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let signatures = suite.sign(1, 0, &rewards, &[0, 3]);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, rewards, signatures),
        ContractError::BelowThreshold {
            got: 2,
            threshold: 3,
        },
    );
}

#[test]
fn duplicate_signer_index_is_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let signatures = suite.sign(1, 0, &rewards, &[0, 1, 1]);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, rewards, signatures),
        ContractError::SignerIndicesNotAscending {
            position: 2,
            index: 1,
            previous: 1,
        },
    );
}

#[test]
fn unsorted_signer_indices_are_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let signatures = suite.sign(1, 0, &rewards, &[2, 0, 1]);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, rewards, signatures),
        ContractError::SignerIndicesNotAscending {
            position: 1,
            index: 0,
            previous: 2,
        },
    );
}

#[test]
fn signer_index_out_of_range_is_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let mut signatures = suite.sign(1, 0, &rewards, &[0, 1, 2]);
    signatures[2].index = 4;
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, rewards, signatures),
        ContractError::SignerIndexOutOfRange {
            index: 4,
            members: 4,
        },
    );
}

#[test]
fn packed_signatures_of_a_partial_record_are_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let signatures = suite.sign(1, 0, &rewards, &[0, 1, 2]);
    let mut packed = encode_signatures(&signatures);
    packed.pop();
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit_packed(&sender, 0, 1, pack_rewards(&rewards), packed),
        ContractError::SignaturesLength {
            len: 3 * 66 - 1,
            record_len: 66,
        },
    );
}

#[test]
fn one_bad_signature_is_named() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let mut signatures = suite.sign(1, 0, &rewards, &[0, 2, 3]);
    let mut bytes = signatures[1].signature.to_vec();
    bytes[10] ^= 0x01;
    signatures[1].signature = HexBinary::from(bytes);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, rewards, signatures),
        ContractError::InvalidSignature { index: 2 },
    );
    assert!(suite.epoch(0).is_none());
}

#[test]
fn a_signature_by_another_member_under_a_claimed_index_is_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let mut signatures = suite.sign(1, 0, &rewards, &[0, 1, 2]);
    // Member 3's valid signature presented as member 2's.
    signatures[2].signature = suite.sign(1, 0, &rewards, &[3])[0].signature.clone();
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, rewards, signatures),
        ContractError::InvalidSignature { index: 2 },
    );
}

#[test]
fn signatures_for_another_epoch_are_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(1);
    let rewards = rewards(5);
    let signatures = suite.sign(1, 1, &rewards, &[0, 1, 2]);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, rewards, signatures),
        ContractError::InvalidSignature { index: 0 },
    );
}

#[test]
fn signatures_for_another_chain_are_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let contract = suite.contract.to_string();
    let signatures = suite.sign_with("other-chain", &contract, 1, 0, &rewards, &[0, 1, 2]);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, rewards, signatures),
        ContractError::InvalidSignature { index: 0 },
    );
}

#[test]
fn signatures_for_another_contract_are_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let rewards = rewards(5);
    let other = suite.app.api().addr_make("other-contract").to_string();
    let chain_id = suite.chain_id();
    let signatures = suite.sign_with(&chain_id, &other, 1, 0, &rewards, &[0, 1, 2]);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, rewards, signatures),
        ContractError::InvalidSignature { index: 0 },
    );
}

#[test]
fn signatures_over_other_data_are_rejected() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    let signed = rewards(5);
    let signatures = suite.sign(1, 0, &signed, &[0, 1, 2]);
    let mut tampered = signed.clone();
    tampered[3].uptime_bp += 1;
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, tampered, signatures),
        ContractError::InvalidSignature { index: 0 },
    );
}

/// Submits `packed` rewards for epoch 0 with valid signatures over `signed`.
fn submit_packed_rewards(
    suite: &mut Suite,
    signed: &[MixnodeReward],
    packed: Vec<u8>,
) -> cosmwasm_std::StdResult<cw_multi_test::AppResponse> {
    suite.end_epoch(0);
    let signatures = encode_signatures(&suite.sign(1, 0, signed, &[0, 1, 2]));
    let sender = suite.member(1, 0).address.clone();
    suite.submit_packed(&sender, 0, 1, packed, signatures)
}

fn reward(mix_id: u32, uptime_bp: u16) -> MixnodeReward {
    MixnodeReward { mix_id, uptime_bp }
}

#[test]
fn a_cut_off_packed_record_is_rejected() {
    let mut suite = Suite::new();
    let rewards = vec![reward(1, 5), reward(900, 6)];
    let mut packed = pack_rewards(&rewards);
    packed.pop();
    assert_rejected(
        submit_packed_rewards(&mut suite, &rewards, packed),
        PackingError::Truncated { offset: 2 }.into(),
    );
    assert!(suite.epoch(0).is_none());
}

#[test]
fn a_non_minimal_id_gap_is_rejected() {
    let mut suite = Suite::new();
    // Mixnode 3 (gap 3 + 0) with its LEB128 gap padded to two bytes.
    let packed = vec![0xc0, 0x07, 0x80, 0x00];
    assert_rejected(
        submit_packed_rewards(&mut suite, &[reward(3, 7)], packed),
        PackingError::NonCanonicalGap { offset: 0 }.into(),
    );
}

#[test]
fn unsorted_or_repeated_ids_cannot_be_packed() {
    // Ids are the previous id plus one plus a non-negative gap: a stream expresses only strictly
    // ascending ids. Packing a smaller or repeated id wraps its gap to an id past u32::MAX.
    for ids in [[5, 3], [3, 3]] {
        let mut suite = Suite::new();
        let listed = vec![reward(ids[0], 1), reward(ids[1], 2)];
        assert_rejected(
            submit_packed_rewards(&mut suite, &listed, pack_rewards(&listed)),
            PackingError::IdOverflow { position: 1 }.into(),
        );
    }
}

#[test]
fn an_id_past_u32_max_is_rejected() {
    let mut suite = Suite::new();
    let mut packed = pack_rewards(&[reward(u32::MAX, 1)]);
    packed.extend_from_slice(&[0x00, 0x01]);
    assert_rejected(
        submit_packed_rewards(&mut suite, &[reward(u32::MAX, 1)], packed),
        PackingError::IdOverflow { position: 1 }.into(),
    );
}

#[test]
fn uptime_above_100_percent_is_rejected() {
    let mut suite = Suite::new();
    let rewards = vec![reward(1, 10_000), reward(2, 10_001)];
    assert_rejected(
        submit_packed_rewards(&mut suite, &rewards, pack_rewards(&rewards)),
        PackingError::UptimeOutOfRange {
            mix_id: 2,
            uptime_bp: 10_001,
        }
        .into(),
    );
}

#[test]
fn too_many_mixnodes_are_rejected() {
    let mut suite = Suite::new();
    let exactly = rewards(MAX_MIXNODES);
    submit_packed_rewards(&mut suite, &exactly, pack_rewards(&exactly))
        .expect("exactly the maximum is fine");
    let mut suite = Suite::new();
    let over = rewards(MAX_MIXNODES + 1);
    assert_rejected(
        submit_packed_rewards(&mut suite, &over, pack_rewards(&over)),
        PackingError::TooMany { max: MAX_MIXNODES }.into(),
    );
}

#[test]
fn empty_rewards_are_rejected() {
    let mut suite = Suite::new();
    assert_rejected(
        submit_packed_rewards(&mut suite, &[], vec![]),
        PackingError::Empty.into(),
    );
}

#[test]
fn attached_funds_are_refused() {
    let mut suite = Suite::new();
    let sender = suite.member(1, 0).address.clone();
    suite
        .app
        .init_modules(|router, _, storage| {
            router
                .bank
                .init_balance(storage, &sender, coins(1_000, "ustake"))
        })
        .expect("fund the member");
    suite.end_epoch(0);
    let rewards = rewards(5);
    let signatures = suite.sign(1, 0, &rewards, &[0, 1, 2]);
    let msg = ExecuteMsg::submit_epoch(0, 1, &rewards, &signatures);
    let result = suite.app.execute_contract(
        sender.clone(),
        suite.contract.clone(),
        &msg,
        &coins(10, "ustake"),
    );
    assert_rejected(result, ContractError::FundsNotAccepted);
    assert!(suite.epoch(0).is_none());
}

// ---------------------------------------------------------------- admin paths

#[test]
fn only_the_admin_may_update_the_signer_set_or_the_admin() {
    let mut suite = Suite::new();
    let intruder = suite.member(1, 0).address.clone();
    let inputs = member_inputs(&suite.sets[0]);
    assert_rejected(
        suite.execute(
            &intruder,
            &ExecuteMsg::UpdateSignerSet {
                members: inputs,
                threshold: None,
                effective_from_epoch: 5,
            },
        ),
        ContractError::Unauthorized {
            action: "update the signer set".into(),
        },
    );
    assert_rejected(
        suite.execute(
            &intruder,
            &ExecuteMsg::UpdateAdmin {
                admin: intruder.to_string(),
            },
        ),
        ContractError::Unauthorized {
            action: "update the admin".into(),
        },
    );
}

#[test]
fn admin_can_hand_over_the_role() {
    let mut suite = Suite::new();
    let admin = suite.admin.clone();
    let next = suite.app.api().addr_make("next-admin");
    suite
        .execute(
            &admin,
            &ExecuteMsg::UpdateAdmin {
                admin: next.to_string(),
            },
        )
        .unwrap();
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.admin, next);
    assert_rejected(
        suite.execute(
            &admin,
            &ExecuteMsg::UpdateAdmin {
                admin: admin.to_string(),
            },
        ),
        ContractError::Unauthorized {
            action: "update the admin".into(),
        },
    );
}

fn rotate(
    suite: &mut Suite,
    effective_from_epoch: u64,
) -> cosmwasm_std::StdResult<cw_multi_test::AppResponse> {
    let new_members = members(&suite.app, 5, 100);
    let inputs = member_inputs(&new_members);
    suite.sets.push(new_members);
    let admin = suite.admin.clone();
    suite.execute(
        &admin,
        &ExecuteMsg::UpdateSignerSet {
            members: inputs,
            threshold: None,
            effective_from_epoch,
        },
    )
}

#[test]
fn rotation_must_start_in_the_future() {
    let mut suite = Suite::new();
    suite.set_time(GENESIS + 3 * EPOCH_SECS + 1); // epoch 3 is running
    assert_rejected(
        rotate(&mut suite, 3),
        ContractError::RotationNotInFuture {
            effective_from_epoch: 3,
            earliest_excluded: 3,
        },
    );
    rotate(&mut suite, 4).expect("the next epoch is in the future");
    // A later rotation must also start after the scheduled one.
    assert_rejected(
        rotate(&mut suite, 4),
        ContractError::RotationNotInFuture {
            effective_from_epoch: 4,
            earliest_excluded: 4,
        },
    );
}

#[test]
fn rotation_keeps_old_epochs_on_their_version() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    suite.submit_valid(0, 0).unwrap();
    // Block time is in epoch 1; version 2 governs epochs >= 3.
    rotate(&mut suite, 3).unwrap();
    let latest: SignerSetResponse = suite.query(&QueryMsg::SignerSet { version: None });
    assert_eq!(
        (
            latest.version,
            latest.effective_from_epoch,
            latest.members.len()
        ),
        (2, 3, 5)
    );
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.latest_signer_set_version, 2);
    for (epoch, version) in [(0, 1), (2, 1), (3, 2), (9, 2)] {
        let set: SignerSetResponse = suite.query(&QueryMsg::SignerSetForEpoch { epoch });
        assert_eq!(set.version, version, "epoch {epoch}");
    }
    assert_eq!(suite.epoch(0).unwrap().signer_set_version, 1);

    // Long after the rotation took effect, epoch 2 (certified by the old set) is still accepted.
    suite.end_epoch(4);
    suite
        .submit_valid(2, 1)
        .expect("epoch 2 stays on version 1");
    assert_eq!(suite.epoch(2).unwrap().signer_set_version, 1);

    // Epoch 3 accepts only the new set: the old version is refused...
    assert_rejected(
        suite.submit_valid(3, 1),
        ContractError::WrongSignerSetVersion {
            epoch: 3,
            expected: 2,
            got: 1,
        },
    );
    // ...an old member is not a signer of version 2...
    let rewards = rewards(4);
    let signatures = suite.sign(2, 3, &rewards, &[0, 1, 2, 3]);
    let old_member = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&old_member, 3, 2, rewards.clone(), signatures.clone()),
        ContractError::NotASigner {
            sender: old_member.to_string(),
            version: 2,
        },
    );
    // ...and old keys do not verify under version 2.
    let new_member = suite.member(2, 4).address.clone();
    let mut forged = suite.sign(1, 3, &rewards, &[0, 1, 2]);
    forged.push(signatures[3].clone());
    assert_rejected(
        suite.submit(&new_member, 3, 2, rewards.clone(), forged),
        ContractError::InvalidSignature { index: 0 },
    );
    suite
        .submit(&new_member, 3, 2, rewards, signatures)
        .expect("the new set signs epoch 3");
    let stored = suite.epoch(3).unwrap();
    assert_eq!(
        (stored.signer_set_version, stored.submitter),
        (2, new_member)
    );
}

#[test]
fn unknown_signer_set_version_is_a_query_error() {
    let suite = Suite::new();
    let err = suite
        .app
        .wrap()
        .query_wasm_smart::<SignerSetResponse>(
            &suite.contract,
            &QueryMsg::SignerSet { version: Some(7) },
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&ContractError::UnknownSignerSetVersion { version: 7 }.to_string()),
        "{err}"
    );
}

// ---------------------------------------------------------------- migrate

#[test]
fn migrate_keeps_state_and_records_the_version() {
    let mut suite = Suite::new();
    suite.end_epoch(0);
    suite.submit_valid(0, 0).unwrap();
    let new_code = suite.app.store_code(contract());
    let admin = suite.admin.clone();
    let contract_addr = suite.contract.clone();
    suite
        .app
        .migrate_contract(admin, contract_addr.clone(), &MigrateMsg {}, new_code)
        .unwrap();
    let info = suite
        .app
        .wrap()
        .query_wasm_contract_info(&contract_addr)
        .unwrap();
    assert_eq!(info.code_id, new_code);
    assert!(suite.epoch(0).is_some(), "state survives migration");
    let stranger = Addr::unchecked(suite.app.api().addr_make("stranger"));
    assert!(
        suite
            .app
            .migrate_contract(stranger, contract_addr, &MigrateMsg {}, new_code)
            .is_err(),
        "only the chain-level admin may migrate"
    );
}

// ---------------------------------------------------------------- v2: config, delay, packed

#[test]
fn the_admin_updates_limits_and_others_cannot() {
    let mut suite = Suite::new();
    let admin = suite.admin.clone();
    let update = ExecuteMsg::UpdateConfig {
        max_mixnodes_per_epoch: Some(7),
        min_rotation_delay_epochs: Some(3),
    };
    let stranger = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.execute(&stranger, &update),
        ContractError::Unauthorized {
            action: "update the config".into(),
        },
    );
    let response = suite.execute(&admin, &update).expect("admin updates");
    let wasm = response
        .events
        .iter()
        .find(|event| event.ty == "wasm")
        .expect("wasm event");
    for (key, value) in [
        ("action", "update_config"),
        ("sender", admin.as_str()),
        ("max_mixnodes_per_epoch", "7"),
        ("min_rotation_delay_epochs", "3"),
    ] {
        assert!(
            wasm.attributes
                .iter()
                .any(|attr| attr.key == key && attr.value == value),
            "attribute {key}={value} in {:?}",
            wasm.attributes
        );
    }
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.max_mixnodes_per_epoch, 7);
    assert_eq!(config.min_rotation_delay_epochs, 3);
    assert_rejected(
        suite.execute(
            &admin,
            &ExecuteMsg::UpdateConfig {
                max_mixnodes_per_epoch: Some(0),
                min_rotation_delay_epochs: None,
            },
        ),
        ContractError::InvalidMaxMixnodes {
            got: 0,
            cap: 20_000,
        },
    );
    // The new maximum binds submissions.
    suite.end_epoch(0);
    let over = rewards(8);
    let signatures = suite.sign(1, 0, &over, &[0, 1, 2]);
    let sender = suite.member(1, 0).address.clone();
    assert_rejected(
        suite.submit(&sender, 0, 1, over, signatures),
        PackingError::TooMany { max: 7 }.into(),
    );
}

#[test]
fn a_rotation_waits_the_minimum_delay() {
    let mut suite = Suite::new();
    suite.update_config(None, Some(5)).unwrap();
    suite.set_time(GENESIS + 3 * EPOCH_SECS + 1); // epoch 3 is running
    assert_rejected(
        rotate(&mut suite, 7),
        ContractError::RotationTooSoon {
            effective_from_epoch: 7,
            delay: 5,
            earliest: 8,
        },
    );
    suite.sets.pop();
    rotate(&mut suite, 8).expect("exactly the delay is enough");
}

#[test]
fn a_lowered_delay_waits_for_the_old_one_and_rotations_have_a_horizon() {
    let mut suite = Suite::new();
    let set_delay = |suite: &mut Suite, delay: u64| suite.update_config(None, Some(delay));
    suite.set_time(GENESIS + 10 * EPOCH_SECS + 1); // epoch 10
    set_delay(&mut suite, 20).unwrap();
    // Lowering to 0 only applies once the 20 epochs of notice have passed.
    set_delay(&mut suite, 0).unwrap();
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.min_rotation_delay_epochs, 20);
    assert_eq!(
        config.pending_rotation_delay,
        Some(PendingDelay {
            delay_epochs: 0,
            from_epoch: 30
        })
    );
    assert_rejected(
        rotate(&mut suite, 11),
        ContractError::RotationTooSoon {
            effective_from_epoch: 11,
            delay: 20,
            earliest: 30,
        },
    );
    suite.sets.pop();
    suite.set_time(GENESIS + 30 * EPOCH_SECS + 1); // epoch 30
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.min_rotation_delay_epochs, 0);
    assert_eq!(config.pending_rotation_delay, None);
    // A rotation may not be scheduled past the horizon (a typo would lock rotations).
    assert_rejected(
        rotate(&mut suite, 1_700_000_000),
        ContractError::RotationTooFar {
            effective_from_epoch: 1_700_000_000,
            latest_allowed: 31 + MAX_ROTATION_HORIZON_EPOCHS,
        },
    );
    suite.sets.pop();
    rotate(&mut suite, 31 + MAX_ROTATION_HORIZON_EPOCHS).expect("the horizon itself is fine");
    assert_rejected(
        set_delay(&mut suite, MAX_ROTATION_DELAY_EPOCHS + 1),
        ContractError::InvalidRotationDelay {
            got: MAX_ROTATION_DELAY_EPOCHS + 1,
            max: MAX_ROTATION_DELAY_EPOCHS,
        },
    );
}

#[test]
fn instantiate_with_funds_is_refused() {
    let mut app = new_app();
    let creator = app.api().addr_make("creator");
    app.init_modules(|router, _, storage| {
        router
            .bank
            .init_balance(storage, &creator, coins(100, "ustake"))
    })
    .unwrap();
    let set = members(&app, 4, 1);
    let code_id = app.store_code(contract());
    assert_rejected(
        app.instantiate_contract(
            code_id,
            creator,
            &instantiate_msg(&set, None),
            &coins(1, "ustake"),
            "r",
            None,
        ),
        ContractError::FundsNotAccepted,
    );
}

/// Rewards over several storage chunks, with gaps of every encoding.
fn large_rewards(count: u32) -> Vec<MixnodeReward> {
    let mut next = 1u32;
    (0..count)
        .map(|i| {
            let mix_id = next;
            next += 1 + [0, 0, 1, 2, 3, 150, 0, 20_000][i as usize % 8];
            reward(mix_id, (i * 7_919 % 10_001) as u16)
        })
        .collect()
}

/// A suite whose maximum allows `count` mixnodes, with `large_rewards(count)` stored for epoch
/// 0 (signed by members 0..3); returns the rewards and signatures.
fn suite_with_large_epoch(count: u32) -> (Suite, Vec<MixnodeReward>, Vec<SignerSignature>) {
    let mut suite = Suite::new();
    suite.update_config(Some(count), None).unwrap();
    suite.end_epoch(0);
    let rewards = large_rewards(count);
    let signatures = suite.sign(1, 0, &rewards, &[0, 1, 2]);
    let sender = suite.member(1, 0).address.clone();
    suite
        .submit(&sender, 0, 1, rewards.clone(), signatures.clone())
        .unwrap();
    (suite, rewards, signatures)
}

#[test]
fn epochs_of_exactly_one_and_two_chunks_read_back_at_every_boundary() {
    for count in [1_024u32, 1_025, 2_048] {
        let (suite, rewards, _) = suite_with_large_epoch(count);
        assert_eq!(suite.epoch(0).unwrap().rewards, rewards, "{count} records");
        for index in [0, 1_022, 1_023, 1_024, 1_025, 2_046, 2_047] {
            let Some(reward) = rewards.get(index) else {
                continue;
            };
            let page: MixnodeRewardsResponse = suite.query(&QueryMsg::MixnodeRewards {
                mix_id: reward.mix_id,
                start_after: None,
                limit: None,
            });
            assert_eq!(page.rewards.len(), 1, "record {index} of {count}");
            assert_eq!(page.rewards[0].uptime_bp, reward.uptime_bp);
        }
    }
}

#[test]
fn a_missing_chunk_is_reported_not_read_as_absent() {
    let (mut suite, rewards, _) = suite_with_large_epoch(2_100);
    let contract = suite.contract.clone();
    let key = EPOCH_REWARD_CHUNKS.storage_key((0, 1));
    suite.app.contract_storage_mut(&contract).remove(&key);
    let result: StdResult<MixnodeRewardsResponse> = suite.app.wrap().query_wasm_smart(
        &contract,
        &QueryMsg::MixnodeRewards {
            mix_id: rewards[1_500].mix_id,
            start_after: None,
            limit: None,
        },
    );
    assert_rejected(result, ContractError::CorruptEpoch { epoch: 0 });
}

#[test]
fn a_stream_longer_than_the_maximum_allows_is_refused_before_decoding() {
    let mut suite = Suite::new();
    let rewards = rewards(5);
    let mut packed = pack_rewards(&rewards);
    packed.resize(MAX_MIXNODES as usize * 7 + 1, 0);
    assert_rejected(
        submit_packed_rewards(&mut suite, &rewards, packed),
        PackingError::TooLong {
            len: MAX_MIXNODES as usize * 7 + 1,
            max_len: MAX_MIXNODES as usize * 7,
        }
        .into(),
    );
}

#[test]
fn a_large_epoch_reads_back_whole_packed_and_per_mixnode() {
    let (suite, rewards, signatures) = suite_with_large_epoch(2_500);
    let stored = suite.epoch(0).expect("stored");
    assert_eq!(stored.rewards, rewards);
    assert_eq!(stored.signatures, signatures);
    assert_eq!(stored.data_hash.as_slice(), data_hash(&rewards));
    let packed: Option<PackedEpochRewardsResponse> =
        suite.query(&QueryMsg::EpochRewardsPacked { epoch: 0 });
    let packed = packed.expect("stored");
    assert_eq!(packed.records.as_slice(), encode_rewards(&rewards));
    assert_eq!(packed.signatures.as_slice(), encode_signatures(&signatures));
    assert_eq!(packed.data_hash, stored.data_hash);
    let none: Option<PackedEpochRewardsResponse> =
        suite.query(&QueryMsg::EpochRewardsPacked { epoch: 1 });
    assert!(none.is_none());

    for reward in rewards.iter().step_by(211).chain(rewards.last()) {
        let page: MixnodeRewardsResponse = suite.query(&QueryMsg::MixnodeRewards {
            mix_id: reward.mix_id,
            start_after: None,
            limit: None,
        });
        assert_eq!(page.rewards.len(), 1, "mixnode {}", reward.mix_id);
        assert_eq!(page.rewards[0].uptime_bp, reward.uptime_bp);
    }
    let absent: MixnodeRewardsResponse = suite.query(&QueryMsg::MixnodeRewards {
        mix_id: rewards[5].mix_id + 1,
        start_after: None,
        limit: None,
    });
    assert!(absent.rewards.is_empty());
}

/// Rewrites a v2 suite's state the way v1 (0.1.0) lays it out: no submission view of the
/// signer sets, a config without the rotation delay, and epochs as fixed-width records.
fn downgrade_to_v1(suite: &mut Suite, epochs: &[(u64, Vec<MixnodeReward>, Vec<SignerSignature>)]) {
    let contract = suite.contract.clone();
    let submitter = suite.member(1, 0).address.clone();
    let admin = suite.admin.clone();
    let mut storage = suite.app.contract_storage_mut(&contract);
    for key in ["signer_keys", "signer_index"] {
        let prefix = (key.len() as u16).to_be_bytes().to_vec();
        let keys: Vec<Vec<u8>> = storage
            .range_keys(None, None, cosmwasm_std::Order::Ascending)
            .filter(|stored| stored.starts_with(&[prefix.as_slice(), key.as_bytes()].concat()))
            .collect();
        for stored in keys {
            storage.remove(&stored);
        }
    }
    let v1_config = serde_json::json!({
        "admin": admin,
        "clock": { "genesis_time": GENESIS, "epoch_length_secs": EPOCH_SECS },
        "max_mixnodes_per_epoch": MAX_MIXNODES,
    });
    storage.set(b"config", v1_config.to_string().as_bytes());
    storage.set(
        b"contract_info",
        br#"{"contract":"crates.io:nym-rewards","version":"0.1.0"}"#,
    );
    for (epoch, rewards, signatures) in epochs {
        let records = encode_rewards(rewards);
        let summary = EpochSummary {
            epoch: *epoch,
            signer_set_version: 1,
            data_hash: HexBinary::from(data_hash(rewards)),
            submitter: submitter.clone(),
            height: 100 + epoch,
            time: cosmwasm_std::Timestamp::from_seconds(GENESIS + 61 + 60 * epoch),
            mixnodes: rewards.len() as u32,
            signers: signatures.len() as u32,
        };
        EPOCH_SUMMARIES
            .save(storage.as_mut(), *epoch, &summary)
            .unwrap();
        EPOCH_REWARDS_V1.save(storage.as_mut(), *epoch, &records);
        EPOCH_SIGNATURES.save(storage.as_mut(), *epoch, &encode_signatures(signatures));
    }
}

#[test]
fn a_page_of_large_v1_epochs_stops_at_the_read_budget_and_resumes() {
    let mut suite = Suite::new();
    // v1 epochs at the cap are read whole (120 KB each): a full page of them would exceed
    // wasmd's default query gas limit, so a page stops once its read budget is spent.
    let large: Vec<MixnodeReward> = (1..=MAX_MIXNODES_CAP)
        .map(|mix_id| MixnodeReward {
            mix_id,
            uptime_bp: (mix_id % 10_001) as u16,
        })
        .collect();
    let old: Vec<_> = (0..5u64)
        .map(|epoch| {
            let signatures = suite.sign(1, epoch, &large, &[0, 1, 2]);
            (epoch, large.clone(), signatures)
        })
        .collect();
    downgrade_to_v1(&mut suite, &old);
    suite.migrate_to_new_code().expect("v1 migrates");
    let per_page = MIXNODE_SCAN_READ_BUDGET.div_ceil(large.len() * 6);
    let (mut start_after, mut seen, mut pages) = (None, Vec::new(), 0);
    loop {
        let page: MixnodeRewardsResponse = suite.query(&QueryMsg::MixnodeRewards {
            mix_id: MAX_MIXNODES_CAP,
            start_after,
            limit: Some(20),
        });
        pages += 1;
        assert!(page.rewards.len() <= per_page, "page {pages}: {page:?}");
        assert!(
            page.rewards
                .iter()
                .all(|r| r.uptime_bp == large[large.len() - 1].uptime_bp)
        );
        seen.extend(page.rewards.iter().map(|r| r.epoch));
        match page.next_start_after {
            Some(next) => start_after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec![0, 1, 2, 3, 4],
        "paging resumes where the budget stopped"
    );
    assert_eq!(pages, 5usize.div_ceil(per_page));
}

#[test]
fn a_v1_signer_set_with_a_small_order_key_is_not_migrated() {
    let mut suite = Suite::new();
    downgrade_to_v1(&mut suite, &[]);
    let addr = suite.contract.clone();
    {
        let mut storage = suite.app.contract_storage_mut(&addr);
        let mut set = SIGNER_SETS.load(storage.as_ref(), 1).unwrap();
        let mut identity = vec![0u8; 32];
        identity[0] = 1;
        set.members[2].ed25519_pubkey = HexBinary::from(identity);
        SIGNER_SETS.save(storage.as_mut(), 1, &set).unwrap();
    }
    assert_rejected(
        suite.migrate_to_new_code(),
        ContractError::MigrateInvalidMemberKey {
            version: 1,
            reason: ContractError::MemberKeySmallOrder { index: 2 }.to_string(),
        },
    );
}

#[test]
fn v1_state_migrates_and_old_epochs_answer_as_before() {
    let mut suite = Suite::new();
    let old: Vec<_> = (0..3u64)
        .map(|epoch| {
            let rewards = rewards(10 + epoch as u32);
            let signatures = suite.sign(1, epoch, &rewards, &[0, 1, 2]);
            (epoch, rewards, signatures)
        })
        .collect();
    downgrade_to_v1(&mut suite, &old);
    // Without the migration a v2 submission cannot read the v1 signer set.
    suite.end_epoch(3);
    assert_rejected(
        suite.submit_valid(3, 0),
        ContractError::NotASigner {
            sender: suite.member(1, 0).address.to_string(),
            version: 1,
        },
    );

    let response = suite.migrate_to_new_code().expect("v1 migrates");
    let wasm = response.events.iter().find(|e| e.ty == "wasm").unwrap();
    assert!(
        wasm.attributes
            .iter()
            .any(|a| a.key == "from_version" && a.value == "0.1.0")
    );

    for (epoch, rewards, signatures) in &old {
        let stored = suite.epoch(*epoch).expect("old epoch still stored");
        assert_eq!(&stored.rewards, rewards);
        assert_eq!(&stored.signatures, signatures);
        assert_eq!(stored.data_hash.as_slice(), data_hash(rewards));
        assert_eq!(stored.height, 100 + epoch);
        let page: MixnodeRewardsResponse = suite.query(&QueryMsg::MixnodeRewards {
            mix_id: rewards[4].mix_id,
            start_after: Some(*epoch).filter(|&e| e > 0).map(|e| e - 1),
            limit: Some(1),
        });
        assert_eq!(page.rewards[0].uptime_bp, rewards[4].uptime_bp);
    }
    let packed: Option<PackedEpochRewardsResponse> =
        suite.query(&QueryMsg::EpochRewardsPacked { epoch: 1 });
    assert_eq!(
        packed.unwrap().records.as_slice(),
        encode_rewards(&old[1].1)
    );
    let absent: MixnodeRewardsResponse = suite.query(&QueryMsg::MixnodeRewards {
        mix_id: 1,
        start_after: None,
        limit: None,
    });
    assert!(absent.rewards.is_empty(), "ids are multiples of 3");
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.min_rotation_delay_epochs, 0);
    assert_eq!(config.max_mixnodes_per_epoch, MAX_MIXNODES);
    // Migrating again changes nothing.
    suite.migrate_to_new_code().expect("a second migration");
    assert_eq!(suite.epoch(2).unwrap().rewards, old[2].1);
    // New epochs are stored in the v2 layout beside the old ones.
    suite
        .submit_valid(3, 0)
        .expect("a v2 submission after the migration");
    assert_eq!(suite.epoch(3).unwrap().rewards, rewards(10));
    let epochs: EpochsResponse = suite.query(&QueryMsg::Epochs {
        start_after: None,
        limit: None,
    });
    assert_eq!(epochs.epochs.len(), 4);
}
