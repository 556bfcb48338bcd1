//! Entry points and the `execute_*` / `query_*` handlers they dispatch to.

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    Addr, Api, Binary, Deps, DepsMut, Env, HexBinary, MessageInfo, Order, Response, StdResult,
    to_json_binary,
};
use cw_storage_plus::Bound;

use crate::digest::{DigestContext, epoch_digest, hash_records};
use crate::epochs::{find_uptime, load_records, save_rewards, unpack_submission};
use crate::error::ContractError;
use crate::migration::migrate_state;
use crate::msg::{
    ConfigResponse, EpochRewardsResponse, EpochSummary, EpochUptime, EpochsResponse, ExecuteMsg,
    InstantiateMsg, LatestEpochResponse, MemberInput, MigrateMsg, MixnodeRewardsResponse,
    PackedEpochRewardsResponse, QueryMsg, SignerSetResponse,
};
use crate::records::{SIGNATURE_RECORD_LEN, decode_rewards, decode_signatures};
use crate::rules::{
    DEFAULT_EPOCHS_PAGE, DEFAULT_MIXNODE_SCAN, MAX_EPOCHS_PAGE, MAX_MIXNODE_SCAN, MAX_MIXNODES_CAP,
    MAX_ROTATION_DELAY_EPOCHS, MAX_ROTATION_HORIZON_EPOCHS, MIXNODE_SCAN_READ_BUDGET,
};
use crate::signer_set::{
    build_signer_set, load_signer_set, save_signer_set, signer_set_for_epoch, version_for_epoch,
};
use crate::state::{
    CONFIG, Config, EPOCH_SIGNATURES, EPOCH_SUMMARIES, LATEST_SIGNER_SET, SIGNER_INDEX, SignerKeys,
    SignerSet,
};
use crate::{CONTRACT_NAME, CONTRACT_VERSION};

/// Instantiates: admin, clock, signer set version 1 (from epoch 0), limits.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    reject_funds(&info)?;
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    msg.clock.validate()?;
    validate_max_mixnodes(msg.max_mixnodes_per_epoch)?;
    let min_rotation_delay_epochs = msg.min_rotation_delay_epochs.unwrap_or(0);
    validate_rotation_delay(min_rotation_delay_epochs)?;
    let admin = match msg.admin {
        Some(admin) => deps.api.addr_validate(&admin)?,
        None => info.sender,
    };
    let set = build_signer_set(deps.api, 1, 0, msg.members, msg.threshold)?;
    save_signer_set(deps.storage, &set)?;
    CONFIG.save(
        deps.storage,
        &Config {
            admin: admin.clone(),
            clock: msg.clock,
            max_mixnodes_per_epoch: msg.max_mixnodes_per_epoch,
            min_rotation_delay_epochs,
            pending_rotation_delay: None,
        },
    )?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("admin", admin)
        .add_attribute("signer_set_version", "1")
        .add_attribute("members", set.members.len().to_string())
        .add_attribute("threshold", set.threshold.to_string()))
}

fn validate_max_mixnodes(max: u32) -> Result<(), ContractError> {
    if max == 0 || max > MAX_MIXNODES_CAP {
        return Err(ContractError::InvalidMaxMixnodes {
            got: max,
            cap: MAX_MIXNODES_CAP,
        });
    }
    Ok(())
}

fn validate_rotation_delay(delay: u64) -> Result<(), ContractError> {
    if delay > MAX_ROTATION_DELAY_EPOCHS {
        return Err(ContractError::InvalidRotationDelay {
            got: delay,
            max: MAX_ROTATION_DELAY_EPOCHS,
        });
    }
    Ok(())
}

/// Every message of this contract takes no funds: attached ones would be locked for good.
fn reject_funds(info: &MessageInfo) -> Result<(), ContractError> {
    if info.funds.is_empty() {
        Ok(())
    } else {
        Err(ContractError::FundsNotAccepted)
    }
}

