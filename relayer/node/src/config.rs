//! The node's TOML configuration, validated with clear errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use relayer_protocol::SubmitPolicy;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A node's configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Identity, addresses and files.
    pub node: NodeSection,
    /// Which chain and contract.
    pub chain: ChainSection,
    /// The artificial uptime generator.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Protocol timing and thresholds.
    #[serde(default)]
    pub protocol: ProtocolSection,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// A name for logs.
    pub name: String,
    /// Directory of the SQLite database (relative paths are relative to the config file).
    pub data_dir: PathBuf,
    /// ed25519 secret (hex, mode 0600).
    pub ed25519_key_file: PathBuf,
    /// secp256k1 chain account secret (hex, mode 0600).
    pub chain_key_file: PathBuf,
    /// libp2p listen address, e.g. `/ip4/127.0.0.1/tcp/9000`.
    pub p2p_listen: String,
    /// HTTP API listen address, e.g. `127.0.0.1:8000`.
    pub http_listen: SocketAddr,
}

/// `[chain]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// CometBFT RPC of a wasmd node, e.g. `http://127.0.0.1:26657`.
    pub rpc: String,
    /// Chain id.
    pub chain_id: String,
    /// The rewards contract (filled in by `relayer deploy`).
    #[serde(default)]
    pub contract: String,
    /// Gas price, e.g. `0.025stake` (0 on a local chain).
    #[serde(default = "default_gas_price")]
    pub gas_price: String,
}

fn default_gas_price() -> String {
    "0stake".into()
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Mixnodes measured: ids `1..=mixnodes`.
    pub mixnodes: u32,
    /// Sampling interval in milliseconds (100 or more).
    pub interval_ms: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// How many epochs of raw samples to keep.
    pub retention_epochs: u64,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            mixnodes: 100,
            interval_ms: 1_000,
            seed: 1,
            retention_epochs: 24,
        }
    }
}

/// `[protocol]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolSection {
    /// Observations needed for a block (k); default n - f.
    pub observation_threshold: Option<usize>,
    /// Wait for more observations once k are held.
    pub observation_grace_ms: u64,
    /// Spacing of staggered submission slots; at least the time a tx needs to be included.
    pub submit_slot_ms: u64,
    /// Re-send interval for unfinished epochs.
    pub resend_interval_ms: u64,
    /// `staggered` or `race`.
    pub policy: SubmitPolicy,
    /// Past epochs finished after a restart or partition.
    pub catch_up_epochs: u64,
}

impl Default for ProtocolSection {
    fn default() -> Self {
        Self {
            observation_threshold: None,
            observation_grace_ms: 500,
            submit_slot_ms: 6_000,
            resend_interval_ms: 2_000,
            policy: SubmitPolicy::Staggered,
            catch_up_epochs: 3,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// Cannot read the file.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid TOML for this schema.
    #[error("config {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// A value out of range.
    #[error("config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl NodeConfig {
    /// Reads, parses and validates a config file; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: shown.clone(),
            message,
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: shown,
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for file in [
            &mut config.node.data_dir,
            &mut config.node.ed25519_key_file,
            &mut config.node.chain_key_file,
        ] {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(config)
    }

    /// Parses TOML.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|err| err.to_string())
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), String> {
        if self.metrics.mixnodes == 0 || self.metrics.mixnodes > 20_000 {
            return Err(format!(
                "metrics.mixnodes must be 1..=20000, got {}",
                self.metrics.mixnodes
            ));
        }
        if self.metrics.interval_ms < 100 {
            return Err(format!(
                "metrics.interval_ms must be at least 100, got {}",
                self.metrics.interval_ms
            ));
        }
        if self.protocol.resend_interval_ms == 0 {
            return Err("protocol.resend_interval_ms must be positive".into());
        }
        if !self.node.p2p_listen.starts_with('/') {
            return Err(format!(
                "node.p2p_listen must be a multiaddress, got {:?}",
                self.node.p2p_listen
            ));
        }
        if !(self.chain.rpc.starts_with("http://") || self.chain.rpc.starts_with("https://")) {
            return Err(format!(
                "chain.rpc must be an http(s) URL, got {:?}",
                self.chain.rpc
            ));
        }
        Ok(())
    }

    /// Serializes to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[node]
name = "node0"
data_dir = "data/node0"
ed25519_key_file = "keys/node0.ed25519"
chain_key_file = "keys/node0.secp256k1"
p2p_listen = "/ip4/127.0.0.1/tcp/9000"
http_listen = "127.0.0.1:8000"

[chain]
rpc = "http://127.0.0.1:26657"
chain_id = "testing"
contract = "wasm1abc"

[metrics]
mixnodes = 50
interval_ms = 200

[protocol]
policy = "race"
"#;

    #[test]
    fn parses_with_defaults() {
        let config = NodeConfig::parse(GOOD).unwrap();
        config.validate().unwrap();
        assert_eq!(config.metrics.mixnodes, 50);
        assert_eq!(config.metrics.retention_epochs, 24);
        assert_eq!(config.protocol.policy, SubmitPolicy::Race);
        assert_eq!(config.protocol.catch_up_epochs, 3);
        assert_eq!(NodeConfig::parse(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn bad_configs_get_clear_errors() {
        let unknown = GOOD.replace("policy = \"race\"", "polcy = \"race\"");
        assert!(
            NodeConfig::parse(&unknown)
                .unwrap_err()
                .contains("unknown field")
        );
        let bad_policy = GOOD.replace("\"race\"", "\"fastest\"");
        assert!(NodeConfig::parse(&bad_policy).is_err());
        let fast =
            NodeConfig::parse(&GOOD.replace("interval_ms = 200", "interval_ms = 5")).unwrap();
        assert!(fast.validate().unwrap_err().contains("at least 100"));
        let bad_addr = GOOD.replace(
            "http_listen = \"127.0.0.1:8000\"",
            "http_listen = \"nowhere\"",
        );
        assert!(NodeConfig::parse(&bad_addr).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            if let Ok(config) = NodeConfig::parse(&text) {
                let _ = config.validate();
            }
        }

        #[test]
        fn corrupted_configs_get_errors_not_panics(position in 0usize..GOOD.len(), byte in proptest::prelude::any::<u8>()) {
            let mut bytes = GOOD.as_bytes().to_vec();
            bytes[position] = byte;
            if let Ok(text) = String::from_utf8(bytes)
                && let Ok(config) = NodeConfig::parse(&text)
            {
                let _ = config.validate();
            }
        }
    }
}
