//! The two checks of an epoch's data, written once and used by the finalizer, the simulator,
//! `relayer verify`, `verify-proof`, the API and the auditor library:
//!
//! - [`check_certified`]: the data carries at least `t` valid signatures of the signer set in
//!   force over its canonical digest (and its data hash is the hash of its rewards);
//! - [`check_accepted`]: it is what the contract accepted for the epoch (the record's epoch,
//!   signer-set version and data hash; for a node's copy also submitter and height).
//!
//! Several blocks of one epoch can legitimately reach `t` signatures; only the accepted one is
//! official. So a verdict without the contract's record is [`Verdict::CertifiedNotProvenAccepted`].
//! Checks run in a fixed order and the first failure is the error; signatures are verified with
//! `cosmwasm-crypto`, the chain's own code.

use nym_rewards::digest::{DigestError, data_hash, epoch_digest};
use nym_rewards::msg::{EpochRewardsResponse, MixnodeReward, SignerSignature};
use serde::Serialize;
use thiserror::Error;

use crate::config::ChainContext;
use crate::crypto::{SignatureCheck, verify_signature};
use crate::official::OfficialEpoch;
use crate::signer_set::SignerSet;

/// The signed part of an epoch's data, borrowed from whatever carries it (a node's copy, a
/// proof bundle, a certificate).
#[derive(Debug, Clone, Copy)]
pub struct SignedData<'a> {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version the signatures claim.
    pub signer_set_version: u32,
    /// The claimed data hash.
    pub data_hash: &'a [u8],
    /// Rewards, ascending by mix id.
    pub rewards: &'a [MixnodeReward],
    /// Signatures, ascending by signer index.
    pub signatures: &'a [SignerSignature],
}

/// What a passed certification check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Certified {
    /// Valid signatures of distinct members.
    pub valid_signatures: usize,
    /// The signer set's threshold.
    pub threshold: usize,
}

/// Why data is not certified.
#[derive(Debug, Clone, PartialEq, Eq, Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum NotCertified {
    /// Mix ids not strictly ascending.
    #[error("rewards are not strictly ascending by mix id at position {position}")]
    UnsortedRewards {
        /// First position out of order.
        position: usize,
    },
    /// The claimed data hash is not the hash of the rewards.
    #[error("data_hash {claimed} does not match the rewards ({computed})")]
    DataHashMismatch {
        /// As claimed (hex).
        claimed: String,
        /// Of the rewards (hex).
        computed: String,
    },
    /// The data names another signer-set version than the set it is checked against.
    #[error("the data names signer set version {data}, the set checked is version {set}")]
    SignerSetVersion {
        /// In the data.
        data: u32,
        /// Of the set.
        set: u32,
    },
    /// The digest cannot be encoded.
    #[error("{0}")]
    Digest(#[from] DigestError),
    /// Signer indices not strictly ascending (or repeated).
    #[error("signer index {index} at position {position} is not strictly ascending")]
    SignersNotAscending {
        /// Position in the list.
        position: usize,
        /// The index there.
        index: u16,
    },
    /// A signer index beyond the set.
    #[error("signer index {index} is not in signer set version {version}")]
    UnknownSigner {
        /// The index.
        index: u16,
        /// The set's version.
        version: u32,
    },
    /// A signature that does not verify.
    #[error("signature of signer {index} does not verify")]
    InvalidSignature {
        /// The signer.
        index: u16,
    },
    /// Fewer valid signatures than the threshold.
    #[error("{valid} valid signatures are below the threshold of {threshold}")]
    BelowThreshold {
        /// Valid signatures.
        valid: usize,
        /// t.
        threshold: usize,
    },
}