/// Dispatches execute messages.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ContractError> {
    reject_funds(&info)?;
    match msg {
        ExecuteMsg::SubmitEpoch {
            epoch,
            signer_set_version,
            rewards,
            signatures,
        } => execute_submit_epoch(
            deps,
            env,
            info,
            Submission {
                epoch,
                signer_set_version,
                rewards,
                signatures,
            },
        ),
        ExecuteMsg::UpdateSignerSet {
            members,
            threshold,
            effective_from_epoch,
        } => execute_update_signer_set(deps, env, info, members, threshold, effective_from_epoch),
        ExecuteMsg::UpdateAdmin { admin } => execute_update_admin(deps, info, admin),
        ExecuteMsg::UpdateConfig {
            max_mixnodes_per_epoch,
            min_rotation_delay_epochs,
        } => execute_update_config(
            deps,
            env,
            info,
            max_mixnodes_per_epoch,
            min_rotation_delay_epochs,
        ),
    }
}

/// The fields of a `SubmitEpoch`.
struct Submission {
    epoch: u64,
    signer_set_version: u32,
    rewards: Binary,
    signatures: Binary,
}

fn execute_submit_epoch(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    submission: Submission,
) -> Result<Response, ContractError> {
    let epoch = submission.epoch;
    // First, before any other work: a stored epoch is final.
    if let Some(existing) = EPOCH_SUMMARIES.may_load(deps.storage, epoch)? {
        return Err(ContractError::EpochAlreadySubmitted {
            epoch,
            submitter: existing.submitter.into_string(),
        });
    }
    let config = CONFIG.load(deps.storage)?;
    let ends_at = config.clock.epoch_end(epoch)?;
    let now = env.block.time.seconds();
    if now < ends_at {
        return Err(ContractError::EpochNotEnded {
            epoch,
            ends_at,
            now,
        });
    }
    // Of the signer set, only the version in force, the sender's membership, the threshold and
    // the keys are read.
    let version = version_for_epoch(deps.storage, epoch)?;
    if version != submission.signer_set_version {
        return Err(ContractError::WrongSignerSetVersion {
            epoch,
            expected: version,
            got: submission.signer_set_version,
        });
    }
    if !SIGNER_INDEX.has(deps.storage, (version, &info.sender)) {
        return Err(ContractError::NotASigner {
            sender: info.sender.into_string(),
            version,
        });
    }
    let keys = SignerKeys::load(deps.storage, version)?;
    let signatures = signature_records(&submission.signatures, &keys)?;
    let rewards = unpack_submission(&submission.rewards, config.max_mixnodes_per_epoch)?;

    let data_hash = hash_records(&rewards.records);
    let digest = epoch_digest(
        &DigestContext {
            chain_id: &env.block.chain_id,
            contract_addr: env.contract.address.as_str(),
            signer_set_version: version,
            epoch,
        },
        &data_hash,
    )?;
    verify_signatures(deps.api, &digest, &signatures, &keys)?;

    let summary = EpochSummary {
        epoch,
        signer_set_version: version,
        data_hash: HexBinary::from(data_hash),
        submitter: info.sender,
        height: env.block.height,
        time: env.block.time,
        mixnodes: rewards.count,
        signers: signatures.len() as u32,
    };
    EPOCH_SUMMARIES.save(deps.storage, epoch, &summary)?;
    save_rewards(deps.storage, epoch, &submission.rewards, &rewards);
    EPOCH_SIGNATURES.save(deps.storage, epoch, &submission.signatures);
    Ok(Response::new()
        .add_attribute("action", "submit_epoch")
        .add_attribute("epoch", epoch.to_string())
        .add_attribute("submitter", summary.submitter)
        .add_attribute("data_hash", summary.data_hash.to_hex())
        .add_attribute("signer_set_version", version.to_string())
        .add_attribute("signers", summary.signers.to_string()))
}

/// One checked signature record: the signer's index and the 64 signature bytes.
struct SignatureRecord<'a> {
    index: u16,
    signature: &'a [u8],
}

