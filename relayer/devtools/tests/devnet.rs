//! End to end on the embedded chain: N nodes in this process over real libp2p on loopback,
//! real SQLite files in temp dirs, the real contract in cw-multi-test. Tests await epochs
//! becoming final (events), assert outcomes rather than timings, and run one at a time so two
//! cores do not flake.

#![allow(clippy::unwrap_used)] // test code

use std::collections::BTreeSet;
use std::time::Duration;

use cosmwasm_std::HexBinary;
use nym_rewards::msg::{EpochRewardsResponse, SignerSetResponse};
use relayer_auditor::{
    AuditError, ChainContext, NotCertified, TrustAnchor, Verdict, VerifyError, audit_copy,
    signer_set_hash, verify_bundle,
};
use relayer_devtools::devnet::{Devnet, DevnetOptions};
use relayer_node::chain::{self, Chain};
use relayer_node::http;
use relayer_node::monitor::Location;
use relayer_node::sample_source::SampleSource;
use relayer_protocol::{OfficialSource, SubmitPolicy};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const TIMEOUT: Duration = Duration::from_secs(40);

fn options(dir: &tempfile::TempDir, nodes: usize) -> DevnetOptions {
    let mut options = DevnetOptions::new(nodes, dir.path().to_path_buf());
    options.epoch_secs = 2;
    options.mixnodes = 50;
    options
}

/// The contract's record of `epoch` and the signer set that certified it.
async fn record_and_set(devnet: &Devnet, epoch: u64) -> (EpochRewardsResponse, SignerSetResponse) {
    let record = chain::epoch_record(devnet.chain.as_ref(), epoch)
        .await
        .unwrap()
        .expect("on chain");
    let set = chain::signer_set(devnet.chain.as_ref(), Some(record.signer_set_version))
        .await
        .unwrap();
    (record, set)
}

