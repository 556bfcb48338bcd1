//! Proof bundles: one self-contained JSON file with an epoch's rewards, data hash,
//! signatures, the signer set and the chain context the digest binds (chain id and contract
//! address). A bundle never vouches for itself: [`verify_bundle`] checks it against a trust
//! anchor the auditor supplies, either a pinned [`signer_set_hash`] (verdict: certified, not
//! proven accepted) or what the chain says, the contract's signer set and its record of the
//! epoch (verdict: accepted). Format and digests: `docs/proof-bundle.md`.

use cosmwasm_std::HexBinary;
use nym_rewards::msg::{EpochRewardsResponse, MixnodeReward, SignerSetResponse, SignerSignature};
use relayer_protocol::{
    ChainContext, OfficialEpoch, SignedData, SignerSet, SignerSetError, Verdict, VerifyError,
    check_accepted, check_certified,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

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
    pub data_hash: HexBinary,
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
    /// A pinned [`signer_set_hash`], obtained out of band. Proves certification only.
    SignerSetHash([u8; 32]),
    /// What the chain says: its id, the contract, the contract's signer set of the bundle's
    /// version and its record of the bundle's epoch. Proves acceptance.
    Chain {
        /// The chain's id and the contract queried.
        chain: ChainContext,
        /// The contract's signer set of the bundle's version.
        signer_set: SignerSetResponse,
        /// The contract's record of the bundle's epoch.
        record: Box<EpochRewardsResponse>,
    },
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum BundleError {
    /// Not a bundle of this format.
    #[error("format {got:?} is not {PROOF_FORMAT:?}")]
    Format {
        /// The format field.
        got: String,
    },
    /// The bundle's signer set is malformed.
    #[error("the bundle's signer set: {0}")]
    SignerSet(#[from] SignerSetError),
    /// The bundle's signer set is not the pinned one.
    #[error("signer-set hash {computed} is not the pinned {pinned}")]
    NotPinned {
        /// Of the bundle (hex).
        computed: String,
        /// Pinned (hex).
        pinned: String,
    },
    /// The bundle is for another chain or contract than the anchor.
    #[error("the bundle is for {bundle}, the anchor is {anchor}")]
    OtherChain {
        /// `chain_id / contract` of the bundle.
        bundle: String,
        /// `chain_id / contract` of the anchor.
        anchor: String,
    },
    /// The bundle's signer set differs from the contract's of that version.
    #[error("signer set version {version} differs from the contract's")]
    OtherSignerSet {
        /// The version.
        version: u32,
    },
    /// The data is not certified, or not what the contract accepted.
    #[error("{0}")]
    Verify(#[from] VerifyError),
}

impl BundleError {
    /// The failed check as a stable name (`not_pinned`, `other_chain`, or
    /// [`VerifyError::check`]): what front ends show and tests compare.
    pub fn check(&self) -> String {
        match self {
            BundleError::Verify(err) => err.check(),
            other => <&'static str>::from(other).to_string(),
        }
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
        chain: &ChainContext,
    ) -> Self {
        Self {
            format: PROOF_FORMAT.to_string(),
            chain_id: chain.chain_id.clone(),
            contract: chain.contract.clone(),
            epoch: official.epoch,
            data_hash: official.data_hash.clone(),
            rewards: official.rewards.clone(),
            signatures: official.signatures.clone(),
            signer_set,
        }
    }

    /// The chain and contract the bundle's signatures are bound to.
    pub fn chain(&self) -> ChainContext {
        ChainContext {
            chain_id: self.chain_id.clone(),
            contract: self.contract.clone(),
        }
    }

    pub(crate) fn signed(&self) -> SignedData<'_> {
        SignedData {
            epoch: self.epoch,
            signer_set_version: self.signer_set.version,
            data_hash: self.data_hash.as_slice(),
            rewards: &self.rewards,
            signatures: &self.signatures,
        }
    }
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

/// Checks the bundle's signer set and context against `anchor`, then that its data is
/// certified and, with a chain anchor, that it is what the contract accepted.
pub fn verify_bundle(bundle: &ProofBundle, anchor: &TrustAnchor) -> Result<Verdict, BundleError> {
    if bundle.format != PROOF_FORMAT {
        return Err(BundleError::Format {
            got: bundle.format.clone(),
        });
    }
    // Well-formed keys first: the pinned hash covers exactly 32 bytes per key.
    let set = SignerSet::try_from(&bundle.signer_set)?;
    let chain = bundle.chain();
    match anchor {
        TrustAnchor::SignerSetHash(pinned) => {
            let computed = signer_set_hash(&chain.chain_id, &chain.contract, &bundle.signer_set);
            if &computed != pinned {
                return Err(BundleError::NotPinned {
                    computed: hex::encode(computed),
                    pinned: hex::encode(pinned),
                });
            }
        }
        TrustAnchor::Chain {
            chain: anchor_chain,
            signer_set,
            ..
        } => {
            if &chain != anchor_chain {
                return Err(BundleError::OtherChain {
                    bundle: format!("{} / {}", chain.chain_id, chain.contract),
                    anchor: format!("{} / {}", anchor_chain.chain_id, anchor_chain.contract),
                });
            }
            if !same_keys(&bundle.signer_set, signer_set) {
                return Err(BundleError::OtherSignerSet {
                    version: bundle.signer_set.version,
                });
            }
        }
    }
    let certified = check_certified(&chain, &set, bundle.signed()).map_err(VerifyError::from)?;
    match anchor {
        TrustAnchor::SignerSetHash(_) => Ok(Verdict::CertifiedNotProvenAccepted(certified)),
        TrustAnchor::Chain { record, .. } => {
            check_accepted(bundle.signed(), record).map_err(VerifyError::from)?;
            Ok(Verdict::Accepted(certified))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use ed25519_dalek::SigningKey;
    use relayer_protocol::{Certified, NotAccepted, NotCertified};

    #[test]
    fn a_good_bundle_is_accepted_by_the_chain_and_only_certified_by_a_pin() {
        let certified = Certified {
            valid_signatures: 3,
            threshold: 3,
        };
        assert_eq!(
            verify_bundle(&bundle(), &pinned()),
            Ok(Verdict::CertifiedNotProvenAccepted(certified))
        );
        assert_eq!(
            verify_bundle(&bundle(), &chain_anchor(record_of(&bundle()))),
            Ok(Verdict::Accepted(certified))
        );
    }

    #[test]
    fn a_certified_block_that_the_contract_did_not_accept_is_refused_by_the_chain_anchor() {
        // Members 1, 2, 3 signed other data for the same epoch: certified, but not official.
        let other = bundle_of(5, &[1, 2, 3]);
        assert!(matches!(
            verify_bundle(&other, &pinned()),
            Ok(Verdict::CertifiedNotProvenAccepted(_))
        ));
        assert!(matches!(
            verify_bundle(&other, &chain_anchor(record_of(&bundle()))),
            Err(BundleError::Verify(VerifyError::NotAccepted(
                NotAccepted::DataHash { .. }
            )))
        ));
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
            assert!(verify_bundle(&bad, &pinned()).is_err(), "reward {i}");
            let mut bad = good.clone();
            bad.rewards[i].mix_id += 100;
            assert!(verify_bundle(&bad, &pinned()).is_err(), "mix id {i}");
        }
        for position in 0..64 {
            if position < 32 {
                let mut bad = good.clone();
                let mut hash = bad.data_hash.to_vec();
                hash[position] ^= 0x01;
                bad.data_hash = HexBinary::from(hash);
                assert!(
                    verify_bundle(&bad, &pinned()).is_err(),
                    "hash byte {position}"
                );
            }
            for s in 0..good.signatures.len() {
                let mut bad = good.clone();
                let mut bytes = bad.signatures[s].signature.to_vec();
                bytes[position] ^= 0x01;
                bad.signatures[s].signature = HexBinary::from(bytes);
                assert_eq!(
                    verify_bundle(&bad, &pinned()),
                    Err(BundleError::Verify(VerifyError::NotCertified(
                        NotCertified::InvalidSignature { index: s as u16 }
                    ))),
                    "signature {s} byte {position}"
                );
            }
        }
        let mut bad = good.clone();
        bad.epoch += 1;
        assert!(verify_bundle(&bad, &pinned()).is_err(), "epoch");
    }

    #[test]
    fn a_bundle_cannot_vouch_for_itself() {
        // A forger replaces the signer set with its own keys and re-signs: the pin refuses it.
        let forged_key = SigningKey::from_bytes(&[99; 32]);
        let mut forged = bundle();
        forged.signer_set.members[0].ed25519_pubkey =
            HexBinary::from(forged_key.verifying_key().to_bytes().as_slice());
        assert!(matches!(
            verify_bundle(&forged, &pinned()),
            Err(BundleError::NotPinned { .. })
        ));
        assert_eq!(
            verify_bundle(&forged, &chain_anchor(record_of(&bundle()))),
            Err(BundleError::OtherSignerSet { version: 1 })
        );
        let other_chain = TrustAnchor::Chain {
            chain: ChainContext {
                chain_id: "other".into(),
                contract: CONTRACT.into(),
            },
            signer_set: signer_set(),
            record: Box::new(record_of(&bundle())),
        };
        assert!(matches!(
            verify_bundle(&bundle(), &other_chain),
            Err(BundleError::OtherChain { .. })
        ));
    }

    #[test]
    fn the_json_format_round_trips_and_refuses_unknown_fields() {
        let json = serde_json::to_string(&bundle()).unwrap();
        assert!(json.contains(&format!(
            "\"data_hash\":\"{}\"",
            bundle().data_hash.to_hex()
        )));
        let back: ProofBundle = serde_json::from_str(&json).unwrap();
        assert_eq!(back, bundle());
        let extra = json.replacen('{', "{\"trusted\":true,", 1);
        assert!(serde_json::from_str::<ProofBundle>(&extra).is_err());
    }
}
