//! The v1 -> v2 migration on a real wasmd: the v1 contract (built from its git commit) is
//! instantiated and fed the way v1 relayers fed it (JSON rewards, a scheduled second signer
//! set), migrated to this code with `MsgMigrateContract`, and every query over the old state
//! must give an equal JSON answer as before (the config: its v1 fields); old epochs must hash
//! to their data hash and refuse a second submission, and a v2 submission must then be
//! accepted beside them.

use nym_rewards::digest::hash_records;
use nym_rewards::msg::{MigrateMsg, MixnodeReward, PackedEpochRewardsResponse, QueryMsg};
use relayer_node::chain::fees::FeeSettings;
use relayer_node::chain::wasmd::{GasLimit, TxOutcome, WasmdChain};
use relayer_node::chain::{Chain, epoch_record};
use relayer_node::keys::ChainAccount;
use serde::Serialize;
use serde_json::{Value, json};

use super::gas::FixtureContract;
use super::{PAST_EPOCHS, SignerFixture, dense_rewards};
use crate::DevError;

/// The cw2 version v1 records.
const V1_VERSION: &str = "0.1.0";
/// Members of the v1 signer set, and of the second set v1 schedules.
const MEMBERS: usize = 4;
const SECOND_SET_MEMBERS: usize = 7;
/// How many epochs ahead v1 schedules the second set.
const ROTATION_AHEAD_EPOCHS: u64 = 3_600;

/// What the check did and measured.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    /// Code id of the v1 wasm.
    pub v1_code_id: u64,
    /// Code id of this wasm.
    pub v2_code_id: u64,
    /// The migrated contract.
    pub contract: String,
    /// The cw2 versions the migration reported.
    pub from_version: String,
    /// See `from_version`.
    pub to_version: String,
    /// Queries answered identically before and after.
    pub queries_compared: usize,
    /// Gas of v1's JSON submission of 1000 mixnodes.
    pub v1_submit_gas_m1000: u64,
    /// Gas of v2's packed submission of the same data after the migration.
    pub v2_submit_gas_m1000: u64,
    /// Gas of the migration.
    pub migrate_gas: u64,
}

/// The epochs v1 stores: dense, sparse with long gaps, and a single mixnode.
fn v1_epochs() -> Vec<(u64, Vec<MixnodeReward>)> {
    let sparse = (0..100u32)
        .map(|i| MixnodeReward {
            mix_id: 1 + i * i * 37,
            uptime_bp: (i * 101 % 10_001) as u16,
        })
        .collect();
    let single = vec![MixnodeReward {
        mix_id: 4_000_000_000,
        uptime_bp: 10_000,
    }];
    vec![(0, dense_rewards(1_000)), (1, sparse), (2, single)]
}

/// The queries compared across the migration.
fn queries(rotation_epoch: u64) -> Vec<QueryMsg> {
    let mut queries = vec![
        QueryMsg::SignerSet { version: Some(1) },
        QueryMsg::SignerSet { version: Some(2) },
        QueryMsg::SignerSet { version: None },
        QueryMsg::SignerSetForEpoch { epoch: 0 },
        QueryMsg::SignerSetForEpoch {
            epoch: rotation_epoch,
        },
        QueryMsg::Epochs {
            start_after: None,
            limit: None,
        },
        QueryMsg::EpochRewards { epoch: 3 },
    ];
    for (epoch, rewards) in v1_epochs() {
        queries.push(QueryMsg::EpochRewards { epoch });
        for reward in [rewards.first(), rewards.get(37), rewards.last()]
            .into_iter()
            .flatten()
        {
            queries.push(QueryMsg::MixnodeRewards {
                mix_id: reward.mix_id,
                start_after: None,
                limit: None,
            });
            // Paged: one epoch at a time after the first.
            queries.push(QueryMsg::MixnodeRewards {
                mix_id: reward.mix_id,
                start_after: Some(0),
                limit: Some(1),
            });
        }
    }
    // Absent ids: below, between and above every stored one.
    for mix_id in [0, 2, 362_640, u32::MAX] {
        queries.push(QueryMsg::MixnodeRewards {
            mix_id,
            start_after: None,
            limit: None,
        });
    }
    queries
}

