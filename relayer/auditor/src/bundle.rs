//! Proof bundles for auditors: one self-contained JSON file with an epoch's rewards, data
//! hash, signatures, the signer set and the chain context the digest binds (chain id and
//! contract address). A bundle never vouches for itself: [`verify_bundle`] checks it against
//! a trust anchor the auditor supplies, either a pinned [`signer_set_hash`] or the signer set
//! the contract reports. Format and digests: `docs/proof-bundle.md`.

use nym_rewards::digest::{DigestContext, data_hash, epoch_digest};
use nym_rewards::msg::{MixnodeReward, SignerSetResponse, SignerSignature};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::NodeStatus;
use crate::audit::{check_signatures, fetch_epoch, fetch_json};
use crate::chain::{self, Chain, ChainError};
use crate::store::OfficialEpoch;

/// The `format` field of bundles this code writes and reads.
pub const PROOF_FORMAT: &str = "nym-rewards-proof/v1";
/// Domain tag of [`signer_set_hash`].
pub const SIGNER_SET_DOMAIN: &[u8] = b"nym-rewards/signer-set/v1";

/// Everything needed to check an epoch's rewards offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// Always [`PROOF_FORMAT`].
    pub format: String,
    /// Chain id bound into the digest.
    pub chain_id: String,
    /// Contract address bound into the digest.
    pub contract: String,
    /// The epoch.
    pub epoch: u64,
    /// sha256 of the reward records (hex).
    pub data_hash: String,
    /// Rewards, ascending by mix id.
    pub rewards: Vec<MixnodeReward>,
    /// Signatures with their signer indices, ascending.
    pub signatures: Vec<SignerSignature>,
    /// The signer set that certified the epoch (version, threshold, members' keys).
    pub signer_set: SignerSetResponse,
}

/// What an auditor trusts.
#[derive(Debug, Clone)]
pub enum TrustAnchor {
    /// A pinned [`signer_set_hash`], obtained out of band.
    SignerSetHash([u8; 32]),
    /// What the chain says: its id, the contract address and the signer set of the bundle's
    /// version as the contract reports it.
    Chain {
        /// The chain's id.
        chain_id: String,
        /// The contract queried.
        contract: String,
        /// The contract's signer set of the bundle's version.
        signer_set: SignerSetResponse,
    },
}

/// Outcome of [`verify_bundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofVerdict {
    /// Valid signatures of distinct signer-set members.
    pub valid_signatures: usize,
    /// Threshold of the signer set.
    pub threshold: u32,
    /// Everything wrong; empty when the bundle verifies.
    pub failures: Vec<String>,
}

impl ProofVerdict {
    /// Whether the bundle verified.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

fn length_prefixed(hasher: &mut Sha256, field: &str) {
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    hasher.update(len.to_be_bytes());
    hasher.update(field.as_bytes());
}

/// sha256 of `domain || u16 len || chain_id || u16 len || contract || u32 version ||
/// u32 threshold || u16 count || count x 32-byte ed25519 keys` (big-endian integers): the
/// value an auditor pins to trust a signer set on one chain and contract.
pub fn signer_set_hash(chain_id: &str, contract: &str, set: &SignerSetResponse) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(SIGNER_SET_DOMAIN);
    length_prefixed(&mut hasher, chain_id);
    length_prefixed(&mut hasher, contract);
    hasher.update(set.version.to_be_bytes());
    hasher.update(set.threshold.to_be_bytes());
    let count = u16::try_from(set.members.len()).unwrap_or(u16::MAX);
    hasher.update(count.to_be_bytes());
    for member in &set.members {
        hasher.update(member.ed25519_pubkey.as_slice());
    }
    hasher.finalize().into()
}

impl ProofBundle {
    /// A bundle from a node's official data, its signer set and chain context.
    pub fn new(
        official: &OfficialEpoch,
        signer_set: SignerSetResponse,
        chain_id: &str,
        contract: &str,
    ) -> Self {
        Self {
            format: PROOF_FORMAT.to_string(),
            chain_id: chain_id.to_string(),
            contract: contract.to_string(),
            epoch: official.epoch,
            data_hash: official.data_hash.to_hex(),
            rewards: official.rewards.clone(),
            signatures: official.signatures.clone(),
            signer_set,
        }
    }
}

/// Builds the bundle of `epoch` from a node's API: its status (chain id, contract), its
/// official data and its signer set, which must be the version that certified the epoch.
pub async fn export_bundle(
    http: &reqwest::Client,
    api_url: &str,
    epoch: u64,
) -> Result<ProofBundle, String> {
    let base = api_url.trim_end_matches('/');
    let status: NodeStatus = fetch_json(http, &format!("{base}/v1/status")).await?;
    let official = fetch_epoch(http, base, epoch).await?;
    let set: SignerSetResponse = fetch_json(http, &format!("{base}/v1/signer-set")).await?;
    if set.version != official.signer_set_version {
        return Err(format!(
            "epoch {epoch} was certified by signer set version {}, the node serves version {}",
            official.signer_set_version, set.version
        ));
    }
    Ok(ProofBundle::new(
        &official,
        set,
        &status.chain_id,
        &status.contract,
    ))
}

