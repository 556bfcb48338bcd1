//! What members send each other. Every message is authenticated twice over: the transport
//! tells who sent it (a libp2p PeerId is a member's ed25519 key), and observations and echoes
//! carry signatures under their own domain tags, so they can be relayed and checked by anyone.

use nym_rewards::msg::{ExecuteMsg, SignerSignature};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Hash, MemberIndex, MixnodeReward};

/// A member's own per-mixnode averages for an epoch, signed under the observation domain tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version.
    pub signer_set_version: u32,
    /// Who measured it.
    pub author: MemberIndex,
    /// One value per mixnode of the configured set, ascending by id.
    pub values: Vec<MixnodeReward>,
    /// ed25519 signature over [`crate::observation_digest`].
    pub signature: Vec<u8>,
}

/// Names one observation: its author and its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObservationRef {
    /// Author.
    pub author: MemberIndex,
    /// [`crate::observation_digest`] of the observation.
    pub digest: Hash,
}

/// A proposal: a set of observations and the data hash of their lower-median aggregate.
/// The aggregate itself is not sent: every member recomputes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version.
    pub signer_set_version: u32,
    /// Proposer (must be the sender).
    pub proposer: MemberIndex,
    /// Observations, strictly ascending by author.
    pub observations: Vec<ObservationRef>,
    /// Data hash of the aggregate, as the contract computes it.
    pub data_hash: Hash,
}

impl Block {
    /// The hash of the block's exact observation references (author and digest, in order).
    pub fn refs_hash(&self) -> Hash {
        refs_hash(&self.observations)
    }

    /// The block as its proposer broadcasts it.
    pub fn digest(&self, members: usize) -> BlockDigest {
        BlockDigest {
            epoch: self.epoch,
            signer_set_version: self.signer_set_version,
            proposer: self.proposer,
            authors: holding_bitmap(members, self.observations.iter().map(|r| r.author)),
            refs_hash: self.refs_hash(),
            data_hash: self.data_hash,
        }
    }
}

/// The hash of observation references, in order: sha256 over each author (big endian) and
/// digest.
pub fn refs_hash(refs: &[ObservationRef]) -> Hash {
    let mut hasher = Sha256::new();
    for reference in refs {
        hasher.update(reference.author.to_be_bytes());
        hasher.update(reference.digest);
    }
    hasher.finalize().into()
}

/// A block without its references: which authors, and the hash of the exact references. A
/// member holding those authors' observations rebuilds the block; one that cannot (it lacks
/// one, or holds another version) asks the proposer for the whole block. About 100 bytes
/// instead of 34 per author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDigest {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version.
    pub signer_set_version: u32,
    /// Proposer (must be the sender).
    pub proposer: MemberIndex,
    /// The authors referenced, as a [`holding_bitmap`].
    pub authors: Vec<u8>,
    /// [`Block::refs_hash`].
    pub refs_hash: Hash,
    /// Data hash of the aggregate.
    pub data_hash: Hash,
}

/// A member's signature over the contract's canonical digest of a proposer's block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    /// The epoch.
    pub epoch: u64,
    /// Whose block is echoed.
    pub proposer: MemberIndex,
    /// Data hash of the block.
    pub data_hash: Hash,
    /// ed25519 signature over the epoch digest.
    pub signature: Vec<u8>,
}

/// A block with at least a threshold of echoes: what is submitted to the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version.
    pub signer_set_version: u32,
    /// The aggregate, ascending by mix id.
    pub rewards: Vec<MixnodeReward>,
    /// Data hash of `rewards`.
    pub data_hash: Hash,
    /// `(signer index, signature)`, strictly ascending by index.
    pub signatures: Vec<(MemberIndex, Vec<u8>)>,
}

impl Certificate {
    /// The contract message that submits this certificate.
    pub fn submit_msg(&self) -> ExecuteMsg {
        let signatures: Vec<SignerSignature> = self
            .signatures
            .iter()
            .map(|(index, signature)| SignerSignature {
                index: *index,
                signature: signature.clone().into(),
            })
            .collect();
        ExecuteMsg::submit_epoch(
            self.epoch,
            self.signer_set_version,
            &self.rewards,
            &signatures,
        )
    }
}

