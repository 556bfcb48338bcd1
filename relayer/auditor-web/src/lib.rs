//! The auditor library for the browser, through wasm-bindgen: what the dashboard's verify
//! action and the standalone proof page (`web/`) call. The page fetches, this crate checks:
//! it builds the chain's query URLs ([`relayer_auditor::comet_rpc`]), reads the answers and
//! returns a [`Report`] as JSON, the same report `relayer verify` and `relayer verify-proof`
//! print from. Every function answers `{"ok": ...}` or `{"error": "..."}`, so nothing here
//! throws across the boundary and everything runs natively in tests.

use nym_rewards::msg::{EpochRewardsResponse, SignerSetResponse};
use relayer_auditor::comet_rpc::{self, RpcError};
use relayer_auditor::{
    ChainContext, OfficialEpoch, ProofBundle, Report, TrustAnchor, signer_set_hash,
};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::wasm_bindgen;

/// `{"ok": value}` or `{"error": message}`.
fn answer<T: Serialize>(result: Result<T, String>) -> String {
    let json = match result {
        Ok(value) => serde_json::json!({ "ok": value }),
        Err(error) => serde_json::json!({ "error": error }),
    };
    json.to_string()
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, json: &str) -> Result<T, String> {
    serde_json::from_str(json).map_err(|err| format!("{what} does not parse: {err}"))
}

fn from_chain<T>(what: &str, result: Result<T, RpcError>) -> Result<T, String> {
    result.map_err(|err| format!("{what}: {err}"))
}

fn chain(chain_id: &str, contract: &str) -> ChainContext {
    ChainContext {
        chain_id: chain_id.to_string(),
        contract: contract.to_string(),
    }
}

/// The URL of the chain's `/status` at CometBFT RPC `rpc`.
#[wasm_bindgen]
pub fn status_url(rpc: &str) -> String {
    comet_rpc::status_url(rpc)
}

/// The URL of the contract's record of `epoch`.
#[wasm_bindgen]
pub fn epoch_record_url(rpc: &str, contract: &str, epoch: u64) -> String {
    comet_rpc::epoch_record_url(rpc, contract, epoch)
}

/// The URL of the contract's signer set `version`.
#[wasm_bindgen]
pub fn signer_set_url(rpc: &str, contract: &str, version: u32) -> String {
    comet_rpc::signer_set_url(rpc, contract, version)
}

/// The URL of the contract's latest stored epoch (first step of a mixnode's history).
#[wasm_bindgen]
pub fn latest_epoch_url(rpc: &str, contract: &str) -> String {
    comet_rpc::latest_epoch_url(rpc, contract)
}

/// The URL of the contract's records of `mix_id` in its last `epochs` stored epochs, from the
/// contract's answer to [`latest_epoch_url`]; `{"ok": null}` while nothing is stored.
#[wasm_bindgen]
pub fn mixnode_epochs_url(
    rpc: &str,
    contract: &str,
    mix_id: u32,
    epochs: u32,
    latest_answer: &str,
) -> String {
    answer(
        from_chain(
            "the contract's latest epoch",
            comet_rpc::latest_epoch_answer(latest_answer),
        )
        .map(|latest| {
            latest.latest_submitted.map(|last| {
                let start_after = last.checked_sub(u64::from(epochs));
                comet_rpc::mixnode_epochs_url(rpc, contract, mix_id, start_after, epochs)
            })
        }),
    )
}

/// The epochs in which the contract holds a record of the mixnode, from its answer to
/// [`mixnode_epochs_url`]: the history to audit comes from the chain, not from the node.
#[wasm_bindgen]
pub fn mixnode_epochs(epochs_answer: &str) -> String {
    answer(
        from_chain(
            "the contract's mixnode history",
            comet_rpc::mixnode_epochs_answer(epochs_answer),
        )
        .map(|history| {
            history
                .rewards
                .iter()
                .map(|reward| reward.epoch)
                .collect::<Vec<_>>()
        }),
    )
}

/// The chain id in a `/status` answer.
#[wasm_bindgen]
pub fn chain_id(status_answer: &str) -> String {
    answer(from_chain(
        "the chain's status",
        comet_rpc::chain_id_answer(status_answer),
    ))
}

fn record(epoch: u64, record_answer: &str) -> Result<EpochRewardsResponse, String> {
    from_chain(
        "the contract's record",
        comet_rpc::epoch_record_answer(record_answer),
    )?
    .ok_or_else(|| format!("epoch {epoch} is not stored on chain"))
}

fn signer_set(signer_set_answer: &str) -> Result<SignerSetResponse, String> {
    from_chain(
        "the contract's signer set",
        comet_rpc::signer_set_answer(signer_set_answer),
    )
}

/// The signer-set version of the contract's record of `epoch` (which set to fetch next).
#[wasm_bindgen]
pub fn record_signer_set_version(epoch: u64, record_answer: &str) -> String {
    answer(record(epoch, record_answer).map(|record| record.signer_set_version))
}

/// What a node says of its deployment at `/v1/status` (other fields ignored).
#[derive(Deserialize)]
struct NodeStatus {
    chain_id: String,
    contract: String,
}