/// Why data is not what the contract accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum NotAccepted {
    /// Another epoch.
    #[error("epoch {data} is not the contract's epoch {record}")]
    Epoch {
        /// In the data.
        data: u64,
        /// In the record.
        record: u64,
    },
    /// Another signer-set version.
    #[error("signer set version {data} differs from the contract's {record}")]
    SignerSetVersion {
        /// In the data.
        data: u32,
        /// In the record.
        record: u32,
    },
    /// Another data hash: possibly a certified block that was not the accepted one.
    #[error("data_hash {data} differs from the contract's {record}")]
    DataHash {
        /// In the data (hex).
        data: String,
        /// In the record (hex).
        record: String,
    },
    /// Another submitter.
    #[error("submitter {data} differs from the contract's {record}")]
    Submitter {
        /// In the data.
        data: String,
        /// In the record.
        record: String,
    },
    /// Another height.
    #[error("height {data} differs from the contract's {record}")]
    Height {
        /// In the data.
        data: u64,
        /// In the record.
        record: u64,
    },
    /// Other signatures than the contract stored (possibly valid ones, but not the record).
    #[error("the signatures differ from the contract's")]
    Signatures,
}

/// Why data does not verify: one of the two checks failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// Not certified by the signer set.
    #[error("not certified: {0}")]
    NotCertified(#[from] NotCertified),
    /// Not what the contract accepted.
    #[error("not accepted: {0}")]
    NotAccepted(#[from] NotAccepted),
}

/// The outcome of a verification that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Certified, and the contract's record for the epoch is this data.
    Accepted(Certified),
    /// Certified, but checked without the contract's record (e.g. a proof bundle against a
    /// pinned signer-set hash): another certified block may have been the accepted one.
    CertifiedNotProvenAccepted(Certified),
}

impl VerifyError {
    /// The failed check as a stable name, `certified.<why>` or `accepted.<why>` (e.g.
    /// `certified.data_hash_mismatch`): what front ends show and tests compare.
    pub fn check(&self) -> String {
        let (stage, why): (&str, &'static str) = match self {
            VerifyError::NotCertified(why) => ("certified", why.into()),
            VerifyError::NotAccepted(why) => ("accepted", why.into()),
        };
        format!("{stage}.{why}")
    }
}

impl Verdict {
    /// The certification part.
    pub fn certified(&self) -> Certified {
        match self {
            Verdict::Accepted(certified) | Verdict::CertifiedNotProvenAccepted(certified) => {
                *certified
            }
        }
    }

    /// A one-line summary for people.
    pub fn describe(&self) -> String {
        let certified = self.certified();
        let what = match self {
            Verdict::Accepted(_) => "accepted by the contract",
            Verdict::CertifiedNotProvenAccepted(_) => "certified, not proven accepted",
        };
        format!(
            "{what} ({} valid signatures, threshold {})",
            certified.valid_signatures, certified.threshold
        )
    }
}

/// Checks that `data` carries at least `t` valid signatures of `set` over its canonical
/// digest on `chain`, and that its data hash is the hash of its rewards.
pub fn check_certified(
    chain: &ChainContext,
    set: &SignerSet,
    data: SignedData<'_>,
) -> Result<Certified, NotCertified> {
    if let Some(position) = data
        .rewards
        .windows(2)
        .position(|pair| pair[0].mix_id >= pair[1].mix_id)
    {
        return Err(NotCertified::UnsortedRewards {
            position: position + 1,
        });
    }
    let computed = data_hash(data.rewards);
    if computed.as_slice() != data.data_hash {
        return Err(NotCertified::DataHashMismatch {
            claimed: hex::encode(data.data_hash),
            computed: hex::encode(computed),
        });
    }
    if data.signer_set_version != set.version {
        return Err(NotCertified::SignerSetVersion {
            data: data.signer_set_version,
            set: set.version,
        });
    }
    let digest = epoch_digest(&chain.digest_context(set.version, data.epoch), &computed)?;
    let mut previous: Option<u16> = None;
    for (position, signature) in data.signatures.iter().enumerate() {
        if previous.is_some_and(|previous| signature.index <= previous) {
            return Err(NotCertified::SignersNotAscending {
                position,
                index: signature.index,
            });
        }
        previous = Some(signature.index);
        let key = set
            .key(signature.index)
            .ok_or(NotCertified::UnknownSigner {
                index: signature.index,
                version: set.version,
            })?;
        if verify_signature(&digest, signature.signature.as_slice(), key) != SignatureCheck::Valid {
            return Err(NotCertified::InvalidSignature {
                index: signature.index,
            });
        }
    }
    let valid = data.signatures.len();
    if valid < set.threshold {
        return Err(NotCertified::BelowThreshold {
            valid,
            threshold: set.threshold,
        });
    }
    Ok(Certified {
        valid_signatures: valid,
        threshold: set.threshold,
    })
}

