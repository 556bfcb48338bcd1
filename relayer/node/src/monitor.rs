//! Documents an operator's network monitor publishes for the node: where one lives (a file or
//! an http(s) URL, [`Location`]) and how it is read (bounded in size and time, JSON). The
//! uptime reports ([`crate::sample_source`]) and the mixnode set ([`crate::mixnode_set`]) are
//! both read this way.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::http::{self, HttpError};

/// Largest document read from a file (20,000 mixnodes take about 0.7 MB); an HTTP answer is
/// bounded by [`http::MAX_RESPONSE_BYTES`].
pub const MAX_DOCUMENT_BYTES: u64 = 8 << 20;

/// Where a monitor's document lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file (`file:PATH`; relative to the config's folder).
    File(PathBuf),
    /// An `http://` or `https://` URL.
    Url(String),
}

/// Why a document could not be read.
#[derive(Debug, Error)]
pub enum MonitorError {
    /// Neither `file:PATH` nor an http(s) URL.
    #[error("expected \"file:PATH\" or an http(s) URL, got {0:?}")]
    Spec(String),
    /// The file cannot be read, or is too large.
    #[error("reading {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The endpoint did not answer with a document.
    #[error("{0}")]
    Http(#[from] HttpError),
    /// Not the expected JSON.
    #[error("{location}: not the documented format: {reason}")]
    Format {
        /// Where it was read.
        location: String,
        /// What the parser said.
        reason: String,
    },
}

impl Location {
    /// Makes a relative file path relative to `base`.
    pub fn resolve(&mut self, base: &Path) {
        if let Self::File(path) = self
            && path.is_relative()
        {
            *path = base.join(&*path);
        }
    }

    /// Reads and decodes the document.
    pub async fn read<T: DeserializeOwned + Send + 'static>(
        &self,
        client: &reqwest::Client,
    ) -> Result<T, MonitorError> {
        let decoded = match self {
            Self::File(path) => return read_file(path.clone()).await,
            Self::Url(url) => http::fetch_json::<T>(client, url).await,
        };
        decoded.map_err(|err| match err {
            HttpError::Decode { reason, .. } => MonitorError::Format {
                location: self.to_string(),
                reason,
            },
            other => MonitorError::Http(other),
        })
    }
}

async fn read_file<T: DeserializeOwned + Send + 'static>(path: PathBuf) -> Result<T, MonitorError> {
    let read = tokio::task::spawn_blocking(move || {
        let fail = |reason: String| MonitorError::File {
            path: path.clone(),
            reason,
        };
        let file = std::fs::File::open(&path).map_err(|err| fail(err.to_string()))?;
        let kind = file.metadata().map_err(|err| fail(err.to_string()))?;
        if !kind.is_file() {
            return Err(fail("not a regular file".into()));
        }
        // Read through a limit, not by the size seen before: the file may grow meanwhile.
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_DOCUMENT_BYTES + 1),
            &mut bytes,
        )
        .map_err(|err| fail(err.to_string()))?;
        if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(fail(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        serde_json::from_slice(&bytes).map_err(|err| MonitorError::Format {
            location: format!("file:{}", path.display()),
            reason: err.to_string(),
        })
    })
    .await;
    read.map_err(|err| MonitorError::File {
        path: PathBuf::new(),
        reason: format!("reading task failed: {err}"),
    })?
}

impl FromStr for Location {
    type Err = MonitorError;

    fn from_str(text: &str) -> Result<Self, MonitorError> {
        if let Some(path) = text.strip_prefix("file:").filter(|path| !path.is_empty()) {
            Ok(Self::File(path.into()))
        } else if http::is_http_url(text) {
            Ok(Self::Url(text.to_string()))
        } else {
            Err(MonitorError::Spec(text.to_string()))
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Url(url) => write!(f, "{url}"),
        }
    }
}

crate::text_serde::serde_as_text!(Location);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_print_back() {
        for text in ["file:/var/lib/monitor/uptime.json", "https://mon:8080/u"] {
            let location: Location = text.parse().unwrap();
            assert_eq!(location.to_string(), text);
        }
        for bad in [
            "",
            "file:",
            "ftp://x",
            "monitor.json",
            "https://",
            "generator",
        ] {
            assert!(bad.parse::<Location>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn relative_files_resolve_against_the_config_folder() {
        let mut relative: Location = "file:mon/set.json".parse().unwrap();
        relative.resolve(Path::new("/etc/relayer"));
        assert_eq!(relative.to_string(), "file:/etc/relayer/mon/set.json");
        let mut url: Location = "http://mon/set.json".parse().unwrap();
        url.resolve(Path::new("/etc/relayer"));
        assert_eq!(url.to_string(), "http://mon/set.json");
    }

    #[tokio::test]
    async fn files_too_large_or_malformed_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let client = reqwest::Client::new();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, b"{not json").unwrap();
        let err = Location::File(bad)
            .read::<serde_json::Value>(&client)
            .await
            .unwrap_err();
        assert!(matches!(err, MonitorError::Format { .. }), "{err}");
        let big = dir.path().join("big.json");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_DOCUMENT_BYTES + 1).unwrap();
        let err = Location::File(big)
            .read::<serde_json::Value>(&client)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        let device = Location::File("/dev/zero".into())
            .read::<serde_json::Value>(&client)
            .await
            .unwrap_err();
        assert!(
            device.to_string().contains("not a regular file"),
            "{device}"
        );
        let missing = Location::File(dir.path().join("none.json"))
            .read::<serde_json::Value>(&client)
            .await
            .unwrap_err();
        assert!(matches!(missing, MonitorError::File { .. }), "{missing}");
    }
}
