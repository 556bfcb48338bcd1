//! `relayer run`: one node against a wasmd chain, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use relayer_node::auditor_assets::AuditorAssets;
use relayer_node::chain::ChainError;
use relayer_node::chain::wasmd::WasmdChain;
use relayer_node::config::NodeConfig;
use relayer_node::keys::{ChainAccount, read_secret};
use relayer_node::net::BoundNet;
use relayer_node::{NodeSettings, start_node};
use relayer_node::{http, mixnode_set, tls};
use relayer_protocol::wire::Codec;

use crate::exit::UsageError;

/// Arguments of `relayer run`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  relayer run --config ~/.relayer/config.toml   # or RELAYER_HOME=/srv/relayer relayer run"
)]
pub struct Args {
    /// Node config (TOML; default: `config.toml` in `RELAYER_HOME` or `~/.relayer`).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Connects to the chain, waiting with a progress line per attempt while it is down (a node
/// started before its chain waits for it), until a shutdown signal.
async fn wait_for_chain(config: &NodeConfig) -> anyhow::Result<WasmdChain> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        let connected = WasmdChain::connect_trusting(
            &config.chain.rpc,
            Some(&config.chain.chain_id),
            &config.chain.contract,
            config.chain.fees(),
            config.tls.extra_ca_file.as_deref(),
        )
        .await;
        match connected {
            Ok(chain) => {
                if attempt > 1 {
                    tracing::info!(
                        "chain at {} reachable after {:.0?}",
                        config.chain.rpc,
                        started.elapsed()
                    );
                }
                return Ok(chain);
            }
            Err(err @ ChainError::Unavailable(_)) => {
                tracing::warn!(
                    "waiting for the chain at {} (attempt {attempt}, {:.0?} so far): {err}; next try in {delay:?}",
                    config.chain.rpc,
                    started.elapsed()
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown_signal() => anyhow::bail!("stopped while waiting for the chain"),
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(err) => {
                return Err(UsageError(format!(
                    "{err} (check chain.rpc, chain.chain_id and the fee settings in the config)"
                ))
                .into());
            }
        }
    }
}

/// Runs the node until a shutdown signal.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let path = &args
        .config
        .unwrap_or_else(relayer_node::config::default_config_path);
    // The config is read first, so its problems are named (exit 2) whatever the build.
    let config = NodeConfig::load(path)?;
    if relayer_protocol::PLANTED_BUGS_AVAILABLE {
        anyhow::bail!(
            "this build carries the test suite's planted bugs (feature planted-bugs); build the \
             operator binary on its own: cargo build --release -p relayer"
        );
    }
    if config.chain.contract.is_empty() {
        return Err(UsageError(format!(
            "{} names no contract; run `relayer deploy` first",
            path.display()
        ))
        .into());
    }
    let ed25519_secret = read_secret(&config.node.ed25519_key_file)?;
    let account =
        ChainAccount::from_file(&config.node.chain_key_file, &config.chain.account_prefix)?;
    std::fs::create_dir_all(&config.node.data_dir)
        .with_context(|| format!("creating {}", config.node.data_dir.display()))?;
    let chain = wait_for_chain(&config).await?;
    let api_tls = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    let auditor = match &config.node.auditor_dir {
        Some(dir) => Some(Arc::new(
            AuditorAssets::load(dir).map_err(|err| UsageError(err.to_string()))?,
        )),
        None => None,
    };
    let http_client = http::client_with_ca(config.tls.extra_ca_file.as_deref())?;
    let mixnodes = mixnode_set::load(&config.sampling, &http_client).await?;
    let net = BoundNet::bind(
        ed25519_secret,
        &config.node.p2p_listen,
        Codec::new(&mixnodes),
    )
    .await?;
    let http = std::net::TcpListener::bind(config.node.http_listen).with_context(|| {
        format!(
            "cannot serve the API on {} (port taken?)",
            config.node.http_listen
        )
    })?;
    let metrics_http = match config.node.metrics_listen {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot serve metrics on {addr} (port taken?)"))?,
        ),
        None => None,
    };
    let node = start_node(NodeSettings {
        name: config.node.name.clone(),
        ed25519_secret,
        account,
        db_path: config.node.data_dir.join("node.sqlite"),
        http: Some(http),
        metrics_http,
        // Simulation charges the probe's fee against the balance, so less cannot submit.
        min_balance: u128::from(config.chain.min_balance).max(
            config
                .chain
                .fees()
                .fee_amount(relayer_node::chain::wasmd::PROBE_GAS_LIMIT),
        ),
        api_limits: config.api.clone(),
        api_tls,
        auditor,
        http_client,
        net,
        sampling: config.sampling.clone(),
        protocol: config.protocol.clone(),
        chain: Arc::new(chain),
    })
    .await?;
    println!(
        "{} running: API {}",
        node.name,
        node.api_url.clone().unwrap_or_default()
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    node.stop().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return ctrl_c.await.unwrap_or(()),
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
