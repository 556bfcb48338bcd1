//! The auditor check: a node's answer for an epoch (data plus signatures) against the
//! contract's record, its signer set and threshold. Every failure is reported, not just the
//! first. Also used by nodes to verify data fetched from the winner.

use std::time::Duration;

use nym_rewards::digest::{DigestContext, data_hash, epoch_digest};
use nym_rewards::msg::{EpochRewardsResponse, SignerSetResponse, SignerSignature};
use serde::Serialize;

use crate::chain::{self, Chain};
use crate::store::OfficialEpoch;

/// Most bytes accepted from a node's epoch endpoint.
pub const MAX_EPOCH_RESPONSE_BYTES: usize = 8 << 20;

/// Result of auditing one node for one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// The node's API URL.
    pub api_url: String,
    /// The epoch.
    pub epoch: u64,
    /// Valid signatures found.
    pub valid_signatures: usize,
    /// Threshold of the signer set.
    pub threshold: u32,
    /// Everything wrong; empty when the check passed.
    pub failures: Vec<String>,
}

impl AuditReport {
    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks `data` against the contract's `record` and signer `set`. Returns the number of valid
/// signatures and the failures.
pub fn verify_official(
    data: &OfficialEpoch,
    record: &EpochRewardsResponse,
    set: &SignerSetResponse,
    chain_id: &str,
    contract: &str,
) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    if data.epoch != record.epoch {
        failures.push(format!(
            "epoch {} differs from the contract's {}",
            data.epoch, record.epoch
        ));
    }
    if data
        .rewards
        .windows(2)
        .any(|pair| pair[0].mix_id >= pair[1].mix_id)
    {
        failures.push("rewards are not strictly ascending by mix id".into());
    }
    let computed = data_hash(&data.rewards);
    if computed.as_slice() != data.data_hash.as_slice() {
        failures.push("data_hash does not match the rewards served".into());
    }
    if computed.as_slice() != record.data_hash.as_slice() {
        failures.push(format!(
            "rewards hash {} differs from the contract's data_hash {}",
            hex::encode(computed),
            record.data_hash.to_hex()
        ));
    }
    if data.signer_set_version != record.signer_set_version
        || set.version != record.signer_set_version
    {
        failures.push(format!(
            "signer set version {} (served) / {} (checked) differs from the contract's {}",
            data.signer_set_version, set.version, record.signer_set_version
        ));
    }
    if data.submitter != record.submitter.as_str() {
        failures.push(format!(
            "submitter {} differs from the contract's {}",
            data.submitter, record.submitter
        ));
    }
    let context = DigestContext {
        chain_id,
        contract_addr: contract,
        signer_set_version: record.signer_set_version,
        epoch: record.epoch,
    };
    let digest = match epoch_digest(&context, &computed) {
        Ok(digest) => digest,
        Err(err) => {
            failures.push(err.to_string());
            return (0, failures);
        }
    };
    let (valid, signature_failures) = check_signatures(&digest, &data.signatures, set);
    failures.extend(signature_failures);
    (valid, failures)
}

/// Checks `signatures` over `digest` against `set`: indices strictly ascending and in the
/// set, each signature valid, at least the set's threshold of them. Returns the number of
/// valid signatures and the failures.
pub fn check_signatures(
    digest: &[u8; 32],
    signatures: &[SignerSignature],
    set: &SignerSetResponse,
) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut valid = 0;
    let mut previous: Option<u16> = None;
    for signature in signatures {
        if previous.is_some_and(|previous| signature.index <= previous) {
            failures.push(format!(
                "signer index {} is not strictly ascending",
                signature.index
            ));
        }
        previous = Some(signature.index);
        let Some(member) = set.members.get(usize::from(signature.index)) else {
            failures.push(format!(
                "signer index {} is not in the signer set",
                signature.index
            ));
            continue;
        };
        match cosmwasm_crypto::ed25519_verify(
            digest,
            signature.signature.as_slice(),
            member.ed25519_pubkey.as_slice(),
        ) {
            Ok(true) => valid += 1,
            _ => failures.push(format!(
                "signature of signer {} does not verify",
                signature.index
            )),
        }
    }
    if valid < set.threshold as usize {
        failures.push(format!(
            "{valid} valid signatures are below the threshold of {}",
            set.threshold
        ));
    }
    (valid, failures)
}

/// Reads a node's answer for `epoch` over HTTP (bounded size and time).
pub async fn fetch_epoch(
    http: &reqwest::Client,
    api_url: &str,
    epoch: u64,
) -> Result<OfficialEpoch, String> {
    let url = format!(
        "{}/v1/epochs/{epoch}/rewards",
        api_url.trim_end_matches('/')
    );
    fetch_json(http, &url).await
}

/// GETs `url` and decodes its JSON body, bounded in size ([`MAX_EPOCH_RESPONSE_BYTES`]) and
/// time (5 s). Errors name the URL and the cause.
pub async fn fetch_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let mut response = http
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|err| format!("GET {url}: {err}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    let too_large = || format!("GET {url}: response larger than {MAX_EPOCH_RESPONSE_BYTES} bytes");
    if response
        .content_length()
        .is_some_and(|len| len as usize > MAX_EPOCH_RESPONSE_BYTES)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| format!("GET {url}: {err}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_EPOCH_RESPONSE_BYTES {
            return Err(too_large());
        }
    }
    serde_json::from_slice(&body).map_err(|err| format!("GET {url}: undecodable answer: {err}"))
}

