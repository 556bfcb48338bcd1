//! The canonical digest: the exact bytes a signer-set member signs, and the ONLY implementation
//! of them (the relayer calls these functions). Written out so third parties can verify
//! without this code:
//!
//! ```text
//! data_hash = sha256( for each reward in ascending mixnode id: u32_be(mix_id) || u16_be(uptime_bp) )
//! digest    = sha256( domain
//!                     || u16_be(len(chain_id))      || chain_id (utf-8)
//!                     || u16_be(len(contract_addr)) || contract_addr (utf-8, bech32 text)
//!                     || u32_be(signer_set_version) || u64_be(epoch) || data_hash )
//! signature = ed25519_sign(member_secret_key, digest)   # over the 32 digest bytes
//! ```
//!
//! `domain` is [`EPOCH_DOMAIN`] for what the contract verifies; other message kinds use their
//! own tags (e.g. [`OBSERVATION_DOMAIN`]) so that no signature can be replayed as another kind.
//! No tag is a prefix of another, so the encodings of different kinds never collide.

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::msg::MixnodeReward;
use crate::records::encode_rewards;

/// Domain tag of the epoch digest that the contract verifies.
pub const EPOCH_DOMAIN: &[u8] = b"nym-rewards/v1";
/// Domain tag of an instance's own per-epoch observation.
pub const OBSERVATION_DOMAIN: &[u8] = b"nym-rewards/obs/v1";

/// A digest field too long to be length-prefixed with a u16.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
#[error("{field} is {len} bytes long; the digest encodes at most 65535")]
pub struct DigestError {
    /// Which field.
    pub field: &'static str,
    /// Its length in bytes.
    pub len: usize,
}

/// The fields that bind a signature to one chain, contract, signer-set version and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestContext<'a> {
    /// Chain id, e.g. `testing`.
    pub chain_id: &'a str,
    /// Bech32 address of the rewards contract.
    pub contract_addr: &'a str,
    /// Signer-set version in force for the epoch.
    pub signer_set_version: u32,
    /// The epoch.
    pub epoch: u64,
}

/// sha256 over already-encoded reward records.
pub fn hash_records(records: &[u8]) -> [u8; 32] {
    Sha256::digest(records).into()
}

/// The data hash of rewards given in ascending mixnode id.
pub fn data_hash(rewards: &[MixnodeReward]) -> [u8; 32] {
    hash_records(&encode_rewards(rewards))
}

/// The digest under `domain` (see the module documentation).
pub fn domain_digest(
    domain: &[u8],
    context: &DigestContext<'_>,
    data_hash: &[u8; 32],
) -> Result<[u8; 32], DigestError> {
    let chain_len = prefix_len("chain_id", context.chain_id)?;
    let contract_len = prefix_len("contract_addr", context.contract_addr)?;
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(chain_len);
    hasher.update(context.chain_id.as_bytes());
    hasher.update(contract_len);
    hasher.update(context.contract_addr.as_bytes());
    hasher.update(context.signer_set_version.to_be_bytes());
    hasher.update(context.epoch.to_be_bytes());
    hasher.update(data_hash);
    Ok(hasher.finalize().into())
}

/// The digest the contract verifies: [`domain_digest`] under [`EPOCH_DOMAIN`].
pub fn epoch_digest(
    context: &DigestContext<'_>,
    data_hash: &[u8; 32],
) -> Result<[u8; 32], DigestError> {
    domain_digest(EPOCH_DOMAIN, context, data_hash)
}

