//! The node's TOML configuration, validated with clear errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use relayer_protocol::SubmitPolicy;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::api::ApiLimits;
use crate::chain::fees::{
    DEFAULT_GAS_MULTIPLIER, DEFAULT_MAX_GAS, FeeError, FeeSettings, GasPrice,
};
use crate::keys::{DEFAULT_ACCOUNT_PREFIX, check_prefix};
use crate::monitor::Location;
use crate::sample_source::SampleSource;
use nym_rewards::rules;

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
    pub sampling: SamplingSection,
    /// Protocol timing and thresholds.
    #[serde(default)]
    pub protocol: ProtocolSection,
    /// Limits of the public HTTP API.
    #[serde(default)]
    pub api: ApiLimits,
    /// https for the API, and the CA trusted beyond the system's roots.
    #[serde(default)]
    pub tls: TlsSection,
}

/// `[tls]`: with `cert_file` and `key_file` the API is served over https (and the node's
/// entry in the signer set should name an `https://` URL); `extra_ca_file` is trusted, beside
/// the system's roots, when fetching from other members' APIs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain of the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the API (mode 0600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates trusted beyond the system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_ca_file: Option<PathBuf>,
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
    /// Serve `/metrics` here instead of on the API, e.g. `127.0.0.1:9100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// The browser auditor's folder (`make auditor-web` writes `artifacts/auditor`), served
    /// at `/auditor/` for the dashboard's verify action; without it the dashboard says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditor_dir: Option<PathBuf>,
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
    /// Bech32 prefix of account addresses: `wasm` on wasmd, `n` on Nyx.
    #[serde(default = "default_account_prefix")]
    pub account_prefix: String,
    /// Price per unit of gas in the fee denom, e.g. `0.025unym` (`0stake` on a local chain).
    #[serde(default = "default_gas_price")]
    pub gas_price: GasPrice,
    /// Gas limit = simulated gas x this (1.0 to 10.0), plus a small fixed margin.
    #[serde(default = "default_gas_multiplier")]
    pub gas_multiplier: f64,
    /// A transaction needing more gas than this is refused before it is broadcast.
    #[serde(default = "default_max_gas")]
    pub max_gas: u64,
    /// Least balance, in the fee denom, for `/v1/health` to report ready (0: any).
    #[serde(default)]
    pub min_balance: u64,
}

impl ChainSection {
    /// The fee settings of this chain.
    pub fn fees(&self) -> FeeSettings {
        FeeSettings {
            gas_price: self.gas_price.clone(),
            gas_multiplier: self.gas_multiplier,
            max_gas: self.max_gas,
        }
    }
}

fn default_account_prefix() -> String {
    DEFAULT_ACCOUNT_PREFIX.into()
}

fn default_gas_price() -> GasPrice {
    FeeSettings::default().gas_price
}

fn default_gas_multiplier() -> f64 {
    DEFAULT_GAS_MULTIPLIER
}

fn default_max_gas() -> u64 {
    DEFAULT_MAX_GAS
}

/// `[sampling]`: the mixnode set measured and where its uptime samples come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingSection {
    /// Mixnodes measured: ids `1..=mixnodes`, unless `mixnode_set` is given.
    pub mixnodes: u32,
    /// Where the operator's monitor publishes the mixnode set (`file:PATH` or an http(s) URL;
    /// format in `relayer_node::mixnode_set`), read at start; replaces `mixnodes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixnode_set: Option<Location>,
    /// Sampling interval in milliseconds (100 or more).
    #[serde(deserialize_with = "crate::duration_ms::deserialize")]
    pub interval_ms: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// How many epochs of raw samples to keep.
    pub retention_epochs: u64,
    /// Where samples come from: `generator`, `file:PATH` or an http(s) URL serving an uptime
    /// report (format in `relayer_node::sample_source`), read every interval.
    pub source: SampleSource,
}

