//! `relayer-dev init-cluster`: keys, node configs and the signer set of an N-member cluster in
//! one directory, for a local wasmd (addresses use the `wasm` prefix). Every member's secrets
//! are in one place: a devnet tool, not how independent operators onboard.

use std::path::{Path, PathBuf};

use cosmwasm_std::HexBinary;
use nym_rewards::msg::MemberInput;
use nym_rewards::rules::MAX_MEMBERS;
use relayer_node::chain::fees::{DEFAULT_GAS_MULTIPLIER, DEFAULT_MAX_GAS, FeeSettings, GasPrice};
use relayer_node::cluster::{ClusterManifest, write_manifest};
use relayer_node::config::{
    ApiLimits, ChainSection, NodeConfig, NodeSection, ProtocolSection, SamplingSection, TlsSection,
};
use relayer_node::keys::{
    ChainAccount, DEFAULT_ACCOUNT_PREFIX, check_prefix, random_secret, write_secret,
};
use relayer_protocol::Keypair;

use crate::DevError;
use crate::pki::write_dev_pki;

/// Settings of a new cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Members.
    pub nodes: usize,
    /// Nodes beyond them, with keys and configs but in no signer set yet (named after the
    /// members: `node{nodes}`, ...).
    pub joining: usize,
    /// Output directory (must not exist or be empty).
    pub out: PathBuf,
    /// First p2p port; node i listens on `p2p_base_port + i`.
    pub p2p_base_port: u16,
    /// First HTTP port; node i serves on `http_base_port + i`.
    pub http_base_port: u16,
    /// CometBFT RPC of the chain.
    pub rpc: String,
    /// Chain id.
    pub chain_id: String,
    /// Mixnodes measured.
    pub mixnodes: u32,
    /// Bech32 prefix of account addresses, and gas price, written to every node's `[chain]`.
    pub fees: ClusterFees,
    /// Serve the APIs over https: a throwaway CA and certificate under `tls/`, named in every
    /// config, and `https://` API URLs in the members' entries.
    pub tls: bool,
}

/// The chain settings a cluster's accounts and nodes use.
#[derive(Debug, Clone)]
pub struct ClusterFees {
    /// Bech32 prefix (`wasm`, `n`).
    pub account_prefix: String,
    /// Gas price with its denom.
    pub gas_price: GasPrice,
}

impl Default for ClusterFees {
    fn default() -> Self {
        Self {
            account_prefix: DEFAULT_ACCOUNT_PREFIX.into(),
            gas_price: FeeSettings::default().gas_price,
        }
    }
}

