//! Node counters and the Prometheus text exposition of `/metrics`.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use relayer_protocol::ProtocolMetrics;

/// Upper bounds (seconds) of the epoch latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Counters a node updates as it works.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Epochs with official data stored.
    pub epochs_final: AtomicU64,
    /// Submissions attempted.
    pub submissions_attempted: AtomicU64,
    /// Submissions that stored the epoch.
    pub submissions_accepted: AtomicU64,
    /// Submissions that found the epoch taken or failed.
    pub submissions_rejected: AtomicU64,
    /// Submissions that found another member's accepted first.
    pub submissions_lost: AtomicU64,
    /// Submissions that stored nothing and found the epoch still open.
    pub submissions_failed: AtomicU64,
    /// Peer messages sent.
    pub messages_sent: AtomicU64,
    /// Bytes of peer messages sent.
    pub bytes_sent: AtomicU64,
    /// Peer messages received.
    pub messages_received: AtomicU64,
    /// Bytes of peer messages received.
    pub bytes_received: AtomicU64,
    /// Inbound messages dropped (undecodable, over budget, queue full, non-member).
    pub messages_dropped: AtomicU64,
    /// Outbound batches not delivered (timeout, closed connection, failed dial).
    pub batches_failed: AtomicU64,
    /// Chain transactions sent.
    pub chain_txs: AtomicU64,
    protocol: Mutex<ProtocolMetrics>,
    latency: Mutex<Histogram>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl NodeMetrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Publishes the protocol's own counters.
    pub fn set_protocol(&self, metrics: &ProtocolMetrics) {
        *self.protocol.lock().unwrap_or_else(|p| p.into_inner()) = metrics.clone();
    }

    /// The protocol counters last published.
    pub fn protocol(&self) -> ProtocolMetrics {
        self.protocol
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records the latency from an epoch's end to its official data being stored.
    pub fn observe_latency(&self, seconds: f64) {
        let mut histogram = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "relayer_epochs_final_total",
                "Epochs with official data stored",
                &self.epochs_final,
            ),
            (
                "relayer_submissions_attempted_total",
                "Chain submissions attempted",
                &self.submissions_attempted,
            ),
            (
                "relayer_submissions_accepted_total",
                "Submissions that stored the epoch",
                &self.submissions_accepted,
            ),
            (
                "relayer_submissions_rejected_total",
                "Submissions that lost or failed",
                &self.submissions_rejected,
            ),
            (
                "relayer_messages_sent_total",
                "Peer messages sent",
                &self.messages_sent,
            ),
            (
                "relayer_bytes_sent_total",
                "Bytes of peer messages sent",
                &self.bytes_sent,
            ),
            (
                "relayer_messages_received_total",
                "Peer messages received",
                &self.messages_received,
            ),
            (
                "relayer_bytes_received_total",
                "Bytes of peer messages received",
                &self.bytes_received,
            ),
            (
                "relayer_messages_dropped_total",
                "Inbound messages dropped",
                &self.messages_dropped,
            ),
            (
                "relayer_batches_failed_total",
                "Outbound message batches not delivered",
                &self.batches_failed,
            ),
            (
                "relayer_chain_txs_total",
                "Chain transactions sent",
                &self.chain_txs,
            ),
        ];
        for (name, help, counter) in counters {
            counter_line(&mut out, name, help, Self::get(counter));
        }
        let protocol = self.protocol();
        let protocol_counters = [
            (
                "relayer_signature_verifications_total",
                "ed25519 verifications",
                protocol.signature_verifications,
            ),
            (
                "relayer_signatures_created_total",
                "ed25519 signatures made",
                protocol.signatures_created,
            ),
            (
                "relayer_observations_accepted_total",
                "Observations accepted",
                protocol.observations_accepted,
            ),
            (
                "relayer_blocks_proposed_total",
                "Blocks proposed",
                protocol.blocks_proposed,
            ),
            (
                "relayer_echoes_sent_total",
                "Echoes sent",
                protocol.echoes_sent,
            ),
            (
                "relayer_certificates_total",
                "Certificates formed",
                protocol.certificates,
            ),
            (
                "relayer_aggregates_computed_total",
                "Median aggregates computed",
                protocol.aggregates_computed,
            ),
            (
                "relayer_protocol_rejections_total",
                "Protocol inputs refused",
                protocol.rejections,
            ),
        ];
        for (name, help, value) in protocol_counters {
            counter_line(&mut out, name, help, value);
        }
        let name = "relayer_submission_outcomes_total";
        let _ = writeln!(
            out,
            "# HELP {name} Submissions by outcome\n# TYPE {name} counter"
        );
        for (outcome, counter) in [
            ("accepted", &self.submissions_accepted),
            ("lost", &self.submissions_lost),
            ("failed", &self.submissions_failed),
        ] {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{outcome}\"}} {}",
                Self::get(counter)
            );
        }
        let histogram = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let name = "relayer_epoch_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Epoch end to official data stored\n# TYPE {name} histogram"
        );
        for (count, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", histogram.count);
        let _ = writeln!(out, "{name}_sum {}", histogram.sum);
        let _ = writeln!(out, "{name}_count {}", histogram.count);
        out
    }
}

/// Appends a gauge in the Prometheus text format.
pub fn gauge_line(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn counter_line(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = NodeMetrics::default();
        NodeMetrics::inc(&metrics.epochs_final);
        metrics.observe_latency(0.07);
        metrics.observe_latency(3.0);
        let text = metrics.render();
        assert!(text.contains("relayer_epochs_final_total 1\n"));
        assert!(text.contains("relayer_epoch_latency_seconds_bucket{le=\"0.05\"} 0\n"));
        assert!(text.contains("relayer_epoch_latency_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("relayer_epoch_latency_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("relayer_epoch_latency_seconds_count 2\n"));
        NodeMetrics::inc(&metrics.submissions_lost);
        let text = metrics.render();
        assert!(text.contains("relayer_submission_outcomes_total{outcome=\"lost\"} 1\n"));
        assert!(text.contains("relayer_submission_outcomes_total{outcome=\"failed\"} 0\n"));
        let mut gauges = String::new();
        gauge_line(&mut gauges, "relayer_chain_height", "Height", 42.0);
        assert!(gauges.ends_with("# TYPE relayer_chain_height gauge\nrelayer_chain_height 42\n"));
    }
}
