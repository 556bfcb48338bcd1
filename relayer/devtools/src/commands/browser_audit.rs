//! `relayer-dev browser-audit`: the browser auditor in headless Chromium against a real chain,
//! case by case beside `relayer verify` and `verify-proof` (see
//! [`relayer_devtools::browser_audit`]).

use std::path::PathBuf;

use relayer_devtools::browser_audit::BrowserAudit;

/// Arguments of `relayer-dev browser-audit`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (a running local wasmd and cluster, epochs 5 and 6 final):\n  relayer-dev browser-audit --relayer target/debug/relayer --node http://127.0.0.1:26657 \\\n    --contract wasm1... --api http://127.0.0.1:8000 --epoch 5 --other-epoch 6 \\\n    --bundle proof.json --verify-page artifacts/auditor/verify.html --out target/browser-audit"
)]
pub struct Args {
    /// The `relayer` binary compared with the page.
    #[arg(long)]
    relayer: PathBuf,
    /// CometBFT RPC URL of the chain (http).
    #[arg(long)]
    node: String,
    /// Contract address.
    #[arg(long)]
    contract: String,
    /// An honest node's API, serving the auditor (`node.auditor_dir`).
    #[arg(long)]
    api: String,
    /// A final epoch.
    #[arg(long)]
    epoch: u64,
    /// Another final epoch (what one dishonest node serves instead).
    #[arg(long)]
    other_epoch: u64,
    /// A proof bundle of `--epoch` (`relayer export-proof`).
    #[arg(long)]
    bundle: PathBuf,
    /// The standalone page (`make auditor-web`).
    #[arg(long, default_value = "artifacts/auditor/verify.html")]
    verify_page: PathBuf,
    /// Where screenshots and the modified bundle go.
    #[arg(long, default_value = "target/browser-audit")]
    out: PathBuf,
    /// PEM CA certificate(s) to trust for the honest node's https API.
    #[arg(long, env = "RELAYER_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

/// Runs every case and prints one line per case.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let verify_page = std::fs::canonicalize(&args.verify_page).map_err(|err| {
        anyhow::anyhow!(
            "{}: {err} (build it with `make auditor-web`)",
            args.verify_page.display()
        )
    })?;
    let audit = BrowserAudit {
        relayer: args.relayer,
        rpc: args.node,
        contract: args.contract,
        api: args.api,
        epoch: args.epoch,
        other_epoch: args.other_epoch,
        bundle: args.bundle,
        verify_page,
        out: args.out,
        http: relayer_node::http::client_with_ca(args.ca_cert.as_deref())?,
    };
    for line in audit.run().await? {
        println!("{line}");
    }
    println!("browser-audit: screenshots in {}", audit.out.display());
    Ok(())
}