fn prefix_len(field: &'static str, value: &str) -> Result<[u8; 2], DigestError> {
    u16::try_from(value.len())
        .map(u16::to_be_bytes)
        .map_err(|_| DigestError {
            field,
            len: value.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test vectors: inputs here, expected outputs (computed independently with Python's
    /// hashlib) at the bottom. Third-party verifiers can check theirs against these; the same
    /// vectors are listed in `docs/digest.md`.
    const VECTOR_CHAIN_ID: &str = "testing";
    const VECTOR_CONTRACT: &str = "wasm14hj2tavq8fpesdwxxcu44rty3hh90vhujrvcmstl4zr3txmfvw9s0phg4d";

    fn vector_rewards() -> Vec<MixnodeReward> {
        vec![
            MixnodeReward {
                mix_id: 1,
                uptime_bp: 10_000,
            },
            MixnodeReward {
                mix_id: 2,
                uptime_bp: 9_950,
            },
            MixnodeReward {
                mix_id: 70_000,
                uptime_bp: 0,
            },
        ]
    }

    fn vector_context() -> DigestContext<'static> {
        DigestContext {
            chain_id: VECTOR_CHAIN_ID,
            contract_addr: VECTOR_CONTRACT,
            signer_set_version: 1,
            epoch: 42,
        }
    }

    #[test]
    fn data_hash_matches_the_vector() {
        assert_eq!(
            hex::encode(encode_rewards(&vector_rewards())),
            "0000000127100000000226de000111700000"
        );
        assert_eq!(hex::encode(data_hash(&vector_rewards())), DATA_HASH_HEX);
    }

    #[test]
    fn epoch_digest_matches_the_vector() {
        let hash = data_hash(&vector_rewards());
        let digest = epoch_digest(&vector_context(), &hash).unwrap();
        assert_eq!(hex::encode(digest), EPOCH_DIGEST_HEX);
    }

    #[test]
    fn observation_digest_matches_the_vector() {
        let hash = data_hash(&vector_rewards());
        let digest = domain_digest(OBSERVATION_DOMAIN, &vector_context(), &hash).unwrap();
        assert_eq!(hex::encode(digest), OBSERVATION_DIGEST_HEX);
    }

    #[test]
    fn digest_is_sha256_of_the_documented_preimage() {
        let hash = data_hash(&vector_rewards());
        let mut preimage = Vec::new();
        preimage.extend_from_slice(b"nym-rewards/v1");
        preimage.extend_from_slice(&(VECTOR_CHAIN_ID.len() as u16).to_be_bytes());
        preimage.extend_from_slice(VECTOR_CHAIN_ID.as_bytes());
        preimage.extend_from_slice(&(VECTOR_CONTRACT.len() as u16).to_be_bytes());
        preimage.extend_from_slice(VECTOR_CONTRACT.as_bytes());
        preimage.extend_from_slice(&1u32.to_be_bytes());
        preimage.extend_from_slice(&42u64.to_be_bytes());
        preimage.extend_from_slice(&hash);
        let expected: [u8; 32] = Sha256::digest(&preimage).into();
        assert_eq!(epoch_digest(&vector_context(), &hash).unwrap(), expected);
    }

    #[test]
    fn every_field_changes_the_digest() {
        let hash = data_hash(&vector_rewards());
        let base = epoch_digest(&vector_context(), &hash).unwrap();
        let variants = [
            DigestContext {
                chain_id: "testing2",
                ..vector_context()
            },
            DigestContext {
                contract_addr: "wasm1other",
                ..vector_context()
            },
            DigestContext {
                signer_set_version: 2,
                ..vector_context()
            },
            DigestContext {
                epoch: 43,
                ..vector_context()
            },
        ];
        for variant in variants {
            assert_ne!(epoch_digest(&variant, &hash).unwrap(), base, "{variant:?}");
        }
        assert_ne!(epoch_digest(&vector_context(), &[0u8; 32]).unwrap(), base);
        assert_ne!(
            domain_digest(OBSERVATION_DOMAIN, &vector_context(), &hash).unwrap(),
            base
        );
    }

    #[test]
    fn domain_tags_are_prefix_free() {
        assert!(!OBSERVATION_DOMAIN.starts_with(EPOCH_DOMAIN));
        assert!(!EPOCH_DOMAIN.starts_with(OBSERVATION_DOMAIN));
    }

    #[test]
    fn overlong_fields_are_an_error() {
        let long = "x".repeat(70_000);
        let context = DigestContext {
            chain_id: &long,
            ..vector_context()
        };
        assert_eq!(
            epoch_digest(&context, &[0; 32]),
            Err(DigestError {
                field: "chain_id",
                len: 70_000
            })
        );
    }

    const DATA_HASH_HEX: &str = "07712a1eec76137bbbcd1e01e17621662eea62f5c07e65e79ec0c69a26b01157";
    const EPOCH_DIGEST_HEX: &str =
        "dae04ec9905f951cce811fce39fc3bb04d777e53d183aeee088dd4d33685ccc2";
    const OBSERVATION_DIGEST_HEX: &str =
        "166811c7a6358fed19895bf617bc20c45f14628a8e6c2a80e7e0bc13fb828a37";
}
