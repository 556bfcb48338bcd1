//! SubmitEpoch gas on a real wasmd for n signers x M mixnodes, and the rejected duplicate of
//! each, read from the included transactions' results. Every figure stands beside its floor
//! (what wasmd's gas parameters charge for the bytes the transaction carries and the contract
//! stores) and beside the VM model of `bench/results/contract_gas.json`.

use std::path::Path;

use nym_rewards::digest::DigestContext;
use nym_rewards::msg::{ExecuteMsg, MixnodeReward, SignerSignature};
use relayer_node::chain::fees::FeeSettings;
use relayer_node::chain::wasmd::{GasLimit, TxOutcome, WasmdChain};
use relayer_node::chain::{Chain, epoch_record};
use relayer_node::keys::ChainAccount;
use serde::{Deserialize, Serialize};

use super::{SignerFixture, dense_rewards};
use crate::DevError;

/// wasmd's charge for loading a contract instance.
pub const INSTANCE_LOAD_GAS: u64 = 60_000;
/// What the ante handler charges besides the tx bytes (signature check, account reads).
pub const ANTE_GAS: u64 = 50_000;
/// Gas per byte of the signed transaction.
pub const TX_BYTE_GAS: u64 = 10;
/// Gas per byte written (key and value).
pub const STORED_BYTE_GAS: u64 = 30;
/// Bytes wasmd prefixes to every key a contract writes (a type byte and the 32-byte address).
pub const CONTRACT_KEY_PREFIX_BYTES: u64 = 33;

/// One transaction's measured gas beside its floor and the model.
#[derive(Debug, Clone, Serialize)]
pub struct TxGas {
    /// Gas used, from the transaction's result.
    pub gas_used: u64,
    /// Size of the signed transaction.
    pub tx_bytes: u64,
    /// Bytes the contract wrote (keys with wasmd's prefix, and values).
    pub stored_bytes: u64,
    /// `INSTANCE_LOAD_GAS + ANTE_GAS + 10 x tx bytes + 30 x stored bytes`.
    pub floor: u64,
    /// `gas_used / floor`.
    pub over_floor: f64,
    /// The VM model's wasmd gas for the same case.
    pub model: u64,
    /// `(model - gas_used) / gas_used`, in percent.
    pub model_error_pct: f64,
}

/// One case: n signers, M mixnodes.
#[derive(Debug, Clone, Serialize)]
pub struct SubmitRow {
    /// Signer-set size.
    pub signers_n: usize,
    /// Signatures carried (the default threshold).
    pub signatures: usize,
    /// Mixnodes.
    pub mixnodes: u32,
    /// The accepted submission.
    pub submit: TxGas,
    /// The same submission again, rejected.
    pub duplicate: TxGas,
}

/// The VM model's storage and gas for one case (`bench/results/contract_gas.json`).
#[derive(Debug, Clone, Deserialize)]
struct ModelRow {
    signers_n: usize,
    mixnodes: u32,
    submit: ModelCost,
    submit_wasmd_gas: u64,
    duplicate: ModelCost,
    duplicate_wasmd_gas: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct ModelCost {
    writes: u64,
    write_bytes: u64,
}

/// The VM model's rows.
pub struct Model {
    rows: Vec<ModelRow>,
}

impl Model {
    /// Reads the model's JSON.
    pub fn read(path: &Path) -> Result<Self, DevError> {
        #[derive(Deserialize)]
        struct File {
            rows: Vec<ModelRow>,
        }
        let text = std::fs::read_to_string(path)
            .map_err(|err| DevError::io(format!("reading {}", path.display()), err))?;
        let file: File = serde_json::from_str(&text)?;
        Ok(Self { rows: file.rows })
    }

    fn row(&self, signers_n: usize, mixnodes: u32) -> Result<&ModelRow, DevError> {
        self.rows
            .iter()
            .find(|row| row.signers_n == signers_n && row.mixnodes == mixnodes)
            .ok_or_else(|| {
                DevError::Invalid(format!(
                    "the VM model has no case n = {signers_n}, M = {mixnodes} (run `make bench-gas`)"
                ))
            })
    }
}

fn tx_gas(outcome: &TxOutcome, cost: &ModelCost, model: u64) -> TxGas {
    let stored_bytes = cost.write_bytes + cost.writes * CONTRACT_KEY_PREFIX_BYTES;
    let tx_bytes = outcome.tx_bytes as u64;
    let floor =
        INSTANCE_LOAD_GAS + ANTE_GAS + TX_BYTE_GAS * tx_bytes + STORED_BYTE_GAS * stored_bytes;
    let measured = outcome.gas_used.max(1) as f64;
    TxGas {
        gas_used: outcome.gas_used,
        tx_bytes,
        stored_bytes,
        floor,
        over_floor: measured / floor as f64,
        model,
        model_error_pct: (model as f64 - measured) / measured * 100.0,
    }
}

/// A contract instance of a fixture on the chain, and the submissions made to it.
pub struct FixtureContract {
    /// The chain, pointed at the contract.
    pub chain: WasmdChain,
    /// The signer set.
    pub fixture: SignerFixture,
}

impl FixtureContract {
    /// Instantiates `code_id` with `fixture` (`submitter` pays and is member 0).
    pub async fn instantiate(
        rpc: &str,
        submitter: &ChainAccount,
        code_id: u64,
        fixture: SignerFixture,
        max_mixnodes: u32,
    ) -> Result<Self, DevError> {
        let msg = |fixture: &SignerFixture, chain_time| {
            Ok(serde_json::to_vec(
                &fixture.instantiate_msg(chain_time, max_mixnodes),
            )?)
        };
        Self::instantiate_code(rpc, submitter, code_id, fixture, "nym-rewards-bench", msg).await
    }