impl Default for SamplingSection {
    fn default() -> Self {
        Self {
            mixnodes: 100,
            mixnode_set: None,
            interval_ms: 1_000,
            seed: 1,
            retention_epochs: 24,
            source: SampleSource::Generator,
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
    #[serde(deserialize_with = "crate::duration_ms::deserialize")]
    pub observation_grace_ms: u64,
    /// Spacing of staggered submission slots, counted from certification; above twice the
    /// chain's block time (a submission waits for a block after the epoch end, then for the
    /// block including it).
    #[serde(deserialize_with = "crate::duration_ms::deserialize")]
    pub submit_slot_ms: u64,
    /// Re-send interval for unfinished epochs.
    #[serde(deserialize_with = "crate::duration_ms::deserialize")]
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

/// A value out of range.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum InvalidValue {
    /// Mixnodes outside `1..=MAX_MIXNODES_CAP`.
    #[error("sampling.mixnodes must be 1..={cap}, got {0}", cap = rules::MAX_MIXNODES_CAP)]
    Mixnodes(u32),
    /// A sampling interval below 100 ms.
    #[error("sampling.interval_ms must be at least 100, got {0}")]
    SamplingInterval(u64),
    /// A zero re-send interval.
    #[error("protocol.resend_interval_ms must be positive")]
    ResendInterval,
    /// A listen address that is not a multiaddress.
    #[error("node.p2p_listen must be a multiaddress, got {0:?}")]
    P2pListen(String),
    /// An RPC URL that is not http(s).
    #[error("chain.rpc must be an http(s) URL, got {0:?}")]
    Rpc(String),
    /// Only one of the API's certificate and key.
    #[error("tls.cert_file and tls.key_file go together: give both or neither")]
    TlsPair,
    /// A bech32 prefix cosmrs refuses.
    #[error("chain.account_prefix {0:?} is not a valid bech32 prefix")]
    AccountPrefix(String),
    /// A fee setting out of range.
    #[error("chain.{0}")]
    Fees(FeeError),
    /// API limits that would refuse every request.
    #[error("api.{0} must be positive")]
    ApiLimit(&'static str),
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
    #[error("config {path} is invalid: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        source: toml::de::Error,
    },
    /// An environment override that does not parse.
    #[error("config {path}: {reason}")]
    Env {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A value out of range.
    #[error("config {path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        source: InvalidValue,
    },
}

impl NodeConfig {
    /// Reads, parses and validates a config file; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = Self::read(path)?;
        config.validate().map_err(|source| ConfigError::Invalid {
            path: path.display().to_string(),
            source,
        })?;
        Ok(config)
    }

    /// [`Self::load`] without the range checks: parsed, with the environment's overrides,
    /// relative paths made relative to the file's folder (`relayer config check` then names
    /// every problem).
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: shown.clone(),
            source,
        })?;
        config
            .apply_env(|name| std::env::var(name).ok())
            .map_err(|reason| ConfigError::Env {
                path: shown,
                reason,
            })?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    /// Makes every relative file path relative to `base`.
    fn resolve_paths(&mut self, base: &Path) {
        let tls = &mut self.tls;
        let tls_files = [
            &mut tls.cert_file,
            &mut tls.key_file,
            &mut tls.extra_ca_file,
        ];
        for file in [
            &mut self.node.data_dir,
            &mut self.node.ed25519_key_file,
            &mut self.node.chain_key_file,
        ]
        .into_iter()
        .chain(tls_files.into_iter().flatten())
        .chain(&mut self.node.auditor_dir)
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        if let SampleSource::Monitor(location) = &mut self.sampling.source {
            location.resolve(base);
        }
        if let Some(location) = &mut self.sampling.mixnode_set {
            location.resolve(base);
        }
    }

    /// Parses TOML.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks ranges; the first problem found (see [`Self::problems`] for all of them).
    pub fn validate(&self) -> Result<(), InvalidValue> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every value out of range.
    pub fn problems(&self) -> Vec<InvalidValue> {
        let mut problems = Vec::new();
        if self.sampling.mixnodes == 0 || self.sampling.mixnodes > rules::MAX_MIXNODES_CAP {
            problems.push(InvalidValue::Mixnodes(self.sampling.mixnodes));
        }
        if self.sampling.interval_ms < 100 {
            problems.push(InvalidValue::SamplingInterval(self.sampling.interval_ms));
        }
        if self.protocol.resend_interval_ms == 0 {
            problems.push(InvalidValue::ResendInterval);
        }
        if self.node.p2p_listen.parse::<libp2p::Multiaddr>().is_err() {
            problems.push(InvalidValue::P2pListen(self.node.p2p_listen.clone()));
        }
        if !crate::http::is_http_url(&self.chain.rpc) {
            problems.push(InvalidValue::Rpc(self.chain.rpc.clone()));
        }
        if check_prefix(&self.chain.account_prefix).is_err() {
            problems.push(InvalidValue::AccountPrefix(
                self.chain.account_prefix.clone(),
            ));
        }
        if let Err(err) = self.chain.fees().validate() {
            problems.push(InvalidValue::Fees(err));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            problems.push(InvalidValue::TlsPair);
        }
        if let Err(err) = self.api.validate() {
            problems.push(err);
        }
        problems
    }

    /// Applies the environment's overrides (`RELAYER_CHAIN_RPC`, `RELAYER_CHAIN_ID`,
    /// `RELAYER_CONTRACT`, `RELAYER_GAS_PRICE`, `RELAYER_ED25519_KEY_FILE`,
    /// `RELAYER_CHAIN_KEY_FILE`, `RELAYER_EXTRA_CA_FILE`, `RELAYER_AUDITOR_DIR`), read through `var`, so secrets'
    /// paths and URLs can come from a service manager instead of the file.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        if let Some(rpc) = var("RELAYER_CHAIN_RPC") {
            self.chain.rpc = rpc;
        }
        if let Some(chain_id) = var("RELAYER_CHAIN_ID") {
            self.chain.chain_id = chain_id;
        }
        if let Some(contract) = var("RELAYER_CONTRACT") {
            self.chain.contract = contract;
        }
        if let Some(price) = var("RELAYER_GAS_PRICE") {
            self.chain.gas_price = price
                .parse()
                .map_err(|err| format!("RELAYER_GAS_PRICE: {err}"))?;
        }
        if let Some(file) = var("RELAYER_ED25519_KEY_FILE") {
            self.node.ed25519_key_file = file.into();
        }
        if let Some(file) = var("RELAYER_CHAIN_KEY_FILE") {
            self.node.chain_key_file = file.into();
        }
        if let Some(file) = var("RELAYER_EXTRA_CA_FILE") {
            self.tls.extra_ca_file = Some(file.into());
        }
        if let Some(dir) = var("RELAYER_AUDITOR_DIR") {
            self.node.auditor_dir = Some(dir.into());
        }
        Ok(())
    }

    /// Serializes to TOML.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }
}