/// Splits packed signature records and checks count, order and range (not the signatures).
fn signature_records<'a>(
    packed: &'a [u8],
    keys: &SignerKeys,
) -> Result<Vec<SignatureRecord<'a>>, ContractError> {
    if !packed.len().is_multiple_of(SIGNATURE_RECORD_LEN) {
        return Err(ContractError::SignaturesLength {
            len: packed.len(),
            record_len: SIGNATURE_RECORD_LEN,
        });
    }
    let count = packed.len() / SIGNATURE_RECORD_LEN;
    if count < keys.threshold() as usize {
        return Err(ContractError::BelowThreshold {
            got: count,
            threshold: keys.threshold(),
        });
    }
    let mut records = Vec::with_capacity(count);
    let mut previous: Option<u16> = None;
    for (position, record) in packed.chunks_exact(SIGNATURE_RECORD_LEN).enumerate() {
        let index = u16::from_be_bytes([record[0], record[1]]);
        if let Some(previous) = previous.filter(|&previous| index <= previous) {
            return Err(ContractError::SignerIndicesNotAscending {
                position,
                index,
                previous,
            });
        }
        if usize::from(index) >= keys.members() {
            return Err(ContractError::SignerIndexOutOfRange {
                index,
                members: keys.members(),
            });
        }
        records.push(SignatureRecord {
            index,
            signature: &record[2..],
        });
        previous = Some(index);
    }
    Ok(records)
}

/// One batch verification; when it fails, a per-signature pass names the first bad signer.
fn verify_signatures(
    api: &dyn Api,
    digest: &[u8; 32],
    signatures: &[SignatureRecord<'_>],
    keys: &SignerKeys,
) -> Result<(), ContractError> {
    // Indices were checked against the set's size.
    let pubkeys: Vec<&[u8]> = signatures
        .iter()
        .map(|record| keys.key(record.index).unwrap_or_default())
        .collect();
    let sigs: Vec<&[u8]> = signatures.iter().map(|record| record.signature).collect();
    let messages: [&[u8]; 1] = [digest];
    if api.ed25519_batch_verify(&messages, &sigs, &pubkeys)? {
        return Ok(());
    }
    for ((record, sig), pubkey) in signatures.iter().zip(&sigs).zip(&pubkeys) {
        if !api.ed25519_verify(digest, sig, pubkey)? {
            return Err(ContractError::InvalidSignature {
                index: record.index,
            });
        }
    }
    // The batch and the single checks disagree only if the API is inconsistent; refuse anyway.
    Err(ContractError::InvalidSignature {
        index: signatures.first().map_or(0, |record| record.index),
    })
}

fn execute_update_signer_set(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    members: Vec<MemberInput>,
    threshold: Option<u32>,
    effective_from_epoch: u64,
) -> Result<Response, ContractError> {
    let mut config = load_config_as_admin(deps.as_ref(), &info.sender, "update the signer set")?;
    let latest = load_signer_set(deps.storage, LATEST_SIGNER_SET.load(deps.storage)?)?;
    // Epochs up to the running one keep their set; a new set also starts after the latest one.
    let current = config.clock.epoch_at(env.block.time.seconds());
    config.settle_rotation_delay(current);
    let earliest_excluded = current.map_or(latest.effective_from_epoch, |current| {
        current.max(latest.effective_from_epoch)
    });
    if effective_from_epoch <= earliest_excluded {
        return Err(ContractError::RotationNotInFuture {
            effective_from_epoch,
            earliest_excluded,
        });
    }
    let earliest = current
        .unwrap_or(0)
        .saturating_add(config.min_rotation_delay_epochs);
    if effective_from_epoch < earliest {
        return Err(ContractError::RotationTooSoon {
            effective_from_epoch,
            delay: config.min_rotation_delay_epochs,
            earliest,
        });
    }
    let latest_allowed = earliest
        .max(earliest_excluded.saturating_add(1))
        .saturating_add(MAX_ROTATION_HORIZON_EPOCHS);
    if effective_from_epoch > latest_allowed {
        return Err(ContractError::RotationTooFar {
            effective_from_epoch,
            latest_allowed,
        });
    }
    CONFIG.save(deps.storage, &config)?;
    let version = latest.version + 1;
    let set = build_signer_set(deps.api, version, effective_from_epoch, members, threshold)?;
    save_signer_set(deps.storage, &set)?;
    Ok(Response::new()
        .add_attribute("action", "update_signer_set")
        .add_attribute("sender", info.sender)
        .add_attribute("version", version.to_string())
        .add_attribute("effective_from_epoch", effective_from_epoch.to_string())
        .add_attribute("members", set.members.len().to_string())
        .add_attribute("threshold", set.threshold.to_string()))
}

fn execute_update_admin(
    deps: DepsMut,
    info: MessageInfo,
    admin: String,
) -> Result<Response, ContractError> {
    let mut config = load_config_as_admin(deps.as_ref(), &info.sender, "update the admin")?;
    config.admin = deps.api.addr_validate(&admin)?;
    CONFIG.save(deps.storage, &config)?;
    Ok(Response::new()
        .add_attribute("action", "update_admin")
        .add_attribute("sender", info.sender)
        .add_attribute("admin", config.admin))
}

fn execute_update_config(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    max_mixnodes_per_epoch: Option<u32>,
    min_rotation_delay_epochs: Option<u64>,
) -> Result<Response, ContractError> {
    let mut config = load_config_as_admin(deps.as_ref(), &info.sender, "update the config")?;
    if let Some(max) = max_mixnodes_per_epoch {
        validate_max_mixnodes(max)?;
        config.max_mixnodes_per_epoch = max;
    }
    if let Some(delay) = min_rotation_delay_epochs {
        validate_rotation_delay(delay)?;
        config.set_rotation_delay(delay, config.clock.epoch_at(env.block.time.seconds()));
    }
    CONFIG.save(deps.storage, &config)?;
    let pending = config
        .pending_rotation_delay
        .map_or_else(String::new, |pending| {
            format!("{}@{}", pending.delay_epochs, pending.from_epoch)
        });
    Ok(Response::new()
        .add_attribute("action", "update_config")
        .add_attribute("sender", info.sender)
        .add_attribute(
            "max_mixnodes_per_epoch",
            config.max_mixnodes_per_epoch.to_string(),
        )
        .add_attribute(
            "min_rotation_delay_epochs",
            config.min_rotation_delay_epochs.to_string(),
        )
        .add_attribute("pending_rotation_delay", pending))
}

fn load_config_as_admin(deps: Deps, sender: &Addr, action: &str) -> Result<Config, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    if config.admin != *sender {
        return Err(ContractError::Unauthorized {
            action: action.to_string(),
        });
    }
    Ok(config)
}