/// The config fields v1 had (v2 adds others).
async fn old_config_fields(chain: &WasmdChain) -> Result<Vec<Value>, DevError> {
    let config: Value = serde_json::from_slice(&chain.query_raw(&QueryMsg::Config {}).await?)?;
    Ok(["admin", "clock", "max_mixnodes_per_epoch"]
        .iter()
        .map(|field| config[field].clone())
        .collect())
}

/// After the migration: each old epoch's packed records hash to its data hash (what an
/// auditor checks), and submitting an old epoch again is refused without changing it.
async fn check_migrated_epochs(
    contract: &FixtureContract,
    admin: &ChainAccount,
) -> Result<(), DevError> {
    for (epoch, rewards) in v1_epochs() {
        let packed: Option<PackedEpochRewardsResponse> = serde_json::from_slice(
            &contract
                .chain
                .query_raw(&QueryMsg::EpochRewardsPacked { epoch })
                .await?,
        )?;
        let packed = packed.ok_or(DevError::NotOnChain(epoch))?;
        if hash_records(packed.records.as_slice()) != packed.data_hash.as_slice() {
            return Err(DevError::Invalid(format!(
                "migrated epoch {epoch}: the packed records do not hash to the data hash"
            )));
        }
        let again = contract
            .chain
            .execute_json(
                admin,
                contract.submit_msg(epoch, &rewards)?,
                GasLimit::Fixed(2_000_000),
            )
            .await?;
        let stored = epoch_record(&contract.chain, epoch)
            .await?
            .ok_or(DevError::NotOnChain(epoch))?;
        if again.code == 0 || stored.height == again.height {
            return Err(DevError::Invalid(format!(
                "migrated epoch {epoch} was accepted a second time (tx {})",
                again.hash
            )));
        }
    }
    Ok(())
}

async fn answers(chain: &WasmdChain, queries: &[QueryMsg]) -> Result<Vec<Value>, DevError> {
    let mut answers = Vec::with_capacity(queries.len());
    for query in queries {
        answers.push(serde_json::from_slice(&chain.query_raw(query).await?)?);
    }
    Ok(answers)
}

/// v1's instantiate message: v2's without the fields v2 added.
fn v1_instantiate_msg(
    fixture: &SignerFixture,
    chain_time: u64,
    max_mixnodes: u32,
) -> Result<Vec<u8>, DevError> {
    let mut msg = serde_json::to_value(fixture.instantiate_msg(chain_time, max_mixnodes))?;
    if let Some(fields) = msg.as_object_mut() {
        fields.remove("min_rotation_delay_epochs");
    }
    Ok(serde_json::to_vec(&msg)?)
}

impl FixtureContract {
    /// Instantiates the v1 code `v1_code_id` with `fixture` (`admin` pays, is member 0 and
    /// may migrate).
    pub async fn instantiate_v1(
        rpc: &str,
        admin: &ChainAccount,
        v1_code_id: u64,
        fixture: SignerFixture,
        max_mixnodes: u32,
    ) -> Result<Self, DevError> {
        let msg = |fixture: &SignerFixture, chain_time| {
            v1_instantiate_msg(fixture, chain_time, max_mixnodes)
        };
        Self::instantiate_code(rpc, admin, v1_code_id, fixture, "nym-rewards-v1", msg).await
    }

    /// Submits `rewards` for `epoch` as v1 did (JSON rewards and signature objects); the
    /// transaction must succeed.
    pub async fn submit_v1(
        &self,
        admin: &ChainAccount,
        epoch: u64,
        rewards: &[MixnodeReward],
    ) -> Result<TxOutcome, DevError> {
        let signatures = self.signatures(epoch, rewards)?;
        let msg = serde_json::to_vec(&json!({
            "submit_epoch": {
                "epoch": epoch,
                "signer_set_version": 1,
                "rewards": rewards,
                "signatures": signatures,
            }
        }))?;
        Ok(self
            .chain
            .execute_checked(admin, msg, "v1 SubmitEpoch")
            .await?)
    }

