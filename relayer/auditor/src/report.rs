//! One report per audited epoch, the same for every front end (`relayer verify`,
//! `relayer verify-proof` and the browser auditor): the verdict or the first failed check by
//! a stable name, the signing digest the signatures were checked over, each signature's
//! validity and, per mixnode, whether the value shown is the contract's and certified.

use std::collections::BTreeMap;

use nym_rewards::digest::epoch_digest;
use nym_rewards::msg::{EpochRewardsResponse, MixnodeReward, SignerSetResponse};
use relayer_protocol::{
    ChainContext, OfficialEpoch, SignedData, SignerSet, Verdict, verify_signature,
};
use serde::Serialize;

use crate::audit::{AuditError, audit_copy, check_deployment};
use crate::bundle::{BundleError, ProofBundle, TrustAnchor, verify_bundle};

/// Everything an auditor is shown about one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The epoch of the data shown.
    pub epoch: u64,
    /// The chain id the digest binds (the audited chain's, or the bundle's).
    pub chain_id: String,
    /// The contract the digest binds.
    pub contract: String,
    /// Version of the signer set the signatures were checked against.
    pub signer_set_version: u32,
    /// Its threshold.
    pub threshold: u32,
    /// The data hash the data shown claims (hex).
    pub data_hash: String,
    /// The contract's data hash of the epoch (hex), when its record was read.
    pub contract_data_hash: Option<String>,
    /// The signing digest (hex) the signatures were checked over: the contract's canonical
    /// digest of chain id, contract, version, epoch and the claimed data hash. Absent when
    /// the claimed hash is not 32 bytes.
    pub digest: Option<String>,
    /// Each signature of the data shown, checked on its own over `digest`.
    pub signatures: Vec<SignatureCheck>,
    /// Per mixnode, in mix id order.
    pub mixnodes: Vec<MixnodeCheck>,
    /// The verdict, or the first failed check.
    pub outcome: Outcome,
}

/// One signature's own check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SignatureCheck {
    /// Signer index in the set.
    pub index: u16,
    /// Whether it verifies over the digest with that member's key
    /// ([`relayer_protocol::verify_signature`], the chain's own ed25519 code).
    pub valid: bool,
}

/// One mixnode's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MixnodeCheck {
    /// The mixnode.
    pub mix_id: u32,
    /// Uptime in the data shown (the node's copy or the bundle), basis points.
    pub shown_uptime_bp: Option<u16>,
    /// Uptime in the contract's record, when it was read.
    pub contract_uptime_bp: Option<u16>,
    /// The value shown is covered by at least `t` valid signatures of the signer set in
    /// force and, when the record was read, is the contract's.
    pub verified: bool,
}

/// The verdict, or why the data fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Every check passed.
    Verified {
        /// Accepted, or certified only.
        verdict: Verdict,
        /// [`Verdict::describe`].
        summary: String,
    },
    /// A check failed.
    Failed {
        /// Its stable name, e.g. `certified.invalid_signature`.
        check: String,
        /// What failed, for people.
        error: String,
    },
}

impl Outcome {
    fn of<E: std::fmt::Display>(result: Result<Verdict, E>, check: impl Fn(&E) -> String) -> Self {
        match result {
            Ok(verdict) => Outcome::Verified {
                summary: verdict.describe(),
                verdict,
            },
            Err(err) => Outcome::Failed {
                check: check(&err),
                error: err.to_string(),
            },
        }
    }

    /// Whether every check passed.
    pub fn verified(&self) -> bool {
        matches!(self, Outcome::Verified { .. })
    }
}

impl Report {
    /// The report of a node's `copy`: the node's own account of its deployment (`node`,
    /// from its `/v1/status`), then [`audit_copy`] against the contract's `record` and
    /// signer `set` read from `chain`.
    pub fn of_copy(
        chain: &ChainContext,
        node: &ChainContext,
        set: &SignerSetResponse,
        record: &EpochRewardsResponse,
        copy: &OfficialEpoch,
    ) -> Self {
        let result =
            check_deployment(chain, node).and_then(|()| audit_copy(chain, set, record, copy));
        Self::build(
            chain,
            set,
            copy.signed(),
            Some(record),
            Outcome::of(result, AuditError::check),
        )
    }