/// Dispatches queries.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> Result<Binary, ContractError> {
    Ok(match msg {
        QueryMsg::Config {} => to_json_binary(&query_config(deps, &env)?)?,
        QueryMsg::SignerSet { version } => to_json_binary(&query_signer_set(deps, version)?)?,
        QueryMsg::SignerSetForEpoch { epoch } => to_json_binary(&signer_set_response(
            signer_set_for_epoch(deps.storage, epoch)?,
        ))?,
        QueryMsg::EpochRewards { epoch } => to_json_binary(&query_epoch_rewards(deps, epoch)?)?,
        QueryMsg::EpochRewardsPacked { epoch } => {
            to_json_binary(&query_epoch_rewards_packed(deps, epoch)?)?
        }
        QueryMsg::MixnodeRewards {
            mix_id,
            start_after,
            limit,
        } => to_json_binary(&query_mixnode_rewards(deps, mix_id, start_after, limit)?)?,
        QueryMsg::LatestEpoch {} => to_json_binary(&query_latest_epoch(deps, env)?)?,
        QueryMsg::Epochs { start_after, limit } => {
            to_json_binary(&query_epochs(deps, start_after, limit)?)?
        }
    })
}

fn query_config(deps: Deps, env: &Env) -> Result<ConfigResponse, ContractError> {
    let mut config = CONFIG.load(deps.storage)?;
    config.settle_rotation_delay(config.clock.epoch_at(env.block.time.seconds()));
    Ok(ConfigResponse {
        admin: config.admin,
        clock: config.clock,
        max_mixnodes_per_epoch: config.max_mixnodes_per_epoch,
        min_rotation_delay_epochs: config.min_rotation_delay_epochs,
        pending_rotation_delay: config.pending_rotation_delay,
        latest_signer_set_version: LATEST_SIGNER_SET.load(deps.storage)?,
    })
}