/// Creates the cluster directory.
pub fn init_cluster(options: &ClusterOptions) -> Result<ClusterManifest, DevError> {
    if options.nodes == 0 || options.nodes + options.joining > MAX_MEMBERS {
        return Err(DevError::Invalid(format!(
            "a cluster needs 1 to {MAX_MEMBERS} nodes, got {} and {} joining",
            options.nodes, options.joining
        )));
    }
    let out = &options.out;
    if out.exists()
        && out
            .read_dir()
            .map_err(|err| DevError::io(format!("reading {}", out.display()), err))?
            .next()
            .is_some()
    {
        return Err(DevError::Invalid(format!(
            "{} is not empty; refusing to overwrite keys",
            out.display()
        )));
    }
    let keys = out.join("keys");
    std::fs::create_dir_all(&keys)
        .map_err(|err| DevError::io(format!("creating {}", keys.display()), err))?;
    let prefix = &options.fees.account_prefix;
    check_prefix(prefix).map_err(|err| DevError::Invalid(err.to_string()))?;
    let admin = new_account(&keys.join("admin.secp256k1"), prefix)?;
    let tls = if options.tls {
        write_dev_pki(&out.join("tls"), &["127.0.0.1", "localhost"])?;
        TlsSection {
            cert_file: Some("tls/api.pem".into()),
            key_file: Some("tls/api.key".into()),
            extra_ca_file: Some("tls/ca.pem".into()),
        }
    } else {
        TlsSection::default()
    };
    let mut members = Vec::new();
    let mut joining = Vec::new();
    let mut configs = Vec::new();
    for i in 0..options.nodes + options.joining {
        let name = format!("node{i}");
        let ed25519 = random_secret();
        write_secret(&keys.join(format!("{name}.ed25519")), &ed25519)?;
        let account = new_account(&keys.join(format!("{name}.secp256k1")), prefix)?;
        let p2p_port = port(options.p2p_base_port, i)?;
        let http_port = port(options.http_base_port, i)?;
        let config = NodeConfig {
            node: NodeSection {
                name: name.clone(),
                data_dir: PathBuf::from(format!("data/{name}")),
                ed25519_key_file: PathBuf::from(format!("keys/{name}.ed25519")),
                chain_key_file: PathBuf::from(format!("keys/{name}.secp256k1")),
                p2p_listen: format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
                http_listen: ([127, 0, 0, 1], http_port).into(),
                metrics_listen: None,
                auditor_dir: None,
            },
            chain: ChainSection {
                rpc: options.rpc.clone(),
                chain_id: options.chain_id.clone(),
                contract: String::new(),
                account_prefix: prefix.clone(),
                gas_price: options.fees.gas_price.clone(),
                gas_multiplier: DEFAULT_GAS_MULTIPLIER,
                max_gas: DEFAULT_MAX_GAS,
                min_balance: 0,
            },
            sampling: SamplingSection {
                mixnodes: options.mixnodes,
                ..SamplingSection::default()
            },
            protocol: ProtocolSection::default(),
            api: ApiLimits::default(),
            tls: tls.clone(),
        };
        let file = PathBuf::from(format!("{name}.toml"));
        std::fs::write(out.join(&file), config.to_toml()?)
            .map_err(|err| DevError::io(format!("writing {}", file.display()), err))?;
        configs.push(file);
        let entry = MemberInput {
            ed25519_pubkey: HexBinary::from(Keypair::from_seed(&ed25519).public()),
            address: account.address().to_string(),
            api_url: relayer_node::http::api_url(format!("127.0.0.1:{http_port}"), options.tls),
            p2p_multiaddr: format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
        };
        if i < options.nodes {
            members.push(entry);
        } else {
            joining.push(entry);
        }
    }
    let manifest = ClusterManifest {
        admin: admin.address().to_string(),
        members,
        joining,
        configs,
    };
    write_manifest(out, &manifest)?;
    Ok(manifest)
}

fn port(base: u16, i: usize) -> Result<u16, DevError> {
    u16::try_from(usize::from(base) + i)
        .map_err(|_| DevError::Invalid("port out of range; choose a lower base port".into()))
}

fn new_account(path: &Path, prefix: &str) -> Result<ChainAccount, DevError> {
    loop {
        let secret = random_secret();
        if let Some(account) = ChainAccount::from_secret(&secret, prefix) {
            write_secret(path, &secret)?;
            return Ok(account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayer_node::cluster::read_manifest;

    #[test]
    fn init_cluster_writes_keys_configs_and_signer_set() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("cluster");
        let options = ClusterOptions {
            nodes: 3,
            joining: 1,
            out: out.clone(),
            p2p_base_port: 27_000,
            http_base_port: 28_000,
            rpc: "http://127.0.0.1:26657".into(),
            chain_id: "testing".into(),
            mixnodes: 10,
            fees: ClusterFees::default(),
            tls: true,
        };
        let manifest = init_cluster(&options).unwrap();
        assert_eq!(manifest.members.len(), 3);
        assert_eq!(manifest.joining.len(), 1);
        assert_eq!(
            manifest.configs.len(),
            4,
            "the joining node has a config too"
        );
        assert_eq!(read_manifest(&out).unwrap(), manifest);
        let config = NodeConfig::load(&out.join("node2.toml")).unwrap();
        let cert = config.tls.cert_file.as_ref().unwrap();
        let key = config.tls.key_file.as_ref().unwrap();
        relayer_node::tls::server_config(cert, key).unwrap();
        relayer_node::http::client_with_ca(config.tls.extra_ca_file.as_deref()).unwrap();
        assert!(
            manifest.members[2]
                .api_url
                .starts_with("https://127.0.0.1:")
        );
        assert_eq!(config.node.p2p_listen, "/ip4/127.0.0.1/tcp/27002");
        let account =
            ChainAccount::from_file(&config.node.chain_key_file, &config.chain.account_prefix)
                .unwrap();
        assert_eq!(account.address(), manifest.members[2].address);
        assert!(
            init_cluster(&options).is_err(),
            "never overwrites an existing cluster"
        );
    }
}
