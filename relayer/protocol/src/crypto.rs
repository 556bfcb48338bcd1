//! Signing and verification. Digests come from the contract crate (the one implementation);
//! verification uses `cosmwasm-crypto`, the code the chain runs (ZIP-215 rules), so a
//! signature the chain accepts is never refused here, or the reverse.

use ed25519_dalek::{Signer, SigningKey};
use nym_rewards::digest::{
    DigestContext, OBSERVATION_DOMAIN, data_hash, domain_digest, epoch_digest,
};

use crate::{Hash, MixnodeReward, ProtocolConfig};

/// Outcome of a signature check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Verifies.
    Valid,
    /// Does not verify, or is malformed.
    Invalid,
}

/// A member's ed25519 key.
#[derive(Clone)]
pub struct Keypair {
    key: SigningKey,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", hex_prefix(&self.public()))
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

impl Keypair {
    /// From the 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs a 32-byte digest.
    pub fn sign(&self, digest: &Hash) -> Vec<u8> {
        self.key.sign(digest).to_bytes().to_vec()
    }
}

fn context(config: &ProtocolConfig, epoch: u64) -> DigestContext<'_> {
    config
        .chain
        .digest_context(config.signer_set.version, epoch)
}

/// Digest an observation's author signs: the observation domain tag over its values.
/// Chain ids and addresses are far below the u16 length limit; an overlong one (rejected by
/// config validation upstream) yields an all-zero digest that no honest member signs.
pub fn observation_digest(config: &ProtocolConfig, epoch: u64, values: &[MixnodeReward]) -> Hash {
    domain_digest(
        OBSERVATION_DOMAIN,
        &context(config, epoch),
        &data_hash(values),
    )
    .unwrap_or([0; 32])
}

/// The contract's canonical digest of `data_hash` for `epoch`: what an echo signs.
pub fn echo_digest(config: &ProtocolConfig, epoch: u64, data_hash: &Hash) -> Hash {
    epoch_digest(&context(config, epoch), data_hash).unwrap_or([0; 32])
}

/// Verifies with the chain's own ed25519 code.
pub fn verify_signature(digest: &Hash, signature: &[u8], public_key: &[u8; 32]) -> SignatureCheck {
    match cosmwasm_crypto::ed25519_verify(digest, signature, public_key) {
        Ok(true) => SignatureCheck::Valid,
        _ => SignatureCheck::Invalid,
    }
}