/// The node's home directory: `RELAYER_HOME`, else `~/.relayer`.
pub fn default_home() -> PathBuf {
    match std::env::var_os("RELAYER_HOME") {
        Some(home) => PathBuf::from(home),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".relayer"),
    }
}

/// The config file when none is named: `config.toml` in [`default_home`].
pub fn default_config_path() -> PathBuf {
    default_home().join("config.toml")
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

[sampling]
mixnodes = 50
interval_ms = 200

[protocol]
policy = "race"
"#;

    #[test]
    fn parses_with_defaults() {
        let config = NodeConfig::parse(GOOD).unwrap();
        config.validate().unwrap();
        assert_eq!(config.sampling.mixnodes, 50);
        assert_eq!(config.sampling.retention_epochs, 24);
        assert_eq!(config.protocol.policy, SubmitPolicy::Race);
        assert_eq!(config.protocol.catch_up_epochs, 3);
        assert_eq!(config.chain.account_prefix, "wasm");
        assert_eq!(config.chain.fees(), FeeSettings::default());
        assert_eq!(
            NodeConfig::parse(&config.to_toml().unwrap()).unwrap(),
            config
        );
    }

    #[test]
    fn chain_settings_for_a_nyx_like_chain() {
        let nyx = GOOD.replace(
            "contract = \"wasm1abc\"",
            "contract = \"n1abc\"\naccount_prefix = \"n\"\ngas_price = \"0.025unym\"\ngas_multiplier = 1.5\nmax_gas = 3000000",
        );
        let config = NodeConfig::parse(&nyx).unwrap();
        config.validate().unwrap();
        let fees = config.chain.fees();
        assert_eq!(fees.gas_price.denom.as_ref(), "unym");
        assert_eq!(fees.fee_amount(1_000_000), 25_000);
        assert_eq!((fees.gas_multiplier, fees.max_gas), (1.5, 3_000_000));
        assert!(NodeConfig::parse(&config.to_toml().unwrap()).unwrap() == config);

        let bad_price = nyx.replace("0.025unym", "0.025");
        let err = NodeConfig::parse(&bad_price).unwrap_err().to_string();
        assert!(err.contains("decimal followed by a denom"), "{err}");
        let bad_prefix = NodeConfig::parse(&nyx.replace("\"n\"", "\"N Y\"")).unwrap();
        assert_eq!(
            bad_prefix.validate(),
            Err(InvalidValue::AccountPrefix("N Y".into()))
        );
        let half_tls =
            NodeConfig::parse(&format!("{nyx}\n[tls]\ncert_file = \"api.pem\"\n")).unwrap();
        assert_eq!(half_tls.validate(), Err(InvalidValue::TlsPair));
        let bad_multiplier = NodeConfig::parse(&nyx.replace("1.5", "0.5")).unwrap();
        assert_eq!(
            bad_multiplier.validate(),
            Err(InvalidValue::Fees(FeeError::Multiplier(0.5)))
        );
    }

    #[test]
    fn every_problem_is_named_and_the_environment_overrides() {
        let bad = GOOD
            .replace("interval_ms = 200", "interval_ms = 5")
            .replace("http://127.0.0.1:26657", "ftp://x")
            .replace("/ip4/127.0.0.1/tcp/9000", "/ip4/nowhere/tcp/x");
        let config = NodeConfig::parse(&bad).unwrap();
        assert_eq!(
            config.problems(),
            vec![
                InvalidValue::SamplingInterval(5),
                InvalidValue::P2pListen("/ip4/nowhere/tcp/x".into()),
                InvalidValue::Rpc("ftp://x".into()),
            ]
        );
        let mut config = NodeConfig::parse(GOOD).unwrap();
        let env = |name: &str| match name {
            "RELAYER_CHAIN_RPC" => Some("https://rpc.example.org".to_string()),
            "RELAYER_CHAIN_KEY_FILE" => Some("/run/secrets/chain".to_string()),
            "RELAYER_GAS_PRICE" => Some("0.025unym".to_string()),
            _ => None,
        };
        config.apply_env(env).unwrap();
        assert_eq!(config.chain.rpc, "https://rpc.example.org");
        assert_eq!(
            config.node.chain_key_file,
            PathBuf::from("/run/secrets/chain")
        );
        assert_eq!(config.chain.gas_price.denom.as_ref(), "unym");
        assert_eq!(
            config.node.ed25519_key_file,
            PathBuf::from("keys/node0.ed25519")
        );
        let bad_price = |name: &str| (name == "RELAYER_GAS_PRICE").then(|| "cheap".to_string());
        assert!(
            config
                .apply_env(bad_price)
                .unwrap_err()
                .contains("RELAYER_GAS_PRICE")
        );
    }

    #[test]
    fn durations_take_units() {
        let text = GOOD
            .replace("interval_ms = 200", "interval_ms = \"2s\"")
            .replace(
                "[protocol]",
                "[protocol]\nobservation_grace_ms = \"750ms\"\nresend_interval_ms = \"1m\"",
            );
        let config = NodeConfig::parse(&text).unwrap();
        assert_eq!(config.sampling.interval_ms, 2_000);
        assert_eq!(config.protocol.observation_grace_ms, 750);
        assert_eq!(config.protocol.resend_interval_ms, 60_000);
        let written = config.to_toml().unwrap();
        assert!(written.contains("interval_ms = 2000"), "{written}");
        let err = NodeConfig::parse(&GOOD.replace("interval_ms = 200", "interval_ms = \"2 days\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("use ms, s, m or h"), "{err}");
    }

    #[test]
    fn bad_configs_get_clear_errors() {
        let unknown = GOOD.replace("policy = \"race\"", "polcy = \"race\"");
        assert!(
            NodeConfig::parse(&unknown)
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
        let bad_policy = GOOD.replace("\"race\"", "\"fastest\"");
        assert!(NodeConfig::parse(&bad_policy).is_err());
        let fast =
            NodeConfig::parse(&GOOD.replace("interval_ms = 200", "interval_ms = 5")).unwrap();
        assert_eq!(fast.validate(), Err(InvalidValue::SamplingInterval(5)));
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
