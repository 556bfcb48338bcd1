//! The options of every command that reads a node's API: its URL and the CA to trust for
//! `https://` beyond the system's roots.

use std::path::PathBuf;

use relayer_node::http;

/// A node's API and how to reach it.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The node's API URL (`https://` is verified against the system's roots and `--ca-cert`).
    #[arg(long)]
    pub api: String,
    /// PEM CA certificate(s) to trust beyond the system's roots.
    #[arg(long, env = "RELAYER_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

impl ApiArgs {
    /// The HTTP client these options describe.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        Ok(http::client_with_ca(self.ca_cert.as_deref())?)
    }
}