fn query_signer_set(deps: Deps, version: Option<u32>) -> Result<SignerSetResponse, ContractError> {
    let version = match version {
        Some(version) => version,
        None => LATEST_SIGNER_SET.load(deps.storage)?,
    };
    Ok(signer_set_response(load_signer_set(deps.storage, version)?))
}

fn signer_set_response(set: SignerSet) -> SignerSetResponse {
    SignerSetResponse {
        version: set.version,
        effective_from_epoch: set.effective_from_epoch,
        threshold: set.threshold,
        members: set.members,
    }
}

fn query_epoch_rewards(
    deps: Deps,
    epoch: u64,
) -> Result<Option<EpochRewardsResponse>, ContractError> {
    Ok(
        query_epoch_rewards_packed(deps, epoch)?.map(|packed| EpochRewardsResponse {
            epoch,
            signer_set_version: packed.signer_set_version,
            data_hash: packed.data_hash,
            rewards: decode_rewards(&packed.records),
            signatures: decode_signatures(&packed.signatures),
            submitter: packed.submitter,
            height: packed.height,
            time: packed.time,
        }),
    )
}

fn query_epoch_rewards_packed(
    deps: Deps,
    epoch: u64,
) -> Result<Option<PackedEpochRewardsResponse>, ContractError> {
    let Some(summary) = EPOCH_SUMMARIES.may_load(deps.storage, epoch)? else {
        return Ok(None);
    };
    let signatures = EPOCH_SIGNATURES
        .may_load(deps.storage, epoch)
        .ok_or(ContractError::CorruptEpoch { epoch })?;
    Ok(Some(PackedEpochRewardsResponse {
        epoch,
        signer_set_version: summary.signer_set_version,
        data_hash: summary.data_hash,
        records: load_records(deps.storage, epoch)?.into(),
        signatures: signatures.into(),
        submitter: summary.submitter,
        height: summary.height,
        time: summary.time,
    }))
}

/// A requested page size, defaulted and capped (never rejected).
fn page_size(limit: Option<u32>, default: u32, max: u32) -> usize {
    limit.unwrap_or(default).clamp(1, max) as usize
}