/// The peer-to-peer messages. `<&str>::from(&message)` names the kind (for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Message {
    /// An observation (its author's, or relayed by a proposer on request).
    Observation(Observation),
    /// A proposer's whole block (the answer to a [`Message::BlockRequest`]; any member may
    /// send its block this way).
    Block(Block),
    /// A proposer's block as it broadcasts it.
    BlockDigest(BlockDigest),
    /// Asks a proposer for its whole block of the epoch.
    BlockRequest {
        /// The epoch.
        epoch: u64,
    },
    /// An echo for the receiver's block.
    Echo(Echo),
    /// Asks a proposer for an observation its block references.
    ObservationRequest {
        /// The epoch.
        epoch: u64,
        /// The observation wanted.
        reference: ObservationRef,
    },
    /// Sent at each re-send round, for each unsettled ended epoch, by a member that may
    /// propose for it and has not yet: whose observations the sender holds. A member whose
    /// bit is clear answers with its own observation, so observations are re-sent only to
    /// proposers that lack them.
    Holding {
        /// The epoch.
        epoch: u64,
        /// Bit `i % 8` of byte `i / 8` is set when the sender holds author `i`'s observation;
        /// missing bytes count as clear.
        authors: Vec<u8>,
    },
    /// A hint from a member whose submission of the epoch the contract accepted: the
    /// receiver reads the chain at once instead of at its next re-send round. It is never
    /// taken as fact.
    Accepted {
        /// The epoch.
        epoch: u64,
    },
}

/// The [`Message::Holding`] bitmap of `authors` among `n` members (others are left out).
pub fn holding_bitmap(n: usize, authors: impl IntoIterator<Item = MemberIndex>) -> Vec<u8> {
    let mut bitmap = vec![0u8; n.div_ceil(8)];
    for author in authors
        .into_iter()
        .filter(|&author| usize::from(author) < n)
    {
        if let Some(byte) = bitmap.get_mut(usize::from(author) / 8) {
            *byte |= 1 << (author % 8);
        }
    }
    bitmap
}

/// Whether a [`Message::Holding`] bitmap has `author`'s bit set.
pub fn holds(bitmap: &[u8], author: MemberIndex) -> bool {
    bitmap
        .get(usize::from(author) / 8)
        .is_some_and(|byte| byte & (1 << (author % 8)) != 0)
}

impl Message {
    /// The epoch the message is about.
    pub fn epoch(&self) -> u64 {
        match self {
            Message::Observation(observation) => observation.epoch,
            Message::Block(block) => block.epoch,
            Message::BlockDigest(digest) => digest.epoch,
            Message::Echo(echo) => echo.epoch,
            Message::ObservationRequest { epoch, .. }
            | Message::Holding { epoch, .. }
            | Message::BlockRequest { epoch }
            | Message::Accepted { epoch } => *epoch,
        }
    }

    /// The signer-set version the message claims, for the kinds that carry one.
    pub fn signer_set_version(&self) -> Option<u32> {
        match self {
            Message::Observation(observation) => Some(observation.signer_set_version),
            Message::Block(block) => Some(block.signer_set_version),
            Message::BlockDigest(digest) => Some(digest.signer_set_version),
            Message::Echo(_)
            | Message::ObservationRequest { .. }
            | Message::Holding { .. }
            | Message::BlockRequest { .. }
            | Message::Accepted { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holding_bitmaps_name_exactly_the_authors_held() {
        let bitmap = holding_bitmap(10, [0, 3, 9]);
        assert_eq!(bitmap.len(), 2);
        let held: Vec<MemberIndex> = (0..16).filter(|&i| holds(&bitmap, i)).collect();
        assert_eq!(held, [0, 3, 9]);
        assert!(!holds(&[], 0), "missing bytes are clear");
        assert_eq!(holding_bitmap(4, [7]), [0], "authors beyond n are left out");
    }
}