    /// The report of a proof `bundle` checked against `anchor` ([`verify_bundle`]).
    pub fn of_bundle(bundle: &ProofBundle, anchor: &TrustAnchor) -> Self {
        let record = match anchor {
            TrustAnchor::Chain { record, .. } => Some(record.as_ref()),
            TrustAnchor::SignerSetHash(_) => None,
        };
        Self::build(
            &bundle.chain(),
            &bundle.signer_set,
            bundle.signed(),
            record,
            Outcome::of(verify_bundle(bundle, anchor), BundleError::check),
        )
    }

    fn build(
        chain: &ChainContext,
        set: &SignerSetResponse,
        data: SignedData<'_>,
        record: Option<&EpochRewardsResponse>,
        outcome: Outcome,
    ) -> Self {
        let digest = <&[u8; 32]>::try_from(data.data_hash).ok().and_then(|hash| {
            epoch_digest(&chain.digest_context(set.version, data.epoch), hash).ok()
        });
        Self {
            epoch: data.epoch,
            chain_id: chain.chain_id.clone(),
            contract: chain.contract.clone(),
            signer_set_version: set.version,
            threshold: set.threshold,
            data_hash: hex::encode(data.data_hash),
            contract_data_hash: record.map(|record| record.data_hash.to_hex()),
            digest: digest.map(hex::encode),
            signatures: signature_checks(set, &data, digest.as_ref()),
            mixnodes: mixnode_checks(data.rewards, record, outcome.verified()),
            outcome,
        }
    }
}

fn signature_checks(
    set: &SignerSetResponse,
    data: &SignedData<'_>,
    digest: Option<&[u8; 32]>,
) -> Vec<SignatureCheck> {
    let set = SignerSet::try_from(set).ok();
    data.signatures
        .iter()
        .map(|signature| {
            let key = set.as_ref().and_then(|set| set.key(signature.index));
            let valid = match (digest, key) {
                (Some(digest), Some(key)) => {
                    verify_signature(digest, signature.signature.as_slice(), key)
                        == relayer_protocol::SignatureCheck::Valid
                }
                _ => false,
            };
            SignatureCheck {
                index: signature.index,
                valid,
            }
        })
        .collect()
}