    /// Instantiates `code_id` with the message `msg` builds from `fixture` and the chain's
    /// time (`submitter` pays, is member 0 and may migrate).
    pub(super) async fn instantiate_code(
        rpc: &str,
        submitter: &ChainAccount,
        code_id: u64,
        fixture: SignerFixture,
        label: &str,
        msg: impl FnOnce(&SignerFixture, u64) -> Result<Vec<u8>, DevError>,
    ) -> Result<Self, DevError> {
        let chain = WasmdChain::connect(rpc, None, "", FeeSettings::default()).await?;
        let msg = msg(&fixture, chain.latest_block_time().await?)?;
        let (contract, _) = chain.instantiate(submitter, code_id, msg, label).await?;
        Ok(Self {
            chain: chain.with_contract(&contract),
            fixture,
        })
    }

    /// The threshold's signatures over `rewards` for `epoch` under signer-set version 1 of
    /// this contract.
    pub fn signatures(
        &self,
        epoch: u64,
        rewards: &[MixnodeReward],
    ) -> Result<Vec<SignerSignature>, DevError> {
        let context = DigestContext {
            chain_id: self.chain.chain_id(),
            contract_addr: self.chain.contract(),
            signer_set_version: 1,
            epoch,
        };
        self.fixture.sign(&context, rewards)
    }

    /// The v2 `SubmitEpoch` of `rewards` for `epoch` (signer-set version 1), signed by the
    /// threshold, as JSON.
    pub fn submit_msg(&self, epoch: u64, rewards: &[MixnodeReward]) -> Result<Vec<u8>, DevError> {
        let signatures = self.signatures(epoch, rewards)?;
        let msg = ExecuteMsg::submit_epoch(epoch, 1, rewards, &signatures);
        Ok(serde_json::to_vec(&msg)?)
    }

    /// Submits `rewards` for `epoch`; the transaction must succeed.
    pub async fn submit(
        &self,
        submitter: &ChainAccount,
        epoch: u64,
        rewards: &[MixnodeReward],
    ) -> Result<TxOutcome, DevError> {
        let msg = self.submit_msg(epoch, rewards)?;
        Ok(self
            .chain
            .execute_checked(submitter, msg, "SubmitEpoch")
            .await?)
    }
}

/// Measures every case of `sizes` x `mixnodes` on the chain at `rpc` with the code `code_id`.
pub async fn measure_submissions(
    rpc: &str,
    submitter: &ChainAccount,
    code_id: u64,
    sizes: &[usize],
    mixnodes: &[u32],
    model: &Model,
) -> Result<Vec<SubmitRow>, DevError> {
    let max_mixnodes = mixnodes.iter().copied().max().unwrap_or(1);
    let mut rows = Vec::new();
    for &n in sizes {
        let fixture = SignerFixture::new(n, submitter)?;
        let contract =
            FixtureContract::instantiate(rpc, submitter, code_id, fixture, max_mixnodes).await?;
        for (epoch, &count) in mixnodes.iter().enumerate() {
            let row = measure_case(&contract, submitter, epoch as u64, count, model).await?;
            eprintln!(
                "bench-wasmd: n = {n:>3}, M = {count:>5}: submit {:>9} gas (floor {:>9}), duplicate {:>8} gas (floor {:>8})",
                row.submit.gas_used, row.submit.floor, row.duplicate.gas_used, row.duplicate.floor
            );
            rows.push(row);
        }
    }
    Ok(rows)
}

async fn measure_case(
    contract: &FixtureContract,
    submitter: &ChainAccount,
    epoch: u64,
    mixnodes: u32,
    model: &Model,
) -> Result<SubmitRow, DevError> {
    let n = contract.fixture.members().len();
    let model_row = model.row(n, mixnodes)?;
    let rewards = dense_rewards(mixnodes);
    let submitted = contract.submit(submitter, epoch, &rewards).await?;
    // The same bytes again, broadcast without simulation so the chain charges the rejection.
    let msg = contract.submit_msg(epoch, &rewards)?;
    let duplicate = contract
        .chain
        .execute_json(
            submitter,
            msg,
            GasLimit::Fixed(submitted.gas_used + 100_000),
        )
        .await?;
    if duplicate.code == 0 {
        return Err(DevError::Invalid(format!(
            "the duplicate of epoch {epoch} was accepted (tx {})",
            duplicate.hash
        )));
    }
    let stored = epoch_record(&contract.chain, epoch)
        .await?
        .ok_or(DevError::NotOnChain(epoch))?;
    if stored.height != submitted.height {
        return Err(DevError::Invalid(format!(
            "epoch {epoch} is stored from height {}, not the first submission's {}",
            stored.height, submitted.height
        )));
    }
    Ok(SubmitRow {
        signers_n: n,
        signatures: contract.fixture.threshold(),
        mixnodes,
        submit: tx_gas(&submitted, &model_row.submit, model_row.submit_wasmd_gas),
        duplicate: tx_gas(
            &duplicate,
            &model_row.duplicate,
            model_row.duplicate_wasmd_gas,
        ),
    })
}