/// Audits the node at `api_url` for `epoch` against the chain.
pub async fn audit_node(
    http: &reqwest::Client,
    chain: &dyn Chain,
    api_url: &str,
    epoch: u64,
) -> AuditReport {
    let mut report = AuditReport {
        api_url: api_url.to_string(),
        epoch,
        valid_signatures: 0,
        threshold: 0,
        failures: Vec::new(),
    };
    let record = match chain::epoch_record(chain, epoch).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            report
                .failures
                .push(format!("epoch {epoch} is not stored on chain"));
            return report;
        }
        Err(err) => {
            report.failures.push(format!(
                "cannot read epoch {epoch} from the contract: {err}"
            ));
            return report;
        }
    };
    let set = match chain::signer_set(chain, Some(record.signer_set_version)).await {
        Ok(set) => set,
        Err(err) => {
            report.failures.push(format!(
                "cannot read signer set {}: {err}",
                record.signer_set_version
            ));
            return report;
        }
    };
    report.threshold = set.threshold;
    match fetch_epoch(http, api_url, epoch).await {
        Ok(data) => {
            let (valid, failures) =
                verify_official(&data, &record, &set, chain.chain_id(), chain.contract());
            report.valid_signatures = valid;
            report.failures = failures;
        }
        Err(err) => report.failures.push(err),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::{Addr, HexBinary, Timestamp};
    use ed25519_dalek::{Signer, SigningKey};
    use nym_rewards::msg::{Member, MixnodeReward, SignerSignature};

    use crate::store::OfficialSource;

    fn fixture() -> (OfficialEpoch, EpochRewardsResponse, SignerSetResponse) {
        let keys: Vec<SigningKey> = (1..=4u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let rewards = vec![
            MixnodeReward {
                mix_id: 1,
                uptime_bp: 9_000,
            },
            MixnodeReward {
                mix_id: 2,
                uptime_bp: 100,
            },
        ];
        let hash = data_hash(&rewards);
        let digest = epoch_digest(
            &DigestContext {
                chain_id: "c",
                contract_addr: "wasm1k",
                signer_set_version: 1,
                epoch: 5,
            },
            &hash,
        )
        .unwrap();
        let signatures: Vec<SignerSignature> = [0usize, 1, 3]
            .iter()
            .map(|&i| SignerSignature {
                index: i as u16,
                signature: HexBinary::from(keys[i].sign(&digest).to_bytes()),
            })
            .collect();
        let set = SignerSetResponse {
            version: 1,
            effective_from_epoch: 0,
            threshold: 3,
            members: keys
                .iter()
                .enumerate()
                .map(|(i, key)| Member {
                    ed25519_pubkey: HexBinary::from(key.verifying_key().to_bytes()),
                    address: Addr::unchecked(format!("wasm1m{i}")),
                    api_url: "http://x".into(),
                    p2p_multiaddr: "/ip4/127.0.0.1/tcp/1".into(),
                })
                .collect(),
        };
        let record = EpochRewardsResponse {
            epoch: 5,
            signer_set_version: 1,
            data_hash: HexBinary::from(hash),
            rewards: rewards.clone(),
            signatures: signatures.clone(),
            submitter: Addr::unchecked("wasm1m1"),
            height: 9,
            time: Timestamp::from_seconds(1),
        };
        let data = OfficialEpoch {
            epoch: 5,
            signer_set_version: 1,
            data_hash: HexBinary::from(hash),
            rewards,
            signatures,
            submitter: "wasm1m1".into(),
            height: 9,
            source: OfficialSource::Peer,
            tx_ref: None,
        };
        (data, record, set)
    }

    #[test]
    fn honest_data_passes() {
        let (data, record, set) = fixture();
        let (valid, failures) = verify_official(&data, &record, &set, "c", "wasm1k");
        assert_eq!((valid, failures), (3, vec![]));
    }

    #[test]
    fn a_changed_uptime_or_a_flipped_signature_fails() {
        let (mut data, record, set) = fixture();
        data.rewards[0].uptime_bp += 1;
        let (_, failures) = verify_official(&data, &record, &set, "c", "wasm1k");
        assert!(
            failures
                .iter()
                .any(|f| f.contains("differs from the contract's data_hash")),
            "{failures:?}"
        );

        let (mut data, record, set) = fixture();
        let mut bytes = data.signatures[1].signature.to_vec();
        bytes[0] ^= 1;
        data.signatures[1].signature = HexBinary::from(bytes);
        let (valid, failures) = verify_official(&data, &record, &set, "c", "wasm1k");
        assert_eq!(valid, 2);
        assert!(
            failures
                .iter()
                .any(|f| f.contains("signer 1 does not verify")),
            "{failures:?}"
        );
        assert!(
            failures.iter().any(|f| f.contains("below the threshold")),
            "{failures:?}"
        );
    }

    #[test]
    fn wrong_contract_context_fails() {
        let (data, record, set) = fixture();
        let (valid, _) = verify_official(&data, &record, &set, "c", "wasm1other");
        assert_eq!(valid, 0);
    }
}
