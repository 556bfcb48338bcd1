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
//! does not parse, is larger than [`MAX_REPORT_BYTES`], names a mixnode twice or holds a value
//! out of range is refused whole (logged at warn); nothing of it is stored.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use relayer_store::Sample;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::http::{self, HttpError};

/// Largest report read (20,000 mixnodes take about 0.7 MB).
pub const MAX_REPORT_BYTES: u64 = 8 << 20;

/// Where samples come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SampleSource {
    /// The artificial generator.
    #[default]
    Generator,
    /// A report file (`file:PATH`; relative to the config's folder).
    File(PathBuf),
    /// A report served at an `http://` or `https://` URL.
    Url(String),
}

/// Why a report was refused.
#[derive(Debug, Error)]
pub enum SourceError {
    /// Not `generator`, `file:PATH` or an http(s) URL.
    #[error("sampling.source must be \"generator\", \"file:PATH\" or an http(s) URL, got {0:?}")]
    Spec(String),
    /// The file cannot be read, or is too large.
    #[error("reading {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The endpoint did not answer with a report.
    #[error("{0}")]
    Http(#[from] HttpError),
    /// Not a report.
    #[error("not an uptime report: {0}")]
    Format(String),
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
            Ok(Self::Generator)
        } else if let Some(path) = text.strip_prefix("file:").filter(|path| !path.is_empty()) {
            Ok(Self::File(path.into()))
        } else if http::is_http_url(text) {
            Ok(Self::Url(text.to_string()))
        } else {
            Err(SourceError::Spec(text.to_string()))
        }
    }
}

impl fmt::Display for SampleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Generator => write!(f, "generator"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Url(url) => write!(f, "{url}"),
        }
    }
}

impl Serialize for SampleSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SampleSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

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

/// Reads the report of a file or URL source (`None` for the generator).
pub async fn read_report(
    source: &SampleSource,
    client: &reqwest::Client,
) -> Option<Result<UptimeReport, SourceError>> {
    Some(match source {
        SampleSource::Generator => return None,
        SampleSource::File(path) => read_file(path.clone()).await,
        SampleSource::Url(url) => http::fetch_json(client, url).await.map_err(Into::into),
    })
}

async fn read_file(path: PathBuf) -> Result<UptimeReport, SourceError> {
    let read = tokio::task::spawn_blocking(move || {
        let fail = |reason: String| SourceError::File {
            path: path.clone(),
            reason,
        };
        let size = std::fs::metadata(&path)
            .map_err(|err| fail(err.to_string()))?
            .len();
        if size > MAX_REPORT_BYTES {
            return Err(fail(format!("larger than {MAX_REPORT_BYTES} bytes")));
        }
        let bytes = std::fs::read(&path).map_err(|err| fail(err.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|err| SourceError::Format(err.to_string()))
    })
    .await;
    read.map_err(|err| SourceError::Format(format!("reading task failed: {err}")))?
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