    /// Migrates to `code_id` and checks the versions the migration reports.
    pub async fn migrate_from_v1(
        &self,
        admin: &ChainAccount,
        code_id: u64,
    ) -> Result<TxOutcome, DevError> {
        let migrated = self
            .chain
            .migrate(admin, code_id, serde_json::to_vec(&MigrateMsg {})?)
            .await?;
        let version = |key: &str| migrated.event("wasm", key).unwrap_or_default().to_string();
        let (from, to) = (version("from_version"), version("to_version"));
        if from != V1_VERSION || to != nym_rewards::CONTRACT_VERSION {
            return Err(DevError::Invalid(format!(
                "the migration reports {from:?} -> {to:?}, not {V1_VERSION} -> {}",
                nym_rewards::CONTRACT_VERSION
            )));
        }
        Ok(migrated)
    }
}

/// Runs the check on the chain at `rpc`, `admin` paying and administering.
pub async fn check_migration(
    rpc: &str,
    admin: &ChainAccount,
    v1_wasm: Vec<u8>,
    v2_wasm: Vec<u8>,
) -> Result<MigrationReport, DevError> {
    let chain = WasmdChain::connect(rpc, None, "", FeeSettings::default()).await?;
    let (v1_code_id, _) = chain.store_code(admin, v1_wasm).await?;
    let (v2_code_id, _) = chain.store_code(admin, v2_wasm).await?;
    eprintln!("migration-check: v1 code {v1_code_id}, v2 code {v2_code_id}");

    let fixture = SignerFixture::new(MEMBERS, admin)?;
    let contract = FixtureContract::instantiate_v1(rpc, admin, v1_code_id, fixture, 5_000).await?;
    let mut v1_submit_gas_m1000 = 0;
    for (epoch, rewards) in v1_epochs() {
        let outcome = contract.submit_v1(admin, epoch, &rewards).await?;
        if rewards.len() == 1_000 {
            v1_submit_gas_m1000 = outcome.gas_used;
        }
    }
    // v1 schedules a second, larger signer set well ahead.
    let rotation_epoch = PAST_EPOCHS + ROTATION_AHEAD_EPOCHS;
    let second = SignerFixture::new(SECOND_SET_MEMBERS, admin)?;
    let rotate = json!({
        "update_signer_set": {
            "members": second.members(),
            "threshold": null,
            "effective_from_epoch": rotation_epoch,
        }
    });
    contract
        .chain
        .execute_checked(admin, serde_json::to_vec(&rotate)?, "v1 UpdateSignerSet")
        .await?;

    let queries = queries(rotation_epoch);
    let before = answers(&contract.chain, &queries).await?;
    let config_before = old_config_fields(&contract.chain).await?;
    let migrated = contract.migrate_from_v1(admin, v2_code_id).await?;
    let after = answers(&contract.chain, &queries).await?;
    for ((query, before), after) in queries.iter().zip(&before).zip(&after) {
        if before != after {
            return Err(DevError::Invalid(format!(
                "{} answers differently after the migration:\n  before {before}\n  after  {after}",
                serde_json::to_string(query)?
            )));
        }
    }
    if old_config_fields(&contract.chain).await? != config_before {
        return Err(DevError::Invalid(
            "the config's v1 fields changed in the migration".into(),
        ));
    }
    check_migrated_epochs(&contract, admin).await?;
    eprintln!(
        "migration-check: {} queries and the config answer as before the migration; old epochs hash to their data hash and cannot be submitted again",
        queries.len()
    );

    // A v2 submission beside the old epochs.
    let rewards = dense_rewards(1_000);
    let submitted = contract.submit(admin, 3, &rewards).await?;
    let stored = epoch_record(&contract.chain, 3)
        .await?
        .ok_or(DevError::NotOnChain(3))?;
    if stored.rewards != rewards {
        return Err(DevError::Invalid(
            "the v2 epoch after the migration reads back different rewards".into(),
        ));
    }
    Ok(MigrationReport {
        v1_code_id,
        v2_code_id,
        contract: contract.chain.contract().to_string(),
        from_version: V1_VERSION.to_string(),
        to_version: nym_rewards::CONTRACT_VERSION.to_string(),
        queries_compared: queries.len(),
        v1_submit_gas_m1000,
        v2_submit_gas_m1000: submitted.gas_used,
        migrate_gas: migrated.gas_used,
    })
}