/// The report of a node's copy of `epoch` (`copy`, from its `/v1/epochs/{epoch}/rewards`)
/// with its `/v1/status`, against the contract's record and signer set read from the chain
/// `chain_id` at `contract`.
#[wasm_bindgen]
pub fn audit_copy(
    chain_id: &str,
    contract: &str,
    epoch: u64,
    node_status: &str,
    record_answer: &str,
    signer_set_answer: &str,
    copy: &str,
) -> String {
    answer((|| {
        let node: NodeStatus = parse("the node's status", node_status)?;
        let copy: OfficialEpoch = parse("the node's copy", copy)?;
        let record = record(epoch, record_answer)?;
        let set = signer_set(signer_set_answer)?;
        Ok(Report::of_copy(
            &chain(chain_id, contract),
            &chain(&node.chain_id, &node.contract),
            &set,
            &record,
            &copy,
        ))
    })())
}

/// What a page shows of a bundle before checking it, and what it needs to fetch.
#[derive(Serialize)]
struct BundleSummary {
    epoch: u64,
    chain_id: String,
    contract: String,
    signer_set_version: u32,
    /// The bundle's own signer-set hash (hex): what a pin must equal.
    signer_set_hash: String,
}

/// The summary of a proof bundle file's text.
#[wasm_bindgen]
pub fn bundle_summary(bundle: &str) -> String {
    answer(
        parse::<ProofBundle>("the bundle", bundle).map(|bundle| BundleSummary {
            epoch: bundle.epoch,
            signer_set_version: bundle.signer_set.version,
            signer_set_hash: hex::encode(signer_set_hash(
                &bundle.chain_id,
                &bundle.contract,
                &bundle.signer_set,
            )),
            chain_id: bundle.chain_id,
            contract: bundle.contract,
        }),
    )
}

/// The report of a proof bundle checked against a pinned signer-set hash (hex): certified,
/// not proven accepted.
#[wasm_bindgen]
pub fn verify_bundle_pinned(bundle: &str, pinned: &str) -> String {
    answer((|| {
        let bundle: ProofBundle = parse("the bundle", bundle)?;
        let pinned = hex::decode(pinned.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or("the pinned signer-set hash must be 64 hex digits")?;
        Ok(Report::of_bundle(
            &bundle,
            &TrustAnchor::SignerSetHash(pinned),
        ))
    })())
}

/// The report of a proof bundle checked against the chain `chain_id` at `contract`: its
/// record of the bundle's epoch and its signer set of the bundle's version (accepted).
#[wasm_bindgen]
pub fn verify_bundle_on_chain(
    bundle: &str,
    chain_id: &str,
    contract: &str,
    record_answer: &str,
    signer_set_answer: &str,
) -> String {
    answer((|| {
        let bundle: ProofBundle = parse("the bundle", bundle)?;
        let anchor = TrustAnchor::Chain {
            chain: chain(chain_id, contract),
            signer_set: signer_set(signer_set_answer)?,
            record: Box::new(record(bundle.epoch, record_answer)?),
        };
        Ok(Report::of_bundle(&bundle, &anchor))
    })())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use serde_json::Value;

    use super::*;

    fn parsed(answer: &str) -> Value {
        serde_json::from_str(answer).unwrap()
    }

    /// An `abci_query` answer whose smart-query data is `json` (protobuf field 1).
    fn abci_answer(json: &[u8]) -> String {
        let mut message = vec![0x0a, u8::try_from(json.len()).unwrap()];
        message.extend_from_slice(json);
        serde_json::json!({"jsonrpc": "2.0", "id": -1, "result": {"response": {
            "code": 0, "log": "", "value": cosmwasm_std::Binary::from(message).to_base64()}}})
        .to_string()
    }

    #[test]
    fn answers_are_ok_or_error_objects() {
        let status = r#"{"jsonrpc":"2.0","id":-1,"result":{"node_info":{"network":"nyx"}}}"#;
        assert_eq!(parsed(&chain_id(status))["ok"], "nyx");
        let refused = parsed(&chain_id("not json"));
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .starts_with("the chain's status:")
        );
    }

    #[test]
    fn an_epoch_missing_on_chain_is_named() {
        let answer = parsed(&record_signer_set_version(5, &abci_answer(b"null")));
        assert_eq!(answer["error"], "epoch 5 is not stored on chain");
    }

    #[test]
    fn a_history_reads_the_last_stored_epochs_from_the_contract() {
        let latest = abci_answer(br#"{"current_epoch":21,"latest_submitted":20}"#);
        let url = parsed(&mixnode_epochs_url("http://r", "c", 3, 12, &latest));
        assert_eq!(
            url["ok"],
            comet_rpc::mixnode_epochs_url("http://r", "c", 3, Some(8), 12)
        );
        let early = abci_answer(br#"{"current_epoch":5,"latest_submitted":4}"#);
        let url = parsed(&mixnode_epochs_url("http://r", "c", 3, 12, &early));
        assert_eq!(
            url["ok"],
            comet_rpc::mixnode_epochs_url("http://r", "c", 3, None, 12)
        );
        let empty = abci_answer(br#"{"current_epoch":0,"latest_submitted":null}"#);
        assert!(parsed(&mixnode_epochs_url("http://r", "c", 3, 12, &empty))["ok"].is_null());
        let history = abci_answer(
            br#"{"mix_id":3,"rewards":[{"epoch":9,"uptime_bp":1},{"epoch":11,"uptime_bp":2}],"next_start_after":null}"#,
        );
        assert_eq!(
            parsed(&mixnode_epochs(&history))["ok"],
            serde_json::json!([9, 11])
        );
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let answer = parsed(&verify_bundle_pinned("{}", "00"));
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .starts_with("the bundle does not parse")
        );
        let answer = parsed(&audit_copy("c", "k", 1, "<html>", "", "", ""));
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .starts_with("the node's status does not parse")
        );
        assert!(parsed(&bundle_summary("[]"))["error"].is_string());
    }
}
