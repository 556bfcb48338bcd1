//! A cw-multi-test suite around the real contract code, with real ed25519 keys.
#![allow(dead_code)]

use cosmwasm_std::{Addr, Empty, HexBinary, StdResult, Timestamp};
use cw_multi_test::{
    App, AppBuilder, AppResponse, Contract, ContractWrapper, Executor, MockApiBech32,
};
use ed25519_dalek::{Signer, SigningKey};
use nym_rewards::ContractError;
use nym_rewards::contract::{execute, instantiate, migrate, query};
use nym_rewards::digest::{DigestContext, data_hash, epoch_digest};
use nym_rewards::msg::{
    EpochClock, EpochRewardsResponse, ExecuteMsg, InstantiateMsg, MemberInput, MigrateMsg,
    MixnodeReward, QueryMsg, SignerSignature,
};

pub type TestApp = App<cw_multi_test::BankKeeper, MockApiBech32>;

pub const GENESIS: u64 = 1_700_000_000;
pub const EPOCH_SECS: u64 = 60;
pub const MAX_MIXNODES: u32 = 50;

pub fn contract() -> Box<dyn Contract<Empty>> {
    Box::new(ContractWrapper::new(execute, instantiate, query).with_migrate(migrate))
}

/// A signer-set member in tests: its ed25519 key and chain address.
pub struct TestMember {
    pub key: SigningKey,
    pub address: Addr,
}

pub struct Suite {
    pub app: TestApp,
    pub contract: Addr,
    pub admin: Addr,
    pub code_id: u64,
    /// Members per signer-set version (index 0 = version 1).
    pub sets: Vec<Vec<TestMember>>,
}

pub fn new_app() -> TestApp {
    AppBuilder::new()
        .with_api(MockApiBech32::new("wasm"))
        .build(|_, _, _| {})
}

/// Members with keys derived from `seed_base + i`.
pub fn members(app: &TestApp, count: usize, seed_base: u8) -> Vec<TestMember> {
    (0..count)
        .map(|i| {
            let seed = seed_base.wrapping_add(i as u8);
            TestMember {
                key: SigningKey::from_bytes(&[seed; 32]),
                address: app.api().addr_make(&format!("member-{seed}")),
            }
        })
        .collect()
}

pub fn member_inputs(members: &[TestMember]) -> Vec<MemberInput> {
    members
        .iter()
        .enumerate()
        .map(|(i, member)| MemberInput {
            ed25519_pubkey: HexBinary::from(member.key.verifying_key().to_bytes()),
            address: member.address.to_string(),
            api_url: format!("http://127.0.0.1:{}", 8000 + i),
            p2p_multiaddr: format!("/ip4/127.0.0.1/tcp/{}", 9000 + i),
        })
        .collect()
}

pub fn instantiate_msg(members: &[TestMember], threshold: Option<u32>) -> InstantiateMsg {
    InstantiateMsg {
        admin: None,
        clock: EpochClock {
            genesis_time: GENESIS,
            epoch_length_secs: EPOCH_SECS,
        },
        members: member_inputs(members),
        threshold,
        max_mixnodes_per_epoch: MAX_MIXNODES,
        min_rotation_delay_epochs: None,
    }
}

pub fn rewards(count: u32) -> Vec<MixnodeReward> {
    (1..=count)
        .map(|i| MixnodeReward {
            mix_id: i * 3,
            uptime_bp: ((i * 997) % 10_001) as u16,
        })
        .collect()
}

impl Suite {
    /// 4 members, default threshold (3), block time at the start of epoch 0.
    pub fn new() -> Self {
        Self::with_members(4, None)
    }

    pub fn with_members(count: usize, threshold: Option<u32>) -> Self {
        let mut app = new_app();
        let admin = app.api().addr_make("admin");
        let set = members(&app, count, 1);
        let code_id = app.store_code(contract());
        set_time(&mut app, GENESIS);
        let contract = app
            .instantiate_contract(
                code_id,
                admin.clone(),
                &instantiate_msg(&set, threshold),
                &[],
                "nym-rewards",
                Some(admin.to_string()),
            )
            .expect("instantiate");
        Self {
            app,
            contract,
            admin,
            code_id,
            sets: vec![set],
        }
    }

    pub fn chain_id(&self) -> String {
        self.app.block_info().chain_id
    }

    /// Moves block time to `secs` (unix) and the height one block on.
    pub fn set_time(&mut self, secs: u64) {
        set_time(&mut self.app, secs);
    }

    /// Moves block time past the end of `epoch`.
    pub fn end_epoch(&mut self, epoch: u64) {
        self.set_time(GENESIS + (epoch + 1) * EPOCH_SECS);
    }