fn query_mixnode_rewards(
    deps: Deps,
    mix_id: u32,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<MixnodeRewardsResponse, ContractError> {
    let scan = page_size(limit, DEFAULT_MIXNODE_SCAN, MAX_MIXNODE_SCAN);
    let epochs = EPOCH_SUMMARIES
        .keys(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(scan)
        .collect::<StdResult<Vec<u64>>>()?;
    let mut rewards = Vec::new();
    let (mut scanned, mut bytes_read) = (0, 0);
    // The first epoch is always read, so every page makes progress.
    while scanned < epochs.len() && (scanned == 0 || bytes_read < MIXNODE_SCAN_READ_BUDGET) {
        let epoch = epochs[scanned];
        let lookup = find_uptime(deps.storage, epoch, mix_id)?;
        if let Some(uptime_bp) = lookup.uptime_bp {
            rewards.push(EpochUptime { epoch, uptime_bp });
        }
        bytes_read += lookup.bytes_read;
        scanned += 1;
    }
    // More may follow when the page is full or the budget cut it short.
    let next_start_after = if scanned < epochs.len() || epochs.len() == scan {
        epochs[..scanned].last().copied()
    } else {
        None
    };
    Ok(MixnodeRewardsResponse {
        mix_id,
        rewards,
        next_start_after,
    })
}

fn query_latest_epoch(deps: Deps, env: Env) -> Result<LatestEpochResponse, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    let latest_submitted = EPOCH_SUMMARIES
        .keys(deps.storage, None, None, Order::Descending)
        .next()
        .transpose()?;
    Ok(LatestEpochResponse {
        current_epoch: config.clock.epoch_at(env.block.time.seconds()),
        latest_submitted,
    })
}

fn query_epochs(
    deps: Deps,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> Result<EpochsResponse, ContractError> {
    let limit = page_size(limit, DEFAULT_EPOCHS_PAGE, MAX_EPOCHS_PAGE);
    let epochs = EPOCH_SUMMARIES
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(limit)
        .map(|entry| entry.map(|(_, summary)| summary))
        .collect::<StdResult<Vec<_>>>()?;
    Ok(EpochsResponse { epochs })
}

/// Migrates from an older version of this contract; refuses other contracts and downgrades.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn migrate(deps: DepsMut, _env: Env, _msg: MigrateMsg) -> Result<Response, ContractError> {
    let stored = cw2::get_contract_version(deps.storage)?;
    if stored.contract != CONTRACT_NAME {
        return Err(ContractError::MigrateWrongContract {
            found: stored.contract,
        });
    }
    if version_tuple(&stored.version) > version_tuple(CONTRACT_VERSION) {
        return Err(ContractError::MigrateDowngrade {
            from: stored.version,
            to: CONTRACT_VERSION.to_string(),
        });
    }
    let signer_sets = migrate_state(deps.storage)?;
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    Ok(Response::new()
        .add_attribute("action", "migrate")
        .add_attribute("signer_sets_indexed", signer_sets.to_string())
        .add_attribute("from_version", stored.version)
        .add_attribute("to_version", CONTRACT_VERSION))
}

/// `major.minor.patch` as numbers; pre-release suffixes are ignored, missing parts are 0.
fn version_tuple(version: &str) -> (u64, u64, u64) {
    let mut parts = version
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|part| part.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::testing::{mock_dependencies, mock_env};

    #[test]
    fn versions_compare_numerically() {
        assert!(version_tuple("0.10.0") > version_tuple("0.9.9"));
        assert_eq!(version_tuple("1.2.3-rc.1"), (1, 2, 3));
        assert_eq!(version_tuple("2"), (2, 0, 0));
    }

    #[test]
    fn migrate_refuses_other_contracts_and_downgrades() {
        let mut deps = mock_dependencies();
        cw2::set_contract_version(&mut deps.storage, "crates.io:other", "0.1.0").unwrap();
        let err = migrate(deps.as_mut(), mock_env(), MigrateMsg {}).unwrap_err();
        assert!(
            matches!(err, ContractError::MigrateWrongContract { .. }),
            "{err}"
        );

        cw2::set_contract_version(&mut deps.storage, CONTRACT_NAME, "999.0.0").unwrap();
        let err = migrate(deps.as_mut(), mock_env(), MigrateMsg {}).unwrap_err();
        assert!(
            matches!(err, ContractError::MigrateDowngrade { .. }),
            "{err}"
        );

        cw2::set_contract_version(&mut deps.storage, CONTRACT_NAME, "0.0.1").unwrap();
        let err = migrate(deps.as_mut(), mock_env(), MigrateMsg {}).unwrap_err();
        assert!(
            matches!(err, ContractError::Std(_)),
            "no config to migrate: {err}"
        );
        CONFIG
            .save(
                &mut deps.storage,
                &Config {
                    admin: Addr::unchecked("admin"),
                    clock: crate::clock::EpochClock {
                        genesis_time: 0,
                        epoch_length_secs: 60,
                    },
                    max_mixnodes_per_epoch: 10,
                    min_rotation_delay_epochs: 0,
                    pending_rotation_delay: None,
                },
            )
            .unwrap();
        migrate(deps.as_mut(), mock_env(), MigrateMsg {}).unwrap();
        let stored = cw2::get_contract_version(&deps.storage).unwrap();
        assert_eq!(stored.version, CONTRACT_VERSION);
    }
}
