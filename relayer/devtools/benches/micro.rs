//! Micro benchmarks (criterion) of the node's hot paths: SQLite sample ingestion, epoch
//! averaging for M = 10000, a protocol write on synchronous = NORMAL and FULL, lower-median aggregation, the canonical digest, and observation
//! and certificate verification.
//!
//! Run: `make bench-micro` (or `cargo bench -p relayer-devtools --bench micro`). Under
//! `cargo test` every benchmark runs once as a smoke test.

#![allow(clippy::unwrap_used, missing_docs)] // benchmark code

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nym_rewards::digest::{DigestContext, data_hash, epoch_digest};
use nym_rewards::msg::{EpochClock, MixnodeReward};
use relayer_protocol::{
    ChainContext, Keypair, ProtocolConfig, SignatureCheck, Signer, SignerSet, StoredDecision,
    SubmitPolicy, echo_digest, lower_median, observation_digest, verify_signature,
};
use relayer_store::{Sample, Store};

const M: u32 = 10_000;

fn values(seed: u32, mixnodes: u32) -> Vec<MixnodeReward> {
    (1..=mixnodes)
        .map(|mix_id| MixnodeReward {
            mix_id,
            uptime_bp: ((mix_id * 7919 + seed * 104_729) % 10_001) as u16,
        })
        .collect()
}

fn config(n: usize, mixnodes: u32) -> (ProtocolConfig, Vec<Keypair>) {
    let keys: Vec<Keypair> = (0..n)
        .map(|i| Keypair::from_seed(&[i as u8 + 1; 32]))
        .collect();
    let config = ProtocolConfig {
        chain: ChainContext {
            chain_id: "bench".into(),
            contract: "n1contract".into(),
        },
        signer_set: SignerSet {
            version: 1,
            effective_from_epoch: 0,
            threshold: relayer_protocol::default_threshold(n),
            members: keys
                .iter()
                .enumerate()
                .map(|(i, key)| Signer {
                    key: key.public(),
                    address: format!("n1member{i}"),
                })
                .collect(),
        },
        observation_threshold: relayer_protocol::default_observation_threshold(n),
        mixnodes: (1..=mixnodes).collect(),
        clock: EpochClock {
            genesis_time: 0,
            epoch_length_secs: 60,
        },
        observation_grace_ms: 200,
        submit_slot_ms: 300,
        resend_interval_ms: 1_000,
        policy: SubmitPolicy::Staggered,
        catch_up_epochs: 3,
    };
    (config, keys)
}

fn samples(epoch: u64, round: u64, mixnodes: u32) -> Vec<Sample> {
    (1..=mixnodes)
        .map(|mix_id| Sample {
            epoch,
            mix_id,
            at_ms: round * 1_000,
            uptime_pct: ((mix_id as u64 * 31 + round) % 101) as u8,
        })
        .collect()
}

fn sqlite(c: &mut Criterion) {
    let mut group = c.benchmark_group("sqlite");
    group.sample_size(10);
    let batch = 1_000;
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("ingest 1000 samples (one transaction)", |b| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("bench.sqlite")).expect("store");
        let mut round = 0;
        b.iter(|| {
            round += 1;
            store
                .insert_samples(&samples(round / 20, round, batch))
                .expect("insert");
        });
    });
    group.throughput(Throughput::Elements(M as u64));
    group.bench_function("epoch averages, M = 10000", |b| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("bench.sqlite")).expect("store");
        for round in 0..3 {
            store.insert_samples(&samples(1, round, M)).expect("insert");
        }
        let mixnodes: Vec<u32> = (1..=M).collect();
        b.iter(|| store.epoch_averages(1, &mixnodes).expect("averages"));
    });
    // The protocol connection commits with synchronous = FULL (the echo decisions and own
    // observations must survive a power loss); the same write on NORMAL beside it, one per
    // iteration, each its own transaction, as the driver makes them.
    group.throughput(Throughput::Elements(1));
    for durable in [false, true] {
        let name = if durable { "FULL" } else { "NORMAL" };
        group.bench_function(format!("echo decision write, synchronous = {name}"), |b| {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Store::open(&dir.path().join("bench.sqlite")).expect("store");
            if durable {
                store.make_durable().expect("durable");
            }
            let mut epoch = 0;
            b.iter(|| {
                epoch += 1;
                store
                    .save_echo_decision(&StoredDecision {
                        epoch,
                        signer_set_version: 1,
                        proposer: 0,
                        data_hash: [7; 32],
                    })
                    .expect("decision")
            });
        });
    }
    group.finish();
}

fn aggregation(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregate");
    for n in [4usize, 16, 64, 128] {
        let observations: Vec<Vec<MixnodeReward>> = (0..n as u32).map(|i| values(i, M)).collect();
        let columns: Vec<&[MixnodeReward]> = observations.iter().map(Vec::as_slice).collect();
        group.throughput(Throughput::Elements(M as u64));
        group.bench_function(format!("lower median, n = {n}, M = 10000"), |b| {
            b.iter(|| lower_median(&columns).expect("median"))
        });
    }
    let rewards = values(1, M);
    group.bench_function("data hash + epoch digest, M = 10000", |b| {
        b.iter(|| {
            let hash = data_hash(&rewards);
            let context = DigestContext {
                chain_id: "bench",
                contract_addr: "n1contract",
                signer_set_version: 1,
                epoch: 7,
            };
            epoch_digest(&context, &hash).expect("digest")
        })
    });
    group.finish();
}

fn verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    let mixnodes = 1_000;
    let (config, keys) = config(64, mixnodes);
    let observation = values(3, mixnodes);
    let signature = keys[0].sign(&observation_digest(&config, 5, &observation));
    group.bench_function("observation (digest + ed25519), M = 1000", |b| {
        b.iter(|| {
            let digest = observation_digest(&config, 5, &observation);
            assert_eq!(
                verify_signature(&digest, &signature, config.signer_set.key(0).unwrap()),
                SignatureCheck::Valid
            );
        })
    });
    let hash = data_hash(&observation);
    let digest = echo_digest(&config, 5, &hash);
    let signatures: Vec<Vec<u8>> = keys
        .iter()
        .take(config.threshold())
        .map(|key| key.sign(&digest))
        .collect();
    group.bench_function("certificate, n = 64 (43 signatures)", |b| {
        b.iter_batched(
            || signatures.clone(),
            |signatures| {
                for (i, signature) in signatures.iter().enumerate() {
                    assert_eq!(
                        verify_signature(
                            &digest,
                            signature,
                            config.signer_set.key(i as u16).unwrap()
                        ),
                        SignatureCheck::Valid
                    );
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, sqlite, aggregation, verification);
criterion_main!(benches);