/// The chain as a trust anchor for a bundle: the contract's signer set of the bundle's
/// version, with the chain's id and the contract's address.
pub async fn chain_anchor(chain: &dyn Chain, version: u32) -> Result<TrustAnchor, ChainError> {
    let signer_set = chain::signer_set(chain, Some(version)).await?;
    Ok(TrustAnchor::Chain {
        chain_id: chain.chain_id().to_string(),
        contract: chain.contract().to_string(),
        signer_set,
    })
}

fn same_keys(a: &SignerSetResponse, b: &SignerSetResponse) -> bool {
    a.version == b.version
        && a.threshold == b.threshold
        && a.members.len() == b.members.len()
        && a.members
            .iter()
            .zip(&b.members)
            .all(|(x, y)| x.ed25519_pubkey == y.ed25519_pubkey)
}

/// Checks the bundle's signer set and context against `anchor`, then its data hash and
/// signatures. Every failure is reported.
pub fn verify_bundle(bundle: &ProofBundle, anchor: &TrustAnchor) -> ProofVerdict {
    let mut failures = Vec::new();
    if bundle.format != PROOF_FORMAT {
        failures.push(format!(
            "format {:?} is not {PROOF_FORMAT:?}",
            bundle.format
        ));
    }
    let set = &bundle.signer_set;
    match anchor {
        TrustAnchor::SignerSetHash(pinned) => {
            let hash = signer_set_hash(&bundle.chain_id, &bundle.contract, set);
            if &hash != pinned {
                failures.push(format!(
                    "signer-set hash {} is not the pinned {}",
                    hex::encode(hash),
                    hex::encode(pinned)
                ));
            }
        }
        TrustAnchor::Chain {
            chain_id,
            contract,
            signer_set,
        } => {
            if &bundle.chain_id != chain_id || &bundle.contract != contract {
                failures.push(format!(
                    "bundle is for {} / {}, the anchor is {chain_id} / {contract}",
                    bundle.chain_id, bundle.contract
                ));
            }
            if !same_keys(set, signer_set) {
                failures.push(format!(
                    "signer set version {} differs from the contract's",
                    set.version
                ));
            }
        }
    }
    if bundle
        .rewards
        .windows(2)
        .any(|pair| pair[0].mix_id >= pair[1].mix_id)
    {
        failures.push("rewards are not strictly ascending by mix id".into());
    }
    let computed = data_hash(&bundle.rewards);
    if hex::encode(computed) != bundle.data_hash.to_lowercase() {
        failures.push(format!(
            "data_hash {} does not match the rewards ({})",
            bundle.data_hash,
            hex::encode(computed)
        ));
    }
    let context = DigestContext {
        chain_id: &bundle.chain_id,
        contract_addr: &bundle.contract,
        signer_set_version: set.version,
        epoch: bundle.epoch,
    };
    let valid_signatures = match epoch_digest(&context, &computed) {
        Ok(digest) => {
            let (valid, signature_failures) = check_signatures(&digest, &bundle.signatures, set);
            failures.extend(signature_failures);
            valid
        }
        Err(err) => {
            failures.push(err.to_string());
            0
        }
    };
    ProofVerdict {
        valid_signatures,
        threshold: set.threshold,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::{Addr, HexBinary};
    use ed25519_dalek::{Signer, SigningKey};
    use nym_rewards::msg::Member;

    const CHAIN: &str = "testing";
    const CONTRACT: &str = "wasm1contract";

    fn keys() -> Vec<SigningKey> {
        (1..=4u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect()
    }

    fn signer_set() -> SignerSetResponse {
        SignerSetResponse {
            version: 1,
            effective_from_epoch: 0,
            threshold: 3,
            members: keys()
                .iter()
                .enumerate()
                .map(|(i, key)| Member {
                    ed25519_pubkey: HexBinary::from(key.verifying_key().to_bytes().as_slice()),
                    address: Addr::unchecked(format!("wasm1member{i}")),
                    api_url: format!("http://node{i}"),
                    p2p_multiaddr: format!("/ip4/127.0.0.1/tcp/{}", 9000 + i),
                })
                .collect(),
        }
    }

    fn bundle() -> ProofBundle {
        let rewards: Vec<MixnodeReward> = (1..=5)
            .map(|mix_id| MixnodeReward {
                mix_id,
                uptime_bp: 9_000 + mix_id as u16,
            })
            .collect();
        let hash = data_hash(&rewards);
        let context = DigestContext {
            chain_id: CHAIN,
            contract_addr: CONTRACT,
            signer_set_version: 1,
            epoch: 12,
        };
        let digest = epoch_digest(&context, &hash).unwrap();
        ProofBundle {
            format: PROOF_FORMAT.into(),
            chain_id: CHAIN.into(),
            contract: CONTRACT.into(),
            epoch: 12,
            data_hash: hex::encode(hash),
            rewards,
            signatures: keys()
                .iter()
                .enumerate()
                .take(3)
                .map(|(i, key)| SignerSignature {
                    index: i as u16,
                    signature: HexBinary::from(key.sign(&digest).to_bytes().as_slice()),
                })
                .collect(),
            signer_set: signer_set(),
        }
    }

    fn pinned() -> TrustAnchor {
        TrustAnchor::SignerSetHash(signer_set_hash(CHAIN, CONTRACT, &signer_set()))
    }

    #[test]
    fn a_good_bundle_verifies_against_either_anchor() {
        let verdict = verify_bundle(&bundle(), &pinned());
        assert!(verdict.passed(), "{:?}", verdict.failures);
        assert_eq!(verdict.valid_signatures, 3);
        let chain = TrustAnchor::Chain {
            chain_id: CHAIN.into(),
            contract: CONTRACT.into(),
            signer_set: signer_set(),
        };
        assert!(verify_bundle(&bundle(), &chain).passed());
    }

    #[test]
    fn the_signer_set_hash_matches_its_documented_vector() {
        // docs/proof-bundle.md; computed independently with Python hashlib + cryptography.
        assert_eq!(
            hex::encode(signer_set_hash(CHAIN, CONTRACT, &signer_set())),
            "ce542796623d55a75da3e2989a9efc1c4b3764db2a0a867ce734f4a344977a81"
        );
    }

    #[test]
    fn any_changed_byte_of_data_or_signatures_fails() {
        let good = bundle();
        for i in 0..good.rewards.len() {
            let mut bad = good.clone();
            bad.rewards[i].uptime_bp ^= 1;
            assert!(!verify_bundle(&bad, &pinned()).passed(), "reward {i}");
            let mut bad = good.clone();
            bad.rewards[i].mix_id += 100;
            assert!(!verify_bundle(&bad, &pinned()).passed(), "mix id {i}");
        }
        for position in 0..64 {
            let mut bad = good.clone();
            let mut hash = hex::decode(&bad.data_hash).unwrap();
            if position < 32 {
                hash[position] ^= 0x01;
                bad.data_hash = hex::encode(hash);
                assert!(
                    !verify_bundle(&bad, &pinned()).passed(),
                    "hash byte {position}"
                );
            }
            for s in 0..good.signatures.len() {
                let mut bad = good.clone();
                let mut bytes = bad.signatures[s].signature.to_vec();
                bytes[position] ^= 0x01;
                bad.signatures[s].signature = HexBinary::from(bytes);
                assert!(
                    !verify_bundle(&bad, &pinned()).passed(),
                    "signature {s} byte {position}"
                );
            }
        }
        let mut bad = good.clone();
        bad.epoch += 1;
        assert!(!verify_bundle(&bad, &pinned()).passed(), "epoch");
    }

    #[test]
    fn a_bundle_cannot_vouch_for_itself() {
        // A forger replaces the signer set with its own keys and re-signs: the pin refuses it.
        let forged_key = SigningKey::from_bytes(&[99; 32]);
        let mut forged = bundle();
        forged.signer_set.members[0].ed25519_pubkey =
            HexBinary::from(forged_key.verifying_key().to_bytes().as_slice());
        let verdict = verify_bundle(&forged, &pinned());
        assert!(verdict.failures.iter().any(|f| f.contains("pinned")));
        let chain = TrustAnchor::Chain {
            chain_id: CHAIN.into(),
            contract: CONTRACT.into(),
            signer_set: signer_set(),
        };
        assert!(!verify_bundle(&forged, &chain).passed());
        let other_chain = TrustAnchor::Chain {
            chain_id: "other".into(),
            contract: CONTRACT.into(),
            signer_set: signer_set(),
        };
        assert!(!verify_bundle(&bundle(), &other_chain).passed());
    }

    #[test]
    fn the_json_format_round_trips_and_refuses_unknown_fields() {
        let json = serde_json::to_string(&bundle()).unwrap();
        let back: ProofBundle = serde_json::from_str(&json).unwrap();
        assert_eq!(back, bundle());
        let extra = json.replacen('{', "{\"trusted\":true,", 1);
        assert!(serde_json::from_str::<ProofBundle>(&extra).is_err());
    }
}
