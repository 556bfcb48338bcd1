//! Test fixtures shared by the modules' tests: a four-member signer set with fixed keys, a
//! bundle of epoch 12 signed by chosen members, the record a contract would hold of it.

#![allow(clippy::unwrap_used)] // test code

use cosmwasm_std::{Addr, HexBinary, Timestamp};
use ed25519_dalek::{Signer as _, SigningKey};
use nym_rewards::digest::{DigestContext, data_hash, epoch_digest};
use nym_rewards::msg::{
    EpochRewardsResponse, Member, MixnodeReward, SignerSetResponse, SignerSignature,
};
use relayer_protocol::ChainContext;

use crate::bundle::{PROOF_FORMAT, ProofBundle, TrustAnchor, signer_set_hash};

pub(crate) const CHAIN: &str = "testing";
pub(crate) const CONTRACT: &str = "wasm1contract";

pub(crate) fn keys() -> Vec<SigningKey> {
    (1..=4u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect()
}

pub(crate) fn signer_set() -> SignerSetResponse {
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

/// A bundle of epoch 12 over rewards shifted by `bump`, signed by `signers`.
pub(crate) fn bundle_of(bump: u16, signers: &[usize]) -> ProofBundle {
    let rewards: Vec<MixnodeReward> = (1..=5)
        .map(|mix_id| MixnodeReward {
            mix_id,
            uptime_bp: 9_000 + mix_id as u16 + bump,
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
        data_hash: HexBinary::from(hash),
        rewards,
        signatures: signers
            .iter()
            .map(|&i| SignerSignature {
                index: i as u16,
                signature: HexBinary::from(keys()[i].sign(&digest).to_bytes().as_slice()),
            })
            .collect(),
        signer_set: signer_set(),
    }
}

pub(crate) fn bundle() -> ProofBundle {
    bundle_of(0, &[0, 1, 2])
}

pub(crate) fn record_of(bundle: &ProofBundle) -> EpochRewardsResponse {
    EpochRewardsResponse {
        epoch: bundle.epoch,
        signer_set_version: bundle.signer_set.version,
        data_hash: bundle.data_hash.clone(),
        rewards: bundle.rewards.clone(),
        signatures: bundle.signatures.clone(),
        submitter: Addr::unchecked("wasm1member0"),
        height: 40,
        time: Timestamp::from_seconds(100),
    }
}

pub(crate) fn pinned() -> TrustAnchor {
    TrustAnchor::SignerSetHash(signer_set_hash(CHAIN, CONTRACT, &signer_set()))
}

pub(crate) fn chain_anchor(record: EpochRewardsResponse) -> TrustAnchor {
    TrustAnchor::Chain {
        chain: chain(),
        signer_set: signer_set(),
        record: Box::new(record),
    }
}

/// A node's copy of `bundle` as the contract's [`record_of`] it would hold.
pub(crate) fn copy_of(bundle: &ProofBundle) -> relayer_protocol::OfficialEpoch {
    relayer_protocol::OfficialEpoch {
        epoch: bundle.epoch,
        signer_set_version: bundle.signer_set.version,
        data_hash: bundle.data_hash.clone(),
        rewards: bundle.rewards.clone(),
        signatures: bundle.signatures.clone(),
        submitter: "wasm1member0".into(),
        height: 40,
    }
}

/// The chain and contract of the fixtures.
pub(crate) fn chain() -> ChainContext {
    ChainContext {
        chain_id: CHAIN.into(),
        contract: CONTRACT.into(),
    }
}