fn mixnode_checks(
    shown: &[MixnodeReward],
    record: Option<&EpochRewardsResponse>,
    verified: bool,
) -> Vec<MixnodeCheck> {
    let mut lines: BTreeMap<u32, MixnodeCheck> = BTreeMap::new();
    let blank = |mix_id| MixnodeCheck {
        mix_id,
        shown_uptime_bp: None,
        contract_uptime_bp: None,
        verified: false,
    };
    for reward in shown {
        lines
            .entry(reward.mix_id)
            .or_insert_with(|| blank(reward.mix_id))
            .shown_uptime_bp = Some(reward.uptime_bp);
    }
    for reward in record
        .map(|record| record.rewards.as_slice())
        .unwrap_or_default()
    {
        lines
            .entry(reward.mix_id)
            .or_insert_with(|| blank(reward.mix_id))
            .contract_uptime_bp = Some(reward.uptime_bp);
    }
    lines
        .into_values()
        .map(|line| MixnodeCheck {
            verified: verified
                && line.shown_uptime_bp.is_some()
                && (record.is_none() || line.shown_uptime_bp == line.contract_uptime_bp),
            ..line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use cosmwasm_std::HexBinary;

    use super::*;
    use crate::fixtures::*;

    fn failed_check(report: &Report) -> &str {
        match &report.outcome {
            Outcome::Failed { check, .. } => check,
            Outcome::Verified { summary, .. } => panic!("verified: {summary}"),
        }
    }

    fn copy_report(copy: &OfficialEpoch, record: &EpochRewardsResponse) -> Report {
        Report::of_copy(&chain(), &chain(), &signer_set(), record, copy)
    }

    #[test]
    fn a_good_copy_is_accepted_with_every_mixnode_and_signature_checked() {
        let bundle = bundle();
        let report = copy_report(&copy_of(&bundle), &record_of(&bundle));
        assert!(matches!(
            report.outcome,
            Outcome::Verified {
                verdict: Verdict::Accepted(_),
                ..
            }
        ));
        assert_eq!(report.mixnodes.len(), 5);
        assert!(report.mixnodes.iter().all(|line| line.verified
            && line.shown_uptime_bp.is_some()
            && line.shown_uptime_bp == line.contract_uptime_bp));
        assert_eq!(report.signatures.len(), 3);
        assert!(report.signatures.iter().all(|signature| signature.valid));
        let hash: [u8; 32] = bundle.data_hash.to_array().unwrap();
        let digest = epoch_digest(&chain().digest_context(1, 12), &hash).unwrap();
        assert_eq!(report.digest, Some(hex::encode(digest)));
        assert_eq!(report.contract_data_hash, Some(bundle.data_hash.to_hex()));
    }

    #[test]
    fn each_tampering_names_its_failed_check_and_the_mixnodes_it_touches() {
        let bundle = bundle();
        let record = record_of(&bundle);

        // The node names another deployment: nothing it serves is verified.
        let other = ChainContext {
            chain_id: "other-chain".into(),
            contract: CONTRACT.into(),
        };
        let report = Report::of_copy(&chain(), &other, &signer_set(), &record, &copy_of(&bundle));
        assert_eq!(failed_check(&report), "other_deployment");
        assert!(report.mixnodes.iter().all(|line| !line.verified));

        // One value changed, the hash kept.
        let mut tampered = copy_of(&bundle);
        tampered.rewards[2].uptime_bp = 10_000;
        let report = copy_report(&tampered, &record);
        assert_eq!(failed_check(&report), "certified.data_hash_mismatch");
        let line = report.mixnodes[2];
        assert_eq!(line.shown_uptime_bp, Some(10_000));
        assert_ne!(line.shown_uptime_bp, line.contract_uptime_bp);

        // A forged signature: that one signature is marked.
        let mut forged = copy_of(&bundle);
        forged.signatures[1].signature = HexBinary::from([7u8; 64].as_slice());
        let report = copy_report(&forged, &record);
        assert_eq!(failed_check(&report), "certified.invalid_signature");
        let valid: Vec<bool> = report.signatures.iter().map(|s| s.valid).collect();
        assert_eq!(valid, [true, false, true]);

        // Another certified block than the accepted one.
        let report = copy_report(&copy_of(&bundle_of(1, &[0, 1, 3])), &record);
        assert_eq!(failed_check(&report), "accepted.data_hash");
        assert!(report.signatures.iter().all(|signature| signature.valid));
    }

    #[test]
    fn a_pinned_bundle_is_certified_only_and_a_modified_one_fails() {
        let report = Report::of_bundle(&bundle(), &pinned());
        assert!(matches!(
            report.outcome,
            Outcome::Verified {
                verdict: Verdict::CertifiedNotProvenAccepted(_),
                ..
            }
        ));
        assert!(report.contract_data_hash.is_none());
        assert!(
            report
                .mixnodes
                .iter()
                .all(|line| line.verified && line.contract_uptime_bp.is_none())
        );

        let mut modified = bundle();
        modified.rewards[0].uptime_bp += 1;
        let report = Report::of_bundle(&modified, &pinned());
        assert_eq!(failed_check(&report), "certified.data_hash_mismatch");
        let report = Report::of_bundle(
            &bundle(),
            &chain_anchor(record_of(&bundle_of(1, &[0, 1, 2]))),
        );
        assert_eq!(failed_check(&report), "accepted.data_hash");
    }

    #[test]
    fn the_json_names_the_outcome() {
        let report = Report::of_bundle(&bundle(), &pinned());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["outcome"]["status"], "verified");
        assert_eq!(
            json["outcome"]["verdict"]["verdict"],
            "certified_not_proven_accepted"
        );
        assert_eq!(json["mixnodes"][0]["mix_id"], 1);
    }
}
