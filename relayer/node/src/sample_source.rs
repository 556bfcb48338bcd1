//! Where uptime samples come from: the built-in generator (the default), or an operator's own
//! network monitor, which writes a report to a file or serves it over HTTP(S). The report is
//! read once per sampling interval, in this JSON format:
//!
//! ```json
//! {"uptimes": [{"mix_id": 1, "uptime_pct": 97}, {"mix_id": 2, "uptime_pct": 40}]}
//! ```
//!
//! `uptime_pct` is a whole percent, 0 to 100. Mixnodes outside the node's mixnode set are
//! ignored, and a mixnode missing from a report gets no sample that interval (one with no
//! sample in a whole epoch has uptime 0 for it). A report that
//! does not parse, is larger than [`crate::monitor::MAX_DOCUMENT_BYTES`], names a mixnode twice or holds a value
//! out of range is refused whole (logged at warn); nothing of it is stored.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use relayer_store::Sample;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::monitor::{Location, MonitorError};

/// Where samples come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SampleSource {
    /// The artificial generator.
    #[default]
    Generator,
    /// Reports an operator's monitor writes to a file or serves over HTTP(S).
    Monitor(Location),
}

/// Why a report was refused.
#[derive(Debug, Error)]
pub enum SourceError {
    /// Not `generator`, `file:PATH` or an http(s) URL.
    #[error("sampling.source must be \"generator\", \"file:PATH\" or an http(s) URL, got {0:?}")]
    Spec(String),
    /// The report could not be read or is not a report.
    #[error("{0}")]
    Read(#[from] MonitorError),
    /// A mixnode named twice.
    #[error("mixnode {0} appears twice in the report")]
    Duplicate(u32),
    /// An uptime above 100 %.
    #[error("mixnode {mix_id}: uptime_pct {value} is above 100")]
    Range {
        /// The mixnode.
        mix_id: u32,
        /// The value.
        value: u8,
    },
}

impl FromStr for SampleSource {
    type Err = SourceError;

    fn from_str(text: &str) -> Result<Self, SourceError> {
        if text == "generator" {
            return Ok(Self::Generator);
        }
        text.parse()
            .map(Self::Monitor)
            .map_err(|_| SourceError::Spec(text.to_string()))
    }
}

impl fmt::Display for SampleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Generator => write!(f, "generator"),
            Self::Monitor(location) => write!(f, "{location}"),
        }
    }
}

crate::text_serde::serde_as_text!(SampleSource);

/// An operator's uptime report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UptimeReport {
    /// One entry per measured mixnode.
    pub uptimes: Vec<MixnodeUptime>,
}

/// One mixnode's uptime in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixnodeUptime {
    /// The mixnode.
    pub mix_id: u32,
    /// Whole percent, 0 to 100.
    pub uptime_pct: u8,
}

/// Reads the report of a monitor source (`None` for the generator).
pub async fn read_report(
    source: &SampleSource,
    client: &reqwest::Client,
) -> Option<Result<UptimeReport, SourceError>> {
    match source {
        SampleSource::Generator => None,
        SampleSource::Monitor(location) => Some(location.read(client).await.map_err(Into::into)),
    }
}

/// The samples a report gives for `mixnodes` at `at_ms` in `epoch`; the whole report is
/// refused when an entry is malformed.
pub fn samples_from(
    report: &UptimeReport,
    mixnodes: &[u32],
    epoch: u64,
    at_ms: u64,
) -> Result<Vec<Sample>, SourceError> {
    let mut seen = BTreeSet::new();
    for entry in &report.uptimes {
        if !seen.insert(entry.mix_id) {
            return Err(SourceError::Duplicate(entry.mix_id));
        }
        if entry.uptime_pct > 100 {
            return Err(SourceError::Range {
                mix_id: entry.mix_id,
                value: entry.uptime_pct,
            });
        }
    }
    Ok(report
        .uptimes
        .iter()
        .filter(|entry| mixnodes.binary_search(&entry.mix_id).is_ok())
        .map(|entry| Sample {
            epoch,
            mix_id: entry.mix_id,
            at_ms,
            uptime_pct: entry.uptime_pct,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(entries: &[(u32, u8)]) -> UptimeReport {
        UptimeReport {
            uptimes: entries
                .iter()
                .map(|&(mix_id, uptime_pct)| MixnodeUptime { mix_id, uptime_pct })
                .collect(),
        }
    }

    #[test]
    fn sources_parse_and_print_back() {
        for text in [
            "generator",
            "file:/var/lib/monitor/uptime.json",
            "https://mon:8080/u",
        ] {
            let source: SampleSource = text.parse().unwrap();
            assert_eq!(source.to_string(), text);
        }
        for bad in ["", "file:", "ftp://x", "monitor.json", "https://"] {
            assert!(bad.parse::<SampleSource>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_report_gives_samples_for_the_set_only() {
        let samples =
            samples_from(&report(&[(2, 90), (9, 10), (1, 100)]), &[1, 2, 3], 7, 70).unwrap();
        let got: Vec<(u32, u8)> = samples.iter().map(|s| (s.mix_id, s.uptime_pct)).collect();
        assert_eq!(
            got,
            vec![(2, 90), (1, 100)],
            "9 is not in the set; 3 has none"
        );
        assert!(samples.iter().all(|s| s.epoch == 7 && s.at_ms == 70));
    }

    #[test]
    fn malformed_reports_are_refused_whole() {
        assert!(matches!(
            samples_from(&report(&[(1, 50), (1, 60)]), &[1], 0, 0),
            Err(SourceError::Duplicate(1))
        ));
        assert!(matches!(
            samples_from(&report(&[(1, 50), (2, 101)]), &[1, 2], 0, 0),
            Err(SourceError::Range {
                mix_id: 2,
                value: 101
            })
        ));
        for text in [
            r#"{"uptimes": [{"mix_id": 1, "uptime_pct": 300}]}"#,
            r#"{"uptimes": [{"mix_id": -1, "uptime_pct": 3}]}"#,
            r#"{"uptimes": [{"mix_id": 1, "uptime": 3}]}"#,
            r#"[1, 2]"#,
        ] {
            assert!(
                serde_json::from_str::<UptimeReport>(text).is_err(),
                "{text}"
            );
        }
    }
}