    pub fn member(&self, version: u32, index: usize) -> &TestMember {
        &self.sets[version as usize - 1][index]
    }

    /// Real signatures of the given members of `version` over the canonical digest.
    pub fn sign(
        &self,
        version: u32,
        epoch: u64,
        rewards: &[MixnodeReward],
        signers: &[usize],
    ) -> Vec<SignerSignature> {
        self.sign_with(
            &self.chain_id(),
            self.contract.as_str(),
            version,
            epoch,
            rewards,
            signers,
        )
    }

    pub fn sign_with(
        &self,
        chain_id: &str,
        contract: &str,
        version: u32,
        epoch: u64,
        rewards: &[MixnodeReward],
        signers: &[usize],
    ) -> Vec<SignerSignature> {
        let digest = epoch_digest(
            &DigestContext {
                chain_id,
                contract_addr: contract,
                signer_set_version: version,
                epoch,
            },
            &data_hash(rewards),
        )
        .expect("digest");
        signers
            .iter()
            .map(|&index| SignerSignature {
                index: index as u16,
                signature: HexBinary::from(
                    self.member(version, index).key.sign(&digest).to_bytes(),
                ),
            })
            .collect()
    }

    pub fn submit(
        &mut self,
        sender: &Addr,
        epoch: u64,
        version: u32,
        rewards: Vec<MixnodeReward>,
        signatures: Vec<SignerSignature>,
    ) -> StdResult<AppResponse> {
        let msg = ExecuteMsg::submit_epoch(epoch, version, &rewards, &signatures);
        self.app
            .execute_contract(sender.clone(), self.contract.clone(), &msg, &[])
    }

    /// Submits packed bytes as given, well-formed or not.
    pub fn submit_packed(
        &mut self,
        sender: &Addr,
        epoch: u64,
        version: u32,
        rewards: Vec<u8>,
        signatures: Vec<u8>,
    ) -> StdResult<AppResponse> {
        let msg = ExecuteMsg::SubmitEpoch {
            epoch,
            signer_set_version: version,
            rewards: rewards.into(),
            signatures: signatures.into(),
        };
        self.app
            .execute_contract(sender.clone(), self.contract.clone(), &msg, &[])
    }

    /// A valid submission of `epoch` by member `submitter` of version 1, signed by members 0..3.
    pub fn submit_valid(&mut self, epoch: u64, submitter: usize) -> StdResult<AppResponse> {
        let rewards = rewards(10);
        let signatures = self.sign(1, epoch, &rewards, &[0, 1, 2]);
        let sender = self.member(1, submitter).address.clone();
        self.submit(&sender, epoch, 1, rewards, signatures)
    }

    /// `UpdateConfig` sent by the admin.
    pub fn update_config(
        &mut self,
        max_mixnodes_per_epoch: Option<u32>,
        min_rotation_delay_epochs: Option<u64>,
    ) -> StdResult<AppResponse> {
        let admin = self.admin.clone();
        self.execute(
            &admin,
            &ExecuteMsg::UpdateConfig {
                max_mixnodes_per_epoch,
                min_rotation_delay_epochs,
            },
        )
    }

    /// Stores this code again and migrates the contract to it, as the chain-level admin.
    pub fn migrate_to_new_code(&mut self) -> StdResult<AppResponse> {
        let new_code = self.app.store_code(contract());
        let (admin, contract) = (self.admin.clone(), self.contract.clone());
        self.app
            .migrate_contract(admin, contract, &MigrateMsg {}, new_code)
    }

    pub fn execute(&mut self, sender: &Addr, msg: &ExecuteMsg) -> StdResult<AppResponse> {
        self.app
            .execute_contract(sender.clone(), self.contract.clone(), msg, &[])
    }

    pub fn query<T: serde::de::DeserializeOwned>(&self, msg: &QueryMsg) -> T {
        self.app
            .wrap()
            .query_wasm_smart(&self.contract, msg)
            .expect("query")
    }

    pub fn epoch(&self, epoch: u64) -> Option<EpochRewardsResponse> {
        self.query(&QueryMsg::EpochRewards { epoch })
    }
}

pub fn set_time(app: &mut TestApp, secs: u64) {
    app.update_block(|block| {
        block.time = Timestamp::from_seconds(secs);
        block.height += 1;
    });
}

/// Asserts that `result` failed with exactly `expected` (cw-multi-test carries contract errors
/// as their display text).
#[track_caller]
pub fn assert_rejected<T: std::fmt::Debug>(result: StdResult<T>, expected: ContractError) {
    let err = result.expect_err("expected a rejection");
    let text = format!("{err}");
    assert!(
        text.contains(&expected.to_string()),
        "expected `{expected}`, got `{text}`"
    );
}