/// Every running node holds official data for `epoch` equal to the contract's record.
async fn assert_identical_official_data(devnet: &Devnet, nodes: &[usize], epoch: u64) {
    let record = chain::epoch_record(devnet.chain.as_ref(), epoch)
        .await
        .unwrap()
        .expect("on chain");
    for &i in nodes {
        let official = devnet
            .node(i)
            .unwrap()
            .store
            .official(epoch)
            .unwrap()
            .expect("official data")
            .official;
        assert_eq!(official.rewards, record.rewards, "node{i} epoch {epoch}");
        assert_eq!(
            official.data_hash, record.data_hash,
            "node{i} epoch {epoch}"
        );
        assert_eq!(
            official.signatures, record.signatures,
            "node{i} epoch {epoch}"
        );
        assert_eq!(
            official.submitter,
            record.submitter.as_str(),
            "node{i} epoch {epoch}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staggered_four_nodes_three_epochs() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(options(&dir, 4)).await.unwrap();
    let first = devnet.current_epoch();
    let mut txs = 0;
    for epoch in first..first + 3 {
        let report = devnet.wait_for_final(epoch, TIMEOUT).await.unwrap();
        assert!(report.auditor_verified, "{:?}", report.audit_failures);
        assert_eq!(report.nodes_with_official_data, 4);
        assert!(report.signer_indices.len() >= 3);
        txs += report.txs_submitted;
        assert_identical_official_data(&devnet, &[0, 1, 2, 3], epoch).await;
    }
    assert!(
        txs < 2 * 3,
        "staggered: fewer than 2 txs per epoch on average, got {txs} for 3 epochs"
    );

    // A tampered copy fails the auditor check: one uptime changed, or one signature flipped.
    let (record, set) = record_and_set(&devnet, first).await;
    let honest = devnet
        .node(0)
        .unwrap()
        .store
        .official(first)
        .unwrap()
        .unwrap()
        .official;
    let context = ChainContext {
        chain_id: devnet.chain.chain_id().to_string(),
        contract: devnet.chain.contract().to_string(),
    };
    assert!(matches!(
        audit_copy(&context, &set, &record, &honest),
        Ok(Verdict::Accepted(_))
    ));
    let mut changed = honest.clone();
    changed.rewards[7].uptime_bp = (changed.rewards[7].uptime_bp + 1) % 10_001;
    assert!(matches!(
        audit_copy(&context, &set, &record, &changed),
        Err(AuditError::Verify(VerifyError::NotCertified(
            NotCertified::DataHashMismatch { .. }
        )))
    ));
    let mut flipped = honest.clone();
    let mut bytes = flipped.signatures[0].signature.to_vec();
    bytes[5] ^= 0x10;
    flipped.signatures[0].signature = HexBinary::from(bytes);
    let index = flipped.signatures[0].index;
    assert_eq!(
        audit_copy(&context, &set, &record, &flipped),
        Err(AuditError::Verify(VerifyError::NotCertified(
            NotCertified::InvalidSignature { index }
        )))
    );

    // A proof bundle exported from a node's API is accepted against the chain, only certified
    // against a pinned signer-set hash, and fails once one byte of its data changes.
    let client = http::client();
    let api = devnet.node(1).unwrap().api_url.clone().unwrap();
    let bundle = http::export_bundle(&client, &api, first).await.unwrap();
    let anchor = TrustAnchor::Chain {
        chain: context.clone(),
        signer_set: set.clone(),
        record: Box::new(record.clone()),
    };
    assert!(matches!(
        verify_bundle(&bundle, &anchor),
        Ok(Verdict::Accepted(_))
    ));
    let pinned =
        TrustAnchor::SignerSetHash(signer_set_hash(&context.chain_id, &context.contract, &set));
    assert!(matches!(
        verify_bundle(&bundle, &pinned),
        Ok(Verdict::CertifiedNotProvenAccepted(_))
    ));
    let mut tampered = bundle.clone();
    tampered.rewards[3].uptime_bp ^= 1;
    assert!(verify_bundle(&tampered, &anchor).is_err());
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn race_every_proposer_submits_one_wins_the_others_keep_their_own_aggregate() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir, 4);
    options.policy = SubmitPolicy::Race;
    // Blocks a second apart and 50 ms slots: the lead's transaction waits for a block, so its
    // backup's wait (at most f + 1 = 2 slots) ends with the epoch not on chain yet, and the
    // backup proposes and submits too.
    options.block_interval_ms = 1_000;
    options.submit_slot_ms = 50;
    let devnet = Devnet::start(options).await.unwrap();
    let epoch = devnet.current_epoch();
    let report = devnet.wait_for_final(epoch, TIMEOUT).await.unwrap();
    assert!(report.auditor_verified, "{:?}", report.audit_failures);
    // Race: every certified proposer submits at once (the lead and at least its backup).
    assert!(report.txs_submitted >= 2, "{report:?}");
    let mut accepted = 0;
    for i in 0..4 {
        let node = devnet.node(i).unwrap();
        let stored = node.store.official(epoch).unwrap().unwrap();
        assert_eq!(stored.official.submitter, report.submitter);
        // Only the winner's store says Own; the others checked the accepted block and keep
        // their own aggregate (or fetch the winner's copy if they had none).
        if stored.source == OfficialSource::Own {
            accepted += 1;
        } else {
            assert!(
                matches!(
                    stored.source,
                    OfficialSource::Aggregate | OfficialSource::Peer
                ),
                "node{i}: {:?}",
                stored.source
            );
        }
    }
    assert_eq!(accepted, 1, "exactly one accepted submission");
    let stats: Vec<_> = (0..4)
        .map(|i| devnet.node(i).unwrap().store.submission_stats().unwrap())
        .collect();
    assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), 1);
    assert_eq!(
        stats.iter().map(|s| s.lost).sum::<u64>(),
        report.txs_submitted - 1,
        "the other proposers found the epoch taken"
    );
    assert_identical_official_data(&devnet, &[0, 1, 2, 3], epoch).await;
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_silent_node_of_four_does_not_stop_epochs() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir, 4);
    options.silent = BTreeSet::from([2]);
    let devnet = Devnet::start(options).await.unwrap();
    let first = devnet.current_epoch();
    for epoch in first..first + 2 {
        let report = devnet.wait_for_final(epoch, TIMEOUT).await.unwrap();
        assert!(report.auditor_verified, "{:?}", report.audit_failures);
        assert_eq!(report.nodes_with_official_data, 3);
        assert!(!report.signer_indices.contains(&2));
        assert_identical_official_data(&devnet, &[0, 1, 3], epoch).await;
    }
    devnet.stop().await;
}