/// Checks that `data` is what the contract's `record` holds: epoch, signer-set version and
/// data hash (the rewards are bound to the hash by [`check_certified`]).
pub fn check_accepted(
    data: SignedData<'_>,
    record: &EpochRewardsResponse,
) -> Result<(), NotAccepted> {
    if data.epoch != record.epoch {
        return Err(NotAccepted::Epoch {
            data: data.epoch,
            record: record.epoch,
        });
    }
    if data.signer_set_version != record.signer_set_version {
        return Err(NotAccepted::SignerSetVersion {
            data: data.signer_set_version,
            record: record.signer_set_version,
        });
    }
    if data.data_hash != record.data_hash.as_slice() {
        return Err(NotAccepted::DataHash {
            data: hex::encode(data.data_hash),
            record: record.data_hash.to_hex(),
        });
    }
    Ok(())
}

impl OfficialEpoch {
    /// [`check_accepted`] plus what a node's copy states beyond the data: the submitter, the
    /// height and the very signatures the contract stored. A node's copy is the record.
    pub fn check_accepted(&self, record: &EpochRewardsResponse) -> Result<(), NotAccepted> {
        check_accepted(self.signed(), record)?;
        if self.submitter != record.submitter.as_str() {
            return Err(NotAccepted::Submitter {
                data: self.submitter.clone(),
                record: record.submitter.to_string(),
            });
        }
        if self.height != record.height {
            return Err(NotAccepted::Height {
                data: self.height,
                record: record.height,
            });
        }
        if self.signatures != record.signatures {
            return Err(NotAccepted::Signatures);
        }
        Ok(())
    }

