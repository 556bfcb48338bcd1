//! `cluster.json`: what instantiating the contract needs about a group of members (the admin
//! and each member's entry), as `relayer-dev init-cluster` writes it and `relayer deploy`
//! reads it.

use std::path::{Path, PathBuf};

use nym_rewards::msg::MemberInput;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The manifest's file name in a cluster directory.
pub const MANIFEST_FILE: &str = "cluster.json";

/// `cluster.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterManifest {
    /// Address of the admin account (key in `keys/admin.secp256k1`).
    pub admin: String,
    /// The signer set, in index order.
    pub members: Vec<MemberInput>,
    /// Nodes with keys and configs that no signer set names yet, for a later rotation to add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joining: Vec<MemberInput>,
    /// Node config files, members in index order then the joining nodes, relative to the
    /// directory.
    pub configs: Vec<PathBuf>,
}

/// A manifest that cannot be read or written.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a manifest.
    #[error("{path} is not a cluster manifest: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Reads `cluster.json` of the cluster directory `dir`.
pub fn read_manifest(dir: &Path) -> Result<ClusterManifest, ManifestError> {
    let path = dir.join(MANIFEST_FILE);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io {
        path: shown.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ManifestError::Parse {
        path: shown,
        source,
    })
}

/// Writes `cluster.json` into the cluster directory `dir`.
pub fn write_manifest(dir: &Path, manifest: &ClusterManifest) -> Result<(), ManifestError> {
    let path = dir.join(MANIFEST_FILE);
    let shown = path.display().to_string();
    let text = serde_json::to_string_pretty(manifest).map_err(|source| ManifestError::Parse {
        path: shown.clone(),
        source,
    })?;
    std::fs::write(&path, text).map_err(|source| ManifestError::Io {
        path: shown,
        source,
    })
}
