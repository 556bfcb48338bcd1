//! `relayer-dev tls-proxy`: https in front of a plain local service, until killed.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use relayer_devtools::tls_proxy::run_tls_proxy;

/// Arguments of `relayer-dev tls-proxy`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (https in front of a local wasmd RPC, certificates from init-cluster --tls):\n  relayer-dev tls-proxy --listen 127.0.0.1:26658 --to 127.0.0.1:26657 \\\n    --cert cluster/tls/api.pem --key cluster/tls/api.key"
)]
pub struct Args {
    /// Address to serve TLS on.
    #[arg(long)]
    listen: SocketAddr,
    /// The plain service behind it.
    #[arg(long)]
    to: SocketAddr,
    /// PEM certificate chain.
    #[arg(long)]
    cert: PathBuf,
    /// PEM private key.
    #[arg(long)]
    key: PathBuf,
}

/// Serves until killed.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = relayer_node::tls::server_config(&args.cert, &args.key)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!("tls-proxy: https://{} -> {}", args.listen, args.to);
    Ok(run_tls_proxy(listener, args.to, config).await?)
}