    /// Both checks of a node's copy: certified by `set` and, when the contract's `record` is
    /// given, accepted.
    pub fn verify(
        &self,
        chain: &ChainContext,
        set: &SignerSet,
        record: Option<&EpochRewardsResponse>,
    ) -> Result<Verdict, VerifyError> {
        let certified = check_certified(chain, set, self.signed())?;
        match record {
            Some(record) => {
                self.check_accepted(record)?;
                Ok(Verdict::Accepted(certified))
            }
            None => Ok(Verdict::CertifiedNotProvenAccepted(certified)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::{Addr, HexBinary, Timestamp};
    use ed25519_dalek::{Signer as _, SigningKey};

    use crate::signer_set::Signer;

    fn keys() -> Vec<SigningKey> {
        (1..=4u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect()
    }

    fn chain() -> ChainContext {
        ChainContext {
            chain_id: "c".into(),
            contract: "wasm1k".into(),
        }
    }

    fn set() -> SignerSet {
        SignerSet {
            version: 1,
            effective_from_epoch: 0,
            threshold: 3,
            members: keys()
                .iter()
                .enumerate()
                .map(|(i, key)| Signer {
                    key: key.verifying_key().to_bytes(),
                    address: format!("wasm1m{i}"),
                })
                .collect(),
        }
    }

    fn rewards(bump: u16) -> Vec<MixnodeReward> {
        vec![
            MixnodeReward {
                mix_id: 1,
                uptime_bp: 9_000 + bump,
            },
            MixnodeReward {
                mix_id: 2,
                uptime_bp: 100,
            },
        ]
    }

    /// A copy of epoch 5 over `rewards`, signed by `signers`.
    fn copy(rewards: Vec<MixnodeReward>, signers: &[usize]) -> OfficialEpoch {
        let hash = data_hash(&rewards);
        let digest = epoch_digest(&chain().digest_context(1, 5), &hash).unwrap();
        OfficialEpoch {
            epoch: 5,
            signer_set_version: 1,
            data_hash: HexBinary::from(hash),
            rewards,
            signatures: signers
                .iter()
                .map(|&i| SignerSignature {
                    index: i as u16,
                    signature: HexBinary::from(keys()[i].sign(&digest).to_bytes()),
                })
                .collect(),
            submitter: "wasm1m1".into(),
            height: 9,
        }
    }

    fn record_of(copy: &OfficialEpoch) -> EpochRewardsResponse {
        EpochRewardsResponse {
            epoch: copy.epoch,
            signer_set_version: copy.signer_set_version,
            data_hash: copy.data_hash.clone(),
            rewards: copy.rewards.clone(),
            signatures: copy.signatures.clone(),
            submitter: Addr::unchecked(&copy.submitter),
            height: copy.height,
            time: Timestamp::from_seconds(1),
        }
    }

    #[test]
    fn an_honest_copy_is_accepted_and_without_the_record_only_certified() {
        let good = copy(rewards(0), &[0, 1, 3]);
        let record = record_of(&good);
        let certified = Certified {
            valid_signatures: 3,
            threshold: 3,
        };
        assert_eq!(
            good.verify(&chain(), &set(), Some(&record)),
            Ok(Verdict::Accepted(certified))
        );
        assert_eq!(
            good.verify(&chain(), &set(), None),
            Ok(Verdict::CertifiedNotProvenAccepted(certified))
        );
    }

    #[test]
    fn a_certified_block_that_was_not_accepted_fails_the_accepted_check() {
        let accepted = copy(rewards(0), &[0, 1, 2]);
        let other = copy(rewards(7), &[1, 2, 3]);
        assert!(check_certified(&chain(), &set(), other.signed()).is_ok());
        assert!(matches!(
            other.verify(&chain(), &set(), Some(&record_of(&accepted))),
            Err(VerifyError::NotAccepted(NotAccepted::DataHash { .. }))
        ));
    }

    #[test]
    fn each_tampering_has_its_own_error() {
        let good = copy(rewards(0), &[0, 1, 3]);
        let record = record_of(&good);

        let mut changed = good.clone();
        changed.rewards[0].uptime_bp += 1;
        assert!(matches!(
            check_certified(&chain(), &set(), changed.signed()),
            Err(NotCertified::DataHashMismatch { .. })
        ));

        let mut flipped = good.clone();
        let mut bytes = flipped.signatures[1].signature.to_vec();
        bytes[0] ^= 1;
        flipped.signatures[1].signature = HexBinary::from(bytes);
        assert_eq!(
            check_certified(&chain(), &set(), flipped.signed()),
            Err(NotCertified::InvalidSignature { index: 1 })
        );

        let few = copy(rewards(0), &[0, 1]);
        assert_eq!(
            check_certified(&chain(), &set(), few.signed()),
            Err(NotCertified::BelowThreshold {
                valid: 2,
                threshold: 3
            })
        );

        let mut repeated = good.clone();
        repeated.signatures[2] = repeated.signatures[1].clone();
        assert_eq!(
            check_certified(&chain(), &set(), repeated.signed()),
            Err(NotCertified::SignersNotAscending {
                position: 2,
                index: 1
            })
        );

        let other_contract = ChainContext {
            contract: "wasm1other".into(),
            ..chain()
        };
        assert_eq!(
            check_certified(&other_contract, &set(), good.signed()),
            Err(NotCertified::InvalidSignature { index: 0 })
        );

        let mut taller = good.clone();
        taller.height += 1;
        assert_eq!(
            taller.check_accepted(&record),
            Err(NotAccepted::Height {
                data: 10,
                record: 9
            })
        );
        let mut other_submitter = good.clone();
        other_submitter.submitter = "wasm1m2".into();
        assert!(matches!(
            other_submitter.check_accepted(&record),
            Err(NotAccepted::Submitter { .. })
        ));
        // Other valid signatures over the accepted data are still not the record.
        let resigned = copy(rewards(0), &[0, 1, 2]);
        assert!(check_certified(&chain(), &set(), resigned.signed()).is_ok());
        assert_eq!(
            resigned.check_accepted(&record),
            Err(NotAccepted::Signatures)
        );
    }
}
