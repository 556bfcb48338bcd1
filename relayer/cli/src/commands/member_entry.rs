//! `relayer member-entry`: the JSON entry an operator sends the contract admin to be added to
//! the signer set: the signing public key, the chain address, and the public API URL and p2p
//! address other members reach this node at. Nothing secret is printed.

use std::net::SocketAddr;
use std::path::PathBuf;

use cosmwasm_std::HexBinary;
use nym_rewards::msg::MemberInput;
use relayer_node::config::NodeConfig;
use relayer_node::keys::{ChainAccount, read_secret};
use relayer_protocol::Keypair;
use zeroize::Zeroizing;

use crate::exit::UsageError;

/// Arguments of `relayer member-entry`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (send the output to the admin):\n  relayer member-entry --config ~/.relayer/config.toml \\\n    --api-url https://node0.example.org:8000 --p2p-multiaddr /dns4/node0.example.org/tcp/9000 > node0.json"
)]
pub struct Args {
    /// The node config.
    #[arg(long)]
    config: PathBuf,
    /// Public URL of the API (default: the listen address, when it is not a wildcard).
    #[arg(long)]
    api_url: Option<String>,
    /// Public libp2p address (default: the listen address, when it is not a wildcard).
    #[arg(long)]
    p2p_multiaddr: Option<String>,
}

/// Prints the entry as JSON.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let account =
        ChainAccount::from_file(&config.node.chain_key_file, &config.chain.account_prefix)?;
    let signing = Zeroizing::new(read_secret(&config.node.ed25519_key_file)?);
    let api_url = match args.api_url {
        Some(url) => url,
        None => default_api_url(&config)?,
    };
    if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
        return Err(
            UsageError(format!("--api-url must be an http(s) URL, got {api_url:?}")).into(),
        );
    }
    let p2p_multiaddr = match args.p2p_multiaddr {
        Some(addr) => addr,
        None if is_wildcard_multiaddr(&config.node.p2p_listen) => {
            return Err(UsageError(format!(
                "node.p2p_listen {} is a wildcard; give --p2p-multiaddr with the public address",
                config.node.p2p_listen
            ))
            .into());
        }
        None => config.node.p2p_listen.clone(),
    };
    let entry = MemberInput {
        ed25519_pubkey: HexBinary::from(Keypair::from_seed(&signing).public()),
        address: account.address().to_string(),
        api_url,
        p2p_multiaddr,
    };
    println!("{}", serde_json::to_string_pretty(&entry)?);
    Ok(())
}

fn default_api_url(config: &NodeConfig) -> anyhow::Result<String> {
    let listen: SocketAddr = config.node.http_listen;
    if listen.ip().is_unspecified() {
        return Err(UsageError(format!(
            "node.http_listen {listen} is a wildcard; give --api-url with the public URL"
        ))
        .into());
    }
    Ok(relayer_node::http::api_url(
        listen,
        config.tls.cert_file.is_some(),
    ))
}

fn is_wildcard_multiaddr(addr: &str) -> bool {
    addr.starts_with("/ip4/0.0.0.0/") || addr.starts_with("/ip6/::/")
}
