//! Tooling that runs against a real local wasmd (started by `scripts/localnet.sh`): the gas
//! benchmark ([`gas`], [`report`]), the query-gas measurement ([`query_gas`]) and the v1 -> v2
//! migration check ([`migration`]). This module holds what they share: deterministic signer sets whose
//! member 0 is the funded submitting account, reward data and certificates signed the way the
//! relayer signs them.

pub mod gas;
pub mod migration;
pub mod query_gas;
pub mod report;

use cosmwasm_std::HexBinary;
use nym_rewards::digest::{DigestContext, data_hash, epoch_digest};
use nym_rewards::msg::{EpochClock, InstantiateMsg, MemberInput, MixnodeReward, SignerSignature};
use nym_rewards::rules::default_threshold;
use nym_rewards::signer_set::MAX_ENDPOINT_LEN;
use relayer_node::keys::{ChainAccount, DEFAULT_ACCOUNT_PREFIX};
use relayer_protocol::Keypair;

use crate::DevError;

/// How far before the chain's time the fixtures' epoch clock starts: every epoch below this
/// many (one-second epochs) has ended and may be submitted at once.
pub const PAST_EPOCHS: u64 = 100_000;

/// A signer set of `n` members with known ed25519 keys; member 0's address is the account
/// that submits (the contract accepts submissions from members only).
pub struct SignerFixture {
    keys: Vec<Keypair>,
    addresses: Vec<String>,
    /// Length to pad endpoints to (the largest signer-set answers), if any.
    endpoint_len: Option<usize>,
}

fn seed(tag: u8, index: usize) -> [u8; 32] {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&(index as u64 + 1).to_be_bytes());
    seed
}

impl SignerFixture {
    /// `n` members, deterministic keys; `submitter` is member 0.
    pub fn new(n: usize, submitter: &ChainAccount) -> Result<Self, DevError> {
        let keys = (0..n).map(|i| Keypair::from_seed(&seed(0xed, i))).collect();
        let addresses = (0..n)
            .map(|i| match i {
                0 => Ok(submitter.address().to_string()),
                _ => ChainAccount::from_secret(&seed(0x5e, i), DEFAULT_ACCOUNT_PREFIX)
                    .map(|account| account.address().to_string())
                    .ok_or_else(|| DevError::Invalid(format!("no chain key for member {i}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            keys,
            addresses,
            endpoint_len: None,
        })
    }

    /// The same members with API URLs and multiaddresses padded to `len` bytes (at most
    /// `MAX_ENDPOINT_LEN`; the whole set must also fit `MAX_SIGNER_SET_BYTES`).
    pub fn with_endpoints_of(self, len: usize) -> Self {
        Self {
            endpoint_len: Some(len.min(MAX_ENDPOINT_LEN)),
            ..self
        }
    }

    /// Members as `instantiate` and `UpdateSignerSet` take them.
    pub fn members(&self) -> Vec<MemberInput> {
        self.keys
            .iter()
            .zip(&self.addresses)
            .enumerate()
            .map(|(i, (key, address))| {
                let mut api_url = format!("http://127.0.0.1:{}", 8000 + i);
                let mut p2p_multiaddr = format!("/ip4/127.0.0.1/tcp/{}", 9000 + i);
                if let Some(len) = self.endpoint_len {
                    pad_to(&mut api_url, "/", len);
                    pad_to(&mut p2p_multiaddr, "/p2p-circuit", len);
                }
                MemberInput {
                    ed25519_pubkey: HexBinary::from(key.public()),
                    address: address.clone(),
                    api_url,
                    p2p_multiaddr,
                }
            })
            .collect()
    }

    /// The default threshold of this set.
    pub fn threshold(&self) -> usize {
        default_threshold(self.keys.len())
    }

    /// Signatures of the first `threshold` members over `rewards` for `epoch` under
    /// `version` of the contract at `context`'s address.
    pub fn sign(
        &self,
        context: &DigestContext<'_>,
        rewards: &[MixnodeReward],
    ) -> Result<Vec<SignerSignature>, DevError> {
        let digest = epoch_digest(context, &data_hash(rewards))
            .map_err(|err| DevError::Invalid(err.to_string()))?;
        Ok(self.keys[..self.threshold()]
            .iter()
            .enumerate()
            .map(|(index, key)| SignerSignature {
                index: index as u16,
                signature: HexBinary::from(key.sign(&digest)),
            })
            .collect())
    }

    /// A v2 instantiate message: one-second epochs starting [`PAST_EPOCHS`] before
    /// `chain_time`, the sender as admin.
    pub fn instantiate_msg(&self, chain_time: u64, max_mixnodes: u32) -> InstantiateMsg {
        InstantiateMsg {
            admin: None,
            clock: past_clock(chain_time),
            members: self.members(),
            threshold: None,
            max_mixnodes_per_epoch: max_mixnodes,
            min_rotation_delay_epochs: None,
        }
    }
}

/// Appends `separator` and then `x`s to `text` up to `len` bytes.
fn pad_to(text: &mut String, separator: &str, len: usize) {
    text.push_str(separator);
    while text.len() < len {
        text.push('x');
    }
}

/// One-second epochs from [`PAST_EPOCHS`] seconds before `chain_time`.
pub fn past_clock(chain_time: u64) -> EpochClock {
    EpochClock {
        genesis_time: chain_time.saturating_sub(PAST_EPOCHS),
        epoch_length_secs: 1,
    }
}

/// Rewards of `count` mixnodes with ids spread up to near `u32::MAX` (ten digits in JSON, a
/// multi-byte gap per record in the packed stream): the largest answers for a given count.
pub fn sparse_rewards(count: u32) -> Vec<MixnodeReward> {
    let step = u32::MAX / count.max(1);
    (0..count)
        .map(|i| MixnodeReward {
            mix_id: 1 + i * step,
            uptime_bp: (i * 7_919 % 10_001) as u16,
        })
        .collect()
}

/// Rewards of mixnodes `1..=count` with uptimes spread over the whole range (the gas bench's
/// data, as the VM model uses it).
pub fn dense_rewards(count: u32) -> Vec<MixnodeReward> {
    (1..=count)
        .map(|mix_id| MixnodeReward {
            mix_id,
            uptime_bp: (mix_id * 7_919 % 10_001) as u16,
        })
        .collect()
}