/// A rotation while running: node 3 is replaced by node 4 (started with a key in no set) and
/// the threshold rises from 3 to 4. Every epoch across the switch is certified by the version
/// governing it and held by that version's members, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_network_follows_a_rotation() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir, 4);
    options.joining = 1;
    let devnet = Devnet::start(options).await.unwrap();
    let first = devnet.current_epoch();
    devnet.wait_for_final(first, TIMEOUT).await.unwrap();
    let switch = devnet.current_epoch() + 3;
    devnet.rotate(&[0, 1, 2, 4], Some(4), switch).await.unwrap();
    let joining_api = devnet.node(4).unwrap().api_url.clone().unwrap();
    for epoch in first..=switch + 1 {
        let report = devnet.wait_for_final(epoch, TIMEOUT).await.unwrap();
        assert!(
            report.auditor_verified,
            "epoch {epoch}: {:?}",
            report.audit_failures
        );
        let record = chain::epoch_record(devnet.chain.as_ref(), epoch)
            .await
            .unwrap()
            .unwrap();
        let (version, members, min_signers) = if epoch < switch {
            (1, [0, 1, 2, 3], 3)
        } else {
            (2, [0, 1, 2, 4], 4)
        };
        assert_eq!(record.signer_set_version, version, "epoch {epoch}");
        assert!(report.signer_indices.len() >= min_signers, "epoch {epoch}");
        assert_eq!(report.nodes_with_official_data, 4, "epoch {epoch}");
        assert_identical_official_data(&devnet, &members, epoch).await;
    }
    let left = devnet.node(3).unwrap().store.official(switch).unwrap();
    assert!(
        left.is_none(),
        "the replaced node works on no post-switch epoch"
    );
    let joined = http::fetch_status(&http::client(), &joining_api)
        .await
        .unwrap();
    assert_eq!(
        (joined.signer_set_version, joined.member_index),
        (2, Some(3))
    );
    assert_eq!(joined.threshold, 4);
    // Once version 1's epochs leave the catch-up window (3 epochs), node3 is disconnected.
    let retired = switch + 3 + 1;
    devnet.wait_until_stored(retired, TIMEOUT).await.unwrap();
    let node0_api = devnet.node(0).unwrap().api_url.clone().unwrap();
    let connected = async {
        loop {
            let status = http::fetch_status(&http::client(), &node0_api)
                .await
                .unwrap();
            if status.connected_peers == 3 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(TIMEOUT, connected)
        .await
        .expect("node0 keeps only version 2's members connected");
    devnet.stop().await;
}

/// Over emulated wide-area links (five nodes in five regions, 5-150 ms one way, held back in
/// user space), epochs are final on every node and verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_over_wide_area_links_finalises_epochs() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir, 5);
    options.wan = true;
    let devnet = Devnet::start(options).await.unwrap();
    let first = devnet.current_epoch();
    for epoch in first..first + 2 {
        let report = devnet.wait_for_final(epoch, TIMEOUT).await.unwrap();
        assert!(report.auditor_verified, "{:?}", report.audit_failures);
        assert_eq!(report.nodes_with_official_data, 5);
        assert_identical_official_data(&devnet, &[0, 1, 2, 3, 4], epoch).await;
    }
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losers_never_depend_on_the_winner_api() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir, 4);
    options.without_api = BTreeSet::from([0, 1, 2, 3]);
    let devnet = Devnet::start(options).await.unwrap();
    let epoch = devnet.current_epoch();
    let report = devnet.wait_for_final(epoch, TIMEOUT).await.unwrap();
    for i in 0..4 {
        let stored = devnet
            .node(i)
            .unwrap()
            .store
            .official(epoch)
            .unwrap()
            .unwrap();
        // The winner is known from the contract, independently of what the node stored. A
        // loser keeps its own aggregate, or takes the contract's copy if it has none; the
        // winner's API is down, so nothing can come from it.
        if devnet.address(i) == report.submitter {
            assert_eq!(stored.source, OfficialSource::Own, "node{i}");
        } else {
            assert!(
                matches!(
                    stored.source,
                    OfficialSource::Aggregate | OfficialSource::Contract
                ),
                "node{i}: {:?}",
                stored.source
            );
        }
    }
    assert_identical_official_data(&devnet, &[0, 1, 2, 3], epoch).await;
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_restarts_on_its_database_and_catches_up() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::start(options(&dir, 4)).await.unwrap();
    let first = devnet.current_epoch();
    devnet.wait_for_final(first, TIMEOUT).await.unwrap();
    let before = devnet
        .node(1)
        .unwrap()
        .store
        .echo_decisions_since(0)
        .unwrap();
    assert!(!before.is_empty(), "node1 echoed blocks of epoch {first}");

    // Kill node 1 mid-epoch; the others go on without it.
    devnet.kill(1);
    let missed = first + 1;
    devnet.wait_for_final(missed, TIMEOUT).await.unwrap();

    devnet.restart(1).await.unwrap();
    let report = devnet.wait_for_final(missed + 1, TIMEOUT).await.unwrap();
    assert_eq!(report.nodes_with_official_data, 4);
    let node1 = devnet.node(1).unwrap();
    assert!(
        node1.store.official(missed).unwrap().is_some(),
        "caught up the epoch it missed"
    );
    assert!(
        node1.store.official(first).unwrap().is_some(),
        "nothing stored before the crash is lost"
    );
    assert_identical_official_data(&devnet, &[0, 1, 2, 3], missed).await;
    // It was down when that epoch was submitted: its copy cannot be its own.
    let caught_up = node1.store.official(missed).unwrap().unwrap();
    assert_ne!(caught_up.official.submitter, devnet.address(1));
    assert_ne!(caught_up.source, OfficialSource::Own);
    // Echo decisions made before the crash are back after the restart, unchanged.
    let after = node1.store.echo_decisions_since(0).unwrap();
    for decision in &before {
        assert!(after.contains(decision), "decision {decision:?} kept");
    }
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apis_over_https_serve_losers_and_auditors() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir, 4);
    options.tls = true;
    let mut devnet = Devnet::start(options).await.unwrap();
    let first = devnet.current_epoch();
    let report = devnet.wait_for_final(first, TIMEOUT).await.unwrap();
    // The devnet's auditor fetched every node's copy over https, trusting the devnet's CA.
    assert!(report.auditor_verified, "{:?}", report.audit_failures);
    assert_eq!(report.nodes_with_official_data, 4);

    // A node down while an epoch is submitted catches up from the winner's https API.
    devnet.kill(1);
    let missed = first + 1;
    devnet.wait_for_final(missed, TIMEOUT).await.unwrap();
    devnet.restart(1).await.unwrap();
    devnet.wait_for_final(missed + 1, TIMEOUT).await.unwrap();
    let caught_up = devnet
        .node(1)
        .unwrap()
        .store
        .official(missed)
        .unwrap()
        .unwrap();
    assert_eq!(caught_up.source, OfficialSource::Peer);
    assert_identical_official_data(&devnet, &[0, 1, 2, 3], missed).await;

    // The auditor's commands, through the same library calls: with the CA the copy and the
    // proof bundle verify; without it the certificate is refused.
    let api = devnet.node(0).unwrap().api_url.clone().unwrap();
    assert!(api.starts_with("https://"), "{api}");
    let trusting = http::client_with_ca(devnet.ca_file()).unwrap();
    let (record, set) = record_and_set(&devnet, first).await;
    let context = ChainContext {
        chain_id: devnet.chain.chain_id().to_string(),
        contract: devnet.chain.contract().to_string(),
    };
    let copy = http::fetch_epoch(&trusting, &api, first).await.unwrap();
    audit_copy(&context, &set, &record, &copy).unwrap();
    let bundle = http::export_bundle(&trusting, &api, first).await.unwrap();
    let pinned = signer_set_hash(&bundle.chain_id, &bundle.contract, &bundle.signer_set);
    verify_bundle(&bundle, &TrustAnchor::SignerSetHash(pinned)).unwrap();
    let refused = http::fetch_epoch(&http::client(), &api, first)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, http::HttpError::Certificate { reason, .. } if reason.contains("UnknownIssuer")),
        "an unknown CA is refused: {refused:?}"
    );
    let plain = api.replacen("https://", "http://", 1);
    assert!(
        http::fetch_epoch(&trusting, &plain, first).await.is_err(),
        "the API speaks only TLS"
    );
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_own_mixnode_set_and_uptime_reports_from_a_file_and_over_http_become_the_rewards()
{
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // One monitor's mixnode set and report, written to files for nodes 0 and 1 and served
    // over HTTP for nodes 2 and 3. The set is the even ids to 98 and 7 (50 in all, the
    // contract's maximum here); the report names a mixnode outside the set (ignored) and none
    // from 50 on.
    let set: Vec<u32> = (1..=49).map(|i| 2 * i).chain([7]).collect();
    let set_document = serde_json::json!({ "mix_ids": set }).to_string();
    let set_file = dir.path().join("set.json");
    std::fs::write(&set_file, &set_document).unwrap();
    let uptime = |mix_id: u32| ((mix_id * 7) % 101) as u8;
    let mut entries: Vec<serde_json::Value> = (1..50)
        .map(|mix_id| serde_json::json!({"mix_id": mix_id, "uptime_pct": uptime(mix_id)}))
        .collect();
    entries.push(serde_json::json!({"mix_id": 999, "uptime_pct": 1}));
    let report = serde_json::json!({ "uptimes": entries }).to_string();
    let file = dir.path().join("uptime.json");
    std::fs::write(&file, &report).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/uptime.json", listener.local_addr().unwrap());
    let json = |body: String| {
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        })
    };
    let app = axum::Router::new()
        .route("/uptime.json", json(report.clone()))
        .route("/set.json", json(set_document.clone()));
    let set_url = url.replace("/uptime.json", "/set.json");
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut options = options(&dir, 4);
    for i in 0..4 {
        let (set_at, source) = if i < 2 {
            (
                Location::File(set_file.clone()),
                Location::File(file.clone()),
            )
        } else {
            (Location::Url(set_url.clone()), Location::Url(url.clone()))
        };
        options.mixnode_sets.insert(i, set_at);
        options
            .sample_sources
            .insert(i, SampleSource::Monitor(source));
    }
    let devnet = Devnet::start(options).await.unwrap();
    let epoch = devnet.current_epoch() + 1; // a whole epoch of samples
    let report = devnet.wait_for_final(epoch, TIMEOUT).await.unwrap();
    assert!(report.auditor_verified, "{:?}", report.audit_failures);
    let record = chain::epoch_record(devnet.chain.as_ref(), epoch)
        .await
        .unwrap()
        .unwrap();
    let got: Vec<(u32, u16)> = record
        .rewards
        .iter()
        .map(|reward| (reward.mix_id, reward.uptime_bp))
        .collect();
    let mut sorted_set = set.clone();
    sorted_set.sort_unstable();
    let want: Vec<(u32, u16)> = sorted_set
        .iter()
        .map(|&mix_id| {
            // Never reported from 50 on: no sample, no uptime.
            let reported = if mix_id < 50 { uptime(mix_id) } else { 0 };
            (mix_id, u16::from(reported) * 100)
        })
        .collect();
    assert_eq!(
        got, want,
        "every node measured the monitor's set, with the values it reported"
    );
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixnode_set_larger_than_the_contract_accepts_stops_the_start() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let set_file = dir.path().join("set.json");
    std::fs::write(&set_file, r#"{"mix_ids": [10, 20, 30]}"#).unwrap();
    let mut options = options(&dir, 1);
    options.mixnodes = 2; // the contract's max_mixnodes_per_epoch
    options.mixnode_sets.insert(0, Location::File(set_file));
    let refused = Devnet::start(options).await.err().expect("refused");
    assert!(
        matches!(
            refused,
            relayer_devtools::DevError::Start(relayer_node::StartError::SetTooLarge {
                mixnodes: 3,
                max: 2
            })
        ),
        "{refused}"
    );
}
